#!/bin/bash
# sysvm-as-user USER CMD [ARGS...] — in the systemd guest, as root: run CMD as USER in a logind
# session (PAM service "login" through pam_systemd: session-N.scope in user-UID.slice) with the
# user's systemd instance (user@UID.service) and session bus up, XDG_RUNTIME_DIR and
# DBUS_SESSION_BUS_ADDRESS set (what rootless podman's systemd cgroup manager needs). stdin,
# stdout and stderr are ours (systemd-run --pipe); exits with CMD's status. The cwd is kept.
# Installed in the guest as /usr/local/bin/sysvm-as-user on every boot (hack/sysvm/guest-run.sh);
# hack/sysvm/run.sh --user uses it.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: sysvm-as-user USER CMD [ARGS...]" >&2; exit 125; }
user=$1; shift
uid=$(id -u "$user" 2>/dev/null) || { echo "sysvm-as-user: no user $user" >&2; exit 125; }
# Start the user manager first: its bus socket must exist when CMD starts.
systemctl start "user@$uid.service" || { echo "sysvm-as-user: user@$uid.service did not start" >&2; exit 125; }
exec systemd-run --quiet --wait --pipe --collect --service-type=exec \
    --uid="$user" -p PAMName=login -p LimitNOFILE=1048576 --working-directory="$PWD" \
    --setenv=DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" \
    --setenv=XDG_RUNTIME_DIR="/run/user/$uid" --setenv=XDG_SESSION_CLASS=user \
    "$@"
