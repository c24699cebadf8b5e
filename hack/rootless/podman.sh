#!/bin/bash
# Rootless podman through berth, as a real unprivileged user made here (useradd with subuid and
# subgid ranges) and removed afterwards, also on failure: run (exit status), run -d + exec (exit
# status), top, stop, rm. --network none; then --network slirp4netns (the container's tap0 has
# slirp4netns's address 10.0.2.100/24). The image is the busybox rootfs, imported.
# Needs a built target/release/berth and hack/.cache/rootfs (make build rootfs). ~30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
rootfs=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
. "$repo/hack/rootless/lib.sh"
install_missing podman uidmap passwd util-linux slirp4netns

# slirp4netns needs a /dev/net/tun the user may open (hack/rootless/lib.sh).
with_open_tun "$repo/hack/rootless/podman.sh" /tmp/brlp-tun

user=brlp$$
tmp=$(mktemp -d /tmp/brlp.XXXXXX)
chmod 755 "$tmp"
cleanup() {
    set +e
    if id "$user" >/dev/null 2>&1; then
        as_user podman system reset -f >/dev/null 2>&1
        uid=$(id -u "$user")
        # Whatever still runs as the user (podman's pause process, conmon): by pid.
        for p in /proc/[0-9]*; do
            awk -v u="$uid" '/^Uid:/ { for (i = 2; i <= 5; i++) if ($i == u) f = 1 } END { exit !f }' \
                "$p/status" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null
        done
        for _ in $(seq 50); do userdel -f "$user" 2>/dev/null && break; sleep 0.2; done
        # rootless podman's lock file, named by the uid of the user made here
        rm -f "/dev/shm/libpod_rootless_lock_$uid"
    fi
    rm -rf "$tmp" ${ROOTLESS_TUN:+"$ROOTLESS_TUN"}
}
trap cleanup EXIT
for _ in $(seq 50); do useradd --home-dir "$tmp/home" --create-home --shell /usr/sbin/nologin "$user" && break; sleep 0.2; done
grep -q "^$user:" /etc/subuid || { echo "useradd gave $user no /etc/subuid range"; exit 1; }
mkdir -m 700 "$tmp/x"; chown "$user:" "$tmp/x"
install -m 755 "$repo/target/release/berth" "$tmp/berth"
tar -C "$rootfs" -c . > "$tmp/rootfs.tar"; chmod 644 "$tmp/rootfs.tar"
as_user() { (cd "$tmp" && runuser -u "$user" -- env XDG_RUNTIME_DIR="$tmp/x" HOME="$tmp/home" "$@"); }
pm() { as_user timeout 120 podman --runtime "$tmp/berth" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

pm import -q "$tmp/rootfs.tar" localhost/berth-rootless >/dev/null
out=$(pm run --rm --network none localhost/berth-rootless sh -c 'id -u; cat /proc/self/uid_map; exit 3') && rc=0 || rc=$?
[ "$rc" = 3 ] || fail "podman run: exit status $rc, want 3 ($out)"
read -r inside _ <<<"$out"
[ "$inside" = 0 ] || fail "podman run: uid inside $inside, want 0"
echo "$out" | grep -Eq "^ +0 +$(id -u "$user") +1$" || fail "podman run: uid_map $out"
echo "ok: run (root inside = $user outside, exit status 3)"

pm run -d --name c1 --network none localhost/berth-rootless sleep 1000 >/dev/null
pid=$(pm inspect -f '{{.State.Pid}}' c1)
grep -Eq "^Uid:\s+$(id -u "$user")\s" "/proc/$pid/status" || fail "run -d: pid $pid is not $user's on the host"
[ -d "$tmp/x/berth/$(pm inspect -f '{{.Id}}' c1)" ] || fail "run -d: no berth state under XDG_RUNTIME_DIR"
out=$(pm exec c1 sh -c 'echo hi; exit 5') && rc=0 || rc=$?
[ "$rc" = 5 ] && [ "$out" = hi ] || fail "exec: exit status $rc, output $out"
pm top c1 | grep -q 'sleep 1000' || fail "top"
pm stop -t 1 c1 >/dev/null 2>&1
[ "$(pm inspect -f '{{.State.Status}}' c1)" = exited ] || fail "stop"
kill -0 "$pid" 2>/dev/null && fail "stop: pid $pid still alive"
pm rm c1 >/dev/null
[ -z "$(ls "$tmp/x/berth")" ] || fail "rm left berth state: $(ls "$tmp/x/berth")"
echo "ok: run -d, exec (exit status 5), top, stop, rm"

# slirp4netns: user-mode networking for the container's own network namespace.
if ! as_user test -r /dev/net/tun -a -w /dev/net/tun; then
    echo "skip: --network slirp4netns: /dev/net/tun is $(stat -c '%A %U' /dev/net/tun 2>/dev/null || echo missing) here, $user cannot open it (normally crw-rw-rw-)"
    exit 0
fi
out=$(pm run --rm --network slirp4netns localhost/berth-rootless sh -c 'ip -4 -o addr show tap0; readlink /proc/self/ns/net') \
    || fail "run --network slirp4netns: $out"
grep -q 'inet 10\.0\.2\.100/24' <<<"$out" || fail "slirp4netns: no 10.0.2.100/24 on tap0: $out"
[ "$(tail -n 1 <<<"$out")" != "$(readlink /proc/self/ns/net)" ] || fail "slirp4netns: the host's network namespace"
echo "ok: --network slirp4netns (tap0 10.0.2.100/24 in a network namespace of its own)"
