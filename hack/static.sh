#!/bin/bash
# hack/static.sh [test]   (`make static`): a statically linked berth at target/static/berth.
# With `test` (CI, hack/test.sh's static section), the build then runs the lifecycle, seccomp
# and security cargo suites (BERTH_BIN) and the engines end to end (hack/e2e, RUNTIME) against it.
#
# glibc and libseccomp are linked in (`-C target-feature=+crt-static`; the libseccomp-sys crate
# takes Debian's libseccomp.a with LIBSECCOMP_LINK_TYPE=static), so the binary runs on any
# x86_64 Linux distribution, as runc's release binaries do. It is a static PIE (the kernel
# still randomises where it is loaded): file(1) says "static-pie linked", ldd "statically
# linked". Static glibc's caveats do not apply to berth: it resolves no user or group names
# (NSS; berth reads the container's /etc/passwd itself), does no dlopen and no iconv.
# The release profile and the link layout of build.rs apply as for target/release/berth.
# Built with `--target` (into target/<triple>/release/), so that the flag reaches berth and its
# dependencies but not build scripts and proc macros, which cannot be static; the normal build
# in target/release/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
triple=$(${RUSTC:-rustc} -vV | sed -n 's/^host: //p')
libdir=$(pkg-config --variable=libdir libseccomp 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
[ -f "$libdir/libseccomp.a" ] || { echo "static: $libdir/libseccomp.a is missing (libseccomp-dev)" >&2; exit 1; }
flags_var=CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
env "$flags_var=-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$libdir" \
    $CARGO build --release --bin berth --target "$triple"
mkdir -p target/static
cp "target/$triple/release/berth" target/static/berth.tmp
mv target/static/berth.tmp target/static/berth
desc=$(file -b target/static/berth)
case $desc in
    *"static-pie linked"* | *"statically linked"*) ;;
    *) echo "static: target/static/berth is not statically linked: $desc" >&2; exit 1 ;;
esac
echo "static: target/static/berth: $(stat -c %s target/static/berth) bytes, ${desc%%, BuildID*}" >&2

[ "${1:-}" = test ] || exit 0
export BERTH_ROOTFS=${BERTH_ROOTFS:-$PWD/hack/.cache/rootfs}
bash hack/mkrootfs.sh "$BERTH_ROOTFS"
BERTH_BIN=target/static/berth $CARGO test --release --test lifecycle --test seccomp --test security \
    -- --test-threads=2 || exit 1
RUNTIME=target/static/berth bash hack/e2e/run.sh
