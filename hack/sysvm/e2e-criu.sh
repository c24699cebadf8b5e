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

ssuite_criu() {
    CRIU_PODMAN_SETUP=spodman_setup CRIU_PODMAN_CGOPTS= CRIU_CTR_RT=--runc-systemd-cgroup suite_criu
}
