#!/bin/bash
# hack/e2e/criu-vm.sh — the e2e engine "criu" (checkpoint/restore through podman and
# containerd, hack/e2e/criu.sh) in the VM guest of hack/vm, where CRIU works (Debian's 6.1
# kernel; this host's 6.18 kernel fails `criu check`). Logs come back to hack/.cache/e2e/.
#
#   bash hack/e2e/criu-vm.sh                          # berth
#   RUNTIME=/usr/sbin/runc bash hack/e2e/criu-vm.sh   # the same checks with runc
#   CRIU_ENGINES=containerd bash hack/e2e/criu-vm.sh  # only one of podman/containerd
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
bash hack/vm/setup.sh || { echo "FAIL vm setup"; exit 1; }
# The engines are installed on the host (the guest sees its / read-only).
. hack/e2e/install.sh
install_engines criu || { echo "FAIL install-engines"; exit 1; }
exec bash hack/vm/run.sh --mem "${VM_MEM:-2048}" --timeout "${VM_TIMEOUT:-1500}" -- \
    env ENGINES=criu RUNTIME="${RUNTIME:-$repo/target/release/berth}" CRIU_ENGINES="${CRIU_ENGINES:-}" \
    bash hack/e2e/run.sh
