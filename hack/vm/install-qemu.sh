#!/bin/bash
# hack/vm/install-qemu.sh — make qemu-system-x86_64 available, whatever qemu the machine has.
#
# Debian 12 machine images of this kind ship `qemu-utils` 10.0 from bookworm-backports while
# their apt sources list only bookworm (+updates, security). A plain `apt-get install
# qemu-system-x86` then resolves to 7.2 and is refused: qemu-utils 10 breaks
# qemu-system-common < 8.0. So: install a qemu-system-x86 that matches the qemu-utils that
# is installed: if that comes from bookworm-backports and the suite is not configured,
# add it (a sources file of its own, default priority, so no other package's candidate changes)
# and install qemu-system-x86 from it.
# Without qemu-utils, or with Debian 12's own, the plain bookworm package is installed.
# Idempotent: exits at once when qemu-system-x86_64 is already there.
set -euo pipefail
command -v qemu-system-x86_64 >/dev/null && exit 0
log() { echo "install-qemu: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"; }

utils=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' qemu-utils 2>/dev/null | awk '$1=="ii"{print $2}')
want=()
case "$utils" in
    *bpo12*)
        # The suite may be configured already (in any file, any format).
        if ! apt-cache policy 2>/dev/null | grep -q 'bookworm-backports/main'; then
            log "qemu-utils $utils is from bookworm-backports; adding that suite to apt's sources"
            cat > /etc/apt/sources.list.d/berth-bookworm-backports.sources <<'EOF'
# Added by berth's hack/vm/install-qemu.sh: qemu-system-x86 must match the installed
# qemu-utils, which comes from bookworm-backports on this machine image.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
        apt_get update >/dev/null
        # From the same suite, with its own qemu-system-common/-data and seabios.
        want=(-t bookworm-backports qemu-system-x86)
        ;;
    *)
        apt_get update >/dev/null
        want=(qemu-system-x86)
        ;;
esac
log "installing ${want[*]}"
# qemu-system-x86's recommends pull ~100 packages that a headless TCG guest does not use.
apt_get install --no-install-recommends "${want[@]}" >/dev/null
command -v qemu-system-x86_64 >/dev/null || { log "qemu-system-x86_64 still missing"; exit 1; }
log "$(qemu-system-x86_64 --version | head -1)"
