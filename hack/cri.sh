#!/bin/bash
# Kubernetes pods through containerd's CRI (integration/cri), side by side against several
# runtimes: for each, a private containerd (own root, state, socket, config, network namespace)
# runs it as the runc-shim runtime (BinaryName) and berth-cri drives it as the kubelet does.
#
#   bash hack/cri.sh                          # berth and Debian's runc
#   RUNTIMES=runc FILTER=security bash hack/cri.sh
#   CGROUP_DRIVER=systemd bash hack/cri.sh    # SystemdCgroup = true, kubelet's slice names
#                                             # (needs systemd as PID 1: the systemd guest)
#   bash hack/cri/sysvm.sh                    # that, in the systemd guest (make cri-sysvm)
#
# RUNTIMES: names or paths (berth = target/release/berth). FILTER: comma-separated substrings
# of group or check names. VERBOSE=1: the suite says what it does (with times since its start).
# CRI_PARALLEL=1: the runtimes' suites at the same time (each has its own containerd, network
# namespace, work dir, pods and ids; their lines are told apart by the [name] prefix).
# Prints a table check x runtime, then "N passed, M failed" for berth (or the first runtime).
# Exit 0 iff berth passes every check that runc passes (without runc: iff berth fails none).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNTIMES=${RUNTIMES:-"berth runc"}
. hack/cri/lib.sh

[ "$(id -u)" = 0 ] || { cri_log "must run as root"; exit 2; }
t0=$SECONDS
work=$(mktemp -d /tmp/bcri-results.XXXXXX)
trap 'rm -rf "$work"' EXIT
local_bin=
if [ -n "${CRI_PREBUILT:-}" ]; then
    # client and images made beforehand (hack/cri/sysvm.sh, for the systemd guest, which has
    # neither a compiler nor a network)
    CRI_BIN=$PWD/target/cri/berth-cri
    cp "$CRI_PREBUILT/pause.tar" "$CRI_PREBUILT/busybox.tar" "$work/" && [ -x "$CRI_BIN" ] ||
        { cri_log "no client or images prepared (CRI_PREBUILT=$CRI_PREBUILT)"; exit 2; }
    # The runtimes run from the guest's own disk, as installed ones do: the repo is a 9p share
    # there (cache=mmap) and a binary exec'd from it is read over 9p at every call (~0.3 s
    # more per runtime call under TCG than runc from /usr/sbin; 5-6 calls per container).
    local_bin=$work/bin
else
    cri_deps || { cri_log "cannot install the packages"; exit 2; }
    cri_build || { cri_log "cannot build the CRI client"; exit 2; }
    cri_images "$work" || { cri_log "cannot build the images"; exit 2; }
fi
# cri_path NAME|PATH: the runtime's path (in the guest: a copy in $local_bin/NAME/)
cri_path() {
    local p d
    p=$(cri_runtime "$1")
    if [ -n "$local_bin" ] && [ -x "$p" ]; then
        d=$local_bin/$(basename "$1")
        mkdir -p "$d" && cp "$p" "$d/" && p=$d/$(basename "$p")
    fi
    echo "$p"
}
cri_log "setup took $((SECONDS - t0)) s"

# run_one NAME PATH: the suite against one runtime -> $work/NAME.tsv
run_one() {
    local name=$1 path=$2 dir=/tmp/bcri-$$-$1 t1=$SECONDS args
    if [ ! -x "$path" ]; then
        cri_log "$path is missing: every check counts as failed for $name"
        "$CRI_BIN" list | sed 's/$/\tFAIL\truntime binary missing/' >"$work/$name.tsv"
        return
    fi
    cri_log "running against $name ($path)"
    args=(suite --runtime "$path" --work "$dir" --pause-image "$work/pause.tar" --busybox-image "$work/busybox.tar"
          --cgroup-driver "${CGROUP_DRIVER:-cgroupfs}" --results "$work/$name.tsv")
    [ -n "${FILTER:-}" ] && args+=(--filter "$FILTER")
    [ -n "${VERBOSE:-}" ] && args+=(-v)
    timeout -k 10 900 "$CRI_BIN" "${args[@]}" 2>&1 | sed -u "s/^/[$name] /"
    cri_log "$name: $((SECONDS - t1)) s"
    if [ -e "$dir" ]; then
        # the suite crashed or timed out: remove what it left (by its work dir)
        cri_log "cleaning up after an aborted run of $name"
        "$CRI_BIN" cleanup "$dir"
        echo -e "cleanup.nothing-left\tFAIL\tthe suite was aborted" >>"$work/$name.tsv"
    fi
    [ -f "$work/$name.tsv" ] || cri_log "no results from $name"
}

# Runs at the same time share parents (kubepods cgroups or slices, /run/netns and the other
# system dirs containerd and CNI make): with BCRI_SHARED_PARENTS no run removes them (one could
# while the other is about to use them); removed here after all runs, if they were not there
# before.
shared_before=$(ls -d /run/netns /run/containerd /run/containerd/s /var/lib/cni /var/lib/cni/results \
    /sys/fs/cgroup/kubepods.slice /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null)
shared_cleanup() {
    local p top
    if [ "${CGROUP_DRIVER:-}" = systemd ] && [ -d /sys/fs/cgroup/kubepods.slice ] &&
        ! grep -qx /sys/fs/cgroup/kubepods.slice <<<"$shared_before"; then
        systemctl stop kubepods-burstable.slice kubepods.slice 2>/dev/null
    fi
    for p in /sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice /sys/fs/cgroup/kubepods.slice \
        /sys/fs/cgroup/*/kubepods/burstable /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods/burstable \
        /sys/fs/cgroup/kubepods /run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni; do
        top=${p%/kubepods-burstable.slice}; top=${top%/burstable}
        [ -d "$p" ] && ! grep -qx "$top" <<<"$shared_before" && rmdir "$p" 2>/dev/null
    done
    if [ -d /run/netns ] && ! grep -qx /run/netns <<<"$shared_before" && [ -z "$(ls -A /run/netns)" ]; then
        umount /run/netns 2>/dev/null
        rmdir /run/netns 2>/dev/null
    fi
    return 0
}

names=()
pids=()
for rt in $RUNTIMES; do
    name=$(basename "$rt")
    names+=("$name")
    if [ "${CRI_PARALLEL:-0}" = 1 ]; then
        BCRI_SHARED_PARENTS=1 run_one "$name" "$(cri_path "$rt")" &
        pids+=($!)
    else
        run_one "$name" "$(cri_path "$rt")"
    fi
done
for p in "${pids[@]}"; do wait "$p"; done
[ ${#pids[@]} -gt 1 ] && shared_cleanup

# Table: check x runtime (every check any runtime reported, in the suite's order).
checks=$( { "$CRI_BIN" list; cut -f1 "$work"/*.tsv 2>/dev/null; echo cleanup.nothing-left; } | awk '!seen[$0]++')
printf '\n%-40s' "check"
for n in "${names[@]}"; do printf ' %-6s' "$n"; done
echo
result() { awk -F'\t' -v s="$1" '$1 == s {print $2}' "$work/$2.tsv" 2>/dev/null | tail -n 1; }
for c in $checks; do
    printf '%-40s' "$c"
    for n in "${names[@]}"; do r=$(result "$c" "$n"); printf ' %-6s' "${r:-NONE}"; done
    echo
done

main=berth
[[ " ${names[*]} " == *" berth "* ]] || main=${names[0]}
rc=0
echo
if [[ " ${names[*]} " == *" runc "* && $main != runc ]]; then
    for c in $checks; do
        if [ "$(result "$c" runc)" = PASS ] && [ "$(result "$c" "$main")" != PASS ]; then
            rc=1
            why=$(awk -F'\t' -v s="$c" '$1 == s {print $3}' "$work/$main.tsv" 2>/dev/null | tail -n 1)
            echo "REGRESSION vs runc: $c: ${why:-no result}"
        fi
    done
else
    grep -q $'\tFAIL' "$work/$main.tsv" 2>/dev/null && rc=1
    [ -f "$work/$main.tsv" ] || rc=1
fi
passed=$(grep -c $'\tPASS' "$work/$main.tsv" 2>/dev/null)
failed=$(grep -c $'\tFAIL' "$work/$main.tsv" 2>/dev/null)
cri_log "$main: ${passed:-0} passed, ${failed:-0} failed (vs runc: exit $rc); total $((SECONDS - t0)) s"
echo "${passed:-0} passed, ${failed:-0} failed"
exit $rc
