# containerd 1.6 + ctr through the runc v2 shim (sourced by run.sh).
# A private containerd (own root, state, sockets) is started and stopped by its PID; ctr selects
# the runtime per container with --runc-binary (the logging wrapper) and --runc-root.

# containerd_start DIR: write DIR/config.toml, start containerd, record DIR/containerd.pid.
containerd_start() {
    local d=$1
    mkdir -p "$d/root" "$d/state" "$d/opt"
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
    setsid containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 </dev/null &
    echo $! >"$d/containerd.pid"
    DAEMON_PIDS+=("$!:containerd($d)")
    wait_until 30 ctr --address "$d/containerd.sock" version
}

# containerd_stop DIR: remove what is left in every namespace, stop containerd by its PID,
# then any shim still alive (by the shim.pid files under DIR/state).
containerd_stop() {
    local d=$1 pid ns id f
    [ -f "$d/containerd.pid" ] || return 0
    pid=$(cat "$d/containerd.pid")
    if pid_alive "$pid" && [ -S "$d/containerd.sock" ]; then
        local C="ctr --address $d/containerd.sock"
        for ns in $(timeout 10 $C namespaces ls -q 2>/dev/null); do
            for id in $(timeout 10 $C -n "$ns" tasks ls -q 2>/dev/null); do
                timeout 10 $C -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1
                timeout 15 $C -n "$ns" tasks rm -f "$id" >/dev/null 2>&1
            done
            for id in $(timeout 10 $C -n "$ns" containers ls -q 2>/dev/null); do
                timeout 10 $C -n "$ns" containers rm "$id" >/dev/null 2>&1
            done
        done
    fi
    stop_pid "$pid" containerd
    for f in "$d"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        # only a shim of this run: its command line names this run's containerd socket
        if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d/containerd.sock"; then
            stop_pid "$pid" containerd-shim
        fi
    done
    rm -f "$d/containerd.pid"
}

# init_pid_of_ctr_task ID: host PID of a task's init process.
ctr_task_pid() { $CTR task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
ctr_task_status() { $CTR task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
ctr_task_is() { [ "$(ctr_task_status "$1")" = "$2" ]; }

freezer_state() { cgroup_file "$1" freezer freezer.state; }

suite_containerd() {
    local D=$W/c NS=$TAG IMG=localhost/be2e-busybox:latest
    CTR="ctr --address $D/containerd.sock -n $NS"
    local RT="--runc-binary $WRAP --runc-root $D/rt-root --fifo-dir $D/fifo"
    # /tmp/ready: the traps are set (RUNNING comes before the shell has run a line of it).
    local LONG='trap "echo usr1 >/tmp/usr1" USR1; trap "exit 0" TERM; touch /tmp/ready; while :; do sleep 0.2; done'

    mark ctr-daemon-start
    if containerd_start "$D"; then
        pass ctr-daemon-start
    else
        fail ctr-daemon-start "containerd did not answer on $D/containerd.sock" "$(tail -n 5 "$D/containerd.log")"
        return
    fi

    mark ctr-image-import
    run_cmd 60 $CTR image import --base-name localhost/be2e-busybox "$W/busybox-oci.tar"
    if [ $CHECK_RC = 0 ] && $CTR image ls -q | grep -qx "$IMG"; then
        pass ctr-image-import
    else
        fail ctr-image-import "$(details)" "images: $($CTR image ls -q 2>&1)"
        return
    fi

    mark ctr-run-echo
    run_cmd 60 $CTR run --rm $RT "$IMG" c-echo /bin/echo hello-from-ctr
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = hello-from-ctr ] &&
        has_call " create .*--bundle [^ ]*/c-echo .*c-echo( \[|$)" && has_call " start c-echo$"; then
        pass ctr-run-echo
    else
        fail ctr-run-echo "expected output hello-from-ctr, status 0, create+start through $WRAP" "$(details)"
    fi

    mark ctr-run-exit-code
    run_cmd 60 $CTR run --rm $RT "$IMG" c-exit /bin/sh -c 'exit 7'
    if [ $CHECK_RC = 7 ] && has_call " start c-exit$"; then
        pass ctr-run-exit-code
    else
        fail ctr-run-exit-code "expected status 7" "$(details)"
    fi

    mark ctr-run-tty
    run_tty 60 "$CTR run --rm -t $RT $IMG c-tty /bin/tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " create .*--console-socket [^ ]+ c-tty"; then
        pass ctr-run-tty
    else
        fail ctr-run-tty "expected a /dev/pts/N terminal, create with --console-socket" "$(details)"
    fi

    mark ctr-run-detached
    run_cmd 60 $CTR run -d $RT "$IMG" c-long /bin/sh -c "$LONG"
    local st
    wait_until 10 ctr_task_is c-long RUNNING
    st=$(timeout 10 "$RUNTIME" --root "$D/rt-root/$NS" state c-long 2>&1)
    if [ $CHECK_RC = 0 ] && ctr_task_is c-long RUNNING && grep -qE '"status": *"running"' <<<"$st" &&
        has_call " start c-long$"; then
        pass ctr-run-detached
    else
        fail ctr-run-detached "expected task RUNNING and '$RUNTIME state' to show it running" "$(details)" \
            "task ls: $($CTR task ls 2>&1)" "runtime state: $st"
    fi

    mark ctr-exec
    run_cmd 30 $CTR task exec --exec-id e1 c-long /bin/echo from-exec
    if [ $CHECK_RC = 0 ] && [ "$CHECK_OUT" = from-exec ] &&
        has_call " exec --process [^ ]+ --detach --pid-file [^ ]+ c-long"; then
        pass ctr-exec
    else
        fail ctr-exec "expected from-exec via exec --process (no console socket)" "$(details)"
    fi

    mark ctr-exec-exit-code
    run_cmd 30 $CTR task exec --exec-id e1b c-long /bin/sh -c 'exit 5'
    if [ $CHECK_RC = 5 ] && has_call " exec .* c-long"; then
        pass ctr-exec-exit-code
    else
        fail ctr-exec-exit-code "expected status 5" "$(details)"
    fi

    mark ctr-exec-tty
    run_tty 30 "$CTR task exec -t --exec-id e2 c-long /bin/tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " exec .*--console-socket [^ ]+ .*c-long"; then
        pass ctr-exec-tty
    else
        fail ctr-exec-tty "expected a /dev/pts/N terminal via exec --console-socket" "$(details)"
    fi

    mark ctr-ps
    local ipid
    ipid=$(ctr_task_pid c-long)
    run_cmd 30 $CTR task ps c-long
    if [ $CHECK_RC = 0 ] && [ -n "$ipid" ] && awk '{print $1}' <<<"$CHECK_OUT" | grep -qx "$ipid" &&
        has_call " ps --format json c-long"; then
        pass ctr-ps
    else
        fail ctr-ps "expected init pid $ipid in ctr task ps, via ps --format json" "$(details)"
    fi

    mark ctr-pause-resume
    local s1 s2 f1 f2 r1 r2
    run_cmd 30 $CTR task pause c-long; r1=$CHECK_RC
    s1=$(ctr_task_status c-long); f1=$(freezer_state "$ipid")
    run_cmd 30 $CTR task resume c-long; r2=$CHECK_RC
    s2=$(ctr_task_status c-long); f2=$(freezer_state "$ipid")
    if [ "$r1$r2" = 00 ] && [ "$s1" = PAUSED ] && [ "$f1" = FROZEN ] && [ "$s2" = RUNNING ] && [ "$f2" = THAWED ] &&
        has_call " pause c-long$" && has_call " resume c-long$"; then
        pass ctr-pause-resume
    else
        fail ctr-pause-resume "expected PAUSED/FROZEN then RUNNING/THAWED; got $s1/$f1 then $s2/$f2 (status $r1,$r2)" "$(details)"
    fi

    mark ctr-kill-signal
    local got=
    # the signal is sent once the trap is set (/tmp/ready); the trap writes /tmp/usr1 inside the
    # container: both are read through /proc/<pid>/root
    wait_until 10 test -e "/proc/$ipid/root/tmp/ready"
    run_cmd 30 $CTR task kill -s SIGUSR1 c-long
    wait_until 5 test -s "/proc/$ipid/root/tmp/usr1" && got=yes
    if [ $CHECK_RC = 0 ] && [ "$got" = yes ] && has_call " kill c-long 10$"; then
        pass ctr-kill-signal
    else
        fail ctr-kill-signal "expected SIGUSR1 (kill c-long 10) to reach the container's trap" "$(details)"
    fi

    mark ctr-kill-term
    run_cmd 30 $CTR task kill c-long
    local stopped=
    wait_until 10 ctr_task_is c-long STOPPED && stopped=yes
    local rmrc
    timeout 30 $CTR task rm c-long >/dev/null 2>&1; rmrc=$?
    timeout 30 $CTR container rm c-long >/dev/null 2>&1
    if [ $CHECK_RC = 0 ] && [ "$stopped" = yes ] && [ $rmrc = 0 ] && has_call " kill c-long 15$" &&
        has_call " delete c-long$" && ! pid_alive "$ipid"; then
        pass ctr-kill-term
    else
        fail ctr-kill-term "expected SIGTERM to stop the task, then delete (stopped=$stopped task-rm=$rmrc)" "$(details)"
    fi

    mark ctr-kill-all
    run_cmd 60 $CTR run -d $RT "$IMG" c-all /bin/sh -c 'trap "" TERM; sleep 1000 & sleep 1000 & wait'
    wait_until 10 ctr_task_is c-all RUNNING
    # all three processes (the shell and its two sleeps) are there before the kill
    wait_until 10 eval '[ "$(cgroup_file "$(ctr_task_pid c-all)" pids cgroup.procs | wc -l)" = 3 ]'
    local pids
    # the container's processes, from its pids cgroup (not from the runtime's ps)
    pids=$(cgroup_file "$(ctr_task_pid c-all)" pids cgroup.procs)
    local kr
    timeout 30 $CTR task kill -a -s SIGKILL c-all >/dev/null 2>&1; kr=$?
    stopped=
    wait_until 10 ctr_task_is c-all STOPPED && stopped=yes
    local alive=
    for p in $pids; do pid_alive "$p" && [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" != Z ] && alive="$alive $p"; done
    timeout 30 $CTR task rm c-all >/dev/null 2>&1
    timeout 30 $CTR container rm c-all >/dev/null 2>&1
    CHECK_RC=$kr CHECK_OUT="pids before: $(echo $pids); still alive: ${alive:-none}"
    if [ $kr = 0 ] && [ "$(wc -w <<<"$pids")" -ge 3 ] && [ -z "$alive" ] && [ "$stopped" = yes ] &&
        has_call " kill --all c-all 9$"; then
        pass ctr-kill-all
    else
        fail ctr-kill-all "expected kill --all c-all 9 to kill all 3 processes" "$(details)"
    fi

    mark ctr-delete-force-gone
    # The shim's cleanup process runs `delete --force ID` after the container is gone: every one
    # of those calls in this suite must have exited 0 ...
    local df bad
    df=$(grep -E ' delete --force c-' "$CALLS" | grep -F -- "--root $D/rt-root/")
    bad=$(grep -vE '^[^ ]+ rc=0 ' <<<"$df")
    # ... and so must the same call made directly for an id that never existed.
    run_cmd 30 "$WRAP" --root "$D/rt-root/$NS" --log "$D/gone.log" --log-format json delete --force c-never-existed
    if [ -n "$df" ] && [ -z "$bad" ] && [ $CHECK_RC = 0 ]; then
        pass ctr-delete-force-gone
    else
        fail ctr-delete-force-gone "expected every 'delete --force' of a gone container to exit 0" \
            "shim cleanup calls:" "${df:-<none seen>}" "$(details)"
    fi

    mark ctr-no-leftover-state
    local left
    left=$(ls -A "$D/rt-root/$NS" 2>/dev/null)
    run_cmd 10 "$RUNTIME" --root "$D/rt-root/$NS" list -q
    if [ -z "$left" ] && [ -z "$CHECK_OUT" ]; then
        pass ctr-no-leftover-state
    else
        fail ctr-no-leftover-state "expected the runtime root $D/rt-root/$NS to be empty after all deletes" \
            "entries: $left" "$(details)"
    fi
}
