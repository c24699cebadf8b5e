#!/bin/bash
# The cgroup suites with both cgroup drivers; runs INSIDE the systemd guest, as a SYSVM_SUITES
# entry of hack/sysvm/run-tests.sh (hack/test.sh's sysvm section):
#   tests/systemd.rs with its guest-only tests (the systemd driver against systemd 252),
#   tests/cgroups.rs with the cgroupfs driver, and again with the systemd driver
#   (BERTH_TEST_CGROUP_DRIVER=systemd: --systemd-cgroup, scopes in a test slice).
# Build the test binaries on the host first (cargo test --release --no-run).
# Prints PASS/FAIL per suite with its time; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /run/systemd/system ]; then
    echo "cgroup-drivers: needs systemd as PID 1: SYSVM_SUITES=hack/cgroup-drivers.sh bash hack/sysvm/run-tests.sh" >&2
    exit 1
fi
bin() { # the newest test binary NAME-<hash>
    local b
    b=$(ls -t target/release/deps/"$1"-* 2>/dev/null | grep -v '\.d$' | head -1)
    [ -n "$b" ] || { echo "cgroup-drivers: no target/release/deps/$1-*: cargo test --release --no-run" >&2; return 1; }
    echo "$b"
}
# The tests copy the rootfs for every bundle: from the guest's tmpfs, not over 9p.
src=${BERTH_ROOTFS:-$PWD/hack/.cache/rootfs}
export BERTH_ROOTFS=/tmp/berth-drivers-rootfs
rm -rf "$BERTH_ROOTFS"
cp -a "$src" "$BERTH_ROOTFS" || exit 1
trap 'rm -rf "$BERTH_ROOTFS"' EXIT
rc=0
run() { # NAME CMD...
    local name=$1 t0=$SECONDS
    shift
    echo "--- $name: $*"
    if "$@"; then
        echo "PASS $name ($((SECONDS - t0)) s)"
    else
        echo "FAIL $name ($((SECONDS - t0)) s)"
        rc=1
    fi
}
sd=$(bin systemd) && cg=$(bin cgroups) || exit 1
run "systemd driver (tests/systemd.rs)" "$sd" --include-ignored --test-threads=2
run "cgroups, cgroupfs driver" "$cg" --test-threads=2
run "cgroups, systemd driver" env BERTH_TEST_CGROUP_DRIVER=systemd "$cg" --test-threads=2
exit $rc
