#!/bin/bash
# Pod-scale benchmark through containerd's CRI (integration/cri `bench`): berth against runc in
# the same run, one private containerd each, rounds alternated. See hack/bench/README.md.
#   bash hack/bench/cri.sh                 # 50 pods x 2 containers, 8 at a time, 5 rounds
#   PODS=20 ROUNDS=2 bash hack/bench/cri.sh
# Knobs: PODS=50 CONTAINERS=2 PARALLEL=8 ROUNDS=5 RUNTIMES="berth runc" OUT=file (report copy).
set -uo pipefail
cd "$(dirname "$0")/../.."
. hack/cri/lib.sh
[ "$(id -u)" = 0 ] || { cri_log "must run as root"; exit 2; }
cri_deps || exit 2
cri_build || exit 2
work=$(mktemp -d /tmp/bcri-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cri_images "$work" || exit 2
args=(bench --pause-image "$work/pause.tar" --busybox-image "$work/busybox.tar" --pods "${PODS:-50}"
      --containers "${CONTAINERS:-2}" --parallel "${PARALLEL:-8}" --rounds "${ROUNDS:-5}")
for rt in ${RUNTIMES:-berth runc}; do
    args+=(--runtime "$(basename "$rt")=$(cri_runtime "$rt")")
done
t0=$SECONDS
timeout -k 10 3000 "$CRI_BIN" "${args[@]}" | tee "$work/report"
rc=${PIPESTATUS[0]}
echo "total CRI bench time $((SECONDS - t0)) s"
[ -n "${OUT:-}" ] && cp "$work/report" "$OUT"
exit "$rc"
