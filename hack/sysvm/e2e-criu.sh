# shellcheck shell=bash
# Checkpoint/restore through the engines at their systemd defaults (sourced by hack/sysvm/e2e.sh
# as the engine "criu"): hack/e2e/criu.sh's checks (podman container checkpoint/restore, also
# --leave-running and --export/--import; containerd's ctr task checkpoint and a restore from a
# container checkpoint) with podman's cgroup_manager = "systemd" and ctr --runc-systemd-cgroup
# (the runc shim's SystemdCgroup). Each restored container must be in an active scope of its
# own (libpod-<id>.scope in machine.slice, be2e-<name>.scope in system.slice) made by the
# runtime's restore called with --systemd-cgroup.

criu_ctr_cgroup() { echo "--cgroup system.slice:be2e:$1"; }
# hack/e2e/podman.sh's names for what e2e-podman.sh has
pm_status() { spm_status "$@"; }
pm_is() { spm_is "$@"; }
podman_teardown() { spodman_teardown "$@"; }

# criu_restored ENGINE ID PID: the restored container's scope.
criu_restored() {
    local e=$1 id=$2 pid=$3 cg unit want why=""
    # (the restore call is in the calls of the check that restored: looked for before the mark)
    has_call " --systemd-cgroup .*restore .*$id$" || why+="no '--systemd-cgroup ... restore ... $id' call; "
    mark "criu-$e-restored-scope"
    cg=$(cgroup_of_pid "$pid")
    unit=$(unit_of_cgroup "$cg")
    case $e in
        podman) want="/machine.slice/libpod-$id.scope" ;;
        containerd) want="/system.slice/be2e-*.scope" ;;
        docker) want="/system.slice/docker-$id.scope" ;;
    esac
    # shellcheck disable=SC2053  # $want is a pattern
    [[ $cg == $want ]] || why+="process $pid in '$cg', not $want; "
    [ "$(uprop "$unit" ActiveState)" = active ] || why+="$unit is $(uprop "$unit" ActiveState); "
    [ "$(uprop "$unit" Delegate)" = yes ] || why+="$unit Delegate=$(uprop "$unit" Delegate); "
    if [ -z "$why" ]; then
        pass "criu-$e-restored-scope"
    else
        fail "criu-$e-restored-scope" "expected the restored $e container in an active scope ($want) made by restore --systemd-cgroup: $why" "$(details)"
    fi
}

. "$repo/hack/e2e/criu.sh"

# docker 20.10 (dockerd --experimental, private as in e2e-docker.sh): `docker checkpoint create`
# (the runtime's checkpoint through containerd's task checkpoint) and `docker start --checkpoint`.
criu_docker() {
    local D=$W/cd id before after n
    DK=$D/docker
    mark dk-criu-daemon
    if SDOCKER_EXTRA=--experimental sdocker_start "$D" &&
        [ "$("$DK" version -f '{{.Server.Experimental}}' 2>/dev/null)" = true ]; then
        pass dk-criu-daemon
    else
        fail dk-criu-daemon "expected a private dockerd --experimental" "$(tail -n 5 "$D/dockerd.log" 2>/dev/null)"
        return
    fi
    run_cmd 120 "$DK" import -c 'CMD ["/bin/sh"]' "$W/rootfs.tar" "$IMG"
    [ $CHECK_RC = 0 ] || { fail dk-criu-image "$(details)"; return; }

    mark dk-checkpoint
    run_cmd 60 "$DK" run -d --name dkck --network none "$IMG" sh -c "$CRIU_COUNTER"
    id=$("$DK" inspect -f '{{.Id}}' dkck 2>/dev/null)
    wait_until 30 sh -c "[ \"\$('$DK' logs dkck 2>/dev/null | grep -c tick)\" -ge 3 ]"
    run_cmd 120 "$DK" checkpoint create dkck ck1
    before=$("$DK" logs dkck 2>/dev/null)
    if [ $CHECK_RC = 0 ] && sdk_is dkck exited && has_call " checkpoint .*--image-path [^ ]+ .*$id$" &&
        "$DK" checkpoint ls dkck 2>/dev/null | grep -qx ck1; then
        pass dk-checkpoint
    else
        fail dk-checkpoint "expected dkck exited after its checkpoint ck1" "$(details)" "status: $(sdk_status dkck)" \
            "checkpoints: $("$DK" checkpoint ls dkck 2>&1 | tr '\n' ' ')"
    fi

    mark dk-restore
    n=$(ticks "$before" | wc -l)
    run_cmd 120 "$DK" start --checkpoint ck1 dkck
    wait_until 30 sh -c "[ \"\$('$DK' logs dkck 2>/dev/null | grep -c tick)\" -ge $((n + 3)) ]"
    after=$("$DK" logs dkck 2>/dev/null)
    if [ $CHECK_RC = 0 ] && sdk_is dkck running && has_call " restore .*$id$" &&
        ticks "$after" | consecutive $((n + 3)) && [ "$(token "$after")" = "$(token "$before")" ]; then
        pass dk-restore
        criu_restored docker "$id" "$("$DK" inspect -f '{{.State.Pid}}' dkck 2>/dev/null)"
    else
        fail dk-restore "expected dkck running again from ck1, counting on from where it was (one run of ticks, the same token)" \
            "$(details)" "status: $(sdk_status dkck)" "ticks: $(ticks "$after" | tr '\n' ' ' | cut -c1-300)" \
            "$(tail -n 5 "$D/dockerd.log" 2>/dev/null)"
    fi
    timeout 60 "$DK" rm -f dkck >/dev/null 2>&1
    sdocker_stop "$D"
}

ssuite_criu() {
    CRIU_PODMAN_SETUP=spodman_setup CRIU_PODMAN_CGOPTS= CRIU_CTR_RT=--runc-systemd-cgroup \
        CRIU_ENGINES=${CRIU_ENGINES:-podman containerd docker} suite_criu
}
