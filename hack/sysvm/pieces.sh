#!/bin/bash
# hack/sysvm/pieces.sh rootless|criu|cri — proofs, INSIDE the systemd guest (as root), that the
# pieces later work builds on work here, with RUNTIME (default /usr/sbin/runc):
#   rootless  rootless podman as the test user (berthtest) with the systemd cgroup manager through
#             the user's systemd instance: the container's scope in the user's manager has
#             MemoryMax/TasksMax, the cgroup files agree, nothing is left after rm
#   criu      RUNTIME checkpoint / restore (criu 3.17) of a busybox counter started with
#             --systemd-cgroup: it goes on counting from where it was, in a scope again
#             (runc and berth; in hack/test.sh's sysvm section with berth)
#   cri       containerd with its CRI plugin (SystemdCgroup = true for runc) starts privately and
#             `ctr plugins ls` reports cri ok
# One PASS/FAIL line per check (with what it cost), then "N passed, M failed"; exit 1 on failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
RUNTIME=${RUNTIME:-/usr/sbin/runc}
ROOTFS=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
TUSER=${SYSVM_TEST_USER:-berthtest}
passed=0 failed=0
W=$(mktemp -d /tmp/pieces.XXXXXX)
chmod 755 "$W"
trap 'rm -rf --one-file-system "$W"' EXIT
. "$here/e2e-units.sh"
wait_until() { local t=$1; shift; local end=$((SECONDS + t)); until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }
ms() { echo $(( (${EPOCHREALTIME/./} - $1) / 1000 )); }
result() { # PASS|FAIL name start_us [why...]
    local r=$1 n=$2 t=$3; shift 3
    if [ "$r" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    echo "$r $n ($(ms "$t") ms)"
    local l; for l in "$@"; do [ -n "$l" ] && printf '    %s\n' "$l"; done
}
[ -f "$ROOTFS/.complete" ] || bash "$repo/hack/mkrootfs.sh" "$ROOTFS" >/dev/null

# rootless podman through the user's systemd instance.
rootless() {
    local t0=${EPOCHREALTIME/./} uid out rc id pid cg unit why="" mm tm
    uid=$(id -u "$TUSER") || { result FAIL rootless-podman "$t0" "no user $TUSER"; return; }
    tar -C "$ROOTFS" --exclude=./.complete -cf "$W/rootfs.tar" .
    chmod 644 "$W/rootfs.tar"
    cat > "$W/rl.sh" <<EOF
set -e
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf
P="podman --cgroup-manager systemd --runtime $RUNTIME --events-backend file"
\$P import --change CMD=/bin/sh $W/rootfs.tar localhost/rl-busybox:latest >/dev/null
\$P run -d --name rl --network none --memory 64m --pids-limit 40 localhost/rl-busybox:latest sleep 600 >/dev/null
\$P inspect -f 'id={{.Id}} pid={{.State.Pid}}' rl
EOF
    echo 'unqualified-search-registries = []' > "$W/registries.conf"
    chmod 644 "$W/rl.sh" "$W/registries.conf"
    out=$(cd / && timeout 300 sysvm-as-user "$TUSER" /bin/bash "$W/rl.sh" 2>&1); rc=$?
    id=$(sed -n 's/.*id=\([0-9a-f]*\) .*/\1/p' <<<"$out")
    pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$out")
    if [ $rc != 0 ] || [ -z "$pid" ]; then
        result FAIL rootless-podman "$t0" "podman as $TUSER failed (status $rc)" "$out"
    else
        cg=$(cgroup_of_pid "$pid")
        unit=$(unit_of_cgroup "$cg")
        # podman+crun put the process in a sub-cgroup; the scope's cgroup is what systemd manages
        cg=${cg%/container}
        case $cg in
            /user.slice/user-$uid.slice/user@$uid.service/*/libpod-$id.scope) ;;
            *) why+="cgroup $cg is not a libpod-$id.scope of user@$uid.service; " ;;
        esac
        mm=$(systemctl --user -M "$TUSER@" show -p MemoryMax --value "$unit" 2>&1)
        tm=$(systemctl --user -M "$TUSER@" show -p TasksMax --value "$unit" 2>&1)
        [ "$mm" = 67108864 ] || why+="$unit MemoryMax=$mm in $TUSER's manager; "
        [ "$tm" = 40 ] || why+="$unit TasksMax=$tm; "
        [ "$(cgfile "$cg" memory.max)" = 67108864 ] || why+="$cg/memory.max=$(cgfile "$cg" memory.max); "
        [ "$(cgfile "$cg" pids.max)" = 40 ] || why+="$cg/pids.max=$(cgfile "$cg" pids.max); "
        out+=$'\n'$(cd / && timeout 120 sysvm-as-user "$TUSER" podman --runtime "$RUNTIME" rm -f -t 0 rl 2>&1)
        wait_until 10 test ! -d "/sys/fs/cgroup$cg"
        [ -d "/sys/fs/cgroup$cg" ] && why+="$cg left after rm; "
        if [ -z "$why" ]; then
            result PASS "rootless-podman: $TUSER's libpod-$id.scope in user@$uid.service with MemoryMax=67108864 TasksMax=40" "$t0"
        else
            result FAIL rootless-podman "$t0" "$why" "$out"
        fi
    fi
    cd / && timeout 120 sysvm-as-user "$TUSER" podman system reset -f >/dev/null 2>&1
}

# The runtime itself as the test user (no engine): `spec --rootless`, memory and pids limits.
#  - with --systemd-cgroup: a scope in the user's systemd instance (session bus), in its
#    user.slice; MemoryMax/TasksMax in that manager and in the cgroup files; exec from a scope of
#    the same instance lands in the container's cgroup; nothing left after delete;
#  - with the cgroupfs driver inside a delegated user scope (`systemd-run --user --scope -p
#    Delegate=yes`, the runtime moved into a sub-cgroup of it first, as a supervisor does): the
#    container's cgroup is made beside it in the scope, with the limits; gone after delete.
rl_user() { (cd / && timeout 120 sysvm-as-user "$TUSER" /bin/bash "$@" 2>&1); }
rootless_direct() {
    local t0=${EPOCHREALTIME/./} uid out rc pid cg unit="" why="" mm tm b=$W/rd x sess=""
    uid=$(id -u "$TUSER") || { result FAIL rootless-direct "$t0" "no user $TUSER"; return; }
    local base=/user.slice/user-$uid.slice/user@$uid.service
    mkdir -p "$b/bundle"
    cp -a "$ROOTFS" "$b/bundle/rootfs"
    cp "$RUNTIME" "$b/rt" && chmod 755 "$b/rt"   # the repo may be out of the user's reach
    chown -R "$TUSER:" "$b/bundle"
    chmod 755 "$b"
    # config: sleep, no terminal, 64 MiB, 40 pids
    cat > "$b/spec.sh" <<EOF
set -e
cd $b/bundle
$b/rt spec --rootless
jq '.process.terminal = false | .process.args = ["sleep", "600"] |
    .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 40}}' config.json > c.json
mv c.json config.json
EOF
    cat > "$b/sd.sh" <<EOF
set -e
cd $b/bundle
# the container keeps the stdio it is given: none of the pipes the output is read from
$b/rt --systemd-cgroup run -d rl-sd </dev/null >/dev/null 2>$b/bundle/sd.err || { cat $b/bundle/sd.err; exit 1; }
$b/rt state rl-sd | jq -r '"pid=\(.pid)"'
echo "exec-cgroup=\$(systemd-run --user --scope --quiet $b/rt exec rl-sd cat /proc/self/cgroup)"
# from the login session (session-N.scope, root's user-UID.slice above it)
echo "exec-session=\$($b/rt exec rl-sd cat /proc/self/cgroup 2>$b/bundle/exec.err) \$(tr '\n' ' ' <$b/bundle/exec.err)"
EOF
    cat > "$b/fs.sh" <<EOF
set -e
cd $b/bundle
# in a delegated scope of the user's instance: move to a sub-cgroup, the container goes beside it
systemd-run --user --scope --quiet --unit=rl-deleg -p Delegate=yes /bin/sh -c '
    S=/sys/fs/cgroup\$(sed -n "s/^0:://p" /proc/self/cgroup)
    mkdir "\$S/supervisor" && echo \$\$ > "\$S/supervisor/cgroup.procs"
    $b/rt run -d rl-fs </dev/null >/dev/null 2>$b/bundle/fs.err || { cat $b/bundle/fs.err; exit 1; }
    $b/rt state rl-fs | jq -r "\"pid=\(.pid)\""'
EOF
    echo "exec $b/rt delete -f \"\$1\"" > "$b/del.sh"
    chmod 644 "$b"/*.sh
    out=$(rl_user "$b/spec.sh") || { result FAIL rootless-direct "$t0" "spec --rootless as $TUSER failed" "$out"; return; }
    # --systemd-cgroup
    out=$(rl_user "$b/sd.sh"); rc=$?
    pid=$(sed -n 's/^pid=\([0-9]*\)$/\1/p' <<<"$out")
    if [ $rc != 0 ] || [ -z "$pid" ]; then
        why+="--systemd-cgroup run as $TUSER failed (status $rc); "
    else
        cg=$(cgroup_of_pid "$pid")
        unit=$(unit_of_cgroup "$cg")
        case $cg in
            "$base/user.slice/$unit") ;;
            *) why+="cgroup $cg is not a scope in $base/user.slice; " ;;
        esac
        mm=$(systemctl --user -M "$TUSER@" show -p MemoryMax --value "$unit" 2>&1)
        tm=$(systemctl --user -M "$TUSER@" show -p TasksMax --value "$unit" 2>&1)
        [ "$mm" = 67108864 ] || why+="$unit MemoryMax=$mm in $TUSER's manager; "
        [ "$tm" = 40 ] || why+="$unit TasksMax=$tm; "
        [ "$(systemctl --user -M "$TUSER@" show -p Delegate --value "$unit" 2>&1)" = yes ] || why+="$unit not Delegate=yes; "
        [ "$(cgfile "$cg" memory.max)" = 67108864 ] || why+="$cg/memory.max=$(cgfile "$cg" memory.max); "
        [ "$(cgfile "$cg" pids.max)" = 40 ] || why+="$cg/pids.max=$(cgfile "$cg" pids.max); "
        [ "$(stat -c %U "/sys/fs/cgroup$cg")" = "$TUSER" ] || why+="$cg is not $TUSER's; "
        x=$(sed -n 's/^exec-cgroup=//p' <<<"$out")
        [ "$x" = "0::/" ] || [ "$x" = "0::$cg" ] || why+="exec'd process in '$x', not the container's cgroup; "
        x=$(sed -n 's/^exec-session=//p' <<<"$out")
        # in the container's cgroup, or (runc 1.1's rule) outside it, said in a warning
        case $x in
            "0::/ " | "0::$cg ") sess="inside" ;;
            *"stays in the caller's cgroup"*) sess="outside, with a warning" ;;
            *) why+="exec from the session: '$x'; " ;;
        esac
        # berth asks systemd (AttachProcessesToUnit) as runc 1.2 does; runc 1.1 leaves it outside
        [ "$(basename "$RUNTIME")" != berth ] || [ "$sess" = inside ] || why+="berth exec from the session: '$x'; "
        out+=$'\n'$(rl_user "$b/del.sh" rl-sd)
        wait_until 10 test ! -d "/sys/fs/cgroup$cg"
        [ -d "/sys/fs/cgroup$cg" ] && why+="$cg left after delete; "
        [ "$(systemctl --user -M "$TUSER@" show -p LoadState --value "$unit" 2>&1)" = not-found ] || why+="$unit still known to $TUSER's manager after delete; "
        [ -e "/proc/$pid" ] && why+="pid $pid alive after delete; "
    fi
    if [ -z "$why" ]; then
        result PASS "rootless-direct --systemd-cgroup: $TUSER's $unit in $base/user.slice, MemoryMax=67108864 TasksMax=40, exec from a user scope inside, from the login session $sess, nothing left" "$t0"
    else
        result FAIL "rootless-direct --systemd-cgroup" "$t0" "$why" "$out"
    fi
    # cgroupfs driver in a delegated scope
    t0=${EPOCHREALTIME/./} why=""
    out=$(rl_user "$b/fs.sh")
    pid=$(sed -n 's/^pid=\([0-9]*\)$/\1/p' <<<"$out")
    local scope=$base/app.slice/rl-deleg.scope
    if [ -z "$pid" ]; then
        why+="run in a delegated scope as $TUSER failed; "
    else
        cg=$(cgroup_of_pid "$pid")
        [ "$cg" = "$scope/rl-fs" ] || why+="cgroup $cg, want $scope/rl-fs; "
        [ "$(cgfile "$cg" memory.max)" = 67108864 ] || why+="$cg/memory.max=$(cgfile "$cg" memory.max); "
        [ "$(cgfile "$cg" pids.max)" = 40 ] || why+="$cg/pids.max=$(cgfile "$cg" pids.max); "
        out+=$'\n'$(rl_user "$b/del.sh" rl-fs)
        wait_until 10 test ! -d "/sys/fs/cgroup$cg"
        [ -d "/sys/fs/cgroup$cg" ] && why+="$cg left after delete; "
        [ -e "/proc/$pid" ] && why+="pid $pid alive after delete; "
        # the scope ends with its last process (the supervisor shell is gone)
        wait_until 10 test ! -d "/sys/fs/cgroup$scope"
        [ -d "/sys/fs/cgroup$scope" ] && why+="$scope left; "
    fi
    x=/run/user/$uid/$(basename "$RUNTIME")
    [ "$(basename "$RUNTIME")" = berth ] || x=/run/user/$uid/runc
    [ -z "$(ls -A "$x" 2>/dev/null)" ] || why+="state left in $x: $(ls -A "$x"); "
    if [ -z "$why" ]; then
        result PASS "rootless-direct cgroupfs in a delegated user scope: $scope/rl-fs with memory.max and pids.max, nothing left" "$t0"
    else
        result FAIL "rootless-direct cgroupfs in a delegated user scope" "$t0" "$why" "$out"
    fi
}

# CRIU: checkpoint and restore of a counter.
criu_cr() {
    local t0=${EPOCHREALTIME/./} b=$W/cr id=sysvm-cr rt why="" c1 c2 c3 out
    rt=("$RUNTIME" --root "$W/rt" --systemd-cgroup)
    mkdir -p "$b"
    cp -a "$ROOTFS" "$b/rootfs"
    (cd "$b" && "$RUNTIME" spec)
    # a writable rootfs, no terminal, a counter that writes to /count every 0.1 s
    jq '.root.readonly = false | .process.terminal = false |
        .process.args = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done"] |
        .linux.cgroupsPath = "system.slice:sysvmcr:'$id'"' "$b/config.json" > "$b/c.json" && mv "$b/c.json" "$b/config.json"
    count() { cat "$b/rootfs/count" 2>/dev/null; }
    # stdio /dev/null: CRIU cannot dump a container whose stdio are files of the host's mounts
    out=$(cd "$b" && timeout 60 "${rt[@]}" run -d "$id" </dev/null >/dev/null 2>&1; echo "run: $?")
    wait_until 10 test -s "$b/rootfs/count"
    c1=$(count)
    local t1=${EPOCHREALTIME/./}
    out+=$'\n'$(timeout 120 "${rt[@]}" checkpoint --image-path "$b/img" --work-path "$b/work" "$id" 2>&1; echo "checkpoint: $?")
    local tcp; tcp=$(ms "$t1")
    [ -d "/sys/fs/cgroup/system.slice/sysvmcr-$id.scope" ] && why+="scope still there after checkpoint; "
    c2=$(count)
    sleep 0.5
    [ "$(count)" = "$c2" ] || why+="still counting after checkpoint; "
    t1=${EPOCHREALTIME/./}
    out+=$'\n'$(cd "$b" && timeout 120 "${rt[@]}" restore -d --image-path "$b/img" --work-path "$b/work" "$id" </dev/null >/dev/null 2>"$W/restore.err"; echo "restore: $? $(cat "$W/restore.err")")
    local trs; trs=$(ms "$t1")
    wait_until 10 test "$(count)" -gt "${c2:-0}"
    c3=$(count)
    [ -n "$c1" ] && [ -n "$c2" ] && [ "${c3:-0}" -gt "$c2" ] || why+="counter: before checkpoint $c1, at checkpoint $c2, after restore ${c3:-none}; "
    [ "$(uprop "sysvmcr-$id.scope" ActiveState)" = active ] || why+="sysvmcr-$id.scope not active after restore; "
    grep -q 'run: 0' <<<"$out" && grep -q 'checkpoint: 0' <<<"$out" && grep -q 'restore: 0' <<<"$out" || why+="a runtime command failed; "
    timeout 30 "${rt[@]}" delete -f "$id" >/dev/null 2>&1
    wait_until 10 unit_gone "sysvmcr-$id.scope"
    unit_gone "sysvmcr-$id.scope" || why+="sysvmcr-$id.scope left after delete; "
    if [ -z "$why" ]; then
        result PASS "criu: $(basename "$RUNTIME") checkpoint (${tcp} ms) / restore (${trs} ms) of a counter at $c2, counting on ($c3) in its scope" "$t0"
    else
        result FAIL criu "$t0" "$why" "$out"
    fi
}

# containerd with the CRI plugin.
cri() {
    local t0=${EPOCHREALTIME/./} d=$W/cri pid out why=""
    mkdir -p "$d/root" "$d/state" "$d/cni/conf" "$d/opt"
    cat > "$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      BinaryName = "$RUNTIME"
      SystemdCgroup = true
EOF
    containerd --config "$d/config.toml" > "$d/log" 2>&1 &
    pid=$!
    wait_until 60 ctr --address "$d/containerd.sock" version
    local tup; tup=$(ms "$t0")
    out=$(timeout 30 ctr --address "$d/containerd.sock" plugins ls 2>&1)
    grep -qE '^io\.containerd\.grpc\.v1 +cri +linux/amd64 +ok' <<<"$out" || why="cri plugin not ok"
    kill -TERM "$pid" 2>/dev/null
    wait_until 15 eval "! kill -0 $pid"
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    if [ -z "$why" ]; then
        result PASS "cri: containerd with the CRI plugin (runc SystemdCgroup = true) up in ${tup} ms, ctr plugins ls: cri ok" "$t0"
    else
        result FAIL cri "$t0" "$why" "$(grep -E 'cri|grpc.v1' <<<"$out")" "$(grep -iE 'error|fail' "$d/log" | tail -n 5)"
    fi
}

[ $# -gt 0 ] || set -- rootless criu cri
for p in "$@"; do
    case $p in
        rootless) rootless; rootless_direct ;;
        criu) criu_cr ;;
        cri) cri ;;
        *) echo "pieces: unknown piece '$p' (rootless criu cri)" >&2; exit 2 ;;
    esac
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
