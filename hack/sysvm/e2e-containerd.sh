# shellcheck shell=bash
# containerd 1.6 + ctr with the runc shim's SystemdCgroup option (sourced by hack/sysvm/e2e.sh).
# ctr --runc-systemd-cgroup sets the shim's SystemdCgroup = true for the container (what
# `SystemdCgroup = true` in a CRI runtime's options does) and needs a cgroupsPath in systemd's
# slice:prefix:name form (--cgroup). containerd itself (containerd_start of hack/e2e) is private.

ssuite_containerd() {
    local D=$W/c NS=$TAG
    CTR="ctr --address $D/containerd.sock -n $NS"
    local RT="--runc-binary $WRAP --runc-root $D/rt-root --fifo-dir $D/fifo --runc-systemd-cgroup"
    local LONG='trap "echo usr1 >/tmp/usr1" USR1; trap "exit 0" TERM; while :; do sleep 0.2; done'
    cgp() { echo "system.slice:be2e:$1"; }   # the scope: system.slice/be2e-<id>.scope

    mark ctr-daemon-start
    if containerd_start "$D"; then
        pass ctr-daemon-start
    else
        fail ctr-daemon-start "containerd did not answer on $D/containerd.sock" "$(tail -n 5 "$D/containerd.log")"
        return
    fi

    mark ctr-image-import
    run_cmd 120 $CTR image import --base-name localhost/be2e-busybox "$W/busybox-oci.tar"
    if [ $CHECK_RC = 0 ] && $CTR image ls -q | grep -qx "$IMG"; then
        pass ctr-image-import
    else
        fail ctr-image-import "$(details)" "images: $($CTR image ls -q 2>&1)"
        return
    fi

    mark ctr-run-echo
    run_cmd 90 $CTR run --rm $RT --cgroup "$(cgp c-echo)" "$IMG" c-echo /bin/sh -c 'echo hello-from-ctr; cat /proc/self/cgroup; exit 7'
    if [ $CHECK_RC = 7 ] && [ "$(head -n 1 <<<"$CHECK_OUT")" = hello-from-ctr ] &&
        grep -qx '0::/system.slice/be2e-c-echo.scope' <<<"$CHECK_OUT" &&
        has_call " --systemd-cgroup create .*--bundle [^ ]*/c-echo .*c-echo( \[|$)" && has_call " --systemd-cgroup start c-echo$" &&
        unit_and_cgroup_gone be2e-c-echo.scope /system.slice/be2e-c-echo.scope; then
        pass ctr-run-echo
    else
        fail ctr-run-echo "expected hello-from-ctr and status 7 from /system.slice/be2e-c-echo.scope, create+start with --systemd-cgroup through $WRAP, no unit after: ${WHY:-}" "$(details)"
    fi

    # A create that fails after the scope was started (the program is missing): an error that
    # names the file, and neither a unit nor a cgroup left (the runtime's rollback).
    mark ctr-run-missing-program
    run_cmd 90 $CTR run --rm $RT --cgroup "$(cgp c-nox)" "$IMG" c-nox /no/such/program
    timeout 30 $CTR container rm c-nox >/dev/null 2>&1
    if [ $CHECK_RC != 0 ] && grep -q 'no such file or directory' <<<"$CHECK_OUT" &&
        unit_and_cgroup_gone be2e-c-nox.scope /system.slice/be2e-c-nox.scope; then
        pass ctr-run-missing-program
    else
        fail ctr-run-missing-program "expected a failure naming 'no such file or directory' and no be2e-c-nox.scope left: ${WHY:-}" "$(details)"
    fi

    mark ctr-run-tty
    run_tty 90 "$CTR run --rm -t $RT --cgroup $(cgp c-tty) $IMG c-tty /bin/tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " create .*--console-socket [^ ]+ c-tty"; then
        pass ctr-run-tty
    else
        fail ctr-run-tty "expected a /dev/pts/N terminal, create with --console-socket" "$(details)"
    fi

    mark ctr-run-detached-unit
    run_cmd 90 $CTR run -d $RT --cgroup "$(cgp c-long)" --memory-limit 67108864 --cpu-quota 20000 --cpu-period 100000 "$IMG" c-long /bin/sh -c "$LONG"
    local st ipid unit="" cg=""
    wait_until 15 ctr_task_is c-long RUNNING
    ipid=$(ctr_task_pid c-long)
    st=$(timeout 20 "$RUNTIME" --root "$D/rt-root/$NS" state c-long 2>&1)
    if [ $CHECK_RC = 0 ] && ctr_task_is c-long RUNNING && grep -qE '"status": *"running"' <<<"$st" &&
        check_unit "$ipid" system.slice MemoryMax=67108864 CPUQuotaPerSecUSec=200ms &&
        [ "$UNIT" = be2e-c-long.scope ] && has_call " --systemd-cgroup start c-long$"; then
        unit=$UNIT cg=$CG
        pass ctr-run-detached-unit
    else
        unit=be2e-c-long.scope cg=/system.slice/be2e-c-long.scope
        fail ctr-run-detached-unit "expected task RUNNING in be2e-c-long.scope (system.slice) with MemoryMax=67108864 CPUQuotaPerSecUSec=200ms: ${WHY:-}" \
            "$(details)" "runtime state: $st"
    fi

    mark ctr-exec
    run_cmd 60 $CTR task exec --exec-id e1 c-long /bin/sh -c 'echo from-exec; exit 5'
    if [ $CHECK_RC = 5 ] && [ "$CHECK_OUT" = from-exec ] &&
        has_call " exec --process [^ ]+ --detach --pid-file [^ ]+ c-long"; then
        pass ctr-exec
    else
        fail ctr-exec "expected from-exec and status 5 via exec --process" "$(details)"
    fi

    mark ctr-exec-tty
    run_tty 60 "$CTR task exec -t --exec-id e2 c-long /bin/tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " exec .*--console-socket [^ ]+ .*c-long"; then
        pass ctr-exec-tty
    else
        fail ctr-exec-tty "expected a /dev/pts/N terminal via exec --console-socket" "$(details)"
    fi

    mark ctr-ps
    run_cmd 60 $CTR task ps c-long
    if [ $CHECK_RC = 0 ] && [ -n "$ipid" ] && awk '{print $1}' <<<"$CHECK_OUT" | grep -qx "$ipid" &&
        has_call " ps --format json c-long"; then
        pass ctr-ps
    else
        fail ctr-ps "expected init pid $ipid in ctr task ps, via ps --format json" "$(details)"
    fi

    mark ctr-pause-resume
    local s1 s2 f1 f2 r1 r2
    run_cmd 60 $CTR task pause c-long; r1=$CHECK_RC
    s1=$(ctr_task_status c-long); f1=$(frozen "$cg")
    run_cmd 60 $CTR task resume c-long; r2=$CHECK_RC
    s2=$(ctr_task_status c-long); f2=$(frozen "$cg")
    if [ "$r1$r2" = 00 ] && [ "$s1" = PAUSED ] && [ "$f1" = 1 ] && [ "$s2" = RUNNING ] && [ "$f2" = 0 ] &&
        has_call " pause c-long$" && has_call " resume c-long$"; then
        pass ctr-pause-resume
    else
        fail ctr-pause-resume "expected PAUSED/frozen 1 then RUNNING/frozen 0 in $cg/cgroup.events; got $s1/$f1 then $s2/$f2 (status $r1,$r2)" "$(details)"
    fi

    # ctr has no update command: the shim's metrics (stats) read the scope's cgroup.
    mark ctr-metrics
    run_cmd 60 $CTR task metrics c-long
    if [ $CHECK_RC = 0 ] && grep -qE '^memory\.usage_limit +67108864' <<<"$CHECK_OUT" &&
        grep -qE '^pids\.current +[1-9]' <<<"$CHECK_OUT"; then
        pass ctr-metrics
    else
        fail ctr-metrics "expected ctr task metrics to show memory.usage_limit 67108864 and pids.current from the scope's cgroup" "$(details)"
    fi

    mark ctr-kill-signal
    run_cmd 60 $CTR task kill -s SIGUSR1 c-long
    local got=
    wait_until 10 test -s "/proc/$ipid/root/tmp/usr1" && got=yes
    if [ $CHECK_RC = 0 ] && [ "$got" = yes ] && has_call " kill c-long 10$"; then
        pass ctr-kill-signal
    else
        fail ctr-kill-signal "expected SIGUSR1 (kill c-long 10) to reach the container's trap" "$(details)"
    fi

    mark ctr-kill-term-no-unit
    run_cmd 60 $CTR task kill c-long
    local stopped="" rmrc
    wait_until 15 ctr_task_is c-long STOPPED && stopped=yes
    timeout 60 $CTR task rm c-long >/dev/null 2>&1; rmrc=$?
    timeout 60 $CTR container rm c-long >/dev/null 2>&1
    if [ $CHECK_RC = 0 ] && [ "$stopped" = yes ] && [ $rmrc = 0 ] && has_call " kill c-long 15$" &&
        has_call " delete c-long$" && ! pid_alive "$ipid" && unit_and_cgroup_gone "$unit" "$cg"; then
        pass ctr-kill-term-no-unit
    else
        fail ctr-kill-term-no-unit "expected SIGTERM to stop the task, delete to remove $unit and $cg (stopped=$stopped task-rm=$rmrc): ${WHY:-}" "$(details)"
    fi

    mark ctr-kill-all
    run_cmd 90 $CTR run -d $RT --cgroup "$(cgp c-all)" "$IMG" c-all /bin/sh -c 'trap "" TERM; sleep 1000 & sleep 1000 & wait'
    wait_until 15 ctr_task_is c-all RUNNING
    local pids kr alive="" p
    # the container's processes, from its scope's cgroup (not from the runtime's ps)
    wait_until 10 procs_at_least /system.slice/be2e-c-all.scope 3
    pids=$(cat /sys/fs/cgroup/system.slice/be2e-c-all.scope/cgroup.procs 2>/dev/null)
    timeout 60 $CTR task kill -a -s SIGKILL c-all >/dev/null 2>&1; kr=$?
    stopped=
    wait_until 15 ctr_task_is c-all STOPPED && stopped=yes
    for p in $pids; do pid_alive "$p" && [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" != Z ] && alive="$alive $p"; done
    timeout 60 $CTR task rm c-all >/dev/null 2>&1
    timeout 60 $CTR container rm c-all >/dev/null 2>&1
    CHECK_RC=$kr CHECK_OUT="pids before: $(echo $pids); still alive: ${alive:-none}"
    if [ $kr = 0 ] && [ "$(wc -w <<<"$pids")" -ge 3 ] && [ -z "$alive" ] && [ "$stopped" = yes ] &&
        has_call " kill --all c-all 9$" && unit_and_cgroup_gone be2e-c-all.scope /system.slice/be2e-c-all.scope; then
        pass ctr-kill-all
    else
        fail ctr-kill-all "expected kill --all c-all 9 to kill all 3 processes of be2e-c-all.scope, no unit left: ${WHY:-}" "$(details)"
    fi

    mark ctr-delete-force-gone
    local df bad
    df=$(grep -E ' delete --force c-' "$CALLS" | grep -F -- "--root $D/rt-root/")
    bad=$(grep -vE '^[^ ]+ rc=0 ' <<<"$df")
    run_cmd 30 "$WRAP" --root "$D/rt-root/$NS" --log "$D/gone.log" --log-format json --systemd-cgroup delete --force c-never-existed
    if [ -n "$df" ] && [ -z "$bad" ] && [ $CHECK_RC = 0 ]; then
        pass ctr-delete-force-gone
    else
        fail ctr-delete-force-gone "expected every 'delete --force' of a gone container to exit 0" \
            "shim cleanup calls:" "${df:-<none seen>}" "$(details)"
    fi

    mark ctr-no-leftover-state
    local left
    left=$(ls -A "$D/rt-root/$NS" 2>/dev/null)
    run_cmd 20 "$RUNTIME" --root "$D/rt-root/$NS" list -q
    if [ -z "$left" ] && [ -z "$CHECK_OUT" ]; then
        pass ctr-no-leftover-state
    else
        fail ctr-no-leftover-state "expected the runtime root $D/rt-root/$NS to be empty after all deletes" \
            "entries: $left" "$(details)"
    fi
}
