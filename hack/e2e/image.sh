# Local busybox image (sourced by run.sh). No registry is reachable: the image is made from
# the busybox rootfs of hack/mkrootfs.sh, as a plain rootfs tar (podman/docker import) and as an
# OCI image layout tar (ctr image import).

# make_rootfs_tar ROOTFS_DIR OUT_TAR
make_rootfs_tar() {
    local rootfs=$1 out=$2
    tar -C "$rootfs" --numeric-owner --exclude=./.complete -cf "$out" .
}

# make_oci_tar LAYER_TAR OUT_TAR REF_NAME [CONFIG_JSON]: one-layer OCI layout (uncompressed
# layer), with the annotations ctr image import uses for naming. CONFIG_JSON is the image
# config's "config" object (default: Cmd /bin/sh, PATH, WorkingDir /).
make_oci_tar() {
    local layer=$1 out=$2 ref=$3
    local cfg=${4:-'{"Cmd":["/bin/sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}'}
    local d
    d=$(mktemp -d "$W/oci.XXXXXX")
    mkdir -p "$d/blobs/sha256"
    local ldig lsize
    ldig=$(sha256sum "$layer" | cut -d' ' -f1)
    lsize=$(stat -c %s "$layer")
    cp "$layer" "$d/blobs/sha256/$ldig"
    printf '%s' '{"architecture":"amd64","os":"linux","config":'"$cfg"',"rootfs":{"type":"layers","diff_ids":["sha256:'"$ldig"'"]},"history":[{"created_by":"berth hack/e2e"}]}' >"$d/config.json"
    local cdig csize
    cdig=$(sha256sum "$d/config.json" | cut -d' ' -f1)
    csize=$(stat -c %s "$d/config.json")
    mv "$d/config.json" "$d/blobs/sha256/$cdig"
    printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$cdig"'","size":'"$csize"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$ldig"'","size":'"$lsize"'}]}' >"$d/manifest.json"
    local mdig msize
    mdig=$(sha256sum "$d/manifest.json" | cut -d' ' -f1)
    msize=$(stat -c %s "$d/manifest.json")
    mv "$d/manifest.json" "$d/blobs/sha256/$mdig"
    printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$mdig"'","size":'"$msize"',"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"'"$ref"'","org.opencontainers.image.ref.name":"latest"}}]}' >"$d/index.json"
    printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    tar -C "$d" -cf "$out" oci-layout index.json blobs
    rm -rf "$d"
}
