#!/bin/bash
# End-to-end tests: real engines (containerd 1.6 + ctr, podman 4.3 + conmon, dockerd 20.10 from
# Debian) driving the runtime under test.
#
#   bash hack/e2e/run.sh                      # RUNTIME defaults to target/release/berth
#   RUNTIME=/usr/sbin/runc bash hack/e2e/run.sh
#   ENGINES="containerd podman" bash hack/e2e/run.sh
#   ENGINES=criu ...                          # checkpoint/restore through podman and containerd
#                                             # (needs a working CRIU: the VM guest, see hack/e2e/criu.sh)
#   E2E_NO_SECCOMP=1 ...                      # podman/docker containers without their seccomp
#                                             # profile (to get past a runtime lacking seccomp)
#
# Every engine runs privately (own roots, state dirs, sockets, test-only cgroup parents) and is
# stopped by the PID it recorded. The runtime is reached through a logging wrapper
# ($W/bin/<name of the runtime>) so each check can prove the runtime under test made the container.
# Output: one PASS/FAIL line per check, then "N passed, M failed"; exit 1 if any failed.
# Logs (every runtime call with its exit status, saved config.json/process.json/update payloads,
# daemon logs) are kept in $E2E_LOGS (default hack/.cache/e2e/<date>-<pid>).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
RUNTIME=${RUNTIME:-$repo/target/release/berth}
ENGINES=${ENGINES:-containerd podman docker}
[ "${RUNTIME#/}" = "$RUNTIME" ] && [ -e "$RUNTIME" ] && RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME")
TAG=be2e-$$
W=/tmp/$TAG                       # short: podman's runroot must stay under 50 characters
LOGDIR=${E2E_LOGS:-$repo/hack/.cache/e2e/$(date +%Y%m%d-%H%M%S)-$$}
CALLS=$LOGDIR/calls.log
ART=$LOGDIR/artifacts
DAEMON_PIDS=()

. "$here/lib.sh"
. "$here/install.sh"
. "$here/image.sh"
. "$here/containerd.sh"
. "$here/podman.sh"
. "$here/docker.sh"
. "$here/criu.sh"

[ "$(id -u)" = 0 ] || { echo "e2e: must run as root" >&2; exit 1; }
for e in $ENGINES; do
    case $e in containerd|podman|docker|criu) ;; *) echo "e2e: unknown engine '$e' (containerd podman docker criu)" >&2; exit 2 ;; esac
done

mkdir -p "$LOGDIR" "$ART"
: >"$CALLS"
T0=$SECONDS
echo "e2e: runtime under test: $RUNTIME; engines: $ENGINES; logs: $LOGDIR"

summary() {
    echo "e2e: took $((SECONDS - T0)) s; runtime calls: $(grep -c ' rc=' "$CALLS" 2>/dev/null) (log: $CALLS)"
    [ $FAILED -gt 0 ] && echo "e2e: failed: ${FAILED_NAMES[*]}"
    echo "$PASSED passed, $FAILED failed" | tee "$LOGDIR/summary"
}

if [ ! -x "$RUNTIME" ] || ! timeout 10 "$RUNTIME" --version >/dev/null 2>&1; then
    fail runtime-present "$RUNTIME is missing, not executable or fails '--version' (build it: cargo build --release --bin berth)"
    summary
    exit 1
fi
pass runtime-present

# ---- what the host looks like before: compared after cleanup ----
SYS_PATHS=(/run/containerd /run/docker /run/containers /run/libpod /run/runc /run/berth /var/lib/containers
           /var/lib/containerd /var/lib/docker /etc/docker /run/netns /dev/shm/libpod_lock)
declare -A EXISTED=()
for p in "${SYS_PATHS[@]}"; do [ -e "$p" ] && EXISTED[$p]=1; done
host_net() {
    ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print "link", $2 }'
    ip netns list 2>/dev/null | sed 's/^/netns /'
    command -v iptables-save >/dev/null && iptables-save 2>/dev/null | grep -vE '^#' | sed 's/^/iptables /'
    command -v nft >/dev/null && nft list ruleset 2>/dev/null | sed 's/^/nft /'
    echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
}
host_net >"$LOGDIR/host-net.before"

CLEANED=
cleanup() {
    [ -n "$CLEANED" ] && return 0
    CLEANED=1
    local e
    for e in $ENGINES; do
        case $e in
            docker) docker_stop "$W/d" ;;
            podman) podman_teardown "$W/p" ;;
            containerd) containerd_stop "$W/c" ;;
            criu) podman_teardown "$W/cp"; containerd_stop "$W/cc" ;;
        esac
    done
    # anything else this run started (conmon, shims) is named by its work dir: stop it by PID
    local p
    for p in $(own_processes); do stop_pid "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done
    for f in "$W"/c/containerd.log "$W"/cc/containerd.log "$W"/d/ctd/containerd.log "$W"/d/dockerd.log; do
        [ -f "$f" ] && cp "$f" "$LOGDIR/$(echo "${f#$W/}" | tr / _)"
    done
    unmount_under "$W" || say "e2e: could not unmount: $(mounts_under "$W" | tr '\n' ' ')"
    remove_own_cgroups || say "e2e: could not remove cgroups: $(own_cgroups | tr '\n' ' ')"
    if [ -z "$(mounts_under "$W")" ]; then
        rm -rf --one-file-system "$W"
    fi
    # directories the engines create outside the work dir whatever they are told, if this run
    # made them: only empty directories go (anything else may be someone else's)
    for p in "${SYS_PATHS[@]}"; do
        [ -n "${EXISTED[$p]:-}" ] && continue
        [ -d "$p" ] && find "$p" -depth -type d -empty -delete 2>/dev/null
    done
    # podman's lock file (root podman's locks live in /dev/shm whatever its roots are)
    [ -z "${EXISTED[/dev/shm/libpod_lock]:-}" ] && rm -f /dev/shm/libpod_lock
    # podman's image copy cache (written even with private storage)
    if [ -z "${EXISTED[/var/lib/containers]:-}" ]; then
        rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
        [ -d /var/lib/containers ] && find /var/lib/containers -depth -type d -empty -delete 2>/dev/null
    fi
}
if ! mkdir -m 711 "$W"; then
    echo "e2e: $W exists (left by an earlier run?); remove it first" >&2
    exit 1
fi

# The checks run in a worker process; this shell only waits for it, so that Ctrl-C or SIGTERM
# is seen at once (bash defers traps while a foreground command runs), and then stops the
# worker and cleans up whatever state the run had reached.
worker() {
    trap 'exit 143' TERM
    mkdir -p "$W/bin"
    WRAP=$W/bin/$(basename "$RUNTIME")
    make_wrapper "$WRAP"

    # ---- engines and image ----
    mark install
    t=$SECONDS
    # shellcheck disable=SC2086
    if install_engines $ENGINES; then
        pass install-engines
    else
        fail install-engines "apt-get install failed"
    fi
    echo "e2e: install step: $((SECONDS - t)) s"

    mark image
    ROOTFS=$repo/hack/.cache/rootfs
    if bash "$repo/hack/mkrootfs.sh" "$ROOTFS" && make_rootfs_tar "$ROOTFS" "$W/rootfs.tar" &&
        make_oci_tar "$W/rootfs.tar" "$W/busybox-oci.tar" localhost/be2e-busybox:latest; then
        pass image-build
    else
        fail image-build "could not build the busybox rootfs/image"
    fi

    for e in $ENGINES; do
        t=$SECONDS
        echo "#### $(date +%T.%3N) ENGINE $e" >>"$CALLS"
        "suite_$e"
        case $e in
            docker) docker_stop "$W/d" ;;
            podman) podman_teardown "$W/p" ;;
            containerd) containerd_stop "$W/c" ;;
            criu) podman_teardown "$W/cp"; containerd_stop "$W/cc" ;;
        esac
        echo "e2e: $e: $((SECONDS - t)) s"
    done

    # ---- cleanup, then prove nothing was left behind ----
    cleanup
    mark cleanup
    left=()
    p=$(own_processes | tr '\n' ' '); [ -n "$p" ] && left+=("processes: $p")
    p=$(mounts_under "$W" | tr '\n' ' '); [ -n "$p" ] && left+=("mounts: $p")
    p=$(own_cgroups | tr '\n' ' '); [ -n "$p" ] && left+=("cgroups: $p")
    [ -e "$W" ] && left+=("work dir $W still exists")
    host_net >"$LOGDIR/host-net.after"
    p=$(diff "$LOGDIR/host-net.before" "$LOGDIR/host-net.after" | grep '^[<>]' | tr '\n' ';'); [ -n "$p" ] && left+=("network changed: $p")
    for p in "${SYS_PATHS[@]}"; do
        [ -z "${EXISTED[$p]:-}" ] && [ -e "$p" ] && left+=("$p created and not empty: $(find "$p" | head -n 5 | tr '\n' ' ')")
    done
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
    echo "e2e: aborted (worker status $rc): cleaning up" >&2
    cleanup
    leftovers=$(own_processes | tr '\n' ' ')$(mounts_under "$W" | tr '\n' ' ')$(own_cgroups | tr '\n' ' ')
    [ -n "$leftovers" ] && echo "e2e: LEFT BEHIND: $leftovers" >&2
    echo "$(grep -c '^PASS' "$LOGDIR/results" 2>/dev/null) passed, $(( $(grep -c '^FAIL' "$LOGDIR/results" 2>/dev/null) + 1 )) failed (aborted)"
    exit 1
fi
cleanup    # no-op when the worker finished its own cleanup
exit $rc
