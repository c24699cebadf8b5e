#!/bin/bash
# hack/deps.sh build|test — install the Debian packages that berth's build (`make demo`,
# `make static`) or its tests (`make test`, which includes the build) need. Only the missing ones
# are installed; nothing is done (and no root is needed) when all are there. Safe to run again.
# The one list of each: the e2e engines (hack/e2e/install.sh) and the VM's qemu and kernel
# (hack/vm/setup.sh) are installed by their own sections, when those run.
set -euo pipefail
# The build: rustc links through cc (gcc, libc6-dev); the libseccomp crate finds libseccomp with
# pkg-config (libseccomp.so for the normal build, libseccomp.a for `make static`); the busybox
# rootfs of the demo and the tests (hack/mkrootfs.sh) is Debian's static busybox; `make static`
# checks its binary with file(1).
build=(gcc libc6-dev pkg-config libseccomp-dev busybox-static file)
# The tests: runc and crun (compared with berth: integration, lifecycle, bench), iproute2 (`ip`
# in network tests), Debian's containers-common seccomp profile (tests/seccomp.rs), binutils
# (`as`/`ld` build the attack binaries of tests/security.rs), util-linux (unshare, nsenter),
# procps (`berth ps` runs ps(1)), uidmap and passwd (newuidmap, useradd: tests/rootless.rs), dbus-daemon (a private bus for the systemd driver's D-Bus
# client tests), criu (`berth check`, tests/checkpoint.rs; in the VM guest).
test=("${build[@]}" runc crun iproute2 golang-github-containers-common binutils util-linux procps
      uidmap passwd dbus-daemon criu)

case ${1:-} in
    build) pkgs=("${build[@]}") ;;
    test) pkgs=("${test[@]}") ;;
    *) echo "usage: hack/deps.sh build|test" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }
# A fresh machine may have no package lists yet: update, then install.
apt_get update >/dev/null
apt_get install -y --no-install-recommends "${missing[@]}" >/dev/null
