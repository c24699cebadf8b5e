#!/bin/bash
# hack/sysvm/run.sh [options] -- CMD [ARGS...]
# Boot the systemd test guest (Debian 12, systemd as PID 1, pure cgroup v2, D-Bus; image of
# hack/sysvm/build.sh, built on first use), run CMD in it, exit with CMD's status.
#
#   --timeout S      kill the guest after S seconds, exit 124 (default 600)
#   --mem MB         guest memory (default 2048)
#   --cpus N         guest CPUs (default 2)
#   --rw DIR         share DIR read-write at the same path (repeatable). Default: the caller's
#                    cwd (unless it is /, /tmp, /run, ...).
#   --user NAME      run CMD as NAME (e.g. berthtest, uid 1000) in a logind session with the
#                    user's systemd instance: XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS set
#   --service        run CMD in a transient system service of its own (systemd-run --wait
#                    --pipe: system.slice/sysvm-cmd.service) instead of in sysvm.service
#   --apparmor       boot with the kernel's AppArmor on (default: apparmor=0)
#   --journal FILE   copy the guest's journal (journalctl -b) to FILE at the end
#   --shell          debugging: no CMD; an interactive root shell on the guest's serial console,
#                    attached to this terminal (qemu's monitor: Ctrl-A c; quit: exit or Ctrl-A x)
#   -v, --verbose    stream the guest console (kernel, systemd) to stderr; print boot times
#
# CMD runs as root (unless --user) in the system service sysvm.service, with the caller's
# environment and cwd, stdin from /dev/null; its stdout and stderr are streamed to ours.
# Own exit codes: 124 timeout, 125 VM/harness failure, 130/143 interrupted.
# Env: SYSVM_APPEND (extra kernel parameters), SYSVM_QEMU_EXTRA (extra qemu args, word-split),
# VM_ACCEL=tcg|kvm (default: TCG unless /dev/kvm is a working kvm_intel/kvm_amd).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cache=$repo/hack/.cache/sysvm
mem=2048 cpus=2 tmo=600 verbose=0 mode=root user="" apparmor=0 journal=""
rw=()
usage() { sed -n '2,28s/^# \{0,1\}//p' "$0" >&2; exit 125; }
while [ $# -gt 0 ]; do
    case $1 in
        --mem) mem=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --timeout) tmo=$2; shift 2 ;;
        --rw) rw+=("$(cd "$2" && pwd -P)"); shift 2 ;;
        --user) user=$2; mode=user; shift 2 ;;
        --service) mode=service; shift ;;
        --apparmor) apparmor=1; shift ;;
        --journal) journal=$2; shift 2 ;;
        --shell) mode=shell; shift ;;
        -v|--verbose) verbose=1; shift ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || [ $mode = shell ] || usage
[ $# -gt 0 ] || set -- /bin/bash -l
for n in "$mem" "$cpus" "$tmo"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "sysvm: not a number: $n" >&2; exit 125; }
done
[ -z "$user" ] || [[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "sysvm: bad user name: $user" >&2; exit 125; }
cwd=$(pwd -P)
if [ ${#rw[@]} = 0 ]; then
    case $cwd in /|/tmp|/run|/run/*|/dev|/dev/*|/proc|/proc/*|/sys|/sys/*) ;; *) rw=("$cwd") ;; esac
fi
for p in "${rw[@]}"; do
    case $p in *$'\n'*) echo "sysvm: a path with a newline cannot be shared: $p" >&2; exit 125 ;; esac
done

bash "$here/build.sh" || { echo "sysvm: image build failed" >&2; exit 125; }
img=$(cd "$cache/current" && pwd -P)
. "$repo/hack/vm/lib.sh"

vm_tmp_create berth-sysvm
out=$VM_TMP/out
mkdir -p "$out"
: > "$out/stdout"; : > "$out/stderr"
cp "$here/guest-run.sh" "$here/as-user.sh" "$out/"
{
    for p in "${rw[@]}"; do echo "rw $p"; done
    echo "mode $mode"
    [ -n "$user" ] && echo "user $user"
    echo "journal $([ -n "$journal" ] && echo 1 || echo 0)"
} > "$out/conf"
# The guest sets who the user is, where its runtime dir and buses are: not the caller's values.
skip='^(XDG_[A-Z_]*|DBUS_[A-Z_]*|INVOCATION_ID|JOURNAL_STREAM|NOTIFY_SOCKET|LISTEN_[A-Z_]*|SYSTEMD_[A-Z_]*|MANAGERPID)$'
[ "$mode" = user ] && skip='^(XDG_[A-Z_]*|DBUS_[A-Z_]*|INVOCATION_ID|JOURNAL_STREAM|NOTIFY_SOCKET|LISTEN_[A-Z_]*|SYSTEMD_[A-Z_]*|MANAGERPID|HOME|USER|LOGNAME|SHELL|MAIL)$'
vm_write_cmd "$out/cmd.sh" "$cwd" "$skip" -- "$@"
sed -i '1i export BERTH_SYSVM=1' "$out/cmd.sh"

# no_timer_check: on a loaded host the kernel's IO-APIC timer check can miss its ticks and panic.
append="console=ttyS0 panic=-1 no_timer_check quiet loglevel=4 systemd.unified_cgroup_hierarchy=1"
append+=" systemd.show_status=$([ $verbose = 1 ] && echo auto || echo 0)"
[ $apparmor = 0 ] && append+=" apparmor=0"
append+=" ${SYSVM_APPEND:-}"
# shellcheck disable=SC2207,SC2054
args=(-M q35 $(vm_accel) -m "$mem" -smp "$cpus"
      -nodefaults -no-user-config -display none -no-reboot
      -kernel "$img/vmlinux" -initrd "$img/initramfs.cpio" -append "$append"
      -serial "$([ $mode = shell ] && echo mon:stdio || echo "file:$VM_TMP/console.log")"
      -drive "if=none,id=root,file=$img/image.ext4,format=raw,snapshot=on,cache=unsafe"
      -device virtio-blk-pci,drive=root
      -fsdev "local,id=fsout,path=$out,security_model=passthrough"
      -device virtio-9p-pci,fsdev=fsout,mount_tag=sysvm)
for n in "${!rw[@]}"; do
    args+=(-fsdev "local,id=fsrw$n,path=${rw[$n]},security_model=passthrough,multidevs=remap"
           -device "virtio-9p-pci,fsdev=fsrw$n,mount_tag=sysvmrw$n")
done
# shellcheck disable=SC2206
[ -n "${SYSVM_QEMU_EXTRA:-}" ] && args+=(${SYSVM_QEMU_EXTRA})

t0=${EPOCHREALTIME/./}
rc=0
# qemu's snapshot=on overlay goes to $TMPDIR: the run's own dir.
VM_STDIO=$([ $mode = shell ] && echo 1 || echo 0) TMPDIR=$VM_TMP vm_launch "$out" "$tmo" "$verbose" -- "${args[@]}" || rc=$?
if [ -n "$journal" ] && [ -f "$out/journal" ]; then
    cp "$out/journal" "$journal" || true
fi
if [ $verbose = 1 ] && [ -s "$out/booted" ]; then
    el=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
    # up=<s since boot when the command started> userspace_start_us=<when systemd became PID 1>
    read -r b1 b2 < "$out/booted"
    up=${b1#up=} us=${b2#userspace_start_us=}
    if [[ $us =~ ^[0-9]+$ ]]; then
        echo "sysvm: command started ${up} s after boot (kernel+initramfs $((us / 1000)) ms, systemd to the command $(awk -v u="$up" -v k="$us" 'BEGIN { printf "%d", u * 1000 - k / 1000 }') ms); round trip $el ms" >&2
    else
        echo "sysvm: command started ${up} s after boot; round trip $el ms" >&2
    fi
fi
exit $rc
