#!/bin/bash
# berth benchmark: berth vs runc vs crun, interleaved. See hack/bench/README.md.
#   bash hack/bench/run.sh            # full run (~5-8 min)
#   QUICK=1 bash hack/bench/run.sh    # ~1 min smoke
# Knobs: N= (iterations per latency figure), QUICK=1, LEVELS=1,100,1000 (state/list populations),
#   POP_BUDGET= (s per runtime to grow a population), TPUT_TOTAL=200, TPUT_PAR=4, TPUT_ROUNDS=3,
#   RUNTIMES="berth runc crun" (or berth-static: `make static`'s build), BERTH=path, RUNC=path, CRUN=path, ROOTFS=dir, OUT=file (report copy),
#   BENCH_SETTING=host (skip the private mount namespace; crun will then refuse this hybrid host),
#   SYSTEMD=1: the systemd cgroup driver (--systemd-cgroup; needs systemd as PID 1: run it in
#   the systemd guest, `make bench` does): lifecycle and run of berth, runc and crun, and berth's
#   cgroupfs driver in the same host as "berth-fs".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "bench: must run as root" >&2
    exit 1
fi

# 1. Re-exec inside a private mount namespace (all runtimes share that one setting).
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
    if [ "${BENCH_SETTING:-ns}" != host ] && unshare -m --propagation private true 2>/dev/null; then
        BERTH_BENCH_INNER=ns exec unshare -m --propagation private bash "$0" "$@"
    fi
    export BERTH_BENCH_INNER=host
fi

setting="host mount namespace (no unshare -m); /sys/fs/cgroup/unified left as is"
if [ "$BERTH_BENCH_INNER" = ns ]; then
    setting="private mount namespace (unshare -m, propagation private)"
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        # crun 1.8.1 refuses hybrid hosts. Unmount the cgroup2 (hugetlb-only) mount in this
        # namespace and put an empty private tmpfs in its place: crun in v1 mode still mkdirs
        # <path>/ and writes cgroup.procs under /sys/fs/cgroup/unified; with the tmpfs those
        # writes vanish with the namespace instead of landing on the host's /sys/fs/cgroup tmpfs.
        if umount /sys/fs/cgroup/unified 2>/dev/null &&
            mount -t tmpfs -o size=256m,mode=755 berth-bench-empty /sys/fs/cgroup/unified; then
            setting="$setting; /sys/fs/cgroup/unified (cgroup2, hugetlb only) unmounted and replaced by an empty private tmpfs -> pure cgroup v1"
        else
            setting="$setting; could not unmount /sys/fs/cgroup/unified (crun will likely refuse)"
        fi
    else
        setting="$setting; no cgroup2 mount at /sys/fs/cgroup/unified"
    fi
fi

rootfs=${ROOTFS:-$repo/hack/.cache/rootfs}
[ -x "$rootfs/bin/busybox" ] || bash "$repo/hack/mkrootfs.sh" "$rootfs"
rootfs=$(cd "$rootfs" && pwd)

runid="$$$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
cgparent="berth-bench-$runid"
work=$(mktemp -d "/run/berth-bench.$runid.XXXX")

declare -A path=(
    [berth]=${BERTH:-$repo/target/release/berth}
    [berth-static]=${BERTH_STATIC:-$repo/target/static/berth}
    [berth-fs]=${BERTH:-$repo/target/release/berth}
    [runc]=${RUNC:-/usr/sbin/runc}
    [crun]=${CRUN:-/usr/bin/crun}
)
sdslice=""
if [ "${SYSTEMD:-0}" = 1 ]; then
    [ -d /run/systemd/system ] || { echo "bench: SYSTEMD=1 needs systemd as PID 1 (make bench runs it in the systemd guest)" >&2; exit 1; }
    # A test-only slice (no dashes: they would nest it), stopped at the end.
    sdslice="berthbench${runid}.slice"
    RUNTIMES=${RUNTIMES:-berth runc crun berth-fs}
fi
rtargs=()
for rt in ${RUNTIMES:-berth runc crun}; do
    p=${path[$rt]:-}
    [ -n "$p" ] || { echo "bench: unknown runtime $rt" >&2; exit 2; }
    rtargs+=(--runtime "$rt=$p")
done

# 2. Cleanup that runs whatever happens (EXIT, Ctrl-C, TERM): every container in our
#    private roots is force-deleted, leftover processes in our cgroups are killed by pid,
#    the cgroup parent and the work dir are removed.
cleanup() {
    local rc=$? rt p id d pid tries
    trap - EXIT INT TERM
    set +e
    for rt in ${RUNTIMES:-berth runc crun}; do
        p=${path[$rt]}
        d="$work/root-$rt"
        [ -d "$d" ] || continue
        for id in $( { "$p" --root "$d" list -q 2>/dev/null; ls "$d" 2>/dev/null; } | sort -u); do
            case "$id" in *"$runid"*) ;; *) continue ;; esac
            echo "bench: cleanup: deleting $rt container $id" >&2
            timeout 30 "$p" --root "$d" delete --force "$id" >/dev/null 2>&1
        done
    done
    if [ -n "$sdslice" ]; then
        systemctl stop "$sdslice" >/dev/null 2>&1
        systemctl reset-failed "$sdslice" >/dev/null 2>&1
    fi
    for tries in 1 2 3 4 5; do
        local left=0
        for d in /sys/fs/cgroup/*/"$cgparent"; do
            [ -d "$d" ] || continue
            # the private tmpfs at unified (see above) holds plain files, not cgroups
            [ "$(stat -f -c %T "${d%/*}")" = tmpfs ] && { rm -rf "$d"; continue; }
            left=1
            # leaves first
            while IFS= read -r sub; do
                for pid in $(cat "$sub/cgroup.procs" 2>/dev/null); do
                    kill -KILL "$pid" 2>/dev/null
                done
                rmdir "$sub" 2>/dev/null
            done < <(find "$d" -depth -type d)
        done
        [ $left = 0 ] && break
        sleep 0.2
    done
    for d in /sys/fs/cgroup/*/"$cgparent"; do
        [ -d "$d" ] && echo "bench: WARNING: could not remove cgroup $d" >&2
    done
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Tiny static helper for the peak-RSS figure (see rsswrap.c for why python cannot do it).
rsswrap=""
if gcc -O2 -static -o "$work/rsswrap" "$here/rsswrap.c" 2>/dev/null ||
    gcc -O2 -o "$work/rsswrap" "$here/rsswrap.c" 2>/dev/null; then
    rsswrap="$work/rsswrap"
fi

pyargs=(--rsswrap "$rsswrap" --work "$work" --rootfs "$rootfs" --cgparent "$cgparent" --runid "$runid" --setting "$setting"
    "${rtargs[@]}" --n "${N:-0}" --levels "${LEVELS:-}" --pop-budget "${POP_BUDGET:-0}"
    --tput-total "${TPUT_TOTAL:-0}" --tput-par "${TPUT_PAR:-4}" --tput-rounds "${TPUT_ROUNDS:-0}"
    --out "${OUT:-}" --systemd-slice "$sdslice")
[ "${QUICK:-0}" = 1 ] && pyargs+=(--quick)
python3 "$here/driver.py" "${pyargs[@]}"
