#!/bin/bash
# hack/install.sh docs|install|uninstall   (`make docs`, `make install`, `make uninstall`)
#
#   PREFIX   default /usr/local
#   DESTDIR  default empty (a staging root for packaging: files go to $DESTDIR$PREFIX/...)
#   BERTH    the binary to install, default target/release/berth (e.g. target/static/berth)
#
# docs: builds the generator (berth with the `docs` feature, an unoptimised build of its own in
# target/docs/, so the release binary does not carry clap_mangen and clap_complete) and writes
# the man pages and completions to target/docs-out/share/, their list to target/docs-out/files.
# install: $PREFIX/bin/berth, $PREFIX/share/man/man8/berth{,-COMMAND}.8 (one page per
# command), share/bash-completion/completions/berth, share/zsh/vendor-completions/_berth,
# share/fish/vendor_completions.d/berth.fish.
# uninstall: removes exactly those files (the list comes from the same generator; directories
# are left, they may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-}
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}$prefix
bin=${BERTH:-target/release/berth}
out=target/docs-out
CARGO=${CARGO:-cargo}
log() { echo "install: $*" >&2; }

docs() {
    $CARGO build -q --profile docs --features docs --bin berth
    rm -rf "$out"
    mkdir -p "$out"
    target/docs/berth __generate-docs "$out" > "$out/files.tmp"
    mv "$out/files.tmp" "$out/files"
    log "$(wc -l < "$out/files") files in $out"
}

case $action in
    docs) docs ;;
    install)
        [ -x "$bin" ] || { log "$bin is missing (make build, or make static)"; exit 1; }
        [ -f "$out/files" ] || { log "$out/files is missing (make docs)"; exit 1; }
        install -D -m 0755 "$bin" "$dest/bin/berth"
        echo "$dest/bin/berth"
        while read -r f; do
            install -D -m 0644 "$out/$f" "$dest/$f"
            echo "$dest/$f"
        done < "$out/files"
        ;;
    uninstall)
        [ -f "$out/files" ] || { log "$out/files is missing (make docs)"; exit 1; }
        for f in bin/berth $(cat "$out/files"); do
            if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then
                rm -f "$dest/$f"
                echo "removed $dest/$f"
            fi
        done
        ;;
    *) echo "usage: hack/install.sh docs|install|uninstall" >&2; exit 2 ;;
esac
