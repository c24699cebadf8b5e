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

# unit_gone UNIT: systemd knows nothing of it: not loaded (no failed unit kept around either).
unit_gone() {
    [ "$(uprop "$1" LoadState)" = not-found ] && [ "$(uprop "$1" ActiveState)" = inactive ] &&
        [ -z "$(systemctl list-units --all --plain --no-legend "$1" 2>/dev/null)" ]
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
    local pid=$1 slice=$2 kv k v got f want
    shift 2
    WHY=""
    CG=$(cgroup_of_pid "$pid")
    UNIT=$(unit_of_cgroup "$CG")
    [ -n "$UNIT" ] || { WHY="process $pid is in no unit (cgroup '${CG:-?}')"; return 1; }
    CG=$(uprop "$UNIT" ControlGroup)
    case $UNIT in *.scope) ;; *) WHY="process $pid is in $UNIT, not in a scope"; return 1 ;; esac
    got=$(uprop "$UNIT" ActiveState); [ "$got" = active ] || WHY+="$UNIT ActiveState=$got; "
    got=$(uprop "$UNIT" Slice); [ "$got" = "$slice" ] || WHY+="$UNIT Slice=$got, want $slice; "
    got=$(uprop "$UNIT" Delegate); [ "$got" = yes ] || WHY+="$UNIT Delegate=$got; "
    for kv in "$@"; do
        k=${kv%%=*} v=${kv#*=}
        got=$(uprop "$UNIT" "$k")
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
    unit_gone "$u" || WHY+="unit $u still known: LoadState=$(uprop "$u" LoadState) ActiveState=$(uprop "$u" ActiveState); "
    [ -n "$cg" ] && [ -d "/sys/fs/cgroup$cg" ] && WHY+="cgroup $cg still exists; "
    [ -z "$WHY" ]
}

# frozen CGROUP: 1 or 0 from cgroup.events.
frozen() { awk '$1 == "frozen" { print $2 }' "/sys/fs/cgroup$1/cgroup.events" 2>/dev/null; }
