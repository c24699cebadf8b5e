#!/bin/bash
# `make test` (and CI): every test suite, each in its own section, a summary at the end.
# Sections: lint, cargo tests (real containers, as root), the spec suite side by side with
# runc (hack/integration.sh), the engines end to end (hack/e2e/run.sh), the pure cgroup v2 VM
# (hack/vm/run-tests.sh), the systemd + cgroup v2 guest (hack/sysvm/run-tests.sh: the engines
# at their systemd defaults through berth, and the cgroup suites with both cgroup drivers,
# hack/cgroup-drivers.sh), the short stress run (hack/stress.sh), Kubernetes pods through
# containerd's CRI side by side with runc (hack/cri.sh; and in the systemd guest with the systemd
# cgroup driver, hack/cri/sysvm.sh), make install's layout, the static build (hack/static.sh
# test), rootless podman (hack/rootless/podman.sh). SKIP="e2e vm" skips sections by name.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export BERTH_ROOTFS=$repo/hack/.cache/rootfs
declare -a results=()
failed=0
# Sections in REPORT_ONLY run and print their results, but do not fail the build (none by
# default; e.g. REPORT_ONLY="vm" while working on something else). The integration and cri
# sections fail iff berth fails a scenario (check) that runc passes on this machine.
REPORT_ONLY=${REPORT_ONLY:-""}
section() {
    local name=$1; shift
    if [[ " ${SKIP:-} " == *" $name "* ]]; then
        results+=("SKIP  $name"); return
    fi
    echo; echo "=== $name: $*"
    local t0=$SECONDS
    if "$@"; then
        results+=("PASS  $name ($((SECONDS - t0)) s)")
    elif [[ " $REPORT_ONLY " == *" $name "* ]]; then
        results+=("FAIL  $name ($((SECONDS - t0)) s) [report only, not gating]")
    else
        results+=("FAIL  $name ($((SECONDS - t0)) s)"); failed=1
    fi
}
lint() {
    cargo fmt --all -- --check && cargo clippy --release --all-targets -q -- -D warnings &&
        # the CRI client (integration/cri, its own profile) needs protoc: cri_deps installs it
        (. hack/cri/lib.sh && cri_deps) && cargo clippy --profile cri -p berth-cri -q -- -D warnings
}
unit() {
    cargo test --release --workspace -- --test-threads=2
}
snapshot() {
    { ls -d /sys/fs/cgroup/*/berth-* /sys/fs/cgroup/berth-* /tmp/berth-* /dev/shm/libpod* \
          /tmp/brlp* /tmp/brld* /tmp/rootlesskit* 2>/dev/null
      grep -o ' /[^ ]*berth[^ ]*' /proc/self/mountinfo
      # the users the rootless tests and scripts make (brl<pid>x<n>, brlp<pid>, brld<pid>)
      grep -oE '^brl[a-z0-9]*:' /etc/passwd; } | sort
}
before=$(snapshot)
leftovers() {
    # Nothing may remain from the tests (compared with what was there before they ran):
    # test cgroups, mounts, temporary dirs.
    local new
    new=$(comm -13 <(echo "$before") <(snapshot))
    [ -z "$new" ] && return 0
    echo "left behind by the tests:"; echo "$new"; return 1
}
section lint lint
section cargo-test unit
# The heavy reliability scenarios in a short form (the fast ones ran in cargo-test).
section stress env SOAK="${SOAK:-200}" CONCURRENCY="${CONCURRENCY:-40}" RACE_ROUNDS="${RACE_ROUNDS:-5}" \
    RELIABILITY=0 STRESS_TIMEOUT=300 bash hack/stress.sh
section integration bash hack/integration.sh
section cri bash hack/cri.sh
section e2e bash hack/e2e/run.sh
# Rootless podman through berth as a user made for it (the rootless cargo tests ran in cargo-test).
section rootless-podman bash hack/rootless/podman.sh
# Rootless docker (dockerd-rootless.sh: rootlesskit + slirp4netns) through berth, as a user made
# for it (~10 s).
section rootless-docker bash hack/rootless/docker.sh
# make install's layout into a temporary DESTDIR, and uninstall (hack/install.sh).
section install bash hack/install.sh check
# make static's binary, and the lifecycle/seccomp/security suites and e2e against it.
section static bash hack/static.sh test
section vm env VM_CARGO_TESTS="${VM_CARGO_TESTS-cgroups; check; checkpoint; lsm_labels}" bash hack/vm/run-tests.sh
# The systemd + cgroup v2 guest (hack/sysvm/README.md): installs qemu, mmdebstrap & co and builds
# the guest image on a fresh machine (~2-2.5 min), then in one boot: smoke, docker/containerd/podman
# at their systemd defaults through berth (--systemd-cgroup), the cgroup suites with both
# drivers (hack/cgroup-drivers.sh; test binaries built by cargo-test), rootless as the guest's user
# berthtest (pieces.sh rootless: rootless podman with its systemd cgroup manager, and berth itself
# with --systemd-cgroup in the user's systemd and with cgroupfs in a delegated user scope; ~2 min
# under TCG), and checkpoint/restore with the systemd driver (pieces.sh criu, tests/checkpoint.rs
# systemd_driver, and through podman, containerd and docker: `e2e criu`, hack/sysvm/e2e-criu.sh,
# ~2-4.5 min). SYSVM_SUITES/SYSVM_RUNTIME choose the suites and the runtime under test.
section sysvm env SYSVM_TIMEOUT="${SYSVM_TIMEOUT-3600}" SYSVM_SUITES="${SYSVM_SUITES-smoke; e2e; hack/cgroup-drivers.sh; rootless; criu; checkpoint systemd_driver; e2e criu}" \
    RUNTIME="${SYSVM_RUNTIME-$repo/target/release/berth}" bash hack/sysvm/run-tests.sh
# Kubernetes pods through containerd's CRI in the systemd guest (hack/cri/sysvm.sh): SystemdCgroup
# = true, kubelet's slice names; berth and runc at the same time in one boot, each with its own
# containerd. Fails iff berth fails a check runc passes (as the cri section). No smoke suite (the
# sysvm section ran it); SYSVM_SUITES given here, not taken from the caller's (the sysvm section's).
section cri-sysvm env SYSVM_SUITES=hack/cri.sh bash hack/cri/sysvm.sh
section leftovers leftovers
echo; echo "=== summary"
printf '%s\n' "${results[@]}"
exit $failed
