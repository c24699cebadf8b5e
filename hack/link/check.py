#!/usr/bin/env python3
"""How well hack/link/berth.order still fits a build: python3 hack/link/check.py BINARY ORDER

Prints one line: how many of the order file's functions the build still has (renamed or new
functions on the hot paths fall out of the hot region and cost page faults again) and the size
of the hot region. Below ~95% it is time for `make link-order`. Exit status 0 either way.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkorder import map_is_of, text_sections  # noqa: E402  (same parsers as the profiler)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, order_path = sys.argv[1:]
    map_path = binary + ".map"
    if not os.path.isfile(map_path):
        print(f"link order: no link map at {map_path} (not a release build by rust-lld?)")
        return
    if not map_is_of(binary, map_path):
        print(f"link order: not checked ({map_path} was written by a later `cargo test` link)")
        return
    present = {sym for _, sym in text_sections(map_path)}
    with open(order_path) as f:
        wanted = [l.strip() for l in f if l.strip()]
    # The C start-up symbols at the top are not function sections; leave them out of the count.
    rust = [s for s in wanted if s.startswith(("_ZN", "_R"))]
    found = sum(1 for s in rust if s in present)
    pct = 100.0 * found / max(len(rust), 1)
    hint = "" if pct >= 95 else " -- stale: run `make link-order`"
    print(f"link order: {found} of {len(rust)} hot functions present in this build ({pct:.1f}%){hint}")


if __name__ == "__main__":
    main()
