#!/bin/bash
# Runs INSIDE the systemd guest, as root, from sysvm.service (the image's
# /usr/local/lib/sysvm/start execs it). hack/sysvm/run.sh copies it into the run share (/run/sysvm)
# on every boot, so editing it needs no image rebuild.
# /run/sysvm/conf: "rw PATH" (a read-write share, tag sysvmrw<N> in order), "mode root|service|user|shell",
# "user NAME", "journal 0|1". Runs /run/sysvm/cmd.sh (the caller's environment, cwd and command),
# appends its stdout/stderr to /run/sysvm/stdout and stderr, writes its status to
# /run/sysvm/status and powers the guest off.
S=/run/sysvm
say() { echo "sysvm: $*" > /dev/console; echo "sysvm: $*" >> $S/stderr; }
finish() { # rc
    echo "$1" > $S/status
    echo "EXIT=$1" > /dev/console
    sync
    echo b > /proc/sysrq-trigger   # qemu runs with -no-reboot: a reboot ends it
    sleep 10
}

# Boot time: uptime now, and when PID 1 became systemd (after kernel + initramfs).
read -r up _ < /proc/uptime
us=$(systemctl show -p UserspaceTimestampMonotonic --value 2>/dev/null)
echo "up=$up userspace_start_us=${us:-?}" > $S/booted

mode=root user="" journal=0
rw=()
while read -r k v; do
    case $k in
        rw) rw+=("$v") ;;
        mode) mode=$v ;;
        user) user=$v ;;
        journal) journal=$v ;;
    esac
done < $S/conf
install -m 0755 $S/as-user.sh /usr/local/bin/sysvm-as-user
n=0
for p in "${rw[@]}"; do
    mkdir -p "$p"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap "sysvmrw$n" "$p" ||
        { say "cannot mount $p read-write (9p tag sysvmrw$n)"; finish 125; }
    n=$((n + 1))
done

case $mode in
    root)
        # In this unit (system.slice/sysvm.service), as root.
        bash $S/cmd.sh < /dev/null >> $S/stdout 2>> $S/stderr
        rc=$? ;;
    service)
        # In a transient service of its own (system.slice/sysvm-cmd.service), as root.
        systemd-run --quiet --wait --pipe --collect --service-type=exec --unit=sysvm-cmd \
            -p LimitNOFILE=1048576 -p LimitNPROC=infinity -p TasksMax=infinity \
            /bin/bash $S/cmd.sh < /dev/null >> $S/stdout 2>> $S/stderr
        rc=$? ;;
    user)
        # As USER in a logind session with the user's systemd instance (as-user.sh).
        install -m 0755 $S/cmd.sh /run/sysvm-cmd.sh
        sysvm-as-user "$user" /bin/bash /run/sysvm-cmd.sh < /dev/null >> $S/stdout 2>> $S/stderr
        rc=$? ;;
    shell)
        # run.sh --shell: the serial console is the caller's terminal.
        echo "sysvm: root shell on the console; 'exit' powers off" > /dev/console
        setsid --ctty --wait /bin/bash -l < /dev/ttyS0 > /dev/ttyS0 2>&1
        rc=$? ;;
    *)
        say "unknown mode $mode"; rc=125 ;;
esac
if [ "$journal" = 1 ]; then
    journalctl -b --no-pager -o short-monotonic > $S/journal 2>&1
fi
finish $rc
