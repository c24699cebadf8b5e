#!/bin/bash
# hack/vm/run.sh [options] -- CMD [ARGS...]
# Run CMD as root in a throw-away pure cgroup v2 VM (qemu, TCG) and exit with its status.
#
#   --disk SIZE_MB   add an empty virtio disk; the guest sees it as $VM_DISK (/dev/vda) with
#                    major:minor in $VM_DISK_DEV (for io.max / io.weight tests)
#   --mem MB         guest memory (default 1024)
#   --cpus N         guest CPUs (default 2)
#   --timeout S      kill the VM after S seconds, exit 124 (default 600)
#   --rw DIR         share DIR read-write at the same path (repeatable). Default: the caller's
#                    cwd (unless it is /). Everything else is the host's / read-only, with a
#                    throw-away tmpfs overlay on top; /tmp and /run are fresh tmpfs.
#   -v, --verbose    stream the guest console (kernel, init) to stderr
#
# CMD runs with the caller's environment and cwd, stdin from /dev/null; its stdout and stderr
# are streamed to ours. Exit codes of our own: 124 timeout, 125 VM/harness failure.
# Env: VM_QEMU_EXTRA (extra qemu args, word-split), VM_APPEND (extra kernel parameters).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
cache=$(cd "$here/.." && pwd -P)/.cache/vm
disk=0 mem=1024 cpus=2 tmo=600 verbose=0
rw=()
usage() { sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 125; }
while [ $# -gt 0 ]; do
    case $1 in
        --disk) disk=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --timeout) tmo=$2; shift 2 ;;
        --rw) rw+=("$(cd "$2" && pwd -P)"); shift 2 ;;
        -v|--verbose) verbose=1; shift ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || usage
for n in "$disk" "$mem" "$cpus" "$tmo"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "vm: not a number: $n" >&2; exit 125; }
done
cwd=$(pwd -P)
# Not when cwd is / or a place the guest has its own of (/tmp, /run, /dev, /proc, /sys).
if [ ${#rw[@]} = 0 ]; then
    case $cwd in /|/tmp|/run|/dev|/dev/*|/proc|/proc/*|/sys|/sys/*) ;; *) rw=("$cwd") ;; esac
fi
for p in "${rw[@]}"; do
    case $p in *$'\n'*) echo "vm: a path with a newline cannot be shared: $p" >&2; exit 125 ;; esac
done

bash "$here/setup.sh" || { echo "vm: setup failed" >&2; exit 125; }
. "$here/lib.sh"

vm_tmp_create berth-vm
tmp=$VM_TMP

out=$tmp/out
mkdir -p "$out"
: > "$out/stdout"; : > "$out/stderr"
for n in "${!rw[@]}"; do echo "vmrw$n ${rw[$n]}"; done > "$out/vm.conf"
vm_write_cmd "$out/cmd.sh" "$cwd" "" -- "$@"

# shellcheck disable=SC2207
args=(-M q35 $(vm_accel) -m "$mem" -smp "$cpus"
      -nodefaults -no-user-config -display none -no-reboot
      -kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio"
      -append "console=ttyS0 panic=-1 no_timer_check quiet loglevel=4 cgroup_no_v1=all vm_stage2=$here/guest-init.sh ${VM_APPEND:-}"
      -serial "file:$tmp/console.log"
      -fsdev local,id=fsroot,path=/,security_model=passthrough,multidevs=remap,readonly=on
      -device virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot
      -fsdev "local,id=fsout,path=$out,security_model=passthrough"
      -device virtio-9p-pci,fsdev=fsout,mount_tag=vmout)
for n in "${!rw[@]}"; do
    args+=(-fsdev "local,id=fsrw$n,path=${rw[$n]},security_model=passthrough,multidevs=remap"
           -device "virtio-9p-pci,fsdev=fsrw$n,mount_tag=vmrw$n")
done
if [ "$disk" -gt 0 ]; then
    truncate -s "${disk}M" "$tmp/disk.img"
    args+=(-drive "if=none,id=vdisk,file=$tmp/disk.img,format=raw,cache=unsafe"
           -device virtio-blk-pci,drive=vdisk)
fi
# shellcheck disable=SC2206
[ -n "${VM_QEMU_EXTRA:-}" ] && args+=(${VM_QEMU_EXTRA})

rc=0
vm_launch "$out" "$tmo" "$verbose" -- "${args[@]}" || rc=$?
exit $rc
