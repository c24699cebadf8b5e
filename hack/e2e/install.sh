# Install the engines from Debian (sourced by run.sh; also usable as `bash hack/e2e/install.sh
# containerd podman docker`). Package scripts must start no service: a policy-rc.d that denies
# everything is put in place for the install if there is none, and removed afterwards.

engine_packages() {
    local e
    for e in "$@"; do
        case $e in
            containerd) echo containerd ;;
            podman) echo podman conmon ;;
            docker) echo docker.io containerd ;;
            criu) echo criu podman conmon containerd ;;
        esac
    done
    echo util-linux iproute2
}

install_engines() {
    local pkgs=() missing=() p
    read -r -a pkgs <<<"$(engine_packages "$@" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local t0=$SECONDS policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# hack/e2e: no service may start during package installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=yes
    fi
    echo "e2e: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ -n "$ours" ] && rm -f "$policy"
    echo "e2e: install took $((SECONDS - t0)) s (status $rc)" >&2
    return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    [ $# -eq 0 ] && set -- containerd podman docker
    install_engines "$@"
fi
