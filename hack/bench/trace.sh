#!/bin/bash
# Where does a runtime's `create` spend its time? strace -f -c (syscall summary) and a -f -tt -T
# timeline of one `create` of /bin/true per runtime (plus the init exec-ing /bin/true after an
# untraced `start`), in the same setting as run.sh (private mount
# namespace, cgroup2 mount at /sys/fs/cgroup/unified replaced by an empty tmpfs), same bundle.
#   bash hack/bench/trace.sh [OUTDIR]      (default: a new /tmp/berth-trace.XXXX; kept)
# Knobs: RUNTIMES="berth runc crun", BERTH/RUNC/CRUN=path, CAPS_INHERITABLE=1, CMD=create|run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
command -v strace >/dev/null || { echo "trace: strace is not installed (apt-get install strace)" >&2; exit 1; }
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
    BERTH_BENCH_INNER=ns exec unshare -m --propagation private bash "$0" "$@"
fi
if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=16m,mode=755 berth-bench-empty /sys/fs/cgroup/unified
fi
out=${1:-$(mktemp -d /tmp/berth-trace.XXXX)}
mkdir -p "$out"
rootfs=$(cd "${ROOTFS:-$repo/hack/.cache/rootfs}" && pwd)
cmd=${CMD:-create}
runid="t$$"
work=$(mktemp -d "/run/berth-trace.$runid.XXXX")
cg="berth-trace-$runid"
declare -A path=([berth]=${BERTH:-$repo/target/release/berth} [runc]=${RUNC:-/usr/sbin/runc} [crun]=${CRUN:-/usr/bin/crun})
cleanup() {
    set +e
    for rt in ${RUNTIMES:-berth runc crun}; do
        "${path[$rt]}" --root "$work/root-$rt" delete -f "$rt-$runid" >/dev/null 2>&1
    done
    for d in /sys/fs/cgroup/*/"$cg"; do
        [ -d "$d" ] || continue
        if [ "$(stat -f -c %T "${d%/*}")" = tmpfs ]; then rm -rf "$d"; else find "$d" -depth -type d -exec rmdir {} \; ; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
for rt in ${RUNTIMES:-berth runc crun}; do
    p=${path[$rt]}
    id="$rt-$runid"
    b="$work/b-$rt"
    mkdir -p "$b" "$work/root-$rt"
    python3 -c 'import sys, json; sys.path.insert(0, sys.argv[1]); import driver
json.dump(driver.make_config(sys.argv[2], ["/bin/true"], sys.argv[3]), open(sys.argv[4], "w"))' \
        "$here" "$rootfs" "/$cg/$id" "$b/config.json"
    args=(create --bundle "$b" --pid-file "$b/pid" "$id")
    [ "$cmd" = run ] && args=(run --bundle "$b" "$id")
    # warm the page cache once, then trace
    "$p" --root "$work/root-$rt" "${args[@]}" </dev/null >/dev/null 2>&1 || true
    "$p" --root "$work/root-$rt" delete -f "$id" >/dev/null 2>&1 || true
    # strace -f also follows the container's init, which waits for `start`: trace in the
    # background, start the container from outside once the pid file exists, then wait.
    for mode in summary timeline; do
        rm -f "$b/pid"
        if [ $mode = summary ]; then sopt=(-f -c -S time); else sopt=(-f -tt -T); fi
        strace "${sopt[@]}" -o "$out/$rt.$cmd.$mode" "$p" --root "$work/root-$rt" "${args[@]}" </dev/null >/dev/null 2>&1 &
        spid=$!
        if [ "$cmd" = create ]; then
            for _ in $(seq 100); do [ -s "$b/pid" ] && break; sleep 0.1; done
            sleep 0.3
            "$p" --root "$work/root-$rt" start "$id" >/dev/null 2>&1 || echo "trace: $rt start failed" >&2
        fi
        wait $spid || echo "trace: $rt $cmd failed (see $out/$rt.$cmd.$mode)" >&2
        "$p" --root "$work/root-$rt" delete -f "$id" >/dev/null 2>&1 || true
    done
    echo "== $rt $cmd: $(grep -c . "$out/$rt.$cmd.timeline") timeline lines; syscalls by time:"
    head -14 "$out/$rt.$cmd.summary" | tail -n +3
    tail -1 "$out/$rt.$cmd.summary"
done
echo "traces kept in $out"
