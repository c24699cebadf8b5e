# shellcheck shell=bash
# hack/vm/lib.sh — what the qemu guests of hack/vm/run.sh (busybox, host root over 9p) and
# hack/sysvm/run.sh (Debian with systemd, disk image) share. Sourced, not run.
#
#   vm_accel                     qemu accelerator + CPU arguments (TCG unless KVM really works)
#   vm_tmp_create PREFIX         per-run dir $VM_TMP (removed on exit; runs killed by SIGKILL are
#                                swept by the next run) and the EXIT/INT/TERM traps
#   vm_write_cmd FILE CWD SKIP_RE -- CMD...
#                                a sh script: the caller's environment (minus shell internals and
#                                names matching SKIP_RE), cd CWD, exec CMD
#   vm_launch OUT TIMEOUT VERBOSE -- QEMU_ARGS...
#                                run qemu tied to our life (pdeathsig, timeout), stream
#                                OUT/stdout and OUT/stderr, return the guest's status (OUT/status)
#                                or 124 (timeout) / 125 (the guest ended without a status)

# KVM only when /dev/kvm belongs to a regular kvm_intel/kvm_amd module and opens: on machines whose
# /dev/kvm is kvm_pvm (a paravirtual hypervisor) Debian's kernel crashes or crawls, so TCG.
# VM_ACCEL=tcg|kvm overrides.
vm_accel() {
    local a=${VM_ACCEL:-}
    if [ -z "$a" ]; then
        a=tcg
        if [ -c /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
           { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } &&
           { : <>/dev/kvm; } 2>/dev/null; then
            a=kvm
        fi
    fi
    case $a in
        kvm) echo "-accel kvm -cpu host" ;;
        *) echo "-accel tcg,thread=multi -cpu max" ;;
    esac
}

VM_TMP=""
VM_QPID=""
vm_cleanup() {
    set +e   # in an EXIT trap errexit would skip the rest
    local pid w
    if [ -n "$VM_QPID" ]; then   # still running: we are interrupted or failing
        pid=$(cat "$VM_TMP/qemu.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        kill -TERM "$VM_QPID" 2>/dev/null   # timeout passes it on to qemu, reaps it, exits
        ( sleep 5; kill -KILL "$VM_QPID" 2>/dev/null ) & w=$!
        wait "$VM_QPID" 2>/dev/null
        kill "$w" 2>/dev/null
    fi
    [ -n "$VM_TMP" ] && rm -rf "$VM_TMP"
}

vm_tmp_create() { # PREFIX
    local prefix=$1 d o
    # Sweep what a run killed with SIGKILL (no trap runs then) left: dirs whose owner is gone.
    for d in "${TMPDIR:-/tmp}/$prefix".*; do
        [ -d "$d" ] || continue
        o=$(cat "$d/owner" 2>/dev/null || true)
        if [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null; then rm -rf "$d"; fi
    done
    VM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$prefix.XXXXXX")
    echo $$ > "$VM_TMP/owner"
    trap vm_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
}

vm_quote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }   # single-quote for sh

vm_write_cmd() { # FILE CWD SKIP_RE -- CMD...
    local file=$1 cwd=$2 skip=$3 kv k a
    shift 4
    {
        # The environment run.sh was started with (not variables it set itself).
        while IFS= read -r -d '' kv; do
            k=${kv%%=*}
            [[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
            case $k in PWD|OLDPWD|SHLVL|_|BASH_*|BASHOPTS|SHELLOPTS|TMPDIR) continue ;; esac
            [ -n "$skip" ] && [[ $k =~ $skip ]] && continue
            echo "export $k=$(vm_quote "${kv#*=}")"
        done < /proc/$$/environ
        echo "cd $(vm_quote "$cwd") || exit 125"
        printf 'exec'
        for a in "$@"; do printf ' %s' "$(vm_quote "$a")"; done
        echo
    } > "$file"
}

vm_launch() { # OUT TIMEOUT VERBOSE -- QEMU_ARGS...
    local out=$1 tmo=$2 verbose=$3 t1 t2 t3="" qrc=0 rc
    shift 4
    : >> "$out/stdout"; : >> "$out/stderr"; : >> "$VM_TMP/console.log"
    # qemu dies with us (pdeathsig on both timeout and qemu) and after $tmo seconds at the latest.
    # VM_STDIO=1: qemu keeps our stdin/stdout (a serial console on "-serial mon:stdio").
    if [ "${VM_STDIO:-0}" = 1 ]; then
        setpriv --pdeathsig KILL -- timeout --foreground -k 5 "$tmo" \
            setpriv --pdeathsig KILL -- qemu-system-x86_64 "$@" -pidfile "$VM_TMP/qemu.pid" \
            <&0 2> "$VM_TMP/qemu.log" &
    else
        setpriv --pdeathsig KILL -- timeout -k 5 "$tmo" \
            setpriv --pdeathsig KILL -- qemu-system-x86_64 "$@" -pidfile "$VM_TMP/qemu.pid" \
            > "$VM_TMP/qemu.log" 2>&1 &
    fi
    VM_QPID=$!
    setpriv --pdeathsig KILL -- tail -q -n +1 -s 0.1 -f --pid=$VM_QPID "$out/stdout" &
    t1=$!
    setpriv --pdeathsig KILL -- tail -q -n +1 -s 0.1 -f --pid=$VM_QPID "$out/stderr" >&2 &
    t2=$!
    if [ "$verbose" = 1 ]; then
        setpriv --pdeathsig KILL -- tail -q -n +1 -s 0.1 -f --pid=$VM_QPID "$VM_TMP/console.log" >&2 &
        t3=$!
    fi
    wait $VM_QPID || qrc=$?
    VM_QPID=""
    wait $t1 $t2 $t3 2>/dev/null || true
    if [ -s "$out/status" ]; then
        rc=$(cat "$out/status")
        [[ $rc =~ ^[0-9]+$ ]] || rc=125
        return "$rc"
    fi
    if [ $qrc = 124 ] || [ $qrc = 137 ]; then
        echo "vm: timed out after ${tmo}s" >&2; rc=124
    else
        echo "vm: the guest ended without an exit status (qemu status $qrc)" >&2; rc=125
    fi
    echo "--- qemu:" >&2; tail -n 20 "$VM_TMP/qemu.log" >&2 || true
    echo "--- guest console (last 30 lines):" >&2; tail -n 30 "$VM_TMP/console.log" >&2 || true
    return $rc
}
