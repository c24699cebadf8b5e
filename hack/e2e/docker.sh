# dockerd 20.10 (sourced by run.sh): its own containerd, own data/exec roots, pidfile and socket,
# no iptables and no bridge, the runtime under test added with --add-runtime e2e=<wrapper>.

docker_start() {
    local d=$1
    mkdir -p "$d/data" "$d/exec" "$d/cli"
    containerd_start "$d/ctd" || return 1
    printf '{"deprecated-key-path": "%s/key.json"}\n' "$d" >"$d/daemon.json"
    setsid dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" -H "unix://$d/docker.sock" --containerd "$d/ctd/containerd.sock" \
        --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$TAG-docker" \
        --add-runtime "e2e=$WRAP" \
        --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
        >"$d/dockerd.log" 2>&1 </dev/null &
    echo $! >"$d/dockerd.bgpid"
    DAEMON_PIDS+=("$!:dockerd($d)")
    cat >"$d/docker" <<EOF
#!/bin/sh
# Debian's docker client (20.10) talking to this e2e run's private dockerd
export DOCKER_CONFIG=$d/cli
exec /usr/bin/docker -H unix://$d/docker.sock "\$@"
EOF
    chmod 755 "$d/docker"
    wait_until 60 "$d/docker" version
}

docker_stop() {
    local d=$1 pid
    if [ -f "$d/dockerd.bgpid" ]; then
        pid=$(cat "$d/dockerd.bgpid")
        if pid_alive "$pid" && [ -S "$d/docker.sock" ]; then
            local ids
            ids=$(timeout 20 "$d/docker" ps -aq 2>/dev/null)
            [ -n "$ids" ] && timeout 60 "$d/docker" rm -f $ids >/dev/null 2>&1
        fi
        stop_pid "$pid" dockerd
        rm -f "$d/dockerd.bgpid"
    fi
    containerd_stop "$d/ctd"
}

dk_status() { "$DK" inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
dk_is() { [ "$(dk_status "$1")" = "$2" ]; }

suite_docker() {
    local D=$W/d IMG=localhost/be2e-busybox:latest
    DK=$D/docker
    local RUNOPTS="--runtime=e2e --network none"
    [ -n "${E2E_NO_SECCOMP:-}" ] && RUNOPTS="$RUNOPTS --security-opt seccomp=unconfined"
    local LONG='trap "exit 0" TERM; while :; do sleep 0.2; done'

    mark dk-daemon-start
    if docker_start "$D"; then
        pass dk-daemon-start
    else
        fail dk-daemon-start "dockerd did not answer on $D/docker.sock" "$(tail -n 5 "$D/dockerd.log" 2>/dev/null)"
        return
    fi

    mark dk-image-import
    run_cmd 120 "$DK" import -c 'CMD ["/bin/sh"]' "$W/rootfs.tar" "$IMG"
    if [ $CHECK_RC = 0 ] && "$DK" image inspect "$IMG" >/dev/null 2>&1; then
        pass dk-image-import
    else
        fail dk-image-import "$(details)"
        return
    fi

    mark dk-run
    run_cmd 60 "$DK" run --rm $RUNOPTS "$IMG" echo hello-from-docker
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = hello-from-docker ] &&
        has_call " create --bundle [^ ]+ --pid-file [^ ]+ [0-9a-f]{64}" && has_call " start [0-9a-f]{64}$"; then
        pass dk-run
    else
        fail dk-run "expected hello-from-docker, create+start through $WRAP" "$(details)"
    fi

    mark dk-run-exit-code
    run_cmd 60 "$DK" run --rm $RUNOPTS "$IMG" sh -c 'exit 4'
    if [ $CHECK_RC = 4 ] && has_call " start [0-9a-f]{64}$"; then
        pass dk-run-exit-code
    else
        fail dk-run-exit-code "expected status 4" "$(details)"
    fi

    # dockerd maps the runtime's error to docker run's status by its text (Go's errno texts):
    # 127 for a program that does not exist, 126 for one that cannot be executed.
    mark dk-run-no-such-command
    run_cmd 60 "$DK" run --rm $RUNOPTS "$IMG" /no-such-command
    if [ $CHECK_RC = 127 ] && go_errno_text 'no such file or directory' && has_failed_call " create "; then
        pass dk-run-no-such-command
    else
        fail dk-run-no-such-command "expected status 127 and 'no such file or directory' from a failed create" "$(details)"
    fi

    mark dk-run-not-executable
    run_cmd 60 "$DK" run --rm $RUNOPTS "$IMG" /etc/passwd
    if [ $CHECK_RC = 126 ] && go_errno_text 'permission denied' && has_failed_call " create "; then
        pass dk-run-not-executable
    else
        fail dk-run-not-executable "expected status 126 and 'permission denied' from a failed create" "$(details)"
    fi

    mark dk-run-detached
    run_cmd 60 "$DK" run -d --name dk-long $RUNOPTS "$IMG" sh -c "$LONG"
    local id st ipid ran=
    id=$("$DK" inspect -f '{{.Id}}' dk-long 2>/dev/null)
    wait_until 10 dk_is dk-long running
    ipid=$("$DK" inspect -f '{{.State.Pid}}' dk-long 2>/dev/null)
    st=$(timeout 10 "$RUNTIME" --root "$D/exec/runtime-runc/moby" state "$id" 2>&1)
    if [ $CHECK_RC = 0 ] && dk_is dk-long running && grep -qE '"status": *"running"' <<<"$st" &&
        has_call " start $id$"; then
        ran=yes
        pass dk-run-detached
    else
        fail dk-run-detached "expected dk-long running and the runtime's state to show it" "$(details)" "runtime state: $st"
    fi

    mark dk-exec
    run_cmd 30 "$DK" exec dk-long echo from-exec
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = from-exec ] && has_call " exec --process [^ ]+ --detach --pid-file [^ ]+ $id"; then
        pass dk-exec
    else
        fail dk-exec "expected from-exec via exec --process" "$(details)"
    fi

    mark dk-exec-it
    run_tty 30 "$DK exec -it dk-long tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " exec .*--console-socket [^ ]+ .*$id"; then
        pass dk-exec-it
    else
        fail dk-exec-it "expected a /dev/pts/N terminal via exec --console-socket" "$(details)"
    fi

    mark dk-update
    local mem quota
    run_cmd 30 "$DK" update --memory 64m --memory-swap 128m --cpu-quota 50000 dk-long
    mem=$(cgroup_file "$ipid" memory memory.limit_in_bytes)
    quota=$(cgroup_file "$ipid" cpu cpu.cfs_quota_us)
    if [ $CHECK_RC = 0 ] && [ "$mem" = 67108864 ] && [ "$quota" = 50000 ] && has_call " update --resources - $id"; then
        pass dk-update
    else
        fail dk-update "expected memory.limit_in_bytes 67108864 and cpu.cfs_quota_us 50000 via update --resources - (stdin); got ${mem:-?} ${quota:-?}" "$(details)"
    fi

    mark dk-stop
    run_cmd 60 "$DK" stop -t 5 dk-long
    if [ $CHECK_RC = 0 ] && dk_is dk-long exited && has_call " kill $id 15$" && has_call " delete $id$" && ! pid_alive "$ipid"; then
        pass dk-stop
    else
        fail dk-stop "expected kill $id 15 to stop it, then delete (status $(dk_status dk-long))" "$(details)"
    fi

    mark dk-rm
    run_cmd 60 "$DK" rm dk-long
    st=$(timeout 10 "$RUNTIME" --root "$D/exec/runtime-runc/moby" state "$id" 2>&1); local strc=$?
    if [ -n "$ran" ] && [ $CHECK_RC = 0 ] && ! "$DK" container inspect dk-long >/dev/null 2>&1 && [ $strc != 0 ]; then
        pass dk-rm
    else
        fail dk-rm "expected dk-long (running: ${ran:-no}) gone from docker and from the runtime" "$(details)" "runtime state after rm (status $strc): $st"
    fi
}
