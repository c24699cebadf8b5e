#!/bin/bash
# hack/bench/criu.sh — checkpoint and restore time of a 64 MiB process, berth against runc in
# one run, and berth's own share of it (the time outside CRIU). CRIU does not work on this
# host's kernel, so it all runs in the VM guest of hack/vm (Debian's 6.1 kernel, TCG: absolute
# times are those of an emulated CPU; compare the runtimes with each other, not with a host).
#
#   bash hack/bench/criu.sh            # N=5 rounds (make bench runs it after hack/bench/run.sh)
#   N=10 MIB=128 bash hack/bench/criu.sh
#
# Each round checkpoints and restores one container per runtime, interleaved (berth, runc,
# berth, runc, ...), from the same bundle, images on the guest's tmpfs. Reported per runtime:
# median/min/max wall time of `checkpoint` (without --leave-running: dump and kill) and of
# `restore --detach`; for berth also its own phases (--debug: prepare / criu / finish, where
# "criu" is the whole `criu swrk` exchange including criu's start-up), and for both runtimes
# the time CRIU logged between its first and last log line (dump.log/restore.log).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench-criu: must run as root" >&2; exit 1; }
rootfs=${ROOTFS:-$repo/hack/.cache/rootfs}
[ -x "$rootfs/bin/busybox" ] || bash "$repo/hack/mkrootfs.sh" "$rootfs"
rootfs=$(cd "$rootfs" && pwd)
berth=${BERTH:-$repo/target/release/berth}
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
command -v criu >/dev/null || bash "$repo/hack/deps.sh"   # (installs criu)
work=$(mktemp -d "$repo/hack/.cache/bench-criu.XXXX")
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/memhog" "$here/memhog.c"
WORK=$work ROOTFS=$rootfs BERTH=$berth RUNC=$runc N=${N:-5} MIB=${MIB:-64} \
    bash "$repo/hack/vm/run.sh" --mem "${VM_MEM:-2048}" --timeout "${BENCH_TIMEOUT:-900}" \
    -- bash "$here/criu-guest.sh"
