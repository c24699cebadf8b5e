#!/bin/bash
# `make demo`: run an example container from a busybox bundle made with `berth spec`.
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$PWD/target/release/berth
dir=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp -a hack/.cache/rootfs "$dir/rootfs"
cd "$dir"
"$berth" spec
# Not a terminal (so it also runs under CI), and a command that shows where it runs.
cmd='echo "hello from $(hostname), pid $$, user $(id -un)"; echo "mounts:"; cut -d" " -f2,3 /proc/mounts'
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e "s|^\( *\)\"sh\"\$|\1\"sh\", \"-c\", \"${cmd//\"/\\\\\"}\"|" config.json
echo "+ berth run demo-$$   (bundle $dir)"
"$berth" --root "$dir/state" run "demo-$$"
echo "+ exit status $?"
