#!/bin/busybox sh
# Stage 2 of the guest: PID 1 after switch_root, read from the host share (not baked into the
# initramfs, so editing it needs no rebuild). Sets up a pure cgroup v2 system, mounts the run's
# shares, runs the command run.sh wrote to /run/vm/cmd.sh, records its exit status, powers off.
# Written for busybox sh and busybox applets only: under TCG every exec of a dynamically linked
# host binary costs ~25 ms, a static busybox applet ~8 ms.
BB=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vm-init: $*" > /dev/console; }
finish() { # rc
    echo "$1" > /run/vm/status 2>/dev/null
    echo "EXIT=$1" > /dev/console
    $BB sync
    echo b > /proc/sysrq-trigger
    $BB sleep 10
}
m() { $BB mount "$@" || say "mount $* failed"; }
m -t proc proc /proc
m -t sysfs sysfs /sys
[ -e /dev/null ] || m -t devtmpfs devtmpfs /dev
$BB mkdir -p /dev/pts /dev/shm /dev/mqueue
m -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
$BB ln -sf pts/ptmx /dev/ptmx
m -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
m -t mqueue mqueue /dev/mqueue
$BB ln -sf /proc/self/fd /dev/fd
$BB ln -sf /proc/self/fd/0 /dev/stdin
$BB ln -sf /proc/self/fd/1 /dev/stdout
$BB ln -sf /proc/self/fd/2 /dev/stderr
m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
m -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
$BB mkdir -p /run/lock /run/vm
# The host share brings the host's view of a few places: hide what is not ours.
[ -d /mnt/sandboxing ] && m -t tmpfs -o ro,mode=755 tmpfs /mnt/sandboxing
m -t securityfs securityfs /sys/kernel/security
m -t bpf bpf /sys/fs/bpf

# Pure cgroup v2 (the kernel runs with cgroup_no_v1=all): every controller on in the root.
m -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
for c in cpuset cpu io memory hugetlb pids rdma misc; do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || say "cannot enable controller $c"
done

# The run's own share: command, environment, stdout/stderr files, status.
i=0
until $BB mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none vmout /run/vm 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 50 ] && { say "cannot mount the run share"; finish 125; }
    $BB usleep 50000
done
[ -f /run/vm/vm.conf ] || { say "no /run/vm/vm.conf"; finish 125; }
# vm.conf: one "TAG PATH" line per read-write share (PATH: rest of the line).
while read -r tag path; do
    [ -n "$tag" ] || continue
    $BB mkdir -p "$path"
    $BB mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap "$tag" "$path" ||
        { say "cannot mount $path read-write"; finish 125; }
done < /run/vm/vm.conf

$BB hostname berth-vm
$BB ip link set lo up
if [ -e /sys/block/vda/dev ]; then
    read -r VM_DISK_DEV < /sys/block/vda/dev
    export VM_DISK=/dev/vda VM_DISK_DEV
fi
export BERTH_VM=1
read -r up _ < /proc/uptime
echo "BOOTED $up" > /run/vm/booted

$BB sh /run/vm/cmd.sh < /dev/null >> /run/vm/stdout 2>> /run/vm/stderr
finish $?
