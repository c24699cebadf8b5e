# shellcheck shell=bash
# dockerd 20.10 at its defaults on a systemd + cgroup v2 host (sourced by hack/sysvm/e2e.sh):
# cgroup driver systemd (not set: its default on v2), the runtime under test added with
# --add-runtime e2e=<wrapper> and made the default runtime. Own containerd, data/exec roots,
# socket; no iptables, no bridge.

sdocker_start() {
    local d=$1
    mkdir -p "$d/data" "$d/exec" "$d/cli"
    containerd_start "$d/ctd" || return 1
    printf '{"deprecated-key-path": "%s/key.json"}\n' "$d" >"$d/daemon.json"
    setsid dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" -H "unix://$d/docker.sock" --containerd "$d/ctd/containerd.sock" \
        --storage-driver overlay2 --add-runtime "e2e=$WRAP" --default-runtime e2e \
        --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
        ${SDOCKER_EXTRA:-} >"$d/dockerd.log" 2>&1 </dev/null &
    echo $! >"$d/dockerd.bgpid"
    DAEMON_PIDS+=("$!:dockerd($d)")
    cat >"$d/docker" <<EOF
#!/bin/sh
# Debian's docker client talking to this run's private dockerd
export DOCKER_CONFIG=$d/cli
exec /usr/bin/docker -H unix://$d/docker.sock "\$@"
EOF
    chmod 755 "$d/docker"
    wait_until 90 "$d/docker" version
}

sdocker_stop() {
    local d=$1 pid ids
    if [ -f "$d/dockerd.bgpid" ]; then
        pid=$(cat "$d/dockerd.bgpid")
        if pid_alive "$pid" && [ -S "$d/docker.sock" ]; then
            ids=$(timeout 20 "$d/docker" ps -aq 2>/dev/null)
            # shellcheck disable=SC2086
            [ -n "$ids" ] && timeout 90 "$d/docker" rm -f $ids >/dev/null 2>&1
        fi
        stop_pid "$pid" dockerd
        rm -f "$d/dockerd.bgpid"
    fi
    containerd_stop "$d/ctd"
}

sdk_status() { "$DK" inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
sdk_is() { [ "$(sdk_status "$1")" = "$2" ]; }

ssuite_docker() {
    local D=$W/d
    DK=$D/docker
    local NET="--network none"
    [ -n "${E2E_NO_SECCOMP:-}" ] && NET="$NET --security-opt seccomp=unconfined"
    local LONG='trap "exit 0" TERM; while :; do sleep 0.2; done'
    local RTROOT=$D/exec/runtime-runc/moby   # where dockerd 20.10 roots any runc-type runtime

    mark dk-daemon-start
    local info=""
    if sdocker_start "$D"; then
        info=$("$DK" info --format '{{.CgroupDriver}} {{.CgroupVersion}} {{.DefaultRuntime}}' 2>&1)
    fi
    if [ "$info" = "systemd 2 e2e" ]; then
        pass dk-daemon-start
    else
        fail dk-daemon-start "expected dockerd up with cgroup driver systemd, cgroup v2, default runtime e2e; docker info: '${info:-no answer}'" \
            "$(tail -n 5 "$D/dockerd.log" 2>/dev/null)"
        [ -S "$D/docker.sock" ] || return
    fi

    mark dk-image-import
    run_cmd 120 "$DK" import -c 'CMD ["/bin/sh"]' "$W/rootfs.tar" "$IMG"
    if [ $CHECK_RC = 0 ] && "$DK" image inspect "$IMG" >/dev/null 2>&1; then
        pass dk-image-import
    else
        fail dk-image-import "$(details)"
        return
    fi

    mark dk-run-default-runtime
    run_cmd 90 "$DK" run --rm $NET "$IMG" echo hello-from-docker
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = hello-from-docker ] &&
        has_call " --systemd-cgroup create --bundle [^ ]+ --pid-file [^ ]+ [0-9a-f]{64}" &&
        has_call " --systemd-cgroup start [0-9a-f]{64}$"; then
        pass dk-run-default-runtime
    else
        fail dk-run-default-runtime "expected hello-from-docker, create + start with --systemd-cgroup through $WRAP (the default runtime)" "$(details)"
    fi

    mark dk-run-add-runtime
    run_cmd 90 "$DK" run --rm --runtime e2e $NET "$IMG" sh -c 'exit 4'
    if [ $CHECK_RC = 4 ] && has_call " --systemd-cgroup start [0-9a-f]{64}$"; then
        pass dk-run-add-runtime
    else
        fail dk-run-add-runtime "expected status 4 from --runtime e2e" "$(details)"
    fi

    mark dk-run-126-127
    local r126 r127 o126 o127
    run_cmd 90 "$DK" run --rm $NET "$IMG" /etc/passwd; r126=$CHECK_RC o126=$CHECK_OUT
    run_cmd 90 "$DK" run --rm $NET "$IMG" /no/such/program; r127=$CHECK_RC o127=$CHECK_OUT
    CHECK_OUT="126: $o126 | 127: $o127"
    if [ "$r126" = 126 ] && [ "$r127" = 127 ] && grep -q 'permission denied' <<<"$o126" &&
        grep -q 'no such file or directory' <<<"$o127" && wait_until 10 no_new_units; then
        pass dk-run-126-127
    else
        fail dk-run-126-127 "expected 126 (not executable: permission denied) and 127 (no such file or directory), no unit left; got $r126, $r127; units now: $(container_units | tr '\n' ' ')" "$(details)"
    fi

    mark dk-run-detached-unit
    run_cmd 90 "$DK" run -d --name dk-long --memory 64m --pids-limit 40 $NET "$IMG" sh -c "$LONG"
    local id ipid st ran="" unit="" cg=""
    id=$("$DK" inspect -f '{{.Id}}' dk-long 2>/dev/null)
    wait_until 15 sdk_is dk-long running
    ipid=$("$DK" inspect -f '{{.State.Pid}}' dk-long 2>/dev/null)
    st=$(timeout 20 "$RUNTIME" --root "$RTROOT" state "$id" 2>&1)
    if [ $CHECK_RC = 0 ] && sdk_is dk-long running && grep -qE '"status": *"running"' <<<"$st" &&
        check_unit "$ipid" system.slice MemoryMax=67108864 TasksMax=40 &&
        [ "$UNIT" = "docker-$id.scope" ] && has_call " --systemd-cgroup start $id$"; then
        ran=yes unit=$UNIT cg=$CG
        pass dk-run-detached-unit
    else
        unit=${UNIT:-docker-$id.scope} cg=$CG
        fail dk-run-detached-unit "expected dk-long running in docker-$id.scope (system.slice) with MemoryMax=67108864 TasksMax=40; ${WHY:-}" \
            "$(details)" "runtime state: $st"
    fi

    mark dk-exec
    run_cmd 60 "$DK" exec dk-long echo from-exec
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = from-exec ] && has_call " exec --process [^ ]+ --detach --pid-file [^ ]+ $id"; then
        pass dk-exec
    else
        fail dk-exec "expected from-exec via exec --process" "$(details)"
    fi

    mark dk-exec-it
    run_tty 60 "$DK exec -it dk-long sh -c 'tty; cat /proc/self/cgroup'"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" && grep -q "^0::/$" <<<"$CHECK_OUT" &&
        has_call " exec .*--console-socket [^ ]+ .*$id"; then
        pass dk-exec-it
    else
        fail dk-exec-it "expected a /dev/pts/N terminal via exec --console-socket, in the container's cgroup (0::/ in its cgroup namespace)" "$(details)"
    fi

    mark dk-pause-unpause
    local r1 r2 s1 s2 f1 f2
    run_cmd 60 "$DK" pause dk-long; r1=$CHECK_RC
    s1=$(sdk_status dk-long); f1=$(frozen "$cg")
    run_cmd 60 "$DK" unpause dk-long; r2=$CHECK_RC
    s2=$(sdk_status dk-long); f2=$(frozen "$cg")
    if [ "$r1$r2" = 00 ] && [ "$s1" = paused ] && [ "$f1" = 1 ] && [ "$s2" = running ] && [ "$f2" = 0 ] &&
        has_call " pause $id$" && has_call " resume $id$"; then
        pass dk-pause-unpause
    else
        fail dk-pause-unpause "expected paused/frozen 1 then running/frozen 0 in $cg/cgroup.events; got $s1/$f1 then $s2/$f2 (status $r1,$r2)" "$(details)"
    fi

    mark dk-update-unit
    run_cmd 60 "$DK" update --memory 128m --memory-swap 256m --pids-limit 50 --cpu-quota 50000 dk-long
    if [ $CHECK_RC = 0 ] && has_call " update --resources - $id" &&
        check_unit "$ipid" system.slice MemoryMax=134217728 MemorySwapMax=134217728 TasksMax=50 CPUQuotaPerSecUSec=500ms; then
        pass dk-update-unit
    else
        fail dk-update-unit "expected update --resources - to set MemoryMax=128M MemorySwapMax=128M TasksMax=50 CPUQuotaPerSecUSec=500ms on $unit and in $cg; ${WHY:-}" "$(details)"
    fi

    mark dk-stats
    run_cmd 60 "$DK" stats --no-stream --format '{{.MemUsage}} pids={{.PIDs}}' dk-long
    if [ $CHECK_RC = 0 ] && grep -qE '/ 128MiB pids=[1-9]' <<<"$CHECK_OUT"; then
        pass dk-stats
    else
        fail dk-stats "expected docker stats to read the scope's cgroup: '... / 128MiB pids=N'" "$(details)"
    fi

    mark dk-stop
    run_cmd 90 "$DK" stop -t 10 dk-long
    if [ $CHECK_RC = 0 ] && sdk_is dk-long exited && has_call " kill $id 15$" && ! pid_alive "$ipid"; then
        pass dk-stop
    else
        fail dk-stop "expected kill $id 15 to stop it (status $(sdk_status dk-long))" "$(details)"
    fi

    mark dk-rm-no-unit
    run_cmd 90 "$DK" rm dk-long
    st=$(timeout 20 "$RUNTIME" --root "$RTROOT" state "$id" 2>&1); local strc=$?
    if [ -n "$ran" ] && [ $CHECK_RC = 0 ] && ! "$DK" container inspect dk-long >/dev/null 2>&1 && [ $strc != 0 ] &&
        unit_and_cgroup_gone "$unit" "$cg"; then
        pass dk-rm-no-unit
    else
        fail dk-rm-no-unit "expected dk-long (ran: ${ran:-no}) gone from docker, the runtime and systemd: ${WHY:-}" "$(details)" \
            "runtime state after rm (status $strc): $st"
    fi

    # A container in a slice of its own (--cgroup-parent, as kubelet and compose setups do),
    # killed: the scope goes to that slice, and goes away with the container.
    mark dk-slice-kill
    run_cmd 90 "$DK" run -d --name dk-kill --cgroup-parent "$TSLICE" --memory 32m $NET "$IMG" sh -c "$LONG"
    local kid kpid
    kid=$("$DK" inspect -f '{{.Id}}' dk-kill 2>/dev/null)
    wait_until 15 sdk_is dk-kill running
    kpid=$("$DK" inspect -f '{{.State.Pid}}' dk-kill 2>/dev/null)
    if [ $CHECK_RC = 0 ] && check_unit "$kpid" "$TSLICE" MemoryMax=33554432 && [ "$UNIT" = "docker-$kid.scope" ]; then
        unit=$UNIT cg=$CG
        run_cmd 60 "$DK" kill dk-kill
        local ec
        wait_until 15 sdk_is dk-kill exited
        ec=$("$DK" inspect -f '{{.State.ExitCode}}' dk-kill 2>/dev/null)
        timeout 60 "$DK" rm dk-kill >/dev/null 2>&1
        if [ $CHECK_RC = 0 ] && [ "$ec" = 137 ] && has_call " kill $kid 9$" && unit_and_cgroup_gone "$unit" "$cg"; then
            pass dk-slice-kill
        else
            fail dk-slice-kill "expected docker kill (kill $kid 9) to end it with 137 (got ${ec:-?}) and rm to leave no unit/cgroup: ${WHY:-}" "$(details)"
        fi
    else
        fail dk-slice-kill "expected docker-$kid.scope in $TSLICE with MemoryMax=33554432: ${WHY:-}" "$(details)"
        timeout 60 "$DK" rm -f dk-kill >/dev/null 2>&1
    fi
}
