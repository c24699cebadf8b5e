# shellcheck shell=bash
# systemd unit and cgroup v2 helpers of hack/sysvm/e2e.sh (sourced).

UNIT="" CG="" WHY=""

# The cgroup (path under /sys/fs/cgroup) and the unit a process is in.
cgroup_of_pid() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null; }
# The innermost .scope/.service/.slice component of a cgroup path (podman+crun put the process in
# a "container" sub-cgroup of the scope).
unit_of_cgroup() { tr '/' '\n' <<<"$1" | grep -E '\.(scope|service|slice)$' | tail -n 1; }
unit_of_pid() { unit_of_cgroup "$(cgroup_of_pid "$1")"; }
cgfile() { cat "/sys/fs/cgroup$1/$2" 2>/dev/null; }   # cgfile CGROUP FILE

# uprop UNIT PROP: one property as systemctl show prints it.
uprop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
# uprops UNIT PROP...: several in one call (each systemctl exec costs ~0.1 s under emulation),
# into the associative array UP.
declare -A UP=()
uprops() {
    local u=$1 k v args=()
    shift
    UP=()
    for k in "$@"; do args+=(-p "$k"); done
    while IFS='=' read -r k v; do UP[$k]=$v; done < <(systemctl show "${args[@]}" "$u" 2>/dev/null)
}

# unit_gone UNIT: systemd knows nothing of it: not loaded, so not even a failed unit is kept
# (a failed or stopped-but-referenced unit has LoadState=loaded).
unit_gone() {
    uprops "$1" LoadState ActiveState
    [ "${UP[LoadState]:-}" = not-found ] && [ "${UP[ActiveState]:-}" = inactive ]
}

# Units and cgroups of containers (anything an engine or runtime makes): compared before/after.
container_units() {
    systemctl list-units --all --plain --no-legend --type=scope 2>/dev/null | awk '{print $1}' |
        grep -vE '^(init\.scope|session-[0-9]+\.scope)$' | sort
}
container_cgroups() {
    find /sys/fs/cgroup -mindepth 1 -type d \( -name '*.scope' -o -name "$TAG*" -o -name 'sysvme2e*' \) 2>/dev/null |
        grep -vE '/(init\.scope|session-[0-9]+\.scope)$' | grep -v '/user@[0-9]*\.service/' | sort
}

# check_unit NAME PID SLICE [PROP=VALUE...]: the process PID is in a scope of slice SLICE,
# systemd has the scope active, with Delegate=yes and each PROP=VALUE; the cgroup files match
# (memory.max, pids.max, cpu.max for MemoryMax, TasksMax, CPUQuotaPerSecUSec). Sets UNIT and CG
# (the scope's cgroup); returns 1 with WHY set on a mismatch.
check_unit() {
    local pid=$1 slice=$2 kv k v got f want props=(ActiveState Slice Delegate ControlGroup)
    shift 2
    WHY=""
    CG=$(cgroup_of_pid "$pid")
    UNIT=$(unit_of_cgroup "$CG")
    [ -n "$UNIT" ] || { WHY="process $pid is in no unit (cgroup '${CG:-?}')"; return 1; }
    case $UNIT in *.scope) ;; *) WHY="process $pid is in $UNIT, not in a scope"; return 1 ;; esac
    for kv in "$@"; do props+=("${kv%%=*}"); done
    uprops "$UNIT" "${props[@]}"
    CG=${UP[ControlGroup]:-$CG}
    [ "${UP[ActiveState]:-}" = active ] || WHY+="$UNIT ActiveState=${UP[ActiveState]:-}; "
    [ "${UP[Slice]:-}" = "$slice" ] || WHY+="$UNIT Slice=${UP[Slice]:-}, want $slice; "
    [ "${UP[Delegate]:-}" = yes ] || WHY+="$UNIT Delegate=${UP[Delegate]:-}; "
    for kv in "$@"; do
        k=${kv%%=*} v=${kv#*=}
        got=${UP[$k]:-}
        [ "$got" = "$v" ] || WHY+="$UNIT $k=$got, want $v; "
        f="" want=$v
        case $k in
            MemoryMax) f=memory.max ;;
            MemorySwapMax) f=memory.swap.max ;;
            TasksMax) f=pids.max ;;
            CPUQuotaPerSecUSec) f=cpu.max
                # 500ms a second = quota 50000 of the default period 100000
                want="$(( ${v%ms} * 100 )) 100000" ;;
        esac
        if [ -n "$f" ]; then
            got=$(cgfile "$CG" "$f")
            [ "$got" = "$want" ] || WHY+="$CG/$f=$got, want $want; "
        fi
    done
    [ -z "$WHY" ]
}

# unit_and_cgroup_gone UNIT CGROUP: after removal, wait briefly (the engine may stop the unit
# asynchronously), then require both gone.
unit_and_cgroup_gone() {
    local u=$1 cg=$2
    wait_until 10 unit_gone "$u"
    wait_until 5 test ! -d "/sys/fs/cgroup$cg"
    WHY=""
    unit_gone "$u" || WHY+="unit $u still known: LoadState=${UP[LoadState]:-} ActiveState=${UP[ActiveState]:-}; "
    [ -n "$cg" ] && [ -d "/sys/fs/cgroup$cg" ] && WHY+="cgroup $cg still exists; "
    [ -z "$WHY" ]
}

# count_procs CGROUP: how many processes are in it.
count_procs() { wc -w < "/sys/fs/cgroup$1/cgroup.procs" 2>/dev/null || echo 0; }
procs_at_least() { [ "$(count_procs "$1")" -ge "$2" ]; }

# no_new_units: no scope unit more than when the run started (after a command that must not leave one).
# shellcheck disable=SC2154  # units_before: set by e2e.sh
no_new_units() { [ -z "$(comm -13 <(echo "$units_before") <(container_units))" ]; }

# frozen CGROUP: 1 or 0 from cgroup.events.
frozen() { awk '$1 == "frozen" { print $2 }' "/sys/fs/cgroup$1/cgroup.events" 2>/dev/null; }
