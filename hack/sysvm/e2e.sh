#!/bin/bash
# hack/sysvm/e2e.sh — the engines at their systemd defaults, driving the runtime under test.
# Runs INSIDE the systemd guest (as root):
#
#   bash hack/sysvm/run.sh -- bash hack/sysvm/e2e.sh                 # RUNTIME=/usr/sbin/runc
#   RUNTIME=$PWD/target/release/berth bash hack/sysvm/run.sh -- bash hack/sysvm/e2e.sh
#   ENGINES="docker podman" ...                                      # subset (or as arguments)
#   ... e2e.sh criu       # checkpoint/restore through podman and containerd (e2e-criu.sh)
#   (or SYSVM_SUITES=e2e bash hack/sysvm/run-tests.sh; make sysvm-test)
#
# dockerd 20.10 (cgroup driver: its default on v2, systemd; the runtime added with --add-runtime
# and made the default runtime), containerd 1.6 + ctr (`--runc-systemd-cgroup`, i.e. the runc
# shim's SystemdCgroup option), podman 4.3 (`--cgroup-manager systemd`), each started privately
# (own roots, sockets, state; stopped by PID). The runtime is reached through hack/e2e's logging
# wrapper, so every check proves the runtime under test made the container, and that it was
# called with --systemd-cgroup. Besides the host e2e's checks (run, exit codes incl. 126/127,
# exec, tty, pause, update, stats, stop, rm, kill), each engine's containers are checked as
# systemd units: `systemctl show` of the scope has the limits asked for (MemoryMax, TasksMax,
# CPUQuotaPerSecUSec), the scope is in the expected slice and holds the container's processes,
# the cgroup files agree, and after removal neither the unit (not even a failed one) nor its
# cgroup is left.
# Output: one PASS/FAIL line per check, then "N passed, M failed"; exit 1 if any failed.
# Logs (runtime calls, saved config.json/process.json/update payloads, daemon logs):
# $E2E_LOGS (default hack/.cache/sysvm-e2e/<date>-<pid>, in the repo: visible on the host).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
RUNTIME=${RUNTIME:-/usr/sbin/runc}
ENGINES=${ENGINES:-docker containerd podman}
[ $# -gt 0 ] && ENGINES="$*"          # e2e.sh ENGINE... (the sysvm suite `e2e criu`)
[ "${RUNTIME#/}" = "$RUNTIME" ] && [ -e "$RUNTIME" ] && RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME")
TAG=be2e-$$
W=/tmp/$TAG                       # short: podman's runroot must stay under 50 characters
LOGDIR=${E2E_LOGS:-$repo/hack/.cache/sysvm-e2e/$(date +%Y%m%d-%H%M%S)-$$}
CALLS=$LOGDIR/calls.log
ART=$LOGDIR/artifacts
# shellcheck disable=SC2034  # appended to by containerd_start (hack/e2e/containerd.sh)
DAEMON_PIDS=()
IMG=localhost/be2e-busybox:latest
# a test-only slice (cgroup-parent checks): removed at the end
TSLICE=sysvme2e$$.slice          # no dash: a dash would make it a child of sysvme2e.slice

. "$repo/hack/e2e/lib.sh"
. "$repo/hack/e2e/image.sh"
. "$repo/hack/e2e/containerd.sh"     # containerd_start/_stop, ctr_task_* (suite replaced below)
. "$here/e2e-units.sh"
. "$here/e2e-docker.sh"
. "$here/e2e-containerd.sh"
. "$here/e2e-podman.sh"
. "$here/e2e-criu.sh"           # ENGINES=criu: checkpoint/restore (not in the default)

[ "$(id -u)" = 0 ] || { echo "sysvm-e2e: must run as root" >&2; exit 1; }
if [ ! -d /run/systemd/system ] || [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    echo "sysvm-e2e: needs systemd as PID 1 on pure cgroup v2: run it in the guest:" >&2
    echo "    bash hack/sysvm/run.sh -- bash hack/sysvm/e2e.sh" >&2
    exit 1
fi
for e in $ENGINES; do
    case $e in containerd|podman|docker|criu) ;; *) echo "sysvm-e2e: unknown engine '$e' (docker containerd podman criu)" >&2; exit 2 ;; esac
done
mkdir -p "$LOGDIR" "$ART"
: >"$CALLS"
T0=$SECONDS
echo "sysvm-e2e: runtime under test: $RUNTIME; engines: $ENGINES; logs: $LOGDIR"

summary() {
    echo "sysvm-e2e: took $((SECONDS - T0)) s; runtime calls: $(grep -c ' rc=' "$CALLS" 2>/dev/null) (log: $CALLS)"
    [ $FAILED -gt 0 ] && echo "sysvm-e2e: failed: ${FAILED_NAMES[*]}"
    echo "$PASSED passed, $FAILED failed" | tee "$LOGDIR/summary"
}
if [ ! -x "$RUNTIME" ] || ! timeout 20 "$RUNTIME" --version >/dev/null 2>&1; then
    fail runtime-present "$RUNTIME is missing, not executable or fails '--version'"
    summary
    exit 1
fi
pass runtime-present

units_before=$(container_units)
cgroups_before=$(container_cgroups)

CLEANED=
cleanup() {
    [ -n "$CLEANED" ] && return 0
    CLEANED=1
    local e p u
    for e in $ENGINES; do
        case $e in
            docker) sdocker_stop "$W/d" ;;
            podman) spodman_teardown "$W/p" ;;
            containerd) containerd_stop "$W/c" ;;
            criu) spodman_teardown "$W/cp"; containerd_stop "$W/cc"; sdocker_stop "$W/cd" ;;
        esac
    done
    for p in $(own_processes); do stop_pid "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done
    for f in "$W"/c/containerd.log "$W"/d/ctd/containerd.log "$W"/d/dockerd.log; do
        [ -f "$f" ] && cp "$f" "$LOGDIR/$(echo "${f#$W/}" | tr / _)"
    done
    unmount_under "$W" || say "sysvm-e2e: could not unmount: $(mounts_under "$W" | tr '\n' ' ')"
    [ -z "$(mounts_under "$W")" ] && rm -rf --one-file-system "$W"
    # units a failed check left behind (the checks have recorded them already)
    for u in $(comm -13 <(echo "$units_before") <(container_units)); do
        systemctl stop "$u" >/dev/null 2>&1; systemctl reset-failed "$u" >/dev/null 2>&1
    done
    systemctl stop "$TSLICE" >/dev/null 2>&1
}
mkdir -m 711 "$W" || { echo "sysvm-e2e: cannot create $W" >&2; exit 1; }

worker() {
    trap 'exit 143' TERM
    mkdir -p "$W/bin"
    WRAP=$W/bin/$(basename "$RUNTIME")
    make_wrapper "$WRAP"

    mark image
    ROOTFS=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
    if bash "$repo/hack/mkrootfs.sh" "$ROOTFS" && make_rootfs_tar "$ROOTFS" "$W/rootfs.tar" &&
        make_oci_tar "$W/rootfs.tar" "$W/busybox-oci.tar" "$IMG"; then
        pass image-build
    else
        fail image-build "could not build the busybox rootfs/image"
    fi

    local e t
    for e in $ENGINES; do
        t=$SECONDS
        echo "#### $(date +%T.%3N) ENGINE $e" >>"$CALLS"
        "ssuite_$e"
        case $e in
            docker) sdocker_stop "$W/d" ;;
            podman) spodman_teardown "$W/p" ;;
            containerd) containerd_stop "$W/c" ;;
            criu) spodman_teardown "$W/cp"; containerd_stop "$W/cc"; sdocker_stop "$W/cd" ;;
        esac
        echo "sysvm-e2e: $e: $((SECONDS - t)) s"
    done

    cleanup
    mark cleanup
    local left=() x
    x=$(own_processes | tr '\n' ' '); [ -n "$x" ] && left+=("processes: $x")
    x=$(mounts_under "$W" | tr '\n' ' '); [ -n "$x" ] && left+=("mounts: $x")
    x=$(comm -13 <(echo "$units_before") <(container_units) | tr '\n' ' '); [ -n "$x" ] && left+=("units: $x")
    x=$(comm -13 <(echo "$cgroups_before") <(container_cgroups) | tr '\n' ' '); [ -n "$x" ] && left+=("cgroups: $x")
    [ -e "$W" ] && left+=("work dir $W still exists")
    if [ ${#left[@]} -eq 0 ]; then
        pass cleanup-no-leftovers
    else
        fail cleanup-no-leftovers "${left[@]}"
    fi
    summary
    [ $FAILED -eq 0 ]
}

worker &
WORKER=$!
ABORTED=
trap 'ABORTED=1; kill -TERM $WORKER 2>/dev/null' INT TERM HUP
while :; do
    wait $WORKER
    rc=$?
    kill -0 $WORKER 2>/dev/null || break
    if [ -n "$ABORTED" ]; then
        for _ in $(seq 25); do kill -0 $WORKER 2>/dev/null || break; sleep 0.2; done
        kill -KILL $WORKER 2>/dev/null
        wait $WORKER 2>/dev/null
        break
    fi
done
trap '' INT TERM HUP
if [ -n "$ABORTED" ] || [ ! -s "$LOGDIR/summary" ]; then
    echo "sysvm-e2e: aborted (worker status $rc): cleaning up" >&2
    cleanup
    echo "$(grep -c '^PASS' "$LOGDIR/results" 2>/dev/null) passed, $(( $(grep -c '^FAIL' "$LOGDIR/results" 2>/dev/null) + 1 )) failed (aborted)"
    exit 1
fi
cleanup
exit $rc
