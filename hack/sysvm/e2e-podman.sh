# shellcheck shell=bash
# podman 4.3 + conmon as root with its systemd cgroup manager (sourced by hack/sysvm/e2e.sh):
# containers in machine.slice/libpod-<id>.scope (conmon stays in the calling unit's cgroup when
# podman runs inside a service, as here: no libpod-conmon-<id>.scope). Private
# storage, runroot, tmpdir and config files (the generated $W/p/podman), `--runtime <wrapper>`.

spodman_setup() {
    local d=$1
    mkdir -p "$d/storage" "$d/run" "$d/tmp" "$d/networks"
    cat >"$d/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "systemd"
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
# podman with this run's private configuration, the systemd cgroup manager and the runtime under test
export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
export CONTAINERS_REGISTRIES_CONF=$d/registries.conf TMPDIR=$d/tmp
exec podman --root $d/storage --runroot $d/run --tmpdir $d/tmp --storage-driver overlay \\
    --cgroup-manager systemd --events-backend file --network-config-dir $d/networks \\
    --runtime $WRAP "\$@"
EOF
    chmod 755 "$d/podman"
}

spodman_teardown() {
    local d=$1
    [ -x "$d/podman" ] || return 0
    timeout 90 "$d/podman" rm -a -f -t 0 >/dev/null 2>&1
    timeout 60 "$d/podman" image rm -a -f >/dev/null 2>&1
}

spm_status() { "$PM" inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
spm_is() { [ "$(spm_status "$1")" = "$2" ]; }

ssuite_podman() {
    local D=$W/p
    PM=$D/podman
    spodman_setup "$D"
    local NET="--network none"
    [ -n "${E2E_NO_SECCOMP:-}" ] && NET="$NET --security-opt seccomp=unconfined"
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
    run_cmd 90 "$PM" run --rm $NET "$IMG" sh -c 'echo hello-from-podman; exit 3'
    if [ $CHECK_RC = 3 ] && [ "$CHECK_OUT" = hello-from-podman ] &&
        has_call " --systemd-cgroup .*create --bundle [^ ]+ --pid-file [^ ]+ [0-9a-f]{64}" &&
        has_call " start [0-9a-f]{64}$"; then
        pass pm-run
    else
        fail pm-run "expected hello-from-podman and status 3, create with --systemd-cgroup (by conmon) and start (by podman) through $WRAP" "$(details)"
    fi

    mark pm-run-126-127
    local r126 r127 o
    run_cmd 90 "$PM" run --rm $NET "$IMG" /etc/passwd; r126=$CHECK_RC o=$CHECK_OUT
    run_cmd 90 "$PM" run --rm $NET "$IMG" /no/such/program; r127=$CHECK_RC
    CHECK_OUT="126: $o | 127: $CHECK_OUT"
    if [ "$r126" = 126 ] && [ "$r127" = 127 ] &&
        wait_until 10 no_new_units; then
        pass pm-run-126-127
    else
        fail pm-run-126-127 "expected 126 (not executable), 127 (not found), no unit left; got $r126, $r127; units now: $(container_units | tr '\n' ' ')" "$(details)"
    fi

    mark pm-run-detached-unit
    run_cmd 90 "$PM" run -d --name pm-long --memory 64m --pids-limit 40 $NET "$IMG" sh -c "$LONG"
    local id ipid st ran="" unit="" cg=""
    id=$("$PM" inspect -f '{{.Id}}' pm-long 2>/dev/null)
    wait_until 15 spm_is pm-long running
    ipid=$("$PM" inspect -f '{{.State.Pid}}' pm-long 2>/dev/null)
    # podman passes no --root: the runtime's default state dir holds the container
    st=$(timeout 20 "$RUNTIME" state "$id" 2>&1)
    if [ $CHECK_RC = 0 ] && spm_is pm-long running && grep -qE '"status": *"running"' <<<"$st" &&
        check_unit "$ipid" machine.slice MemoryMax=67108864 TasksMax=40 && [ "$UNIT" = "libpod-$id.scope" ]; then
        ran=yes unit=$UNIT cg=$CG
        pass pm-run-detached-unit
    else
        unit=libpod-$id.scope cg=/machine.slice/libpod-$id.scope
        fail pm-run-detached-unit "expected pm-long running in libpod-$id.scope (machine.slice) with MemoryMax=67108864 TasksMax=40: ${WHY:-}" \
            "$(details)" "runtime state: $st"
    fi

    mark pm-exec
    run_cmd 60 "$PM" exec pm-long sh -c 'echo from-exec; exit 6'
    if [ $CHECK_RC = 6 ] && [ "$CHECK_OUT" = from-exec ] && has_call " exec .*--process [^ ]+ .*--detach $id"; then
        pass pm-exec
    else
        fail pm-exec "expected from-exec and status 6 via exec --process (by conmon)" "$(details)"
    fi

    mark pm-exec-it
    run_tty 60 "$PM exec -it pm-long tty"
    if [ $CHECK_RC = 0 ] && grep -q '/dev/pts/[0-9]' <<<"$CHECK_OUT" &&
        has_call " exec .*--tty --console-socket [^ ]+ $id"; then
        pass pm-exec-it
    else
        fail pm-exec-it "expected a /dev/pts/N terminal via exec --tty --console-socket" "$(details)"
    fi

    mark pm-pause-unpause
    local r1 r2 s1 s2 f1 f2
    run_cmd 60 "$PM" pause pm-long; r1=$CHECK_RC
    s1=$(spm_status pm-long); f1=$(frozen "$cg")
    run_cmd 60 "$PM" unpause pm-long; r2=$CHECK_RC
    s2=$(spm_status pm-long); f2=$(frozen "$cg")
    if [ "$r1$r2" = 00 ] && [ "$s1" = paused ] && [ "$f1" = 1 ] && [ "$s2" = running ] && [ "$f2" = 0 ] &&
        has_call " pause $id$" && has_call " resume $id$"; then
        pass pm-pause-unpause
    else
        fail pm-pause-unpause "expected paused/frozen 1 then running/frozen 0 in $cg/cgroup.events; got $s1/$f1 then $s2/$f2 (status $r1,$r2)" "$(details)"
    fi

    # before update: podman 4.3's stats shows the limit it was created with, not an updated one
    mark pm-stats
    run_cmd 60 "$PM" stats --no-stream --no-reset --format '{{.MemUsage}} pids={{.PIDs}}' pm-long
    if [ $CHECK_RC = 0 ] && grep -qE '[1-9][0-9.]*[kM]B / 67\.11MB pids=[1-9]' <<<"$CHECK_OUT"; then
        pass pm-stats
    else
        fail pm-stats "expected podman stats to read the scope's cgroup: 'N kB / 67.11MB pids=N' (podman reads usage and pids from the cgroup, the limit from its own config)" "$(details)"
    fi

    mark pm-update-unit
    # (podman 4.3's update has no --pids-limit)
    run_cmd 60 "$PM" update --memory 128m --cpu-quota 50000 --cpu-period 100000 pm-long
    if [ $CHECK_RC = 0 ] && has_call " update --resources[= ][^ ]+ $id" &&
        check_unit "$ipid" machine.slice MemoryMax=134217728 TasksMax=40 CPUQuotaPerSecUSec=500ms; then
        pass pm-update-unit
    else
        fail pm-update-unit "expected update --resources=<file> to set MemoryMax=134217728 CPUQuotaPerSecUSec=500ms (TasksMax=40 kept) on $unit and in $cg: ${WHY:-}" "$(details)"
    fi

    mark pm-stop
    run_cmd 90 "$PM" stop -t 10 pm-long
    if [ $CHECK_RC = 0 ] && spm_is pm-long exited && has_call " kill $id 15$" && ! pid_alive "$ipid"; then
        pass pm-stop
    else
        fail pm-stop "expected kill $id 15 to stop it (status $(spm_status pm-long))" "$(details)"
    fi

    mark pm-rm-no-unit
    run_cmd 90 "$PM" rm pm-long
    st=$(timeout 20 "$RUNTIME" state "$id" 2>&1); local strc=$?
    if [ -n "$ran" ] && [ $CHECK_RC = 0 ] && ! "$PM" container exists pm-long && [ $strc != 0 ] &&
        grep -qE " delete --force $id$" "$CALLS" && unit_and_cgroup_gone "$unit" "$cg"; then
        pass pm-rm-no-unit
    else
        fail pm-rm-no-unit "expected pm-long (ran: ${ran:-no}) gone from podman, the runtime (delete --force $id) and systemd: ${WHY:-}" \
            "$(details)" "runtime state after rm (status $strc): $st"
    fi

    mark pm-kill
    run_cmd 90 "$PM" run -d --name pm-kill $NET "$IMG" sh -c "$LONG"
    local kid kpid ec
    kid=$("$PM" inspect -f '{{.Id}}' pm-kill 2>/dev/null)
    wait_until 15 spm_is pm-kill running
    kpid=$("$PM" inspect -f '{{.State.Pid}}' pm-kill 2>/dev/null)
    if [ $CHECK_RC = 0 ] && check_unit "$kpid" machine.slice; then
        unit=$UNIT cg=$CG
        run_cmd 60 "$PM" kill pm-kill
        wait_until 15 spm_is pm-kill exited
        ec=$("$PM" inspect -f '{{.State.ExitCode}}' pm-kill 2>/dev/null)
        timeout 60 "$PM" rm pm-kill >/dev/null 2>&1
        if [ $CHECK_RC = 0 ] && [ "$ec" = 137 ] && has_call " kill $kid 9$" && unit_and_cgroup_gone "$unit" "$cg"; then
            pass pm-kill
        else
            fail pm-kill "expected podman kill (kill $kid 9) to end it with 137 (got ${ec:-?}) and rm to leave no unit: ${WHY:-}" "$(details)"
        fi
    else
        fail pm-kill "expected pm-kill in a scope of machine.slice: ${WHY:-}" "$(details)"
        timeout 60 "$PM" rm -f pm-kill >/dev/null 2>&1
    fi
}
