#!/bin/bash
# hack/fresh-machine.sh [COMMAND]   (default: make demo)
#
# Runs COMMAND (as root, with bash) in a clean clone of this repository's HEAD inside a fresh
# Debian 12 root: mmdebstrap's minbase variant plus only git, make and ca-certificates (what a
# user who cloned the repository and types `make` has). The host's Rust toolchain is the only
# thing lent to it: ~/.rustup and ~/.cargo/bin, bind-mounted read-only (CARGO_HOME is the root's
# own /root/.cargo, so crates are downloaded afresh). Every other package must be installed by
# the repository's own scripts: this is how `make demo` and `make test` are checked on "a
# fresh machine".
#
# The root is the root (pivot_root) of a private mount namespace (unshare -m): /proc, /sys
# (with the cgroup hierarchies) and /dev are the host's, /run is a tmpfs, the network is the
# host's (apt and crates.io work). Nothing is mounted in the host's namespace; the root and the clone live in a
# temporary directory that is removed at the end (KEEP=1 keeps it and prints where).
#   MIRROR=http://deb.debian.org/debian (default)   SUITE=bookworm (default)
# Exit status: COMMAND's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cmd=${1:-make demo}
[ "$(id -u)" = 0 ] || { echo "fresh-machine: must run as root" >&2; exit 1; }
log() { echo "fresh-machine: $*" >&2; }
command -v mmdebstrap >/dev/null || {
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends mmdebstrap >/dev/null
}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
[ -x "$cargo_bin/cargo" ] && [ -d "$rustup_home" ] ||
    { log "no Rust toolchain at $cargo_bin and $rustup_home"; exit 1; }

work=$(mktemp -d /var/tmp/berth-fresh.XXXXXX)
cleanup() {
    if [ -n "${KEEP:-}" ]; then log "kept $work"; return; fi
    # The mounts were made in a namespace that is gone: nothing here is mounted.
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root=$work/root
t0=$SECONDS
log "mmdebstrap ${SUITE:-bookworm} (minbase + git make ca-certificates) into $root"
mmdebstrap --quiet --variant=minbase --include=git,make,ca-certificates \
    "${SUITE:-bookworm}" "$root" "${MIRROR:-http://deb.debian.org/debian}"
log "root ready in $((SECONDS - t0)) s"
# The machine's network setting comes along: its resolver and the CAs it trusts (TLS to
# crates.io may go through a proxy whose CA only the machine's own bundle has).
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# (and survive an update-ca-certificates run by a package install in the root)
[ -d /usr/local/share/ca-certificates ] &&
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
# Package scripts start no service in this root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
head=$(git rev-parse HEAD)
git clone -q --no-checkout "$repo" "$root/root/berth"
git -C "$root/root/berth" checkout -q --detach "$head"
log "clone of $head at /root/berth; running: $cmd"

mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin"
t1=$SECONDS
rc=0
unshare -m --propagation private bash -euo pipefail -c '
    root=$1 rustup_home=$2 cargo_bin=$3 cmd=$4
    # The root is a mount point, as on a machine (a runtime sets the propagation of its "/").
    mount --bind "$root" "$root"
    mount --rbind /proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=755 tmpfs "$root/run"
    mount --bind -o ro "$rustup_home" "$root/root/.rustup"
    mount --bind -o ro "$cargo_bin" "$root/root/.cargo/bin"
    # pivot_root, not chroot: in a chroot the kernel refuses new user namespaces (EPERM), and
    # a container with a user namespace must work as on a machine.
    mkdir -p "$root/.oldroot"
    cd "$root"
    pivot_root . .oldroot
    exec /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM=dumb LANG=C.UTF-8 \
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "umount -l /.oldroot && rmdir /.oldroot && cd /root/berth && $cmd"
' fresh "$root" "$rustup_home" "$cargo_bin" "$cmd" || rc=$?
log "'$cmd' exited $rc after $((SECONDS - t1)) s (total $((SECONDS - t0)) s)"
exit $rc
