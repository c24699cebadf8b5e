#!/usr/bin/env python3
"""Write hack/link/berth.order: the functions a container's everyday lifecycle runs, hot first.

    python3 hack/link/mkorder.py BINARY LINK_MAP ROOTFS OUT

BINARY is a release build and LINK_MAP its lld map (build.rs writes target/release/berth.map;
`make link-order` runs this and relinks). Every function's input section in the map gets a uprobe
(tracefs `uprobe_events`, file offset from the ELF program headers); then the lifecycle an engine
drives (create, start, state, list, exec, kill, delete, run, ps, update, pause/resume, events
--stats) runs a few times with the bench's bundle; the functions that fired, in order of first
hit, are written one symbol per line. rust-lld places them first in .text
(`--symbol-ordering-file`, see build.rs), so a command faults in a few compact 64 KiB windows of
code instead of most of the binary. Uprobes, the tracing instance and a tracefs mount it made
are removed on every path.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

TRACEFS = "/sys/kernel/tracing"
GROUP = "berthlink"


def load_segments(path):
    """(vaddr, offset, filesz) of the PT_LOAD program headers of a 64-bit little-endian ELF."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
            sys.exit(f"{path}: not a 64-bit little-endian ELF")
        phoff, = struct.unpack_from("<Q", hdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
        segs = []
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 1:
                segs.append((p_vaddr, p_offset, p_filesz))
    return segs


def text_sections(map_path):
    """(vaddr, symbol) of every function's input section (`.text.<symbol>`) in an lld link map."""
    # LLVM puts cold functions in `.text.unlikely.<symbol>` (also hot./startup./exit./split.).
    pat = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:"
                     r"\(\.text\.(?:unlikely\.|hot\.|startup\.|exit\.|split\.)?(\S+)\)$")
    out = []
    with open(map_path) as f:
        for line in f:
            m = pat.match(line)
            if m and int(m.group(2), 16) > 0:
                out.append((int(m.group(1), 16), m.group(3)))
    return out


def map_is_of(binary, map_path):
    """Whether the link map was written by the link that made BINARY. `cargo test` links the
    unit-test harness of the bin with the same arguments, so the map may be the harness's: the
    map names the objects it linked, and target/release/berth is a hard link to
    target/release/deps/berth-<hash>, whose objects are deps/berth-<hash>.*.o."""
    st = os.stat(binary)
    deps = os.path.join(os.path.dirname(os.path.abspath(binary)), "deps")
    try:
        names = os.listdir(deps)
    except OSError:
        return True  # not a cargo layout: nothing to compare
    for n in names:
        p = os.path.join(deps, n)
        if n.startswith("berth-") and "." not in n and os.stat(p).st_ino == st.st_ino:
            with open(map_path) as f:
                return f"/deps/{n}." in f.read()
    return True


def file_offset(segs, vaddr):
    for v, o, n in segs:
        if v <= vaddr < v + n:
            return vaddr - v + o
    return None


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, map_path, rootfs, out = (os.path.abspath(a) for a in sys.argv[1:])
    mounted = not os.path.isdir(TRACEFS + "/events")
    if mounted:
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
    if not map_is_of(binary, map_path):
        sys.exit(f"{map_path} is not the link map of {binary} (a later `cargo test` link wrote it): "
                 "touch hack/link/berth.order and rebuild")
    segs = load_segments(binary)
    funcs = [(s, file_offset(segs, v)) for v, s in text_sections(map_path)]
    funcs = [(s, o) for s, o in funcs if o is not None]
    if len(funcs) < 100:
        sys.exit(f"{map_path}: only {len(funcs)} .text.* sections found; is it an lld map of {binary}?")
    inst = f"{TRACEFS}/instances/{GROUP}"
    work = tempfile.mkdtemp(prefix="berth-link.")
    try:
        os.makedirs(inst, exist_ok=True)
        write(f"{inst}/buffer_size_kb", "131072")
        fd = os.open(f"{TRACEFS}/uprobe_events", os.O_WRONLY | os.O_APPEND)
        try:
            for i, (_, off) in enumerate(funcs):
                os.write(fd, f"p:{GROUP}/f{i} {binary}:{off:#x}\n".encode())
        finally:
            os.close(fd)
        write(f"{inst}/events/{GROUP}/enable", "1")
        workload(binary, rootfs, work)
        write(f"{inst}/events/{GROUP}/enable", "0")
        seen, order = set(), []
        with open(f"{inst}/trace") as f:
            for line in f:
                m = re.search(rf"\sf(\d+): \(", line)
                if m and m.group(1) not in seen:
                    seen.add(m.group(1))
                    order.append(funcs[int(m.group(1))][0])
        lost = 0
        for cpu in os.listdir(f"{inst}/per_cpu"):
            with open(f"{inst}/per_cpu/{cpu}/stats") as f:
                lost += int(re.search(r"overrun: (\d+)", f.read()).group(1))
        if lost:
            print(f"warning: the trace buffer overran ({lost} events lost)", file=sys.stderr)
        # The C start-up code (Scrt1.o's _start, crtbeginS.o's frame_dummy...) runs in every
        # command but has no function sections of its own: name it so its section comes first.
        crt = ["_start", "frame_dummy", "register_tm_clones", "deregister_tm_clones", "__do_global_dtors_aux"]
        write(out, "".join(s + "\n" for s in crt + order))
        print(f"{len(order)} of {len(funcs)} functions ran; written to {out}")
    finally:
        try:
            write(f"{inst}/events/{GROUP}/enable", "0")
        except OSError:
            pass
        fd = os.open(f"{TRACEFS}/uprobe_events", os.O_WRONLY | os.O_APPEND)
        for i in range(len(funcs)):
            try:
                os.write(fd, f"-:{GROUP}/f{i}\n".encode())
            except OSError:
                pass
        os.close(fd)
        try:
            os.rmdir(inst)
        except OSError:
            pass
        shutil.rmtree(work, ignore_errors=True)
        if mounted:
            subprocess.run(["umount", TRACEFS], check=False)


def workload(berth, rootfs, work):
    """The calls an engine makes for a container's life, with the bench's bundle. Several rounds:
    some paths (hash-table probing with random seeds) differ from run to run."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import json
    import driver
    root = os.path.join(work, "root")
    cgparent = f"berth-link-{os.getpid()}"

    def berth_do(*args, check=True):
        # stderr into a file: a created container's init inherits it and lives on, so a pipe
        # would not see EOF.
        with tempfile.TemporaryFile(dir=work) as err:
            r = subprocess.run([berth, "--root", root, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
            err.seek(0)
            if check and r.returncode != 0:
                raise RuntimeError(f"berth {' '.join(args)}: {err.read().decode().strip()}")

    def bundle(cid, args):
        b = os.path.join(work, cid)
        os.makedirs(b)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(driver.make_config(rootfs, args, f"/{cgparent}/{cid}"), f)
        return b

    ids = []
    try:
        for n in range(6):
            berth_do("--version")
            cid = f"link-sleep{n}"
            ids.append(cid)
            berth_do("create", "--bundle", bundle(cid, ["/bin/sleep", "1000"]), "--pid-file",
                     os.path.join(work, cid + ".pid"), cid)
            berth_do("state", cid)
            berth_do("start", cid)
            berth_do("state", cid)
            berth_do("list")
            berth_do("list", "-q")
            berth_do("exec", cid, "/bin/true")
            berth_do("ps", cid)
            berth_do("events", "--stats", cid)
            berth_do("update", "--pids-limit", "100", cid)
            berth_do("pause", cid)
            berth_do("resume", cid)
            berth_do("kill", cid, "KILL")
            berth_do("delete", cid)
            ids.remove(cid)
            cid = f"link-run{n}"
            berth_do("run", "--bundle", bundle(cid, ["/bin/true"]), cid)
            cid = f"link-true{n}"
            ids.append(cid)
            berth_do("create", "--bundle", bundle(cid, ["/bin/true"]), cid)
            berth_do("start", cid)
            berth_do("delete", "--force", cid)
            ids.remove(cid)
    finally:
        for cid in ids:
            berth_do("delete", "--force", cid, check=False)
        for d in os.listdir("/sys/fs/cgroup"):
            p = f"/sys/fs/cgroup/{d}/{cgparent}"
            if os.path.isdir(p):
                os.rmdir(p)


if __name__ == "__main__":
    main()
