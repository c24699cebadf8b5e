#!/bin/bash
# Regenerate hack/link/berth.order (the hot-first function layout, see build.rs) from the current
# code, then relink. Run after changes that add or rename functions on the create/start/exec/
# delete paths; `make bench` prints how much of the order file the current build still matches.
# Takes ~7 min (registering and removing ~4500 uprobes is slow). Root only.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
rootfs=${ROOTFS:-$repo/hack/.cache/rootfs}
[ -x "$rootfs/bin/busybox" ] || bash hack/mkrootfs.sh "$rootfs"
# Relink, so that target/release/berth.map is this binary's (a `cargo test` link of the bin's
# unit-test harness writes the same path).
touch hack/link/berth.order
cargo build --release --bin berth
python3 hack/link/mkorder.py target/release/berth target/release/berth.map "$rootfs" hack/link/berth.order
cargo build --release --bin berth
python3 hack/link/check.py target/release/berth hack/link/berth.order
