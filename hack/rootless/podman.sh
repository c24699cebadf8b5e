#!/bin/bash
# Rootless podman through berth, as a real unprivileged user made here (useradd with subuid and
# subgid ranges) and removed afterwards, also on failure: run (exit status), run -d + exec (exit
# status), top, stop, rm. --network none; the image is the busybox rootfs, imported.
# Needs a built target/release/berth and hack/.cache/rootfs (make build rootfs). ~30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
rootfs=${BERTH_ROOTFS:-$repo/hack/.cache/rootfs}
pkgs=(podman uidmap passwd util-linux)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

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
    rm -rf "$tmp"
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
