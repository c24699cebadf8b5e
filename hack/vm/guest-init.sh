#!/bin/bash
# Stage 2 of the guest: PID 1 after switch_root, read from the host share (not baked into the
# initramfs). Sets up a pure cgroup v2 system, mounts the run's shares, runs the command that
# run.sh wrote to /run/vm/cmd.sh, records its exit status, powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vm-init: $*" > /dev/console; }
finish() { # rc
    echo "$1" > /run/vm/status 2>/dev/null
    echo "EXIT=$1" > /dev/console
    sync
    echo b > /proc/sysrq-trigger
    sleep 10
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx 2>/dev/null || true
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null; ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null; ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/vm
# The host share is read-only and brings the host's view of a few places: hide what is not ours.
[ -d /mnt/sandboxing ] && mount -t tmpfs -o ro,mode=755 tmpfs /mnt/sandboxing
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

# Pure cgroup v2 (the kernel runs with cgroup_no_v1=all): every controller on in the root.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || say "cgroup2 mount failed"
for c in cpuset cpu io memory hugetlb pids rdma misc; do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || say "cannot enable controller $c"
done

# The run's own share: command, environment, stdout/stderr files, status.
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none vmout /run/vm 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 50 ] && { say "cannot mount the run share"; finish 125; }
    sleep 0.05
done
[ -f /run/vm/vm.conf ] || { say "no /run/vm/vm.conf"; finish 125; }
. /run/vm/vm.conf   # VM_RW_PATHS=( ... ), shares vmrw0.. in that order
for n in "${!VM_RW_PATHS[@]}"; do
    p=${VM_RW_PATHS[$n]}
    mkdir -p "$p" 2>/dev/null
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap "vmrw$n" "$p" ||
        { say "cannot mount $p read-write"; finish 125; }
done

hostname berth-vm
ip link set lo up 2>/dev/null || busybox ip link set lo up 2>/dev/null
if [ -e /sys/block/vda/dev ]; then
    export VM_DISK=/dev/vda VM_DISK_DEV=$(cat /sys/block/vda/dev)
fi
export BERTH_VM=1
echo "BOOTED $(cut -d' ' -f1 /proc/uptime)" > /run/vm/booted

bash /run/vm/cmd.sh < /dev/null >> /run/vm/stdout 2>> /run/vm/stderr
finish $?
