#!/bin/bash
# hack/vm/run-tests.sh — `make vm-test`: runtime checks on a pure cgroup v2 kernel, in a VM.
# Boots one guest (hack/vm/run.sh) and runs hack/vm/guest-tests.sh in it:
#  (a) runc and berth each: `run` with memory.max/pids.max seen inside the container,
#      create/start/state/kill/delete with the limits checked in the container's cgroup,
#      io.max on the VM's extra disk from blockIO, create from a service's cgroup that holds
#      processes (the container goes beside it);
#  (b) with VM_CARGO_TESTS="BIN [ARGS...][; BIN [ARGS...]...]": each test binary (a path, or a name
#      under target/release/deps — the newest BIN-<hash>) run with BERTH_CGROUP_MODE=v2, e.g.
#      VM_CARGO_TESTS="cgroups v2::" make vm-test
# Prints PASS/FAIL per check and "N passed, M failed"; exits 1 if anything failed.
# Env: BERTH (default target/release/berth), RUNC (default /usr/sbin/runc), BERTH_ROOTFS or
#      VM_ROOTFS (default hack/.cache/rootfs), VM_TIMEOUT (whole VM, default 900 s),
#      VM_CHECK_TIMEOUT (each command, default 120 s; a cargo test suite gets 4x), VM_MEM (MB, default 1024),
#      VM_SMOKE=0 (skip (a), e.g. to iterate on cargo tests).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cd "$repo"
rootfs=${VM_ROOTFS:-${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}}
[ -f "$rootfs/.complete" ] || bash hack/mkrootfs.sh "$rootfs" || { echo "FAIL rootfs"; exit 1; }
rootfs=$(cd "$rootfs" && pwd -P)
berth=${BERTH:-$repo/target/release/berth}
[[ $berth = /* ]] || berth=$repo/$berth
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
bash "$here/setup.sh" || { echo "FAIL vm setup"; exit 1; }

start=${EPOCHREALTIME/./}
# apparmor=0: Debian's kernel then makes SELinux its major LSM, enabled but without a policy,
# as in a Debian 12 guest booted with apparmor=0 (the systemd guest, docker without
# apparmor_parser); guest-tests.sh mounts selinuxfs as systemd does. Runtimes must treat that as
# "no SELinux" (libselinux, runc). VM_APPEND replaces it.
export VM_APPEND=${VM_APPEND-apparmor=0}
REPO=$repo ROOTFS=$rootfs RUNC=$runc BERTH=$berth \
    bash "$here/run.sh" --disk 64 --mem "${VM_MEM:-1024}" --timeout "${VM_TIMEOUT:-900}" \
    -- bash "$here/guest-tests.sh"
rc=$?
el=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
echo "vm-test: $((el / 10)).$((el % 10)) s in the VM (boot, checks, power-off)"
case $rc in
    0) exit 0 ;;
    1) exit 1 ;;
    *) echo "FAIL vm: run.sh exited $rc (124: timeout, 125: VM failure)"; echo "0 passed, 1 failed"; exit 1 ;;
esac
