#!/bin/bash
# The suites of hack/sysvm/run-tests.sh; runs INSIDE the systemd guest (as root, in sysvm.service).
# Env: SYSVM_SUITES ("SUITE [ARGS...]; SUITE [ARGS...]"), SYSVM_SUITE_TIMEOUT (s, each),
# REPO, and whatever the suites read (RUNTIME, ENGINES, BERTH_ROOTFS, ...).
# A SUITE is
#   smoke        this guest is what it claims: systemd PID 1, pure cgroup v2, D-Bus, logind, the
#                test user, the engines (hack/sysvm/guest-suites.sh itself)
#   e2e          hack/sysvm/e2e.sh: docker, containerd, podman at their systemd defaults (RUNTIME)
#   rootless | criu | cri    hack/sysvm/pieces.sh (RUNTIME)
#   PATH         an executable or script (contains a /; relative to the repo), run with ARGS
#   NAME         a cargo test binary in target/release/deps (exact, else the newest NAME-<hash>),
#                run with ARGS (libtest filters/flags); a filter matching no test FAILs
# Each suite's output is printed as it runs, then "PASS suite NAME (N s)" or "FAIL suite NAME
# (N s) — why"; at the end a summary and "N passed, M failed"; exit 1 if any suite failed.
set -uo pipefail
cd "$REPO" || exit 125
tmo=${SYSVM_SUITE_TIMEOUT:-1200}
passed=0 failed=0
declare -a summary=()
result() { # PASS|FAIL name seconds [why]
    local line="$1 suite $2 ($3 s)${4:+ — $4}"
    if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    summary+=("$line")
    echo "$line"
}

smoke() {
    local bad=() v
    [ "$(cat /proc/1/comm)" = systemd ] || bad+=("PID 1 is $(cat /proc/1/comm)")
    [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || bad+=("/sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup)")
    awk '$3 == "cgroup" { f = 1 } END { exit !f }' /proc/mounts && bad+=("a cgroup v1 hierarchy is mounted")
    # (systemd enables controllers in the root's subtree_control as units need them)
    for c in cpuset cpu io memory hugetlb pids; do
        grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || bad+=("controller $c not available in the root")
    done
    grep -qw memory /sys/fs/cgroup/system.slice/cgroup.controllers || bad+=("memory controller not enabled for system.slice")
    busctl --system status >/dev/null 2>&1 || bad+=("no D-Bus system bus")
    v=$(busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Version 2>&1)
    [[ $v == s\ \"252* ]] || bad+=("systemd version over D-Bus: $v")
    busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager ListSessions >/dev/null 2>&1 ||
        bad+=("logind does not answer on the bus")
    id berthtest >/dev/null 2>&1 && grep -q '^berthtest:' /etc/subuid && grep -q '^berthtest:' /etc/subgid &&
        [ -e /var/lib/systemd/linger/berthtest ] || bad+=("test user berthtest with subuid/subgid/linger missing")
    [ -x /usr/local/bin/sysvm-as-user ] || bad+=("no sysvm-as-user")
    for b in dockerd containerd ctr podman conmon runc crun criu newuidmap slirp4netns rootlesskit jq strace; do
        command -v "$b" >/dev/null || bad+=("no $b")
    done
    v=$(systemctl list-units --failed --plain --no-legend 2>&1)
    [ -z "$v" ] || bad+=("failed units: $v")
    echo "    kernel $(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2), up $(cut -d' ' -f1 /proc/uptime) s"
    echo "    $(dockerd --version), $(containerd --version | cut -d' ' -f1,3), $(podman --version), runc $(runc --version | head -1 | cut -d' ' -f3), $(crun --version | head -1), criu $(criu --version | head -1 | cut -d' ' -f2)"
    [ ${#bad[@]} = 0 ] || { printf '    %s\n' "${bad[@]}"; return 1; }
}

find_testbin() {
    local b=$1 f best=""
    [ -x "target/release/deps/$b" ] && { echo "target/release/deps/$b"; return; }
    for f in target/release/deps/"$b"-*; do
        [ -f "$f" ] && [ -x "$f" ] || continue
        case $f in *.d|*.rlib|*.rmeta|*.so) continue ;; esac
        if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
    done
    echo "$best"
}

run_suite() { # SPEC
    local words name t0 rc out why="" bin
    read -r -a words <<<"$1"
    [ ${#words[@]} -gt 0 ] || return 0
    name=${words[*]}
    t0=$SECONDS
    echo "=== suite $name"
    case ${words[0]} in
        smoke) smoke; rc=$? ;;
        e2e) timeout -k 10 "$tmo" bash hack/sysvm/e2e.sh "${words[@]:1}"; rc=$? ;;
        rootless|criu|cri) timeout -k 10 "$tmo" bash hack/sysvm/pieces.sh "${words[@]}"; rc=$? ;;
        */*)
            if [ -x "${words[0]}" ]; then timeout -k 10 "$tmo" "${words[@]}"; rc=$?
            elif [ -f "${words[0]}" ]; then timeout -k 10 "$tmo" bash "${words[@]}"; rc=$?
            else echo "    no such file: ${words[0]}"; rc=127; fi ;;
        *)
            bin=$(find_testbin "${words[0]}")
            if [ -z "$bin" ]; then
                echo "    no test binary '${words[0]}' in target/release/deps (cargo test --release --no-run)"; rc=127
            else
                out=$(BERTH_ROOTFS=${BERTH_ROOTFS:-$REPO/hack/.cache/rootfs} timeout -k 10 "$tmo" "$bin" "${words[@]:1}" 2>&1 </dev/null); rc=$?
                echo "$out"
                if [ $rc = 0 ] && grep -q '^running 0 tests' <<<"$out" && ! grep -q '^running [1-9]' <<<"$out"; then
                    rc=1 why="no test matched"
                fi
            fi ;;
    esac
    [ $rc = 124 ] && why="timed out after $tmo s"
    if [ $rc = 0 ]; then result PASS "$name" $((SECONDS - t0)); else result FAIL "$name" $((SECONDS - t0)) "${why:-exit $rc}"; fi
}

echo "== guest: kernel $(uname -r), command started $(cut -d' ' -f1 /proc/uptime) s after boot"
IFS=';' read -r -a specs <<<"${SYSVM_SUITES:-smoke; e2e}"
for s in "${specs[@]}"; do run_suite "$s"; done
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
