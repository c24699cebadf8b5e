#!/bin/bash
# Build the busybox test rootfs: hack/mkrootfs.sh [DIR]   (default: hack/.cache/rootfs)
# Uses Debian's busybox-static (installed if missing). Idempotent: an existing, complete
# rootfs is left as it is; a new one is built aside and renamed into place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/.cache/rootfs}
[ -x "$dest/bin/busybox" ] && [ -f "$dest/.complete" ] && { chmod 755 "$dest"; exit 0; }
bb=/bin/busybox
# Debian's busybox-static is the static /bin/busybox (the `busybox` package's is dynamic).
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    echo "mkrootfs: installing busybox-static" >&2
    apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" >/dev/null; }
    apt_get install -y busybox-static || { apt_get update && apt_get install -y busybox-static; }
fi
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$(dirname "$dest")/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home/user,var/tmp,run}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$tmp/bin/busybox" --list); do
    [ -e "$tmp/bin/$applet" ] || ln -s busybox "$tmp/bin/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
echo "127.0.0.1 localhost" > "$tmp/etc/hosts"
: > "$tmp/etc/resolv.conf"
chown 1000:1000 "$tmp/home/user"
touch "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
