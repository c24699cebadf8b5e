#!/bin/bash
# The checks of hack/vm/run-tests.sh; runs INSIDE the guest (started by run-tests.sh via run.sh).
# Env: REPO, ROOTFS, RUNC, BERTH, VM_CARGO_TESTS, VM_CHECK_TIMEOUT, VM_DISK_DEV (from run.sh).
set -uo pipefail
cd "$REPO"
passed=0 failed=0
declare -a summary=()
tmo=${VM_CHECK_TIMEOUT:-120}
MEM=67108864 PIDS=32 RBPS=1048576

result() { # PASS|FAIL name [detail]
    if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    summary+=("$1 $2${3:+ — $3}")
    echo "$1 $2${3:+ — $3}"
}
indent() { sed 's/^/    | /'; }

# Preconditions of everything else: this really is a pure cgroup v2 system.
check_host() {
    local ctl fs
    fs=$(stat -fc %T /sys/fs/cgroup)
    ctl=$(cat /sys/fs/cgroup/cgroup.subtree_control)
    if [ "$fs" = cgroup2fs ] && ! awk '$3 == "cgroup" {f=1} END {exit !f}' /proc/mounts &&
       [ "$ctl" = "cpuset cpu io memory hugetlb pids rdma misc" ]; then
        result PASS "guest: pure cgroup v2, root subtree_control: $ctl"
    else
        result FAIL "guest: pure cgroup v2" "fs=$fs subtree_control='$ctl'"
        grep cgroup /proc/mounts | indent
    fi
}

# config.json for a busybox container: write_config BUNDLE CGROUPS_PATH RESOURCES_JSON ARGS_JSON
write_config() {
    local bundle=$1 cgpath=$2 res=$3 args=$4
    mkdir -p "$bundle"
    cat > "$bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $args,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": true},
  "hostname": "smoke",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
  ],
  "linux": {
    "cgroupsPath": "$cgpath",
    "resources": $res,
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
    "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
}
RES_MEM_PIDS="{\"memory\": {\"limit\": $MEM}, \"pids\": {\"limit\": $PIDS}}"

# (a1) `RT run`: the container reads its own cgroup (cgroup namespace + cgroup mount).
check_run() { # name binary
    local name=$1 bin=$2 out rc
    local rt=("$bin" --root "/run/smoke-$name")
    write_config "/tmp/$name-run" "/smoke/$name-run" "$RES_MEM_PIDS" \
        '["/bin/sh", "-c", "echo mem=$(cat /sys/fs/cgroup/memory.max) pids=$(cat /sys/fs/cgroup/pids.max) cg=$(cat /proc/self/cgroup)"]'
    out=$(cd "/tmp/$name-run" && timeout "$tmo" "${rt[@]}" run "$name-run" 2>&1 </dev/null); rc=$?
    if [ $rc = 0 ] && grep -q "mem=$MEM pids=$PIDS cg=0::/" <<<"$out"; then
        result PASS "$name run: memory.max=$MEM and pids.max=$PIDS seen inside the container"
    else
        result FAIL "$name run: limits seen inside the container" "exit $rc"
        indent <<<"$out"
    fi
    timeout 10 "${rt[@]}" delete -f "$name-run" >/dev/null 2>&1
}

# (a2) create/start/state/kill/delete; limits checked from outside in the container's cgroup.
check_lifecycle() { # name binary
    local name=$1 bin=$2 id=$1-lc cg=/sys/fs/cgroup/smoke/$1-lc out rc st i why=""
    local rt=("$bin" --root "/run/smoke-$name")
    write_config "/tmp/$id" "/smoke/$id" "$RES_MEM_PIDS" '["/bin/sleep", "600"]'
    # The container inherits create's stdio: a file, not a pipe $(...) would wait on forever.
    timeout "$tmo" "${rt[@]}" create --bundle "/tmp/$id" "$id" </dev/null >"/tmp/$id.log" 2>&1; rc=$?
    out=$(cat "/tmp/$id.log")
    [ $rc = 0 ] || why="create exited $rc"
    if [ -z "$why" ]; then
        out+=$(timeout "$tmo" "${rt[@]}" start "$id" 2>&1); rc=$?
        [ $rc = 0 ] || why="start exited $rc"
    fi
    if [ -z "$why" ]; then
        st=$(timeout 30 "${rt[@]}" state "$id" 2>&1)
        grep -q '"status": *"running"' <<<"$st" || why="state is not running: $(tr -d '\n' <<<"$st" | cut -c1-200)"
    fi
    if [ -z "$why" ]; then
        [ "$(cat $cg/memory.max 2>&1)" = $MEM ] || why="$cg/memory.max: $(cat $cg/memory.max 2>&1)"
        [ "$(cat $cg/pids.max 2>&1)" = $PIDS ] || why="$why $cg/pids.max: $(cat $cg/pids.max 2>&1)"
        [ -n "$(cat $cg/cgroup.procs 2>/dev/null)" ] || why="$why no process in $cg"
    fi
    if [ -z "$why" ]; then
        out+=$(timeout 30 "${rt[@]}" kill "$id" KILL 2>&1) || why="kill failed"
    fi
    if [ -z "$why" ]; then
        for i in $(seq 50); do
            timeout 10 "${rt[@]}" state "$id" 2>/dev/null | grep -q '"status": *"stopped"' && break
            sleep 0.1
        done
        out+=$(timeout 30 "${rt[@]}" delete "$id" 2>&1) || why="delete failed"
        [ -z "$why" ] && [ -d "$cg" ] && why="cgroup $cg left after delete"
    fi
    if [ -z "$why" ]; then
        result PASS "$name create/start/kill/delete: memory.max and pids.max set in $cg, removed after"
    else
        result FAIL "$name create/start/kill/delete" "$why"
        [ -n "$out" ] && indent <<<"$out"
    fi
    timeout 10 "${rt[@]}" delete -f "$id" >/dev/null 2>&1
}

# (a3) blockIO throttle on the extra disk → io.max.
check_io() { # name binary
    local name=$1 bin=$2 out rc maj min
    local rt=("$bin" --root "/run/smoke-$name")
    [ -n "${VM_DISK_DEV:-}" ] || { result FAIL "$name io.max" "no VM disk"; return; }
    maj=${VM_DISK_DEV%:*} min=${VM_DISK_DEV#*:}
    write_config "/tmp/$name-io" "/smoke/$name-io" \
        "{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": $maj, \"minor\": $min, \"rate\": $RBPS}]}}" \
        '["/bin/sh", "-c", "cat /sys/fs/cgroup/io.max"]'
    out=$(cd "/tmp/$name-io" && timeout "$tmo" "${rt[@]}" run "$name-io" 2>&1 </dev/null); rc=$?
    if [ $rc = 0 ] && grep -q "^$VM_DISK_DEV rbps=$RBPS " <<<"$out"; then
        result PASS "$name run: io.max '$VM_DISK_DEV rbps=$RBPS' from blockIO.throttleReadBpsDevice"
    else
        result FAIL "$name run: io.max from blockIO.throttleReadBpsDevice" "exit $rc, io.max in the container: '$(tr "\n" " " <<<"$out" | cut -c1-120)'"
        indent <<<"$out"
    fi
    timeout 10 "${rt[@]}" delete -f "$name-io" >/dev/null 2>&1
}

# (a4) Called from a service's cgroup that holds processes (a systemd unit's ExecStart), with
# no cgroupsPath: the container goes beside the caller (/smoke-svc/<id>), and the caller's own
# cgroup keeps its empty subtree_control (issue 19 item 0; runc's fs2 rule).
check_service_caller() { # name binary
    local name=$1 bin=$2 id=$1-svc svc=/sys/fs/cgroup/smoke-svc/$1.service spid pid cg why=""
    local rt=("$bin" --root "/run/smoke-$name")
    write_config "/tmp/$id" "" "$RES_MEM_PIDS" '["/bin/sleep", "600"]'
    mkdir -p "$svc"
    sh -c 'echo $$ > "$0/cgroup.procs" && exec sleep 600' "$svc" & spid=$!
    for _ in $(seq 50); do grep -qx "$spid" "$svc/cgroup.procs" && break; sleep 0.1; done
    timeout "$tmo" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$svc" "${rt[@]}" \
        create --bundle "/tmp/$id" "$id" </dev/null >"/tmp/$id.log" 2>&1 || why="create failed: $(cat "/tmp/$id.log")"
    if [ -z "$why" ]; then
        pid=$(timeout 30 "${rt[@]}" state "$id" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
        cg=$(cat "/proc/$pid/cgroup" 2>&1)
        [ "$cg" = "0::/smoke-svc/$id" ] || why="container in '$cg', expected 0::/smoke-svc/$id"
        [ "$(cat /sys/fs/cgroup/smoke-svc/$id/memory.max 2>&1)" = $MEM ] || why="$why memory.max not set"
    fi
    [ -z "$(cat "$svc/cgroup.subtree_control")" ] || why="$why the caller's subtree_control was written: $(cat "$svc/cgroup.subtree_control")"
    timeout 30 "${rt[@]}" delete -f "$id" >/dev/null 2>&1
    kill "$spid"; wait "$spid" 2>/dev/null
    if [ -z "$why" ]; then
        result PASS "$name create from a service cgroup with processes: container beside it in /smoke-svc/$id"
    else
        result FAIL "$name create from a service cgroup with processes" "$why"
    fi
    rmdir "/sys/fs/cgroup/smoke-svc/$id" "$svc" /sys/fs/cgroup/smoke-svc 2>/dev/null
}

# (b) cargo test binaries: VM_CARGO_TESTS="BIN [ARGS...]; BIN [ARGS...]". BIN: a path, or a name
# under target/release/deps (exact, else the newest executable BIN-<hash>).
find_testbin() {
    local b=$1 f best=""
    case $b in */*) [ -x "$b" ] && echo "$b"; return ;; esac
    [ -x "target/release/deps/$b" ] && { echo "target/release/deps/$b"; return; }
    for f in target/release/deps/"$b"-*; do
        [ -f "$f" ] && [ -x "$f" ] || continue
        case $f in *.d|*.rlib|*.rmeta|*.so) continue ;; esac
        [ -z "$best" ] || [ "$f" -nt "$best" ] && best=$f
    done
    echo "$best"
}
check_cargo() { # spec
    local spec=$1 bin out rc
    read -r -a words <<<"$spec"
    [ ${#words[@]} -gt 0 ] || return 0
    spec=${words[*]}
    bin=$(find_testbin "${words[0]}")
    if [ -z "$bin" ]; then
        result FAIL "cargo test $spec" "no test binary '${words[0]}' in target/release/deps"; return
    fi
    # A whole suite under software emulation: several times one command's limit.
    out=$(BERTH_CGROUP_MODE=v2 BERTH_ROOTFS=$ROOTFS timeout "${VM_SUITE_TIMEOUT:-$((tmo * 4))}" "$bin" "${words[@]:1}" 2>&1 </dev/null); rc=$?
    if [ $rc = 0 ] && grep -q '^running 0 tests' <<<"$out" && ! grep -q '^running [1-9]' <<<"$out"; then
        result FAIL "cargo test $spec" "no test matched"
    elif [ $rc = 0 ]; then
        indent <<<"$out" | grep -E '^    \| (test |running )' || true
        result PASS "cargo test $spec ($(grep -m1 '^test result' <<<"$out" | sed 's/^test result: //'))"
    else
        indent <<<"$out" | tail -n 80
        result FAIL "cargo test $spec" "exit $rc"
    fi
}

echo "== guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"
# A kernel whose active LSM is SELinux (apparmor=0, see run-tests.sh) registers selinuxfs:
# mount it where systemd would, so the runtimes see "SELinux enabled, no policy loaded".
if grep -q selinuxfs /proc/filesystems && ! grep -q ' /sys/fs/selinux ' /proc/mounts; then
    mount -t selinuxfs selinuxfs /sys/fs/selinux 2>/dev/null || true
fi
echo "== LSM: $(cat /sys/kernel/security/lsm 2>/dev/null || echo '?'); selinuxfs: $(grep -c ' /sys/fs/selinux ' /proc/mounts) mount(s)"
check_host
for rt in "runc:$RUNC" "berth:$BERTH"; do
    [ "${VM_SMOKE:-1}" = 0 ] && break
    name=${rt%%:*} bin=${rt#*:}
    if [ ! -x "$bin" ]; then
        result FAIL "$name: no executable at $bin"; continue
    fi
    echo "== $name ($("$bin" --version 2>&1 | head -1))"
    check_run "$name" "$bin"
    check_lifecycle "$name" "$bin"
    check_io "$name" "$bin"
    check_service_caller "$name" "$bin"
done
if [ -n "${VM_CARGO_TESTS:-}" ]; then
    echo "== cargo tests (BERTH_CGROUP_MODE=v2)"
    IFS=';' read -r -a specs <<<"$VM_CARGO_TESTS"
    for s in "${specs[@]}"; do check_cargo "$s"; done
fi
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
