#!/bin/bash
# hack/vm/setup.sh [--refresh] — prepare the pure-cgroup-v2 test VM.
#
# Installs qemu-system-x86 (install-qemu.sh: matching the installed qemu-utils), busybox-static, kmod, cpio when missing, fetches
# Debian's generic 6.1 kernel .deb with `apt-get download` (never installs it), and caches under
# hack/.cache/vm/:
#   vmlinux          ELF kernel extracted from vmlinuz (booted via PVH: ~3 s faster than bzImage)
#   initramfs.cpio   busybox + the few modules the guest needs + stage-1 /init
#   kernel.version   the kernel release that was used
#   stamp            hash of this script; cached files are reused while it matches
# Idempotent; when the cache is valid it only checks the tools and exits (milliseconds).
# --refresh re-resolves the newest linux-image-6.1.0-*-amd64 and rebuilds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$(cd "$here/.." && pwd)/.cache/vm
refresh=0
[ "${1:-}" = --refresh ] && refresh=1
log() { echo "vm-setup: $*" >&2; }

# Modules the guest loads (dependencies are added from modules.dep, built-ins skipped).
# virtio_pci: the bus; 9p/9pnet_virtio: host file shares; overlay: writable root and container
# images; virtio_blk: the --disk device; loop/veth/bridge/bfq: tests of runtimes may want them.
MODULES="virtio_pci 9pnet_virtio 9p overlay virtio_blk loop veth bridge bfq crc32c_generic nf_tables nft_compat xt_mark nf_conntrack_netlink tun unix_diag inet_diag tcp_diag udp_diag raw_diag netlink_diag af_packet_diag"

need_pkgs=()
bash "$here/install-qemu.sh"
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' \
    || need_pkgs+=(busybox-static)
command -v insmod >/dev/null || need_pkgs+=(kmod)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v setpriv >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
    }
fi

want_stamp=$(cat "$0" "$here/init-stage1.sh" | sha256sum | cut -c1-16)
if [ $refresh = 0 ] && [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want_stamp" ] &&
   [ -s "$cache/vmlinux" ] && [ -s "$cache/initramfs.cpio" ]; then
    exit 0
fi

mkdir -p "$cache/debs"
# One builder at a time; whoever waited finds the cache ready.
exec 9> "$cache/.lock"
flock 9
if [ $refresh = 0 ] && [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want_stamp" ] &&
   [ -s "$cache/vmlinux" ] && [ -s "$cache/initramfs.cpio" ]; then
    exit 0
fi
# Which kernel: what linux-image-amd64 depends on (the generic flavour; -cloud lacks 9p).
resolve_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.[0-9.]*-[0-9]*-amd64\)$/\1/p' | head -1
}
pkg=""
if [ $refresh = 0 ] && [ -f "$cache/kernel.version" ]; then
    pkg=linux-image-$(cat "$cache/kernel.version")
fi
[ -n "$pkg" ] || pkg=$(resolve_kernel)
if [ -z "$pkg" ] || [ $refresh = 1 ]; then
    apt-get update -q >/dev/null
    pkg=$(resolve_kernel)
fi
[ -n "$pkg" ] || { log "cannot resolve the kernel package (linux-image-amd64)"; exit 1; }
kver=${pkg#linux-image-}

deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    log "downloading $pkg"
    ( cd "$cache/debs" && apt-get download -q "$pkg" >/dev/null 2>&1 ) || {
        apt-get update -q >/dev/null
        ( cd "$cache/debs" && apt-get download -q "$pkg" >/dev/null )
    }
    deb=$(ls "$cache/debs/${pkg}_"*.deb | head -1)
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "unpacking $(basename "$deb")"
# Only what is needed: the kernel image and the modules tree (modules.dep/.builtin + .ko files).
dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$work" --wildcards "./boot/vmlinuz-*" "./boot/config-*" "./lib/modules/*" 2>/dev/null ||
    dpkg-deb -x "$deb" "$work"
moddir=$work/lib/modules/$kver
[ -d "$moddir/kernel" ] || { log "no modules in $deb"; exit 1; }
# The .deb ships no modules.dep (its postinst runs depmod): make one for the unpacked tree.
[ -f "$moddir/modules.dep" ] || depmod -b "$work" "$kver"

# vmlinux out of vmlinuz: find a compressed stream's magic, decompress, keep the ELF that results
# (the approach of the kernel's scripts/extract-vmlinux).
vmlinuz=$work/boot/vmlinuz-$kver
try_extract() { # magic-as-grep-P  decompressor...
    local magic=$1; shift
    local off
    for off in $(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1 | head -5); do
        tail -c +$((off + 1)) "$vmlinuz" | "$@" > "$work/vmlinux" 2>/dev/null || true
        if [ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" = "177ELF" ]; then
            return 0
        fi
    done
    return 1
}
try_extract '\xFD\x37\x7A\x58\x5A\x00' xz -dc ||
    try_extract '\x28\xB5\x2F\xFD' zstd -dcq ||
    try_extract '\x1F\x8B\x08' gzip -dc ||
    { log "could not extract vmlinux from $vmlinuz"; exit 1; }

# Module closure in load order (dependencies first).
declare -A seen=()
order=()
add_mod() { # path relative to $moddir
    local rel=$1 deps d
    [ -n "${seen[$rel]:-}" ] && return 0
    seen[$rel]=1
    deps=$(sed -n "s|^${rel}:||p" "$moddir/modules.dep")
    for d in $deps; do add_mod "$d"; done
    order+=("$rel")
}
for m in $MODULES; do
    rel=$(grep -E "/${m//_/[_-]}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -1 | cut -d: -f1 || true)
    if [ -z "$rel" ]; then
        if grep -qE "/${m//_/[_-]}\.ko" "$moddir/modules.builtin" 2>/dev/null; then continue; fi
        log "module $m neither built in nor a module"; exit 1
    fi
    add_mod "$rel"
done

ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$ird/bin/busybox"
: > "$ird/modules.order"
for rel in "${order[@]}"; do
    base=$(basename "$rel"); src=$moddir/$rel
    case $base in
        *.ko.xz) xz -dc "$src" > "$ird/lib/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -dcq "$src" > "$ird/lib/modules/${base%.zst}"; base=${base%.zst} ;;
        *.ko.gz) gzip -dc "$src" > "$ird/lib/modules/${base%.gz}"; base=${base%.gz} ;;
        *) cp "$src" "$ird/lib/modules/$base" ;;
    esac
    echo "$base" >> "$ird/modules.order"
done
cp "$here/init-stage1.sh" "$ird/init"
chmod 755 "$ird/init"
( cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet ) > "$work/initramfs.cpio"

cp "$work/boot/config-$kver" "$work/config" 2>/dev/null || true
for f in vmlinux initramfs.cpio config; do
    [ -f "$work/$f" ] && mv -f "$work/$f" "$cache/$f"
done
echo "$kver" > "$cache/kernel.version"
echo "$want_stamp" > "$cache/stamp"
# Keep only the .deb in use.
find "$cache/debs" -name '*.deb' ! -name "$(basename "$deb")" -delete
log "ready: kernel $kver, modules: $(tr '\n' ' ' < "$ird/modules.order")"
