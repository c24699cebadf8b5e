#!/bin/bash
# Rootless docker through berth, as a real unprivileged user made here (useradd with subuid and
# subgid ranges) and removed afterwards, also on failure: Debian's dockerd-rootless.sh (docker.io's
# contrib, rootlesskit + slirp4netns) starts a private dockerd as the user with
# `--add-runtime berth=...`; then run --runtime berth (exit status, root inside = the user
# outside), run -d (berth's state under the daemon's runtime root), exec (exit status), rm -f
# (nothing left). --network none; the image is the busybox rootfs, imported.
# Needs a built target/release/berth and hack/.cache/rootfs (make build rootfs). ~15 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
rootfs=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
. "$repo/hack/rootless/lib.sh"
install_missing docker.io rootlesskit slirp4netns uidmap passwd util-linux iptables
drs=/usr/share/docker.io/contrib/dockerd-rootless.sh
[ -f "$drs" ] || { echo "FAIL: no $drs (Debian's docker.io ships it there)"; exit 1; }

# slirp4netns needs a /dev/net/tun the user may open (hack/rootless/lib.sh).
with_open_tun "$repo/hack/rootless/docker.sh" /tmp/brld-tun

user=brld$$
tmp=$(mktemp -d /tmp/brld.XXXXXX)
chmod 755 "$tmp"
dpid=""
cleanup() {
    set +e
    if [ -n "$dpid" ]; then
        kill -TERM "$dpid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
    fi
    if id "$user" >/dev/null 2>&1; then
        uid=$(id -u "$user")
        read -r sub n < <(awk -F: -v u="$user" '$1 == u { print $2, $3 }' /etc/subuid)
        # Whatever still runs as the user or one of its subuids (rootlesskit, dockerd,
        # containerd, shims): by pid.
        for p in /proc/[0-9]*; do
            awk -v u="$uid" -v s="${sub:-0}" -v n="${n:-0}" '/^Uid:/ { for (i = 2; i <= 5; i++)
                if ($i == u || ($i >= s && $i < s + n)) f = 1 } END { exit !f }' \
                "$p/status" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null
        done
        for _ in $(seq 50); do userdel -f "$user" 2>/dev/null && break; sleep 0.2; done
    fi
    rm -rf "$tmp" ${ROOTLESS_TUN:+"$ROOTLESS_TUN"}
}
trap cleanup EXIT
for _ in $(seq 50); do useradd --home-dir "$tmp/home" --create-home --shell /usr/sbin/nologin "$user" && break; sleep 0.2; done
grep -q "^$user:" /etc/subuid || { echo "useradd gave $user no /etc/subuid range"; exit 1; }
uid=$(id -u "$user")
mkdir -m 700 "$tmp/x"; chown "$user:" "$tmp/x"
install -m 755 "$repo/target/release/berth" "$tmp/berth"
# TMPDIR too: rootlesskit and friends put their state dirs there (by default /tmp, left behind).
env_user=(env XDG_RUNTIME_DIR="$tmp/x" HOME="$tmp/home" TMPDIR="$tmp/x" PATH=/usr/sbin:/usr/bin:/sbin:/bin
    DOCKER_HOST="unix://$tmp/x/docker.sock")
as_user() { (cd "$tmp" && runuser -u "$user" -- "${env_user[@]}" "$@"); }
dk() { as_user timeout 120 docker "$@"; }
fail() { echo "FAIL: $*"; echo "--- dockerd-rootless.sh log (tail)"; tail -n 30 "$tmp/dockerd.log"; exit 1; }

# The daemon: no iptables (it has no network of its own to masquerade: --network none only).
(cd "$tmp" && exec runuser -u "$user" -- "${env_user[@]}" sh "$drs" --data-root "$tmp/home/data" \
    --add-runtime "berth=$tmp/berth" --iptables=false) > "$tmp/dockerd.log" 2>&1 &
dpid=$!
for _ in $(seq 150); do dk version >/dev/null 2>&1 && break; kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
info=$(dk info 2>&1) || fail "dockerd-rootless.sh did not start: $info"
grep -q rootless <<<"$info" || fail "docker info does not say rootless"
grep -Eq 'Runtimes:.* berth' <<<"$info" || fail "docker info lists no berth runtime"
echo "ok: dockerd-rootless.sh as $user (rootlesskit, slirp4netns), runtime berth added"

tar -C "$rootfs" -c . | dk import - localhost/berth-rootless >/dev/null
out=$(dk run --rm --runtime berth --network none localhost/berth-rootless sh -c 'id -u; cat /proc/self/uid_map; exit 3') && rc=0 || rc=$?
[ "$rc" = 3 ] || fail "docker run: exit status $rc, want 3 ($out)"
[ "$(head -n 1 <<<"$out")" = 0 ] || fail "docker run: uid inside $(head -n 1 <<<"$out"), want 0"
# The daemon's user namespace maps root to the user (and 1... to the subuids); the container is in it.
grep -Eq "^ +0 +$uid +1$" <<<"$out" || fail "docker run: uid_map $out"
echo "ok: run --runtime berth (root inside = $user outside, exit status 3)"

id=$(dk run -d --name c1 --runtime berth --network none localhost/berth-rootless sleep 1000)
pid=$(dk inspect -f '{{.State.Pid}}' c1)
# dockerd 20.10 gives every runtime of the runc shim the root <exec-root>/runtime-runc/moby;
# that berth made the container is what berth's own `state` there says (runc's state.json is
# not berth's).
root=$tmp/x/docker/runtime-runc/moby
state=$root/$id
st=$(as_user "$tmp/berth" --root "$root" state "$id" 2>&1) || fail "berth state $id: $st"
grep -q '"status": "running"' <<<"$st" && grep -q "\"pid\": $pid," <<<"$st" || fail "berth state $id: $st"
grep -q '"creator_pid"' "$state/state.json" || fail "$state/state.json is not berth's"
grep -Eq "^Uid:\s+$uid\s" "/proc/$pid/status" || fail "run -d: pid $pid is not $user's on the host"
out=$(dk exec c1 sh -c 'echo hi; exit 5') && rc=0 || rc=$?
[ "$rc" = 5 ] && [ "$out" = hi ] || fail "exec: exit status $rc, output $out"
dk rm -f c1 >/dev/null
for _ in $(seq 50); do [ -d "$state" ] || break; sleep 0.1; done
[ -d "$state" ] && fail "rm -f left berth state $state"
kill -0 "$pid" 2>/dev/null && fail "rm -f: pid $pid still alive"
echo "ok: run -d (berth's state of it: running, pid $pid), exec (exit status 5), rm -f (nothing left)"
