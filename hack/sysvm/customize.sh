#!/bin/bash
# hack/sysvm/customize.sh ROOT — turn mmdebstrap's tree into the test guest (called by build.sh,
# as root, on the directory before it becomes the ext4 image). Env: KVER (kernel release).
set -euo pipefail
R=$1
here=$(cd "$(dirname "$0")" && pwd -P)
: "${KVER:?}"

echo berth-sysvm > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 berth-sysvm\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# A fixed machine id (every boot is the same machine; systemd-firstboot has nothing to ask).
tr -d - < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
echo '# the root is mounted by the initramfs (hack/sysvm/initrd-init.sh)' > "$R/etc/fstab"

# root without a password (console debugging: run.sh --console), a test user for rootless
# containers with subordinate ids and linger (logind starts its user manager when it starts).
chroot "$R" passwd -q -d root
chroot "$R" useradd -m -u 1000 -U -s /bin/bash berthtest
for f in subuid subgid; do
    sed -i '/^berthtest:/d' "$R/etc/$f"
    echo 'berthtest:100000:65536' >> "$R/etc/$f"
done
mkdir -p "$R/var/lib/systemd/linger"
touch "$R/var/lib/systemd/linger/berthtest"

# Our units and scripts (image/ mirrors the paths).
cp -a "$here/image/." "$R/"
chmod 755 "$R/usr/local/lib/sysvm/"*

# /tmp is a tmpfs (fast under emulation; nothing written there survives anyway).
cp "$R/usr/share/systemd/tmp.mount" "$R/etc/systemd/system/tmp.mount"
# (the guest's own systemctl, offline in the chroot: the host may have none)
chroot "$R" systemctl -q enable tmp.mount

# Boot only what the tests need: sysvm.target (basic.target + sysvm.service, which runs the
# command). Masked: terminals, udev (/dev is devtmpfs; nothing here needs device units), timers,
# the engines' own services (tests start every daemon privately), and boot-time jobs that
# find nothing to do in a throw-away guest.
chroot "$R" systemctl -q set-default sysvm.target
mask=(
    getty@.service serial-getty@.service console-getty.service getty.target getty-static.service
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
    systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer e2scrub_all.timer
    e2scrub_reap.service systemd-tmpfiles-clean.timer man-db.timer logrotate.timer
    docker.service docker.socket containerd.service
    podman.service podman.socket podman-auto-update.service podman-auto-update.timer
    podman-restart.service podman-kube@.service
    systemd-pstore.service systemd-journal-flush.service systemd-random-seed.service
    systemd-update-utmp.service systemd-update-utmp-runlevel.service
    systemd-firstboot.service systemd-machine-id-commit.service ldconfig.service
    systemd-update-done.service systemd-remount-fs.service systemd-boot-system-token.service
    systemd-ask-password-console.path systemd-ask-password-wall.path
    modprobe@.service systemd-modules-load.service systemd-sysusers.service
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount
    sys-fs-fuse-connections.mount sys-kernel-config.mount
    systemd-initctl.socket systemd-journald-audit.socket
    networking.service systemd-networkd.service systemd-networkd-wait-online.service
    remote-fs.target machines.target
)
for u in "${mask[@]}"; do
    ln -sfn /dev/null "$R/etc/systemd/system/$u"
done

# Generators run at every boot before any unit starts (each an exec, the SysV one parses
# /etc/init.d): only the debug generator stays (kernel parameters systemd.mask=, systemd.wants=).
mkdir -p "$R/etc/systemd/system-generators"
for g in "$R"/usr/lib/systemd/system-generators/*; do
    b=$(basename "$g")
    [ "$b" = systemd-debug-generator ] || ln -sfn /dev/null "$R/etc/systemd/system-generators/$b"
done

# Under emulation on a loaded machine everything is slow: no unit start or stop may time out.
mkdir -p "$R/etc/systemd/system.conf.d" "$R/etc/systemd/user.conf.d"
for d in system user; do
    printf '[Manager]\nDefaultTimeoutStartSec=300s\nDefaultTimeoutStopSec=120s\n' \
        > "$R/etc/systemd/$d.conf.d/sysvm.conf"
done

# The journal in memory only.
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\nForwardToConsole=no\n' \
    > "$R/etc/systemd/journald.conf.d/sysvm.conf"
