#!/bin/bash
# The CRI suite with the systemd cgroup driver (SystemdCgroup = true, kubepods-burstable-pod<uid>.slice
# parents, cri-containerd-<id>.scope units) in the systemd + cgroup v2 guest (hack/sysvm):
# the client and the images are made here on the host (the guest has no compiler and no
# network), then one boot runs hack/cri.sh in the guest with CGROUP_DRIVER=systemd, berth and
# runc at the same time (CRI_PARALLEL=1: each with its own containerd), each runtime from a
# copy on the guest's disk. The CI section cri-sysvm (hack/test.sh).
#
#   bash hack/cri/sysvm.sh                     # berth and runc (make cri-sysvm)
#   RUNTIMES=runc CRI_PARALLEL=0 bash hack/cri/sysvm.sh
#   RUNTIMES=berth FILTER=pod VERBOSE=1 bash hack/cri/sysvm.sh
#
# Exit status: hack/sysvm/run-tests.sh's (0 iff the suite passed in the guest; see hack/cri.sh
# for what passing means with and without runc in RUNTIMES).
set -uo pipefail
cd "$(dirname "$0")/../.."
. hack/cri/lib.sh
[ "$(id -u)" = 0 ] || { cri_log "must run as root"; exit 2; }
cri_deps || exit 2
cri_build || exit 2
img=$PWD/hack/.cache/cri-images
rm -rf "$img"
mkdir -p "$img"
cri_images "$img" || exit 2
export CRI_PREBUILT=$img CGROUP_DRIVER=systemd RUNTIMES=${RUNTIMES:-berth runc} CRI_PARALLEL=${CRI_PARALLEL:-1}
SYSVM_SUITES=${SYSVM_SUITES:-smoke; hack/cri.sh} bash hack/sysvm/run-tests.sh
rc=$?
rm -rf "$img"
exit $rc
