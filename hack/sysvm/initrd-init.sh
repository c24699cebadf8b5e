#!/bin/busybox sh
# shellcheck shell=dash
# /init of the systemd guest's initramfs (packed by hack/sysvm/build.sh with static busybox and
# the modules that mounting the root needs). Loads them, mounts the image's ext4 (/dev/vda;
# qemu's snapshot=on takes the writes, so it is mounted read-write) and hands PID 1 to systemd.
BB=/bin/busybox
fail() {
    echo "sysvm-initrd: $*"
    echo "EXIT=125"
    echo b > /proc/sysrq-trigger
    $BB sleep 5
}
$BB mount -t proc proc /proc
$BB mount -t devtmpfs devtmpfs /dev
while read -r m; do
    $BB insmod "/lib/modules/$m" || echo "sysvm-initrd: insmod $m failed"
done < /modules.order
i=0
until $BB mount -t ext4 -o rw,noatime /dev/vda /newroot 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "cannot mount /dev/vda"
    $BB usleep 20000
done
[ -x /newroot/lib/systemd/systemd ] || fail "no /lib/systemd/systemd on /dev/vda"
$BB umount /proc
$BB mount --move /dev /newroot/dev || $BB umount /dev
exec $BB switch_root /newroot /lib/systemd/systemd "$@"
