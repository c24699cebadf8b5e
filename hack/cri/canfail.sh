#!/bin/bash
# Can the CRI suite's checks fail? Runs the suite against deliberately wrong runtimes: for each
# mutation of `berth-cri mutations` (integration/cri/src/mutate.rs), a wrapper that passes
# every call to the real runtime after changing one thing (a config.json field of create, an
# exec's process.json, a kill signal, a skipped update/delete/kill --all). The suite runs the
# groups the mutation concerns; every check the mutation names must FAIL. Not part of CI
# (~30 runs of the suite); `make cri-canfail`.
#
#   bash hack/cri/canfail.sh                    # every mutation, over berth
#   MUTATIONS="hostname env" REAL=runc bash hack/cri/canfail.sh
#
# Prints one line per mutation (CAUGHT: all named checks failed; MISSED: some passed) with the
# other checks that failed, and exits 1 if any mutation was missed.
set -uo pipefail
cd "$(dirname "$0")/../.."
. hack/cri/lib.sh
[ "$(id -u)" = 0 ] || { cri_log "must run as root"; exit 2; }
cri_deps || exit 2
cri_build || exit 2
work=$(mktemp -d /tmp/bcri-canfail.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
cri_images "$work" || exit 2
real=$(cri_runtime "${REAL:-berth}")
[ -x "$real" ] || { cri_log "$real is missing"; exit 2; }
t0=$SECONDS
missed=0
report=$work/report
while IFS=$'\t' read -r name filter expect what; do
    [ -n "${MUTATIONS:-}" ] && [[ " $MUTATIONS " != *" $name "* ]] && continue
    w=$work/$name
    printf '#!/bin/sh\nBCRI_MUT_LOG=%q exec %q mutate %q %q "$@"\n' "$work/$name.calls" "$CRI_BIN" "$name" "$real" >"$w"
    chmod 755 "$w"
    dir=/tmp/bcri-$$-mut
    t1=$SECONDS
    timeout -k 10 600 "$CRI_BIN" suite --runtime "$w" --work "$dir" --pause-image "$work/pause.tar" \
        --busybox-image "$work/busybox.tar" --filter "$filter" --results "$work/$name.tsv" \
        >"$work/$name.log" 2>&1
    if [ -e "$dir" ]; then
        cri_log "$name: cleaning up after an aborted run"
        "$CRI_BIN" cleanup "$dir" >>"$work/$name.log" 2>&1
    fi
    verdict=CAUGHT why=""
    for c in ${expect//,/ }; do
        r=$(awk -F'\t' -v s="$c" '$1 == s {print $2}' "$work/$name.tsv" 2>/dev/null | tail -n 1)
        if [ "$r" != FAIL ]; then
            verdict=MISSED
            why+=" $c=${r:-NONE}"
        fi
    done
    [ $verdict = MISSED ] && missed=$((missed + 1))
    others=$(awk -F'\t' '$2 == "FAIL" {print $1}' "$work/$name.tsv" 2>/dev/null |
             grep -v -x -F -f <(tr ',' '\n' <<<"$expect") | tr '\n' ' ')
    line=$(printf '%-7s %-24s %-4ss expected: %s%s; also failed: %s' "$verdict" "$name" \
           "$((SECONDS - t1))" "$expect" "${why:+ (passed:$why)}" "${others:-none}")
    echo "$line" | tee -a "$report"
    if [ -n "${VERBOSE:-}" ] || [ $verdict = MISSED ]; then
        grep -E '^FAIL' "$work/$name.log" | cut -c1-300 | sed 's/^/    /'
    fi
done < <("$CRI_BIN" mutations)
n=$(wc -l <"$report" 2>/dev/null || echo 0)
cri_log "$n mutations, $missed missed; $((SECONDS - t0)) s"
[ -n "${OUT:-}" ] && cp "$report" "$OUT"
[ "$missed" = 0 ]
