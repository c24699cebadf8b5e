#!/bin/bash
# hack/sysvm/build.sh [--force] — build (or find cached) the systemd test guest:
# Debian 12 with systemd as PID 1, pure cgroup v2, D-Bus and the container engines, made only
# from Debian packages (mmdebstrap, packages.txt) into an ext4 disk image, booted with the
# generic linux-image-amd64 kernel that hack/vm/setup.sh fetches.
#
# Output, in hack/.cache/sysvm/:
#   img-<stamp>/image.ext4       the root filesystem (sparse; booted with snapshot=on, never written)
#   img-<stamp>/vmlinux          the kernel (a hard link to hack/vm's, which may be replaced later)
#   img-<stamp>/initramfs.cpio   busybox + the modules that mounting the root needs + initrd-init.sh
#   img-<stamp>/info             kernel release, build date and time, sizes
#   current -> img-<stamp>       what run.sh boots
#   debs/                        the downloaded .debs (a rebuild downloads only what changed)
# <stamp> hashes packages.txt, this script, customize.sh, initrd-init.sh, image/ and the kernel
# release: a change to any of them rebuilds; otherwise this exits at once. One builder at a time
# (flock); runs in progress keep the image they booted (a rebuild makes a new directory and
# keeps the previous one).
# Installs what it needs on the host: mmdebstrap, e2fsprogs, kmod, cpio, debian-archive-keyring
# (and qemu, busybox-static through hack/vm/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cache=$repo/hack/.cache/sysvm
force=0
[ "${1:-}" = --force ] && force=1
log() { echo "sysvm-build: $*" >&2; }

# The kernel (and qemu, busybox-static, kmod, cpio): shared with the busybox guest.
bash "$repo/hack/vm/setup.sh"
vmcache=$repo/hack/.cache/vm
kver=$(cat "$vmcache/kernel.version")

stamp=$( { cat "$here/packages.txt" "$0" "$here/customize.sh" "$here/initrd-init.sh"
           (cd "$here/image" && find . -type f | LC_ALL=C sort | while read -r f; do echo "$f"; cat "$f"; done)
           echo "$kver"; } | sha256sum | cut -c1-16)
ready() {
    [ $force = 0 ] && [ -s "$cache/img-$stamp/image.ext4" ] && [ -f "$cache/img-$stamp/complete" ] &&
        [ "$(readlink "$cache/current" 2>/dev/null)" = "img-$stamp" ]
}
ready && exit 0

need=()
for p in mmdebstrap e2fsprogs kmod cpio debian-archive-keyring; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >/dev/null
    }
fi

mkdir -p "$cache/debs"
exec 9> "$cache/.lock"
flock 9
ready && exit 0   # built by whoever held the lock before us
force=0

t0=$SECONDS
# What a build killed by SIGKILL left (its owner is gone): builds of other worktrees use
# /dev/shm too, so only dirs whose owner process has died.
for d in "$cache"/.build.* /dev/shm/berth-sysvm-build.*; do
    [ -d "$d" ] || continue
    o=$(cat "$d/owner" 2>/dev/null || true)
    if [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null; then rm -rf --one-file-system "$d"
    elif [ -z "$o" ] && [ -n "$(find "$d" -maxdepth 0 -mmin +30)" ]; then rm -rf --one-file-system "$d"; fi
done
work=$(mktemp -d "$cache/.build.XXXXXX")
echo $$ > "$work/owner"
# The tree itself in memory when there is room (no disk writes but the image's): ~0.8 GB.
shm=""
if [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt 3000000 ] 2>/dev/null; then
    shm=$(mktemp -d /dev/shm/berth-sysvm-build.XXXXXX)
    echo $$ > "$shm/owner"
fi
trap 'rm -rf --one-file-system "$work" ${shm:+"$shm"}' EXIT
root=${shm:-$work}/root
mkdir "$root"
pkgs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages.txt" | tr -s ' \n' ',,' | sed 's/,$//')
log "mmdebstrap bookworm ($(tr ',' '\n' <<<"$pkgs" | wc -l) packages + dependencies)"
# The mirrors the host's own apt uses for Debian 12 (deb.debian.org), with updates and security:
# the guest's glibc and libseccomp then match the host's, so host-built binaries run in it.
# .debs are kept in debs/ between builds (copied in before the download, out after).
mmdebstrap --variant=essential --mode=root --format=directory --include="$pkgs" \
    --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --skip=download/empty \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="find '$cache/debs' -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives/\" {} +" \
    --customize-hook="rm -f '$cache/debs/'*.deb; find \"\$1/var/cache/apt/archives\" -name '*.deb' -exec mv -t '$cache/debs/' {} +" \
    bookworm "$root" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    > "$work/mmdebstrap.log" 2>&1 || { tail -n 30 "$work/mmdebstrap.log" >&2; log "mmdebstrap failed"; exit 1; }
t1=$SECONDS

# Kernel modules: the parts of the tree a container host uses (filesystems, networking,
# netfilter, block and virtio drivers), not the hardware drivers (~100 of the ~450 MB).
deb=$(ls "$vmcache/debs/linux-image-${kver}_"*.deb | head -1)
m=./lib/modules/$kver
keep=("$m/modules.*")
for d in arch block crypto fs lib mm net virt drivers/block drivers/char drivers/md \
         drivers/virtio drivers/vhost drivers/net/bonding drivers/net/ipvlan drivers/net/team \
         drivers/net/vxlan drivers/net/wireguard; do
    keep+=("$m/kernel/$d/*")
done
# (GNU tar: the option applies to the patterns after it: only the .ko files right in drivers/net)
dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$root/usr" --wildcards "${keep[@]}" --no-wildcards-match-slash "$m/kernel/drivers/net/*.ko"
depmod -b "$root" "$kver"

KVER=$kver bash "$here/customize.sh" "$root"
t2=$SECONDS

# initramfs: static busybox, the modules for virtio disks, ext4 and the 9p shares (with their
# dependencies in load order, from the image's own modules.dep), and initrd-init.sh. Everything
# else (overlay, veth, bridge, netfilter, ...) the kernel loads on demand with the image's modprobe.
ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,newroot,lib/modules}
cp /bin/busybox "$ird/bin/busybox"
: > "$ird/modules.order"
declare -A seen=()
for m in virtio_pci virtio_blk crc32c_generic ext4 9pnet_virtio 9p; do
    while read -r kind path _; do
        [ "$kind" = insmod ] || continue
        b=$(basename "$path")
        [ -n "${seen[$b]:-}" ] && continue
        seen[$b]=1
        cp "$path" "$ird/lib/modules/$b"
        echo "$b" >> "$ird/modules.order"
    done < <(modprobe -d "$root" -S "$kver" --show-depends "$m")
done
cp "$here/initrd-init.sh" "$ird/init"
chmod 755 "$ird/init"

out=$work/img
mkdir "$out"
( cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet ) > "$out/initramfs.cpio"
ln "$vmcache/vmlinux" "$out/vmlinux" 2>/dev/null || cp "$vmcache/vmlinux" "$out/vmlinux"

# ext4 without a journal (every run's writes are thrown away with qemu's snapshot), the used
# size plus 1 GiB free for the tests (sparse: only the used blocks take space on the host).
used=$(du -sm "$root" | cut -f1)
size=$((used * 5 / 4 + 1024))
mkfs.ext4 -q -F -L sysvm -O ^has_journal -m 0 -E root_owner=0:0 -d "$root" "$out/image.ext4" "${size}M" \
    > "$work/mkfs.log" 2>&1 || { cat "$work/mkfs.log" >&2; log "mkfs.ext4 failed"; exit 1; }
chmod 444 "$out/image.ext4"
t3=$SECONDS
{
    echo "kernel $kver"
    echo "built $(date -u +%FT%TZ) in $((t3 - t0)) s (mmdebstrap $((t1 - t0)) s, modules and customizing $((t2 - t1)) s, initramfs and mkfs $((t3 - t2)) s)"
    echo "root ${used} MB, image ${size} MB apparent, $(du -sm "$out/image.ext4" | cut -f1) MB allocated"
    echo "packages $(chroot "$root" dpkg-query -W -f='${Package}\n' | wc -l)"
} > "$out/info"
touch "$out/complete"

# Publish: a new directory, then the symlink; keep the previous image (runs in progress) only.
prev=$(readlink "$cache/current" 2>/dev/null || true)
rm -rf "${cache:?}/img-$stamp"
mv "$out" "$cache/img-$stamp"
ln -sfn "img-$stamp" "$cache/current.new"
mv -T "$cache/current.new" "$cache/current"
for d in "$cache"/img-*; do
    b=$(basename "$d")
    [ "$b" = "img-$stamp" ] || [ "$b" = "$prev" ] || rm -rf "$d"
done
rm -rf --one-file-system "$work" ${shm:+"$shm"}
log "ready in $((SECONDS - t0)) s: $(tr '\n' ';' < "$cache/img-$stamp/info")"
