#!/bin/busybox sh
# Stage 1 of the guest (baked into initramfs.cpio by setup.sh as /init).
# Loads the modules, builds the root: the host's / over 9p (read-only) under a tmpfs overlay,
# switch_root-s onto it (pivot_root does not work on the initramfs) and execs stage 2, which is read
# from the host share (kernel parameter vm_stage2=PATH), so editing stage 2 needs no rebuild.
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "vm-stage1: $*"; echo "EXIT=125"; echo b > /proc/sysrq-trigger; sleep 5; }
while read -r m; do
    insmod "/lib/modules/$m" || echo "vm-stage1: insmod $m failed"
done < /modules.order
mount -t tmpfs -o mode=755 tmpfs /newroot
mkdir -p /newroot/lower /newroot/upper /newroot/work /newroot/root
# Right after insmod the 9p channel may not be registered yet ("no channels available"): retry.
i=0
until mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /newroot/lower 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 50 ] && fail "cannot mount the host root share"
    usleep 50000
done
mount -t overlay overlay -o lowerdir=/newroot/lower,upperdir=/newroot/upper,workdir=/newroot/work /newroot/root ||
    fail "cannot mount the root overlay"
stage2=${vm_stage2:-}
[ -n "$stage2" ] && [ -f "/newroot/root$stage2" ] || fail "no stage 2 script at '$stage2'"
umount /proc /sys 2>/dev/null
mount --move /dev /newroot/root/dev 2>/dev/null || umount /dev
exec switch_root /newroot/root /bin/busybox sh "$stage2"
