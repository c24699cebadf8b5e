# hack/rootless/lib.sh — sourced by podman.sh and docker.sh (after `repo` is set).

# install_missing PKG...: installs those of the Debian packages that are not installed.
install_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# with_open_tun SCRIPT TMP_PREFIX: slirp4netns opens /dev/net/tun as the user. This machine's node
# is root's 0600 (a container's /dev), a normal host's 0666: SCRIPT is run again in a mount
# namespace of its own where a 0666 node of its own (made in a temporary directory TMP_PREFIX.*,
# exported as ROOTLESS_TUN for the script to remove at the end) is bound over /dev/net/tun. Returns
# (nothing to do) when the node is 0666 already or this is that second run.
with_open_tun() {
    local script=$1 prefix=$2 t
    if [ -z "${ROOTLESS_TUN-}" ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
        t=$(mktemp -d "$prefix.XXXXXX")
        chmod 755 "$t"
        if mknod -m 666 "$t/tun" c 10 200 && chmod 666 "$t/tun"; then
            export ROOTLESS_TUN=$t
            exec unshare -m --propagation private bash -c \
                'mount --bind "$ROOTLESS_TUN/tun" /dev/net/tun && exec bash "$0"' "$script"
        fi
        rm -rf "$t"
    fi
}
