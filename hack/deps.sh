#!/bin/bash
# Install the Debian packages berth's build and tests need. Safe to run again.
set -euo pipefail
pkgs=(busybox-static runc crun libseccomp-dev pkg-config jq iproute2 strace bats hyperfine
      golang-github-containers-common gcc binutils uidmap passwd util-linux)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
