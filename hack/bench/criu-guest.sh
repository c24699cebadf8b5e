#!/bin/bash
# The guest side of hack/bench/criu.sh (runs in the VM). Env: WORK (holds memhog), ROOTFS,
# BERTH, RUNC, N, MIB.
set -uo pipefail
t=/tmp/bench-criu
mkdir -p "$t"
cp -a "$ROOTFS" "$t/rootfs"
cp "$WORK/memhog" "$t/rootfs/memhog"
mkdir -p "$t/b"
cd "$t/b"
"$BERTH" spec
jq --arg r "$t/rootfs" --arg m "$MIB" '.process.terminal = false | .process.args = ["/memhog", $m] |
    .root.path = $r | .root.readonly = true | .linux.cgroupsPath = "/bench-criu/c"' config.json > c2 && mv c2 config.json
now() { echo "${EPOCHREALTIME/./}"; }   # microseconds
# criu_ms LOG: CRIU's own time, its last log line's timestamp (seconds since it started).
criu_ms() { awk -F'[()]' '/^\(/ { t = $2 } END { printf "%.0f", t * 1000 }' "$1" 2>/dev/null; }
declare -A ck rs ckc rsc
phases=""
for round in $(seq "$N"); do
    for rt in berth runc; do
        bin=$BERTH; [ $rt = runc ] && bin=$RUNC
        root=$t/root-$rt img=$t/img-$rt-$round id=bench-$rt
        dbg=()
        [ $rt = berth ] && dbg=(--debug --log "$t/berth-$round.log" --log-format json)
        # stdio /dev/null (runc 1.1.5 cannot checkpoint a process whose stdout is a host file);
        # memhog is ready when its resident set holds the MIB it wrote.
        "$bin" --root "$root" run -d --bundle "$t/b" "$id" < /dev/null > /dev/null 2>&1 || { echo "FAIL $rt run (run it by hand for the reason)"; exit 1; }
        pid=$("$bin" --root "$root" state "$id" | jq -r .pid)
        rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0; }
        for _ in $(seq 600); do [ "$(rss)" -ge $((MIB * 1024)) ] && break; sleep 0.1; done
        [ "$(rss)" -ge $((MIB * 1024)) ] || { echo "FAIL $rt: memhog never got ready (VmRSS $(rss) kB)"; exit 1; }
        a=$(now)
        "$bin" --root "$root" "${dbg[@]}" checkpoint --image-path "$img" "$id" || { echo "FAIL $rt checkpoint"; grep -a Error "$img/dump.log" | head -n 5; exit 1; }
        b=$(now)
        "$bin" --root "$root" "${dbg[@]}" restore -d --image-path "$img" --bundle "$t/b" "$id" < /dev/null > /dev/null 2> "$t/err-$rt" || { echo "FAIL $rt restore: $(cat "$t/err-$rt")"; grep -a Error "$img/restore.log" | head -n 5; exit 1; }
        c=$(now)
        ck[$rt]+=" $(( (b - a) / 1000 ))"
        rs[$rt]+=" $(( (c - b) / 1000 ))"
        ckc[$rt]+=" $(criu_ms "$img/dump.log")"
        rsc[$rt]+=" $(criu_ms "$img/restore.log")"
        pages=$(du -sm "$img" | cut -f1)
        "$bin" --root "$root" delete --force "$id"
        rm -rf "$img"
    done
    phases+=$(grep -o '"msg":"[a-z]* phase [a-z]*: [0-9.]* ms"' "$t/berth-$round.log" | sed 's/"msg":"//; s/"$//' | tr '\n' ';')
    phases+=$'\n'
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%7d %7d %7d", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
med() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "== checkpoint/restore of a $MIB MiB process (images ~${pages} MB), N=$N, ms: median min max (guest under TCG)"
printf '%-24s %7s %7s %7s   %s\n' "" median min max "CRIU's own time (median, from its log)"
for rt in berth runc; do
    printf '%-24s %s   %s\n' "$rt checkpoint" "$(stats <<<"${ck[$rt]}")" "$(med <<<"${ckc[$rt]}")"
    printf '%-24s %s   %s\n' "$rt restore -d" "$(stats <<<"${rs[$rt]}")" "$(med <<<"${rsc[$rt]}")"
done
for op in checkpoint restore; do
    [ $op = checkpoint ] && b=$(med <<<"${ck[berth]}") r=$(med <<<"${ck[runc]}")
    [ $op = restore ] && b=$(med <<<"${rs[berth]}") r=$(med <<<"${rs[runc]}")
    awk -v b="$b" -v r="$r" -v op="$op" 'BEGIN { printf "%-24s berth/runc = %.2f\n", op, b / r }'
done
echo
echo "berth's phases (--debug, ms; \"criu\" = the whole criu swrk exchange, from its start):"
for op in checkpoint restore; do
    for ph in prepare criu finish; do
        v=$(grep -o "$op phase $ph: [0-9.]*" <<<"$phases" | awk '{ print $4 }' | sort -n |
            awk '{ v[NR] = $1 } END { printf "median %.1f (min %.1f, max %.1f)", v[int((NR + 1) / 2)], v[1], v[NR] }')
        printf '  %-10s %-8s %s\n' "$op" "$ph" "$v"
    done
done
for op in checkpoint restore; do
    if [ $op = checkpoint ]; then w=$(med <<<"${ck[berth]}"); else w=$(med <<<"${rs[berth]}"); fi
    c=$(grep -o "$op phase criu: [0-9.]*" <<<"$phases" | awk '{ print $4 }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    awk -v w="$w" -v c="$c" -v op="$op" 'BEGIN { printf "berth %-10s outside CRIU: %.0f ms of %.0f ms (%.0f%%; process start-up, config, state, cgroup, hooks)\n", op, w - c, w, (w - c) * 100 / w }'
done
