#!/usr/bin/env python3
"""berth benchmark driver (called by hack/bench/run.sh; see hack/bench/README.md).

One driver for every runtime: each runtime invocation is started with os.posix_spawn
and reaped with os.wait4; wall time is time.perf_counter_ns() around spawn..reap.
Runtimes are interleaved round by round (A B C floor, A B C floor, ...).
The driver is a child subreaper, so a container's init (whose launching runtime
process exits) is re-parented to it and can be waited for directly.
"""
import argparse
import ctypes
import errno
import json
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

NS = time.perf_counter_ns
STOP = threading.Event()  # set on Ctrl-C: worker threads stop creating containers
CALL_TIMEOUT = 60.0  # seconds for one runtime invocation

# --------------------------------------------------------------------------- output


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


OUT = []


def out(line=""):
    print(line, flush=True)
    OUT.append(line)


# --------------------------------------------------------------------------- process plumbing

SIGDEF = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
DEVNULL_R = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
DEVNULL_W = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)


class CallFailed(Exception):
    pass


class Result:
    __slots__ = ("ns", "status", "maxrss_kb", "out", "err")

    def __init__(self, ns, status, maxrss_kb, out=b"", err=b""):
        self.ns, self.status, self.maxrss_kb, self.out, self.err = ns, status, maxrss_kb, out, err

    @property
    def ok(self):
        return self.status == 0


def wait_pid(pid, timeout):
    """wait4 on a child with a timeout (pidfd + poll). Returns (status, rusage)."""
    try:
        pfd = os.pidfd_open(pid)
    except OSError:
        pfd = None
    if pfd is not None:
        try:
            p = select.poll()
            p.register(pfd, select.POLLIN)
            if not p.poll(timeout * 1000):
                try:
                    os.kill(pid, signal.SIGKILL)  # by pid, our own child
                except ProcessLookupError:
                    pass
                os.wait4(pid, 0)
                raise CallFailed(f"timed out after {timeout:.0f}s")
        finally:
            os.close(pfd)
    _, status, ru = os.wait4(pid, 0)
    return status, ru


def _read_memfd(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        d = os.read(fd, 1 << 20)
        if not d:
            break
        chunks.append(d)
    os.close(fd)
    return b"".join(chunks)


def call(argv, capture=False, timeout=CALL_TIMEOUT):
    """Spawn argv (argv[0] absolute), wait, time it. stdout -> /dev/null unless capture.

    stdout/stderr go to memfds, not pipes: a container's init inherits the runtime's
    stdio, so a pipe would never reach EOF while the container lives.
    """
    efd = os.memfd_create("bench-err", os.MFD_CLOEXEC)
    ofd = os.memfd_create("bench-out", os.MFD_CLOEXEC) if capture else None
    fa = [
        (os.POSIX_SPAWN_DUP2, DEVNULL_R, 0),
        (os.POSIX_SPAWN_DUP2, ofd if capture else DEVNULL_W, 1),
        (os.POSIX_SPAWN_DUP2, efd, 2),
    ]
    try:
        t0 = NS()
        pid = os.posix_spawn(argv[0], argv, ENV, file_actions=fa, setsigdef=SIGDEF)
        status, ru = wait_pid(pid, timeout)
        t1 = NS()
    except BaseException:
        os.close(efd)
        if capture:
            os.close(ofd)
        raise
    o = _read_memfd(ofd) if capture else b""
    return Result(t1 - t0, os.waitstatus_to_exitcode(status), ru.ru_maxrss, o, _read_memfd(efd))


def reap_strays(keep=()):
    """Reap re-parented processes that exited (not the ones in keep)."""
    while True:
        try:
            si = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if si is None or si.si_pid == 0 or si.si_pid in keep:
            return
        try:
            os.waitpid(si.si_pid, 0)
        except ChildProcessError:
            pass


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_exit(pid, timeout=CALL_TIMEOUT):
    """Wait for a (re-parented) container init to exit; reap it if it is our child."""
    try:
        pfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        p = select.poll()
        p.register(pfd, select.POLLIN)
        if not p.poll(timeout * 1000):
            raise CallFailed("container process did not exit")
    finally:
        os.close(pfd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# --------------------------------------------------------------------------- bundle

def make_config(rootfs, args, cgroups_path):
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in CAP_SETS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": 256 * 1024 * 1024},
                "pids": {"limit": 128},
            },
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


# `runc spec` has no "inheritable" set; runc and crun ignore the failing ambient raise.
# CAPS_INHERITABLE=1 adds the set (for every runtime) so a strict runtime can be measured.
CAP_SETS = ("bounding", "effective", "permitted", "ambient") + (
    ("inheritable",) if os.environ.get("CAPS_INHERITABLE") == "1" else ())

FLOOR_NS_FLAGS = ["--mount", "--uts", "--ipc", "--net", "--pid", "--fork"]


# --------------------------------------------------------------------------- runtimes

class Runtime:
    def __init__(self, name, path, bench):
        self.name, self.path, self.b = name, path, bench
        self.root = os.path.join(bench.work, "root-" + name)
        os.makedirs(self.root, exist_ok=True)
        self.broken = None  # reason string when unusable
        self.live = set()  # ids that may exist
        self.seq = 0
        self.lock = threading.Lock()

    @property
    def systemd(self):
        """With --systemd-slice, runtimes use the systemd cgroup driver, except those named *-fs
        (berth-fs: berth's cgroupfs driver in the same guest, for comparison)."""
        return self.b.sd_slice is not None and not self.name.endswith("-fs")

    def argv(self, *a):
        return [self.path, "--root", self.root, *(["--systemd-cgroup"] if self.systemd else []), *a]

    def cgroups_path(self, cid):
        if self.systemd:
            return f"{self.b.sd_slice}:{self.name}:{cid}"
        return f"/{self.b.cgparent}/{cid}"

    def new_id(self, kind, args):
        with self.lock:
            self.seq += 1
            cid = f"{self.name}-{self.b.runid}-{kind}{self.seq}"
            self.live.add(cid)
        bdir = os.path.join(self.b.work, "bundles", cid)
        os.makedirs(bdir)
        cfg = make_config(self.b.rootfs, args, self.cgroups_path(cid))
        with open(os.path.join(bdir, "config.json"), "w") as f:
            json.dump(cfg, f)
        return cid, bdir

    def forget(self, cid):
        with self.lock:
            self.live.discard(cid)
        shutil.rmtree(os.path.join(self.b.work, "bundles", cid), ignore_errors=True)

    def must(self, r, what):
        if not r.ok:
            msg = r.err.decode(errors="replace").strip().splitlines()
            raise CallFailed(f"{what} exited {r.status}: {msg[-1] if msg else '(no stderr)'}")
        return r

    def create(self, cid, bdir):
        pidf = os.path.join(bdir, "pid")
        r = self.must(call(self.argv("create", "--bundle", bdir, "--pid-file", pidf, cid)), "create")
        try:
            with open(pidf) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise CallFailed(f"create: no usable --pid-file ({e})")
        return r, pid

    def lifecycle(self, keep_strays=False):
        """create + start + wait for exit + delete of /bin/true. Returns dict of ns."""
        cid, bdir = self.new_id("lc", ["/bin/true"])
        t0 = NS()
        rc, pid = self.create(cid, bdir)
        t1 = NS()
        rs = self.must(call(self.argv("start", cid)), "start")
        t2 = NS()
        wait_exit(pid)
        t3 = NS()
        rd = self.must(call(self.argv("delete", cid)), "delete")
        t4 = NS()
        self.forget(cid)
        if not keep_strays:
            reap_strays()
        return {"total": t4 - t0, "create": rc.ns, "start": rs.ns, "wait": t3 - t2, "delete": rd.ns}

    def rss_create(self, wrap):
        """create through rsswrap (peak RSS), VmRSS of the created init, then start/wait/delete."""
        cid, bdir = self.new_id("rss", ["/bin/true"])
        outf = os.path.join(bdir, "rss")
        pidf = os.path.join(bdir, "pid")
        r = self.must(call([wrap, outf, *self.argv("create", "--bundle", bdir, "--pid-file", pidf, cid)]),
                      "create (via rsswrap)")
        with open(outf) as f:
            code, maxrss = (int(x) for x in f.read().split())
        with open(pidf) as f:
            pid = int(f.read().strip())
        held = rss_of(pid)
        self.must(call(self.argv("start", cid)), "start")
        wait_exit(pid)
        self.must(call(self.argv("delete", cid)), "delete")
        self.forget(cid)
        reap_strays()
        return maxrss, held

    def start_sleeper(self, kind):
        cid, bdir = self.new_id(kind, ["/bin/sleep", "1000000"])
        _, pid = self.create(cid, bdir)
        self.must(call(self.argv("start", cid)), "start")
        return cid, pid

    def delete_force(self, cid):
        r = call(self.argv("delete", "--force", cid))
        if r.ok or not os.path.isdir(os.path.join(self.root, cid)):
            self.forget(cid)
        return r

    def probe(self):
        """Check the runtime really works: version, full lifecycle, state JSON, delete."""
        if not (os.path.isfile(self.path) and os.access(self.path, os.X_OK)):
            return f"not found: {self.path}"
        try:
            v = call([self.path, "--version"], capture=True, timeout=10)
            self.version = (v.out.decode(errors="replace").strip().splitlines() or ["?"])[0]
            cid, bdir = self.new_id("probe", ["/bin/true"])
            _, pid = self.create(cid, bdir)
            if not os.path.exists(f"/proc/{pid}"):
                return f"create: pid {pid} from --pid-file is not a live process"
            st = self.must(call(self.argv("state", cid), capture=True), "state")
            try:
                sj = json.loads(st.out)
            except ValueError:
                return f"state: output is not JSON: {st.out[:60]!r}"
            if sj.get("status") != "created" or sj.get("id") != cid:
                return f"state after create: status={sj.get('status')!r} id={sj.get('id')!r}"
            self.must(call(self.argv("start", cid)), "start")
            wait_exit(pid, 10)
            st = self.must(call(self.argv("state", cid), capture=True), "state")
            if json.loads(st.out).get("status") != "stopped":
                return "state after exit is not 'stopped'"
            ls = self.must(call(self.argv("list", "-q"), capture=True), "list")
            if cid not in ls.out.decode(errors="replace").split():
                return "list -q does not show the container"
            self.must(call(self.argv("delete", cid)), "delete")
            if call(self.argv("state", cid)).ok:
                return "state still succeeds after delete"
            self.forget(cid)
            reap_strays()
        except (CallFailed, OSError, ValueError) as e:
            return str(e)
        return None


def run_threads(fn, n):
    """Run fn in n threads; on Ctrl-C tell them to stop and still wait for them."""
    ths = [threading.Thread(target=fn) for _ in range(n)]
    for th in ths:
        th.start()
    try:
        for th in ths:
            th.join()
    except BaseException:
        STOP.set()
        for th in ths:
            th.join()
        raise


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- stats / printing

def fmt_ms(ns):
    ms = ns / 1e6
    return f"{ms:.1f}" if ms >= 100 else f"{ms:.2f}"


class Table:
    """Per figure: median, min-max, ratio ref/this (ref = berth when it works)."""

    def __init__(self, bench, title, unit="ms", conv=None, fmt=None):
        self.b, self.title, self.unit = bench, title, unit
        self.conv = conv or (lambda v: v)
        self.fmt = fmt or fmt_ms
        self.rows = []

    def add(self, name, samples, note="", failed=None):
        self.rows.append((name, samples, note, failed))

    def show(self):
        # ratio against berth; if berth has no samples in this figure, against the first
        # runtime that has (the header says which)
        meds = {name: statistics.median(s) for name, s, _, failed in self.rows if s and not failed}
        ref = next((r.name for r in self.b.rts if r.name in meds), None)
        refmed = meds.get(ref)
        out(f"{self.title}  [{self.unit}]")
        out(f"  {'runtime':<9} {'n':>4} {'median':>9} {'min':>9} {'max':>9}   {ref + '/this' if ref else '':>11}")
        for name, s, note, failed in self.rows:
            if failed:
                out(f"  {name:<9} {'-':>4}  {failed}")
                continue
            if not s:
                out(f"  {name:<9} {0:>4}  (no samples) {note}")
                continue
            med = statistics.median(s)
            ratio = f"{refmed / med:.2f}x" if refmed and med else "-"
            out(f"  {name:<9} {len(s):>4} {self.fmt(med):>9} {self.fmt(min(s)):>9} {self.fmt(max(s)):>9}"
                f"   {ratio:>11}{('  ' + note) if note else ''}")
        out()


# --------------------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = a.work
        self.rootfs = a.rootfs
        self.cgparent = a.cgparent
        self.runid = a.runid
        self.quick = a.quick
        self.n = a.n or (8 if a.quick else 100)
        self.rounds_tput = a.tput_rounds or (1 if a.quick else 5)
        self.tput_total = a.tput_total or (40 if a.quick else 200)
        self.tput_par = a.tput_par
        self.levels = [int(x) for x in (a.levels or ("1,10,100" if a.quick else "1,100,1000")).split(",")]
        self.pop_budget = a.pop_budget or (20 if a.quick else 75)  # seconds per runtime to grow a population
        self.sd_slice = a.systemd_slice or None
        self.rts = []
        for spec in a.runtime:
            name, path = spec.split("=", 1)
            self.rts.append(Runtime(name, path, self))
        self.ref = None

    def why(self, rt, err):
        if rt.broken:
            return "not measured (see 'runtimes' above)"
        return err.get(rt.name)

    def ok_rts(self):
        return [r for r in self.rts if not r.broken]

    def interleave(self, fn, n, with_floor=None, tables=()):
        """Run fn(rt) for every working runtime, then the floor, n rounds. Collect samples."""
        samples = {r.name: [] for r in self.rts}
        samples["floor"] = []
        errors = {}
        for i in range(n):
            order = self.ok_rts()
            for rt in order:
                if rt.name in errors:
                    continue
                try:
                    samples[rt.name].append(fn(rt))
                except CallFailed as e:
                    errors[rt.name] = f"failed: {e}"
                    log(f"{rt.name}: {e}")
            if with_floor:
                samples["floor"].append(with_floor())
        return samples, errors

    def floor_once(self):
        r = call(["/usr/bin/unshare", *FLOOR_NS_FLAGS, "--root", self.rootfs, "/bin/true"])
        if not r.ok:
            raise CallFailed("floor: unshare failed: " + r.err.decode(errors="replace").strip())
        return r.ns

    # ---- figures

    def static_info(self):
        out("binaries")
        for rt in self.rts:
            if not os.path.isfile(rt.path):
                out(f"  {rt.name:<9} missing ({rt.path})")
                continue
            size = os.path.getsize(rt.path)
            try:
                ldd = subprocess.run(["ldd", rt.path], capture_output=True, text=True).stdout
            except OSError:
                ldd = ""
            libs = []
            for line in ldd.splitlines():
                w = line.strip().split()
                if not w:
                    continue
                if "not a dynamic" in line or "statically linked" in line:
                    libs = ["(static)"]
                    break
                n = w[0]
                if n.startswith("linux-vdso") or n.startswith("/lib64/ld-linux") or "ld-linux" in n:
                    continue
                libs.append(n)
            out(f"  {rt.name:<9} {size / 1024 / 1024:7.2f} MiB  {rt.path}  ({getattr(rt, 'version', '?')})")
            out(f"  {'':<9} {len(libs)} libs: {' '.join(libs) if libs else '(none)'}")
            if rt.name == "berth":
                # The hot-first layout (build.rs, hack/link/): a stale order file shows up as RSS.
                repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                chk = subprocess.run([sys.executable, os.path.join(repo, "hack/link/check.py"),
                                      rt.path, os.path.join(repo, "hack/link/berth.order")],
                                     capture_output=True, text=True)
                out(f"  {'':<9} {(chk.stdout or chk.stderr).strip()}")
        out()

    def run_lifecycle(self):
        log(f"lifecycle x{self.n}")
        s, err = self.interleave(lambda rt: rt.lifecycle(), self.n, with_floor=self.floor_once)
        t = Table(self, "lifecycle: create + start + wait for exit + delete of /bin/true")
        for rt in self.rts:
            if rt.broken or rt.name in err:
                t.add(rt.name, [], failed=self.why(rt, err))
            else:
                t.add(rt.name, [d["total"] for d in s[rt.name]])
        t.add("floor", s["floor"], note="unshare " + " ".join(FLOOR_NS_FLAGS) + " --root ROOTFS /bin/true")
        t.show()
        out("  lifecycle parts, medians [ms]  (wait = from `start` returning to the init's exit)")
        out(f"  {'runtime':<9} {'create':>9} {'start':>9} {'wait':>9} {'delete':>9}")
        for rt in self.rts:
            if rt.broken or rt.name in err or not s[rt.name]:
                continue
            med = [fmt_ms(statistics.median(d[k] for d in s[rt.name])) for k in ("create", "start", "wait", "delete")]
            out(f"  {rt.name:<9} " + " ".join(f"{m:>9}" for m in med))
        out()
        for rt in self.rts:
            if rt.name in err:
                rt.broken = err[rt.name]

    def dbus_cost(self):
        """berth's --debug phases of one create with the systemd driver: the D-Bus messages,
        the waits for systemd (round trips) and their time."""
        rt = next((r for r in self.ok_rts() if r.name == "berth" and r.systemd), None)
        if rt is None:
            return
        cid, bdir = rt.new_id("dbg", ["/bin/true"])
        log_path = os.path.join(bdir, "debug.log")
        r = call([rt.path, "--root", rt.root, "--debug", "--log", log_path, "--systemd-cgroup",
                  "create", "--bundle", bdir, cid])
        out("berth create --systemd-cgroup, --debug phases (one sample)")
        try:
            with open(log_path) as f:
                for line in f:
                    if "create phase" in line:
                        m = line.split("create phase", 1)[1].strip().rstrip('"}').strip()
                        out(f"  {m}")
        except OSError:
            out("  (no debug log)")
        if r.ok:
            rt.must(call(rt.argv("delete", "--force", cid)), "delete")
        rt.forget(cid)
        out()

    def run_rss(self):
        n = max(3, self.n // 4)
        kb = lambda v: f"{v / 1024:.1f}"
        tr = Table(self, "peak RSS of the `create` process (rsswrap: fork+exec+wait4 ru_maxrss = max over the "
                   "process and the descendants it reaped)", unit="MiB", fmt=kb)
        th = Table(self, "RSS held by a created, not yet started container (VmRSS of its init before `start`)",
                   unit="MiB", fmt=kb)
        if not self.a.rsswrap:
            out("peak RSS: not measured (no rsswrap helper: gcc missing?)")
            out()
            return
        log(f"rss x{n}")
        s, err = self.interleave(lambda rt: rt.rss_create(self.a.rsswrap), n)
        for rt in self.rts:
            if rt.broken or rt.name in err:
                tr.add(rt.name, [], failed=self.why(rt, err))
                th.add(rt.name, [], failed=self.why(rt, err))
            else:
                tr.add(rt.name, [d[0] for d in s[rt.name]])
                th.add(rt.name, [d[1] for d in s[rt.name] if d[1] is not None])
        tr.show()
        th.show()

    def run_run(self):
        log(f"run x{self.n}")

        def one(rt):
            cid, bdir = rt.new_id("run", ["/bin/true"])
            r = rt.must(call(rt.argv("run", "--bundle", bdir, cid)), "run")
            if os.path.isdir(os.path.join(rt.root, cid)):
                rt.delete_force(cid)
                raise CallFailed("run left the container behind")
            rt.forget(cid)
            reap_strays()
            return r.ns

        s, err = self.interleave(one, self.n, with_floor=self.floor_once)
        t = Table(self, "run of /bin/true (foreground; the runtime deletes the container itself)")
        for rt in self.rts:
            if rt.broken or rt.name in err:
                t.add(rt.name, [], failed=self.why(rt, err))
            else:
                t.add(rt.name, s[rt.name])
        t.add("floor", s["floor"])
        t.show()

    def run_exec(self):
        log(f"exec x{self.n}")
        sleepers = {}
        err = {}
        for rt in self.ok_rts():
            try:
                sleepers[rt.name] = rt.start_sleeper("ex")
            except CallFailed as e:
                err[rt.name] = f"failed to start the sleep container: {e}"
        try:
            def one(rt):
                if rt.name not in sleepers:
                    raise CallFailed(err[rt.name])
                cid, _ = sleepers[rt.name]
                return rt.must(call(rt.argv("exec", cid, "/bin/true")), "exec").ns

            s, err2 = self.interleave(one, self.n)
            err.update(err2)
        finally:
            for rt in self.rts:
                if rt.name in sleepers:
                    rt.delete_force(sleepers[rt.name][0])
            reap_strays()
        t = Table(self, "exec of /bin/true into a running container (its init runs `sleep`)")
        for rt in self.rts:
            if rt.broken or rt.name in err:
                t.add(rt.name, [], failed=self.why(rt, err))
            else:
                t.add(rt.name, s[rt.name])
        t.show()

    def grow(self, rt, pop, target, deadline):
        """Grow rt's population of running sleep containers to target (4 at a time)."""
        lock = threading.Lock()
        errs = []

        def worker():
            while True:
                with lock:
                    if (len(pop) + worker.inflight >= target or errs or STOP.is_set()
                            or time.monotonic() > deadline):
                        return
                    worker.inflight += 1
                try:
                    cid, _ = rt.start_sleeper("pop")
                    with lock:
                        pop.append(cid)
                except CallFailed as e:
                    with lock:
                        errs.append(str(e))
                finally:
                    with lock:
                        worker.inflight -= 1

        worker.inflight = 0
        run_threads(worker, 4)
        if errs:
            raise CallFailed(errs[0])

    def run_state_list(self):
        pops = {rt.name: [] for rt in self.rts}
        capped = {}
        err = {}
        res = {}  # (fig, level) -> {rt: samples}
        levels_done = []
        try:
            for level in self.levels:
                log(f"state/list: growing populations to {level}")
                for rt in self.ok_rts():
                    if rt.name in err or rt.name in capped:
                        continue
                    t0 = time.monotonic()
                    have = len(pops[rt.name])
                    try:
                        self.grow(rt, pops[rt.name], level, t0 + self.pop_budget)
                    except CallFailed as e:
                        err[rt.name] = f"failed while creating containers: {e}"
                        continue
                    dt = time.monotonic() - t0
                    if len(pops[rt.name]) < level:
                        capped[rt.name] = len(pops[rt.name])
                        log(f"{rt.name}: capped at {len(pops[rt.name])} containers (budget {self.pop_budget}s)")
                    elif len(pops[rt.name]) > have:
                        log(f"{rt.name}: +{len(pops[rt.name]) - have} containers in {dt:.1f}s")
                    # sanity: list shows them all
                    ls = call(rt.argv("list", "-q"), capture=True)
                    n = len(ls.out.split())
                    if not ls.ok or n != len(pops[rt.name]):
                        err[rt.name] = f"list -q shows {n} containers, expected {len(pops[rt.name])}"
                have_n = {rt.name: len(pops[rt.name]) for rt in self.rts}
                n = self.n

                def st(rt):
                    if rt.name in err:
                        raise CallFailed(err[rt.name])
                    return rt.must(call(rt.argv("state", pops[rt.name][0]), capture=True), "state").ns

                def ls(rt):
                    if rt.name in err:
                        raise CallFailed(err[rt.name])
                    return rt.must(call(rt.argv("list"), capture=True), "list").ns

                log(f"state/list at {level}: x{n}")
                s1, e1 = self.interleave(st, n)
                s2, e2 = self.interleave(ls, n)
                for k, v in list(e1.items()) + list(e2.items()):
                    err.setdefault(k, v)
                res[("state", level)] = (s1, dict(have_n), dict(err))
                res[("list", level)] = (s2, dict(have_n), dict(err))
                levels_done.append(level)
        finally:
            log("state/list: deleting populations")
            for rt in self.rts:
                self.delete_many(rt, pops[rt.name])
            reap_strays()
        for fig in ("state", "list"):
            for level in levels_done:
                s, have_n, err = res[(fig, level)]
                what = "state <id>" if fig == "state" else "list (table format)"
                t = Table(self, f"{what} with {level} container(s) present (running `sleep`)")
                for rt in self.rts:
                    if rt.broken or rt.name in err:
                        t.add(rt.name, [], failed=self.why(rt, err))
                    else:
                        note = ("" if have_n[rt.name] == level
                                else f"only {have_n[rt.name]} containers (population budget POP_BUDGET)")
                        t.add(rt.name, s[rt.name], note=note)
                t.show()

    def delete_many(self, rt, cids):
        lock = threading.Lock()
        todo = list(cids)

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    cid = todo.pop()
                rt.delete_force(cid)

        ths = [threading.Thread(target=worker) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()

    def run_throughput(self):
        total, par = self.tput_total, self.tput_par
        log(f"throughput: {total} lifecycles, {par} at a time, x{self.rounds_tput} rounds")

        def one_round(rt):
            lock = threading.Lock()
            state = {"left": total, "err": None}

            def worker():
                while True:
                    with lock:
                        if state["left"] <= 0 or state["err"] or STOP.is_set():
                            return
                        state["left"] -= 1
                    try:
                        rt.lifecycle(keep_strays=True)
                    except CallFailed as e:
                        with lock:
                            state["err"] = str(e)

            t0 = NS()
            run_threads(worker, par)
            t1 = NS()
            reap_strays()
            if state["err"]:
                raise CallFailed(state["err"])
            return t1 - t0

        s, err = self.interleave(one_round, self.rounds_tput)
        sec = lambda v: f"{v / 1e9:.2f}"
        t = Table(self, f"throughput: wall time for {total} lifecycles, {par} at a time", unit="s", fmt=sec)
        for rt in self.rts:
            if rt.broken or rt.name in err:
                t.add(rt.name, [], failed=self.why(rt, err))
            else:
                rate = total / (statistics.median(s[rt.name]) / 1e9)
                t.add(rt.name, s[rt.name], note=f"= {rate:.1f} lifecycles/s")
        t.show()

    def main(self):
        t_start = time.monotonic()
        set_subreaper()
        out(f"berth bench  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  host {os.uname().nodename} "
            f"kernel {os.uname().release}  cpus {os.cpu_count()}")
        out(f"setting: {self.a.setting}")
        out(f"driver: python3 {sys.version.split()[0]}, posix_spawn + wait4, perf_counter_ns; "
            f"N={self.n}{' QUICK' if self.quick else ''}; bundle: busybox rootfs (ro), ociVersion 1.0.2, "
            f"memory 256M + pids 128 limits, caps {'+'.join(CAP_SETS)}, cgroupsPath /{self.cgparent}/<id>")
        out()
        for rt in self.rts:
            rt.broken = rt.probe()
            log(f"{rt.name}: {'OK' if not rt.broken else 'BROKEN: ' + rt.broken}")
        out("runtimes")
        for rt in self.rts:
            out(f"  {rt.name:<9} {'ok' if not rt.broken else 'NOT MEASURED: ' + rt.broken}")
        out()
        ok = self.ok_rts()
        self.static_info()
        if not ok:
            out("no working runtime; nothing to measure")
            return 1
        if self.sd_slice:
            # The systemd driver (in the systemd guest): what the driver changes.
            self.dbus_cost()
            self.run_lifecycle()
            self.run_run()
        else:
            self.run_lifecycle()
            self.run_rss()
            self.run_run()
            self.run_exec()
            self.run_state_list()
            self.run_throughput()
        out("ratio column X/this: median of X (berth, or the first runtime that has numbers) / median of "
            "that row; for times and sizes < 1 means X is smaller/faster.")
        out(f"total bench time {time.monotonic() - t_start:.0f}s")
        return 0

    def cleanup(self):
        for rt in self.rts:
            if rt.live:
                log(f"cleanup: deleting {len(rt.live)} leftover {rt.name} container(s)")
                self.delete_many(rt, list(rt.live))
        reap_strays()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--cgparent", required=True)
    ap.add_argument("--runid", required=True)
    ap.add_argument("--setting", default="?")
    ap.add_argument("--runtime", action="append", default=[], help="name=path (repeatable)")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--levels", default="")
    ap.add_argument("--pop-budget", type=float, default=0)
    ap.add_argument("--tput-total", type=int, default=0)
    ap.add_argument("--tput-par", type=int, default=4)
    ap.add_argument("--tput-rounds", type=int, default=0)
    ap.add_argument("--out", default="")
    ap.add_argument("--rsswrap", default="")
    ap.add_argument("--systemd-slice", default="",
                    help="use the systemd cgroup driver (runtimes named *-fs excepted), units in this slice")
    a = ap.parse_args()
    b = Bench(a)
    rc = 1
    try:
        rc = b.main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        STOP.set()
        log("interrupted; cleaning up")
        rc = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        b.cleanup()
        if a.out and OUT:
            with open(a.out, "w") as f:
                f.write("\n".join(OUT) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
