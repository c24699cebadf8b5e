# Shared by hack/cri.sh (the CRI suite) and hack/bench/cri.sh (the pod-scale benchmark); sourced,
# with the repository as the current directory.

cri_log() { echo "cri: $*" >&2; }

# Debian packages the CRI suite needs: containerd (+ its runc shim), the CNI plugins (bridge,
# host-local, loopback), protoc for the k8s-cri bindings' build, iproute2 (ip netns), gcc and the
# static libc for the pause program, runc (the reference runtime), busybox-static (the image).
# Package scripts must start no service: a policy-rc.d that denies everything is put in place
# for the install if there is none, and removed afterwards.
cri_deps() {
    local pkgs=(containerd containernetworking-plugins protobuf-compiler iproute2 util-linux gcc libc6-dev
                runc busybox-static) missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local t0=$SECONDS policy=/usr/sbin/policy-rc.d ours= rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# hack/cri: no service may start during package installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=yes
    fi
    cri_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ -n "$ours" ] && rm -f "$policy"
    cri_log "install took $((SECONDS - t0)) s (status $rc)"
    return $rc
}

# The client (integration/cri, profile `cri`: no LTO, parallel codegen) -> $CRI_BIN.
cri_build() {
    CRI_BIN=$PWD/target/cri/berth-cri
    local t0=$SECONDS
    ${CARGO:-cargo} build -q --profile cri -p berth-cri || return 1
    cri_log "client built in $((SECONDS - t0)) s"
}

# cri_images DIR: DIR/pause.tar (a static pause program made from hack/cri/pause.c) and
# DIR/busybox.tar (the busybox rootfs of hack/mkrootfs.sh), one-layer OCI layout tars named
# localhost/berth-cri/{pause,busybox}:latest.
cri_images() {
    local dir=$1 W
    W=$dir
    . hack/e2e/image.sh
    bash hack/mkrootfs.sh hack/.cache/rootfs || return 1
    mkdir -p "$dir/pause-root"
    gcc -Os -static -Wall -Wextra -Werror -o "$dir/pause-root/pause" hack/cri/pause.c || return 1
    tar -C "$dir/pause-root" --numeric-owner --owner=0 --group=0 -cf "$dir/pause-layer.tar" . || return 1
    make_oci_tar "$dir/pause-layer.tar" "$dir/pause.tar" localhost/berth-cri/pause:latest \
        '{"Entrypoint":["/pause"],"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' || return 1
    make_rootfs_tar hack/.cache/rootfs "$dir/busybox-layer.tar" || return 1
    make_oci_tar "$dir/busybox-layer.tar" "$dir/busybox.tar" localhost/berth-cri/busybox:latest \
        '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' || return 1
    rm -rf "$dir/pause-root" "$dir/pause-layer.tar" "$dir/busybox-layer.tar"
}

# cri_runtime NAME: path of a runtime by name (berth = this tree's release build).
cri_runtime() {
    case "$1" in
        berth) echo "$PWD/target/release/berth" ;;
        */*) echo "$1" ;;
        *) command -v "$1" || echo "/usr/sbin/$1" ;;
    esac
}
