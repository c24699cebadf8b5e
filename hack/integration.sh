#!/bin/bash
# Runtime-spec conformance suite (integration/), run side by side against several runtimes.
#
#   bash hack/integration.sh            # berth and Debian's runc
#   RUNTIMES="runc" FILTER=hooks,linux.seccomp bash hack/integration.sh
#
# RUNTIMES: space-separated names or paths (berth = target/release/berth, runc, crun).
# FILTER:   comma-separated substrings of scenario names.
# VERBOSE=1 logs every runtime invocation.
# Prints a table scenario x runtime, then "N passed, M failed" for berth (or the first
# runtime when berth is not run). Exit 0 iff berth passes every scenario that runc passes
# (without runc: iff berth fails none).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNTIMES=${RUNTIMES:-"berth runc"}
FILTER=${FILTER:-}
CARGO=${CARGO:-cargo}

log() { echo "integration: $*" >&2; }

bash hack/mkrootfs.sh hack/.cache/rootfs || { log "cannot build the rootfs"; exit 2; }

log "building the suite and the static probe"
$CARGO build -q --release -p berth-integration --bin berth-integration || exit 2
# The probe has no dependencies: plain rustc builds it statically linked, in a place that
# ordinary (dynamically linked) workspace builds of the same [[bin]] never overwrite.
mkdir -p target/integration-probe
probe=target/integration-probe/berth-probe
${RUSTC:-rustc} --edition 2024 -O -C target-feature=+crt-static \
    integration/src/bin/berth-probe.rs -o "$probe" || exit 2
if ! file -L "$probe" | grep -q 'static'; then
    log "$probe is not statically linked: $(file -L "$probe")"
    exit 2
fi
suite=target/release/berth-integration

work=$(mktemp -d /tmp/berth-integration-results.XXXXXX)
trap 'rm -rf "$work"' EXIT

resolve() {
    case "$1" in
        berth) echo "$PWD/target/release/berth" ;;
        */*) echo "$1" ;;
        *) command -v "$1" || echo "/usr/sbin/$1" ;;
    esac
}

names=()
for rt in $RUNTIMES; do
    name=$(basename "$rt")
    path=$(resolve "$rt")
    names+=("$name")
    log "running against $name ($path)"
    if [ ! -x "$path" ]; then
        log "$path is missing: every scenario counts as failed for $name"
        $suite --list ${FILTER:+--filter "$FILTER"} | cut -f1 | sed 's/$/\tFAIL\truntime binary missing/' > "$work/$name.tsv"
        continue
    fi
    args=(--runtime "$path" --probe "$probe" --rootfs hack/.cache/rootfs --results "$work/$name.tsv")
    [ -n "$FILTER" ] && args+=(--filter "$FILTER")
    [ -n "${VERBOSE:-}" ] && args+=(-v)
    timeout -k 10 900 "$suite" "${args[@]}" | sed "s/^/[$name] /"
    [ -f "$work/$name.tsv" ] || log "no results from $name (suite crashed or timed out)"
done

# Table: scenario x runtime.
first=${names[0]}
scen=$($suite --list ${FILTER:+--filter "$FILTER"} | cut -f1)
printf '\n%-45s' "scenario"
for n in "${names[@]}"; do printf ' %-6s' "$n"; done
echo
for s in $scen; do
    printf '%-45s' "$s"
    for n in "${names[@]}"; do
        r=$(awk -F'\t' -v s="$s" '$1 == s {print $2}' "$work/$n.tsv" 2>/dev/null)
        printf ' %-6s' "${r:-NONE}"
    done
    echo
done

# Berth's differences from runc, with the reason berth gave.
main=berth
[[ " ${names[*]} " == *" berth "* ]] || main=$first
rc=0
if [[ " ${names[*]} " == *" runc "* && $main != runc ]]; then
    echo
    for s in $scen; do
        r=$(awk -F'\t' -v s="$s" '$1 == s {print $2}' "$work/runc.tsv" 2>/dev/null)
        b=$(awk -F'\t' -v s="$s" '$1 == s {print $2}' "$work/$main.tsv" 2>/dev/null)
        if [ "$r" = PASS ] && [ "$b" != PASS ]; then
            rc=1
            why=$(awk -F'\t' -v s="$s" '$1 == s {print $3}' "$work/$main.tsv" 2>/dev/null)
            echo "REGRESSION vs runc: $s: ${b:-NONE}: $why"
        fi
    done
else
    grep -q $'\tFAIL\t' "$work/$main.tsv" 2>/dev/null && rc=1
    [ -f "$work/$main.tsv" ] || rc=1
fi
passed=$(grep -c $'\tPASS' "$work/$main.tsv" 2>/dev/null)
failed=$(grep -c $'\tFAIL' "$work/$main.tsv" 2>/dev/null)
echo "$main: ${passed:-0} passed, ${failed:-0} failed (vs runc: exit $rc)" >&2
echo "${passed:-0} passed, ${failed:-0} failed"
exit $rc
