#!/bin/bash
# hack/sysvm/run-tests.sh — `make sysvm-test`: test suites in ONE boot of the systemd guest.
#
#   bash hack/sysvm/run-tests.sh                                  # SYSVM_SUITES="smoke; e2e"
#   SYSVM_SUITES="smoke; e2e; rootless; criu; cri" bash hack/sysvm/run-tests.sh
#   RUNTIME=$PWD/target/release/berth SYSVM_SUITES=e2e bash hack/sysvm/run-tests.sh
#   SYSVM_SUITES="cgroups systemd::" bash hack/sysvm/run-tests.sh  # a cargo test binary + filter
#
# Builds the image if needed (hack/sysvm/build.sh) and the busybox rootfs, boots the guest once
# (hack/sysvm/run.sh) and runs hack/sysvm/guest-suites.sh in it, which runs each suite of
# SYSVM_SUITES (";"-separated "SUITE [ARGS...]"; see guest-suites.sh: smoke, e2e, rootless, criu,
# cri, a script path, or a cargo test binary name) and prints its output, then one
# "PASS suite NAME (N s)" / "FAIL suite NAME (N s) — why" line; a summary and "N passed,
# M failed" at the end. Exit 1 if any suite failed (or the guest did).
# Env: RUNTIME (runtime under test for e2e and the pieces, default /usr/sbin/runc), ENGINES,
#      SYSVM_TIMEOUT (whole guest, default 2400 s), SYSVM_SUITE_TIMEOUT (each suite, default
#      1200 s), SYSVM_MEM (MB, default 2048), SYSVM_JOURNAL=FILE (the guest's journal, for debugging),
#      SYSVM_APPARMOR=1 (boot with AppArmor on: dockerd then confines containers with docker-default).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cd "$repo" || exit 1
export SYSVM_SUITES=${SYSVM_SUITES:-smoke; e2e}
export BERTH_ROOTFS=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
[ -f "$BERTH_ROOTFS/.complete" ] || bash hack/mkrootfs.sh "$BERTH_ROOTFS" || { echo "FAIL rootfs"; exit 1; }
if [ -n "${RUNTIME:-}" ] && [ "${RUNTIME#/}" = "$RUNTIME" ]; then export RUNTIME=$repo/$RUNTIME; fi

t0=${EPOCHREALTIME/./}
bash "$here/build.sh" || { echo "FAIL sysvm image build"; echo "0 passed, 1 failed"; exit 1; }
t1=${EPOCHREALTIME/./}
jargs=()
[ -n "${SYSVM_JOURNAL:-}" ] && jargs=(--journal "$SYSVM_JOURNAL")
[ "${SYSVM_APPARMOR:-0}" = 1 ] && jargs+=(--apparmor)
REPO=$repo bash "$here/run.sh" --mem "${SYSVM_MEM:-2048}" --timeout "${SYSVM_TIMEOUT:-2400}" "${jargs[@]}" \
    -- bash "$here/guest-suites.sh"
rc=$?
t2=${EPOCHREALTIME/./}
echo "sysvm-test: image $(( (t1 - t0) / 1000000 )) s, guest $(( (t2 - t1) / 1000000 )) s (boot, suites, power-off)"
case $rc in
    0) exit 0 ;;
    1) exit 1 ;;
    *) echo "FAIL sysvm: run.sh exited $rc (124: timeout, 125: VM failure)"; echo "0 passed, 1 failed"; exit 1 ;;
esac
