#!/bin/bash
# hack/install.sh docs|install|uninstall|check   (`make docs`, `make install`, `make uninstall`)
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
# check (CI, hack/test.sh): docs, then install into a temporary DESTDIR with PREFIX=/usr, check
# the layout (a page per command of `berth --help`, the three completions), uninstall, check
# that no file is left.
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
    check)
        docs
        tmp=$(mktemp -d /tmp/berth-install-check.XXXXXX)
        trap 'rm -rf "$tmp"' EXIT
        DESTDIR=$tmp PREFIX=/usr bash "$0" install >/dev/null
        fail() { log "check: $*"; exit 1; }
        u=$tmp/usr
        [ -x "$u/bin/berth" ] && "$u/bin/berth" --version >/dev/null || fail "no working $u/bin/berth"
        cmp -s "$u/bin/berth" "$bin" || fail "the installed binary is not $bin"
        # The commands as the installed binary's help lists them (not from the generator).
        cmds=$("$u/bin/berth" --help | awk '/^Commands:/ {c=1; next} /^$/ {c=0} c {print $1}' | grep -vx help)
        [ "$(wc -w <<<"$cmds")" -ge 15 ] || fail "berth --help lists only: $cmds"
        for c in "" $cmds; do
            page=$u/share/man/man8/berth${c:+-$c}.8
            [ -s "$page" ] || fail "no man page $page"
            grep -q "^\.TH berth${c:+-$c} 8 " "$page" || fail "$page has no .TH berth${c:+-$c} 8"
        done
        [ "$(ls "$u/share/man/man8" | wc -l)" = "$(($(wc -w <<<"$cmds") + 1))" ] ||
            fail "man8 holds other pages: $(ls "$u/share/man/man8")"
        for f in share/bash-completion/completions/berth share/zsh/vendor-completions/_berth \
                 share/fish/vendor_completions.d/berth.fish; do
            [ -s "$u/$f" ] || fail "no $u/$f"
            for c in $cmds; do grep -qw -- "$c" "$u/$f" || fail "$f does not know $c"; done
        done
        bash -n "$u/share/bash-completion/completions/berth" || fail "the bash completion does not parse"
        DESTDIR=$tmp PREFIX=/usr bash "$0" uninstall >/dev/null
        left=$(find "$tmp" -type f)
        [ -z "$left" ] || fail "left after uninstall: $left"
        log "check: $(wc -l < "$out/files") files + bin/berth installed under DESTDIR/usr and uninstalled"
        ;;
    *) echo "usage: hack/install.sh docs|install|uninstall|check" >&2; exit 2 ;;
esac
