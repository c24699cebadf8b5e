# Checkpoint and restore through the engines (sourced by run.sh as the engine "criu"): podman
# 4.3 (`podman container checkpoint/restore`, also --leave-running, --export/--import into a new
# container) and containerd 1.6 (`ctr task checkpoint`, then `ctr containers checkpoint --task`
# and `ctr containers restore --live` from it). Needs a CRIU that works (`criu check`): on this
# 6.18 host it does not, so hack/e2e/criu-vm.sh runs this engine in the VM guest.
#
# The process is a counter that prints "tick N TOKEN" each 0.2 s and keeps "TOKEN N" in /count,
# TOKEN being a random id it drew when it started: restored, it must go on with the next N and
# the same TOKEN (a process started afresh would draw another one and count from 1), which
# proves its memory was restored.
#
# The cgroup setup is the host e2e's (cgroupfs, a test-only parent); hack/sysvm/e2e-criu.sh runs
# the same checks at the engines' systemd defaults by setting CRIU_PODMAN_SETUP,
# CRIU_PODMAN_CGOPTS, CRIU_CTR_RT and criu_ctr_cgroup / criu_restored (hooks, no-ops here).
CRIU_COUNTER='t=$(cat /proc/sys/kernel/random/uuid); i=0; while :; do i=$((i+1)); echo tick $i $t; echo $t $i > /count; sleep 0.2; done'

# ticks TEXT: the tick numbers in TEXT, one per line; token TEXT: the last tick's token.
ticks() { grep -o 'tick [0-9]*' <<<"$1" | cut -d' ' -f2; }
token() { grep -o 'tick [0-9]* [0-9a-f-]*' <<<"$1" | tail -n 1 | cut -d' ' -f3; }
# criu_ctr_cgroup NAME: ctr run's cgroup options for container NAME (none: containerd's default).
# criu_restored ENGINE NAME PID: extra checks of a restored container (FAIL lines of its own).
declare -F criu_ctr_cgroup >/dev/null || criu_ctr_cgroup() { :; }
declare -F criu_restored >/dev/null || criu_restored() { :; }

# consecutive MIN: stdin is 1, 2, 3, ... (at least MIN of them): one run of the counter.
consecutive() {
    awk -v min="${1:-1}" 'BEGIN { n = 0 } { n++; if ($1 != n) { exit 1 } } END { exit !(n >= min) }'
}

criu_podman() {
    local D=$W/cp IMG=localhost/be2e-busybox:latest
    PM=$D/podman
    "${CRIU_PODMAN_SETUP:-podman_setup}" "$D"
    local RUNOPTS="--network none ${CRIU_PODMAN_CGOPTS---cgroup-parent /$TAG-criu}"
    [ -n "${E2E_NO_SECCOMP:-}" ] && RUNOPTS="$RUNOPTS --security-opt seccomp=unconfined"
    run_cmd 120 "$PM" import --change CMD=/bin/sh "$W/rootfs.tar" "$IMG"
    [ $CHECK_RC = 0 ] || { fail pm-criu-image "$(details)"; return; }

    mark pm-checkpoint
    run_cmd 60 "$PM" run -d --name pmck $RUNOPTS "$IMG" sh -c "$CRIU_COUNTER"
    local id before after
    id=$("$PM" inspect -f '{{.Id}}' pmck 2>/dev/null)
    wait_until 30 sh -c "[ \"\$('$PM' logs pmck 2>/dev/null | grep -c tick)\" -ge 3 ]"
    run_cmd 120 "$PM" container checkpoint pmck
    before=$("$PM" logs pmck 2>/dev/null)
    if [ $CHECK_RC = 0 ] && pm_is pmck exited &&
        has_call " checkpoint .*--image-path [^ ]+ .*--work-path [^ ]+ .*$id$" &&
        ! timeout 10 "$RUNTIME" state "$id" >/dev/null 2>&1; then
        pass pm-checkpoint
    else
        fail pm-checkpoint "expected pmck exited after '$(basename "$RUNTIME") checkpoint --image-path --work-path', and gone from the runtime" "$(details)" "status: $(pm_status pmck)"
    fi

    mark pm-restore
    run_cmd 120 "$PM" container restore pmck
    wait_until 30 sh -c "[ \"\$('$PM' logs pmck 2>/dev/null | grep -c tick)\" -ge $(( $(ticks "$before" | wc -l) + 3 )) ]"
    after=$("$PM" logs pmck 2>/dev/null)
    if [ $CHECK_RC = 0 ] && pm_is pmck running && has_call " restore .*$id$" &&
        ticks "$after" | consecutive "$(( $(ticks "$before" | wc -l) + 3 ))"; then
        pass pm-restore
        criu_restored podman "$id" "$("$PM" inspect -f "{{.State.Pid}}" pmck 2>/dev/null)"
    else
        fail pm-restore "expected pmck running again, counting on from where it was (one run of ticks)" "$(details)" \
            "status: $(pm_status pmck)" "ticks: $(ticks "$after" | tr '\n' ' ' | cut -c1-300)"
    fi

    mark pm-restored-exec
    run_cmd 30 "$PM" exec pmck cat /count
    local ct cn
    read -r ct cn <<<"$CHECK_OUT"
    if [ $CHECK_RC = 0 ] && [ "$ct" = "$(token "$before")" ] && [ "${cn:-0}" -gt "$(ticks "$before" | tail -n 1)" ] 2>/dev/null &&
        has_call " exec .*$id"; then
        pass pm-restored-exec
    else
        fail pm-restored-exec "expected exec into the restored container to read the same counter ($(token "$before")) past the checkpoint's $(ticks "$before" | tail -n 1)" "$(details)"
    fi

    mark pm-checkpoint-leave-running
    run_cmd 120 "$PM" container checkpoint --leave-running --export "$D/pmck.tar.gz" pmck
    if [ $CHECK_RC = 0 ] && pm_is pmck running && has_call " checkpoint .*--leave-running.* $id$" && [ -s "$D/pmck.tar.gz" ]; then
        pass pm-checkpoint-leave-running
    else
        fail pm-checkpoint-leave-running "expected pmck still running and an exported checkpoint" "$(details)"
    fi

    mark pm-restore-import
    local last2 tok log2 id2 n2
    last2=$(ticks "$("$PM" logs pmck 2>/dev/null)" | tail -n 1)
    tok=$(token "$("$PM" logs pmck 2>/dev/null)")
    run_cmd 120 "$PM" container restore --import "$D/pmck.tar.gz" --name pmck2
    wait_until 30 sh -c "'$PM' logs pmck2 2>/dev/null | grep -o 'tick [0-9]*' | cut -d' ' -f2 | tail -n 1 | awk '\$1 > $last2 { f = 1 } END { exit !f }'"
    log2=$("$PM" logs pmck2 2>/dev/null)
    n2=$(ticks "$log2" | tail -n 1)
    id2=$("$PM" inspect -f '{{.Id}}' pmck2 2>/dev/null)
    if [ $CHECK_RC = 0 ] && pm_is pmck2 running && [ -n "$id2" ] && [ "$id2" != "$id" ] &&
        has_call " restore .*$id2$" && [ "${n2:-0}" -gt "$last2" ] && [ -n "$tok" ] && [ "$(token "$log2")" = "$tok" ]; then
        pass pm-restore-import
    else
        fail pm-restore-import "expected a new container pmck2 from the export, the same counter (token $tok) past $last2" "$(details)" \
            "last tick of pmck2: $(grep -o 'tick .*' <<<"$log2" | tail -n 1)"
    fi
    timeout 60 "$PM" rm -f -t 0 pmck pmck2 >/dev/null 2>&1
}

# ctr_index_types REF: the media types in a checkpoint image's index (for FAIL details).
ctr_index_types() {
    local d
    d=$($CTR image ls 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }')
    [ -n "$d" ] && $CTR content get "$d" 2>/dev/null | jq -r '.manifests[] | .mediaType' 2>/dev/null | tr '\n' ' '
}

# containerd 1.6 refuses to checkpoint the same spec twice (its task service writes the spec into
# the content store, and the second write fails "already exists"; `ctr containers checkpoint`
# drops that error and makes an image without the task), so each checkpoint is of a container
# of its own: k1 with --exit, k3 as a whole container (its task left running), restored as k2.
criu_containerd() {
    local D=$W/cc NS=$TAG IMG=localhost/be2e-busybox:latest
    CTR="ctr --address $D/containerd.sock -n $NS"
    local RT="--runc-binary $WRAP --runc-root $D/rt-root --fifo-dir $D/fifo ${CRIU_CTR_RT:-}"
    containerd_start "$D" || { fail ctr-criu-daemon "$(tail -n 5 "$D/containerd.log")"; return; }
    run_cmd 60 $CTR image import --base-name localhost/be2e-busybox "$W/busybox-oci.tar"
    [ $CHECK_RC = 0 ] || { fail ctr-criu-image "$(details)"; return; }

    mark ctr-task-checkpoint-exit
    run_cmd 60 $CTR run -d --log-uri "file://$D/k1.log" $RT $(criu_ctr_cgroup k1) "$IMG" k1 /bin/sh -c "$CRIU_COUNTER"
    wait_until 30 sh -c "[ \"\$(grep -c tick '$D/k1.log' 2>/dev/null)\" -ge 3 ]"
    local ref
    run_cmd 120 $CTR task checkpoint --exit k1
    ref=$(tail -n 1 <<<"$CHECK_OUT")
    wait_until 20 sh -c "! $CTR task ls 2>/dev/null | grep '^k1 .*RUNNING' >/dev/null"
    if [ $CHECK_RC = 0 ] && [ -n "$ref" ] && ! ctr_task_is k1 RUNNING &&
        has_call " checkpoint .*--image-path [^ ]+ .* k1$" && ! has_call "--leave-running.* k1$" &&
        grep -qxF "$ref" <<<"$($CTR image ls -q 2>/dev/null)"; then
        pass ctr-task-checkpoint-exit
    else
        fail ctr-task-checkpoint-exit "expected a checkpoint image and k1 stopped by its checkpoint (--exit)" "$(details)" \
            "tasks: $($CTR task ls 2>&1)" "images: $($CTR image ls -q 2>&1 | tr '\n' ' ')"
    fi
    timeout 30 $CTR task rm -f k1 >/dev/null 2>&1
    timeout 30 $CTR containers rm k1 >/dev/null 2>&1

    mark ctr-container-checkpoint
    run_cmd 60 $CTR run -d --log-uri "file://$D/k3.log" $RT $(criu_ctr_cgroup k3) "$IMG" k3 /bin/sh -c "$CRIU_COUNTER"
    wait_until 30 sh -c "[ \"\$(grep -c tick '$D/k3.log' 2>/dev/null)\" -ge 3 ]"
    local pid n tok types
    pid=$(ctr_task_pid k3)
    # (Without --rw: containerd 1.6 writes the rw layer uncompressed and then looks for a gzip
    # one at restore, "media type not found", whatever the runtime.)
    read -r tok n < <(timeout 30 $CTR task exec --exec-id c0 k3 cat /count 2>/dev/null)
    run_cmd 120 $CTR containers checkpoint --image --task k3 localhost/k3-checkpoint:1
    wait_until 20 ctr_task_is k3 RUNNING
    types=$(ctr_index_types localhost/k3-checkpoint:1)
    if [ $CHECK_RC = 0 ] && has_call " checkpoint .*--leave-running.* k3$" && ctr_task_is k3 RUNNING &&
        [ -n "$pid" ] && [ "$(ctr_task_pid k3)" = "$pid" ] &&
        grep -q 'criu.checkpoint.criu.tar' <<<"$types" && grep -q 'checkpoint.config' <<<"$types"; then
        pass ctr-container-checkpoint
    else
        fail ctr-container-checkpoint "expected a container checkpoint holding its task (CRIU images and spec), k3 left running as $pid" \
            "$(details)" "tasks: $($CTR task ls 2>&1)" "checkpoint index: $types"
    fi
    timeout 30 $CTR task kill -s SIGKILL k3 >/dev/null 2>&1
    wait_until 20 sh -c "! $CTR task ls 2>/dev/null | grep '^k3 .*RUNNING' >/dev/null"
    timeout 30 $CTR task rm -f k3 >/dev/null 2>&1
    timeout 30 $CTR containers rm k3 >/dev/null 2>&1

    mark ctr-restore
    run_cmd 120 $CTR containers restore --live k2 localhost/k3-checkpoint:1
    wait_until 30 ctr_task_is k2 RUNNING
    local t1 c1 t2 c2
    wait_until 30 sh -c "$CTR task exec --exec-id r0 k2 cat /count >/dev/null"
    read -r t1 c1 < <(timeout 30 $CTR task exec --exec-id r1 k2 cat /count 2>/dev/null)
    sleep 1
    read -r t2 c2 < <(timeout 30 $CTR task exec --exec-id r2 k2 cat /count 2>/dev/null)
    if [ $CHECK_RC = 0 ] && ctr_task_is k2 RUNNING && has_call " restore .*--image-path [^ ]+ .* k2$" &&
        [ -n "$tok" ] && [ "$t1" = "$tok" ] && [ "$t2" = "$tok" ] &&
        [ "${c1:-0}" -gt "${n:-0}" ] 2>/dev/null && [ "${c2:-0}" -gt "$c1" ] 2>/dev/null; then
        pass ctr-restore
        criu_restored containerd k2 "$(ctr_task_pid k2)"
    else
        fail ctr-restore "expected k2 restored from k3's checkpoint: counter $tok past $n (read '$t1 $c1', then '$t2 $c2')" \
            "$(details)" "tasks: $($CTR task ls 2>&1)"
    fi
    timeout 30 $CTR task kill -s SIGKILL k2 >/dev/null 2>&1
    wait_until 20 sh -c "! $CTR task ls 2>/dev/null | grep '^k2 .*RUNNING' >/dev/null"
    timeout 30 $CTR task rm -f k2 >/dev/null 2>&1
    timeout 30 $CTR containers rm k2 >/dev/null 2>&1
}

# CRIU_ENGINES (default "podman containerd"): which of the two to run.
suite_criu() {
    if ! criu check >/dev/null 2>&1; then
        fail criu-check "CRIU does not work here: $(criu check 2>&1 | grep -m1 Error)"
        return
    fi
    local e
    for e in ${CRIU_ENGINES:-podman containerd}; do
        case $e in
            podman) criu_podman; podman_teardown "$W/cp" ;;
            containerd) criu_containerd ;;
            *) if declare -F "criu_$e" >/dev/null; then "criu_$e"; else fail "criu-$e" "no checks for engine '$e' here"; fi ;;
        esac
    done
}
