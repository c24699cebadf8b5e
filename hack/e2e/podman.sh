# podman 4.3 + conmon (sourced by run.sh). No daemon: every call gets private storage, runroot,
# tmpdir and config files (through the generated $W/p/podman script), `--runtime <wrapper>`,
# the cgroupfs manager and a test-only cgroup parent.

podman_setup() {
    local d=$1
    mkdir -p "$d/storage" "$d/run" "$d/tmp" "$d/networks"
    local nofile nproc pidmax
    nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
    nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=1048576
    pidmax=$(cat /proc/sys/kernel/pid_max)
    [ "$nproc" -gt "$pidmax" ] && nproc=$pidmax
    [ "$nofile" -gt 1048576 ] && nofile=1048576
    cat >"$d/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "$(basename "$WRAP")"]
[network]
network_config_dir = "$d/networks"
EOF
    cat >"$d/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$d/storage"
runroot = "$d/run"
EOF
    echo 'unqualified-search-registries = []' >"$d/registries.conf"
    cat >"$d/podman" <<EOF
#!/bin/sh
# podman with this e2e run's private configuration and the runtime under test
export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
export CONTAINERS_REGISTRIES_CONF=$d/registries.conf TMPDIR=$d/tmp
exec podman --root $d/storage --runroot $d/run --tmpdir $d/tmp --storage-driver overlay \\
    --cgroup-manager cgroupfs --events-backend file --network-config-dir $d/networks \\
    --runtime $WRAP "\$@"
EOF
    chmod 755 "$d/podman"
}

podman_teardown() {
    local d=$1
    [ -x "$d/podman" ] || return 0
    timeout 60 "$d/podman" rm -a -f -t 0 >/dev/null 2>&1
    # storage mounts (overlay layers, shm) are unmounted by run.sh's cleanup as well
    timeout 60 "$d/podman" image rm -a -f >/dev/null 2>&1
}

pm_status() { "$PM" inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
pm_is() { [ "$(pm_status "$1")" = "$2" ]; }
suite_podman() {
    local D=$W/p IMG=localhost/be2e-busybox:latest
    PM=$D/podman
    podman_setup "$D"
    local RUNOPTS="--network none --cgroup-parent /$TAG-podman"
    [ -n "${E2E_NO_SECCOMP:-}" ] && RUNOPTS="$RUNOPTS --security-opt seccomp=unconfined"
    local LONG='trap "exit 0" TERM; while :; do sleep 0.2; done'

    mark pm-image-import
    run_cmd 120 "$PM" import --change CMD=/bin/sh "$W/rootfs.tar" "$IMG"
    if [ $CHECK_RC = 0 ] && "$PM" image exists "$IMG"; then
        pass pm-image-import
    else
        fail pm-image-import "$(details)"
        return
    fi

    mark pm-run
    run_cmd 60 "$PM" run --rm $RUNOPTS "$IMG" echo hello-from-podman
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = hello-from-podman ] &&
        has_call " create --bundle [^ ]+ --pid-file [^ ]+ [0-9a-f]{64}" && has_call " start [0-9a-f]{64}$"; then
        pass pm-run
    else
        fail pm-run "expected hello-from-podman, create (by conmon) and start (by podman) through $WRAP" "$(details)"
    fi

    mark pm-run-exit-code
    run_cmd 60 "$PM" run --rm $RUNOPTS "$IMG" sh -c 'exit 3'
    if [ $CHECK_RC = 3 ] && has_call " start [0-9a-f]{64}$"; then
        pass pm-run-exit-code
    else
        fail pm-run-exit-code "expected status 3" "$(details)"
    fi

    # podman maps the runtime's error (conmon passes on its --log) to 127 / 126 by its text.
    mark pm-run-no-such-command
    run_cmd 60 "$PM" run --rm $RUNOPTS "$IMG" /no-such-command
    if [ $CHECK_RC = 127 ] && go_errno_text 'no such file or directory' && has_failed_call " create "; then
        pass pm-run-no-such-command
    else
        fail pm-run-no-such-command "expected status 127 and 'no such file or directory' from a failed create" "$(details)"
    fi

    mark pm-run-not-executable
    run_cmd 60 "$PM" run --rm $RUNOPTS "$IMG" /etc/passwd
    if [ $CHECK_RC = 126 ] && go_errno_text 'permission denied' && has_failed_call " create "; then
        pass pm-run-not-executable
    else
        fail pm-run-not-executable "expected status 126 and 'permission denied' from a failed create" "$(details)"
    fi

    mark pm-run-detached
    run_cmd 60 "$PM" run -d --name pm-long $RUNOPTS "$IMG" sh -c "$LONG"
    local id st ran=
    id=$("$PM" inspect -f '{{.Id}}' pm-long 2>/dev/null)
    wait_until 10 pm_is pm-long running
    # podman passes no --root: the runtime's default state dir must hold the container
    st=$(timeout 10 "$RUNTIME" state "$id" 2>&1)
    if [ $CHECK_RC = 0 ] && pm_is pm-long running && grep -qE '"status": *"running"' <<<"$st" &&
        has_call " start $id$"; then
        ran=yes
        pass pm-run-detached
    else
        fail pm-run-detached "expected pm-long running and '$RUNTIME state $id' (default root) to show it" \
            "$(details)" "runtime state: $st"
    fi

    mark pm-exec
    run_cmd 30 "$PM" exec pm-long echo from-exec
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = from-exec ] && has_call " exec .*--process [^ ]+ .*--detach $id"; then
        pass pm-exec
    else
        fail pm-exec "expected from-exec via exec --process (by conmon)" "$(details)"
    fi

    mark pm-exec-it
    run_tty 30 "$PM exec -it pm-long tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " exec .*--tty --console-socket [^ ]+ $id"; then
        pass pm-exec-it
    else
        fail pm-exec-it "expected a /dev/pts/N terminal via exec --tty --console-socket" "$(details)"
    fi

    mark pm-pause-unpause
    local ipid r1 r2 s1 s2 f1 f2
    ipid=$("$PM" inspect -f '{{.State.Pid}}' pm-long 2>/dev/null)
    run_cmd 30 "$PM" pause pm-long; r1=$CHECK_RC
    s1=$(pm_status pm-long); f1=$(cgroup_file "$ipid" freezer freezer.state)
    run_cmd 30 "$PM" unpause pm-long; r2=$CHECK_RC
    s2=$(pm_status pm-long); f2=$(cgroup_file "$ipid" freezer freezer.state)
    if [ "$r1$r2" = 00 ] && [ "$s1" = paused ] && [ "$f1" = FROZEN ] && [ "$s2" = running ] && [ "$f2" = THAWED ] &&
        has_call " pause $id$" && has_call " resume $id$"; then
        pass pm-pause-unpause
    else
        fail pm-pause-unpause "expected paused/FROZEN then running/THAWED; got $s1/$f1 then $s2/$f2 (status $r1,$r2)" "$(details)"
    fi

    mark pm-update
    local mem
    run_cmd 30 "$PM" update --memory 64m pm-long
    mem=$(cgroup_file "$ipid" memory memory.limit_in_bytes)
    if [ $CHECK_RC = 0 ] && [ "$mem" = 67108864 ] && has_call " update --resources[= ][^ ]+ $id"; then
        pass pm-update
    else
        fail pm-update "expected memory.limit_in_bytes 67108864 via update --resources=<file> (got ${mem:-?})" "$(details)"
    fi

    mark pm-stop
    run_cmd 60 "$PM" stop -t 5 pm-long
    if [ $CHECK_RC = 0 ] && pm_is pm-long exited && has_call " kill $id 15$" && ! pid_alive "$ipid"; then
        pass pm-stop
    else
        fail pm-stop "expected kill $id 15 to stop it (status $(pm_status pm-long))" "$(details)"
    fi

    mark pm-rm
    run_cmd 60 "$PM" rm pm-long
    st=$(timeout 10 "$RUNTIME" state "$id" 2>&1); local strc=$?
    if [ -n "$ran" ] && [ $CHECK_RC = 0 ] && ! "$PM" container exists pm-long && [ $strc != 0 ] &&
        grep -qE " delete --force $id$" "$CALLS"; then
        pass pm-rm
    else
        fail pm-rm "expected pm-long (running: ${ran:-no}) gone from podman and from the runtime (delete --force $id)" "$(details)" \
            "runtime state after rm (status $strc): $st"
    fi
}
