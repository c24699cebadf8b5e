//! The harness: runtime invocation with timeouts, per-scenario bundles, observation via
//! the probe, and cleanup that runs whatever the scenario did (error or panic).

use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Why a scenario did not pass.
#[derive(Debug)]
pub enum Outcome {
    Fail(String),
    Skip(String),
}

pub type Res<T = ()> = Result<T, Outcome>;

impl From<String> for Outcome {
    fn from(s: String) -> Self {
        Outcome::Fail(s)
    }
}

#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        let ok: bool = $cond;
        if !ok {
            return Err($crate::harness::Outcome::Fail(format!($($arg)*)));
        }
    };
}

#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::harness::Outcome::Fail(format!($($arg)*)))
    };
}

#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        return Err($crate::harness::Outcome::Skip(format!($($arg)*)))
    };
}

/// Shared, per-run settings.
pub struct Runner {
    pub runtime: PathBuf,
    /// Private `--root` state directory for the runtime.
    pub root: PathBuf,
    /// Temp dir holding bundles and scratch files.
    pub tmp: PathBuf,
    pub rootfs: PathBuf,
    pub probe: PathBuf,
    /// Test-only cgroup parent, e.g. `/berth-integration-1234`.
    pub cg_parent: String,
    pub seq: AtomicU32,
    pub verbose: bool,
}

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct CmdOut {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl CmdOut {
    pub fn brief(&self) -> String {
        let mut e = self.stderr.trim().replace('\n', " | ");
        if e.len() > 300 {
            e.truncate(300);
        }
        format!(
            "exit {:?}{}: {}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            e
        )
    }
}

/// How a container process ended, seen by the reaper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Gone, but not our child, so the status is unknown.
    Unknown,
}

/// One scenario's bundle.
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub cfg: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    pub fn write_config(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.cfg).unwrap(),
        )
        .expect("write config.json");
    }
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
    /// The `process.args` of the config.
    pub fn set_args(&mut self, args: &[&str]) {
        self.cfg["process"]["args"] = json!(args);
    }
    pub fn add_mount(&mut self, m: Value) {
        self.cfg["mounts"].as_array_mut().unwrap().push(m);
    }
}

/// Observation from one probe run.
pub struct Obs {
    pub j: Value,
    pub exit: Option<Exit>,
}

impl Obs {
    pub fn status(&self, key: &str) -> String {
        self.j["status"][key].as_str().unwrap_or("").to_string()
    }
    pub fn str(&self, key: &str) -> String {
        match &self.j[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            v => v.to_string(),
        }
    }
    /// Result of op number `i`: Ok(value) or Err(errno).
    pub fn op(&self, i: usize) -> Result<Value, i64> {
        let r = &self.j["ops"][i]["r"];
        if let Some(v) = r.get("ok") {
            Ok(v.clone())
        } else {
            Err(r["err"].as_i64().unwrap_or(-1))
        }
    }
    pub fn op_str(&self, i: usize) -> Result<String, i64> {
        self.op(i)
            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
    }
    pub fn mountinfo(&self) -> Vec<MountInfo> {
        self.j["mountinfo"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| MountInfo::parse(l.as_str()?))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The last (visible) mount at `dest`.
    pub fn mount_at(&self, dest: &str) -> Option<MountInfo> {
        self.mountinfo().into_iter().rev().find(|m| m.dest == dest)
    }
    pub fn limit(&self, name: &str) -> Option<(String, String)> {
        let a = self.j["limits"][name].as_array()?;
        Some((a[0].as_str()?.to_string(), a[1].as_str()?.to_string()))
    }
}

#[derive(Debug, Clone)]
pub struct MountInfo {
    pub dest: String,
    pub opts: Vec<String>,
    pub optional: Vec<String>,
    pub fstype: String,
    pub super_opts: Vec<String>,
}

impl MountInfo {
    fn parse(l: &str) -> Option<MountInfo> {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        Some(MountInfo {
            dest: f.get(4)?.replace("\\040", " "),
            opts: f.get(5)?.split(',').map(str::to_string).collect(),
            optional: f[6..sep].iter().map(|x| x.to_string()).collect(),
            fstype: f.get(sep + 1)?.to_string(),
            super_opts: f
                .get(sep + 3)
                .map(|x| x.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
    pub fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt)
    }
    pub fn propagation(&self) -> String {
        let mut p: Vec<&str> = self
            .optional
            .iter()
            .map(|o| o.split(':').next().unwrap_or(""))
            .collect();
        p.sort();
        if p.is_empty() {
            "private".into()
        } else {
            p.join("+")
        }
    }
}

pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);

/// The base config every scenario starts from: a minimal, runc-spec-like Linux config.
pub fn base_config(cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/probe"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    })
}

/// Per-scenario context; everything it creates is registered for cleanup.
pub struct Ctx<'a> {
    pub r: &'a Runner,
    pub name: String,
    containers: Vec<String>,
    pids: Vec<i32>,
    helpers: Vec<Child>,
    mounts: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    pub deadline: Instant,
}

fn now_deadline(d: Duration) -> Instant {
    Instant::now() + d
}

/// Non-blocking reap of `pid`: Some(exit) if it is gone.
fn try_reap(pid: i32) -> Option<Exit> {
    let mut st = 0;
    // SAFETY: plain waitpid on a pid we know.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    if r == pid {
        if libc::WIFEXITED(st) {
            return Some(Exit::Code(libc::WEXITSTATUS(st)));
        }
        if libc::WIFSIGNALED(st) {
            return Some(Exit::Signal(libc::WTERMSIG(st)));
        }
        return Some(Exit::Unknown);
    }
    if r == 0 {
        return None;
    }
    // Not our child: look at /proc.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => Some(Exit::Unknown),
        Ok(s) => {
            let st = s
                .rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string));
            if matches!(st.as_deref(), Some("Z") | Some("X")) {
                Some(Exit::Unknown)
            } else {
                None
            }
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn new(r: &'a Runner, name: &str, timeout: Duration) -> Self {
        Ctx {
            r,
            name: name.to_string(),
            containers: vec![],
            pids: vec![],
            helpers: vec![],
            mounts: vec![],
            dirs: vec![],
            deadline: now_deadline(timeout),
        }
    }

    fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(500))
            .min(CMD_TIMEOUT)
    }

    pub fn log(&self, msg: &str) {
        if self.r.verbose {
            eprintln!("  [{}] {msg}", self.name);
        }
    }

    /// Unique container id for this scenario.
    pub fn new_id(&self) -> String {
        let n = self.r.seq.fetch_add(1, Ordering::SeqCst);
        let short: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        format!("bi{}-{n}-{short}", std::process::id())
    }

    /// New bundle: a private copy of the rootfs with the probe at /probe and a marker.
    pub fn bundle(&mut self) -> Bundle {
        let id = self.new_id();
        let dir = self.r.tmp.join(&id);
        fs::create_dir_all(&dir).expect("mkdir bundle");
        self.dirs.push(dir.clone());
        let st = Command::new("cp")
            .arg("-a")
            .arg(&self.r.rootfs)
            .arg(dir.join("rootfs"))
            .status()
            .expect("cp rootfs");
        assert!(st.success(), "copying rootfs failed");
        // The rootfs dir made by mkrootfs.sh is 0700; a non-root or user-namespaced
        // container process must be able to traverse it.
        fs::set_permissions(dir.join("rootfs"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(&self.r.probe, dir.join("rootfs/probe")).expect("copy probe");
        fs::write(dir.join("rootfs/marker"), "berth-integration-rootfs\n").unwrap();
        let cg = format!("{}/{}", self.r.cg_parent, id);
        Bundle {
            cfg: base_config(&cg),
            id,
            dir,
        }
    }

    /// Run the runtime with `args`; stdout/stderr captured via files.
    pub fn rt(&mut self, args: &[&str]) -> CmdOut {
        self.rt_via(&[], args)
    }

    /// As `rt`, with the runtime started through `wrap` (`nsenter -t PID -m --`, say).
    pub fn rt_via(&mut self, wrap: &[&str], args: &[&str]) -> CmdOut {
        if args.first() == Some(&"create")
            && let Some(id) = args.last()
        {
            self.containers.push(id.to_string());
        }
        let n = self.r.seq.fetch_add(1, Ordering::SeqCst);
        let o = self.r.tmp.join(format!("cmd-{n}.out"));
        let e = self.r.tmp.join(format!("cmd-{n}.err"));
        let mut c = match wrap.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(&self.r.runtime);
                c
            }
            None => Command::new(&self.r.runtime),
        };
        c.arg("--root").arg(&self.r.root).args(args);
        c.stdin(Stdio::null())
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap());
        let res = self.run_child(c, self.left());
        let mut out = res;
        out.stdout = fs::read_to_string(&o).unwrap_or_default();
        out.stderr = fs::read_to_string(&e).unwrap_or_default();
        let _ = fs::remove_file(&o);
        let _ = fs::remove_file(&e);
        self.log(&format!("{:?} -> {}", args, out.brief()));
        out
    }

    fn run_child(&self, mut c: Command, timeout: Duration) -> CmdOut {
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => {
                return CmdOut {
                    ok: false,
                    code: None,
                    stdout: String::new(),
                    stderr: format!("spawn failed: {e}"),
                    timed_out: false,
                };
            }
        };
        let end = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    return CmdOut {
                        ok: st.success(),
                        code: st.code(),
                        stdout: String::new(),
                        stderr: String::new(),
                        timed_out: false,
                    };
                }
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return CmdOut {
                        ok: false,
                        code: None,
                        stdout: String::new(),
                        stderr: String::new(),
                        timed_out: true,
                    };
                }
            }
        }
    }

    /// `create` with the bundle's stdio files as the container's fds 0-2.
    pub fn create_with(&mut self, b: &Bundle, extra_fd: Option<i32>) -> CmdOut {
        b.write_config();
        self.containers.push(b.id.clone());
        let mut c = Command::new(&self.r.runtime);
        c.arg("--root")
            .arg(&self.r.root)
            .arg("create")
            .arg("--bundle")
            .arg(&b.dir)
            .arg(&b.id)
            .current_dir(&b.dir);
        c.stdin(Stdio::null())
            .stdout(fs::File::create(b.path("stdout")).unwrap())
            .stderr(fs::File::create(b.path("stderr")).unwrap());
        if let Some(fd) = extra_fd {
            let f = fs::File::create(b.path("extra-fd")).unwrap();
            use std::os::fd::IntoRawFd;
            let raw = f.into_raw_fd();
            // SAFETY: dup2 in the child between fork and exec; the copy is not CLOEXEC.
            unsafe {
                c.pre_exec(move || {
                    if libc::dup2(raw, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let out = self.run_child(c, self.left());
            // SAFETY: closing our copy of the fd we opened above.
            unsafe { libc::close(raw) };
            return self.finish_create(b, out);
        }
        let out = self.run_child(c, self.left());
        self.finish_create(b, out)
    }

    fn finish_create(&mut self, b: &Bundle, mut out: CmdOut) -> CmdOut {
        out.stderr = b.stderr();
        self.log(&format!("create {} -> {}", b.id, out.brief()));
        out
    }

    /// `create --console-socket`: returns the create result and the pty master the
    /// runtime sent over the socket (if any).
    pub fn create_with_console(&mut self, b: &Bundle) -> (CmdOut, Option<std::os::fd::OwnedFd>) {
        use std::os::unix::net::UnixListener;
        b.write_config();
        self.containers.push(b.id.clone());
        let sock = self.r.tmp.join(format!("{}.sock", b.id));
        let l = UnixListener::bind(&sock).expect("bind console socket");
        l.set_nonblocking(true).unwrap();
        let end = Instant::now() + self.left();
        let th = std::thread::spawn(move || {
            while Instant::now() < end {
                match l.accept() {
                    Ok((st, _)) => return recv_fd(&st),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            None
        });
        let mut c = Command::new(&self.r.runtime);
        c.arg("--root")
            .arg(&self.r.root)
            .arg("create")
            .arg("--console-socket")
            .arg(&sock)
            .arg("--bundle")
            .arg(&b.dir)
            .arg(&b.id)
            .current_dir(&b.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(b.path("stdout")).unwrap())
            .stderr(fs::File::create(b.path("stderr")).unwrap());
        let out = self.run_child(c, self.left());
        let out = self.finish_create(b, out);
        let fd = if out.ok {
            th.join().ok().flatten()
        } else {
            None
        };
        let _ = fs::remove_file(&sock);
        (out, fd)
    }

    pub fn create(&mut self, b: &Bundle) -> CmdOut {
        self.create_with(b, None)
    }

    pub fn create_ok(&mut self, b: &Bundle) -> Res<i32> {
        let o = self.create(b);
        if !o.ok {
            fail!("create failed: {}", o.brief());
        }
        let st = self.state_ok(&b.id)?;
        let pid = st["pid"].as_i64().unwrap_or(0) as i32;
        ensure!(pid > 0, "state after create has no pid: {st}");
        self.pids.push(pid);
        Ok(pid)
    }

    pub fn state(&mut self, id: &str) -> Result<Value, CmdOut> {
        let o = self.rt(&["state", id]);
        if !o.ok {
            return Err(o);
        }
        serde_json::from_str(&o.stdout).map_err(|e| CmdOut {
            ok: false,
            stderr: format!("state output is not JSON ({e}): {}", o.stdout),
            ..o
        })
    }

    pub fn state_ok(&mut self, id: &str) -> Res<Value> {
        self.state(id)
            .map_err(|o| Outcome::Fail(format!("state {id} failed: {}", o.brief())))
    }

    pub fn start_ok(&mut self, id: &str) -> Res {
        let o = self.rt(&["start", id]);
        ensure!(o.ok, "start failed: {}", o.brief());
        Ok(())
    }

    pub fn delete_ok(&mut self, id: &str) -> Res {
        let o = self.rt(&["delete", id]);
        ensure!(o.ok, "delete failed: {}", o.brief());
        Ok(())
    }

    /// Wait for a container process to end (bounded).
    pub fn wait_exit(&mut self, pid: i32, timeout: Duration) -> Option<Exit> {
        let end = Instant::now() + timeout.min(self.left());
        loop {
            if let Some(e) = try_reap(pid) {
                self.pids.retain(|p| *p != pid);
                return Some(e);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_status(&mut self, id: &str, want: &str, timeout: Duration) -> Res<Value> {
        let end = Instant::now() + timeout;
        loop {
            let st = self.state_ok(id)?;
            if st["status"] == want {
                return Ok(st);
            }
            if Instant::now() >= end {
                fail!("status never became {want:?}: {st}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// create + start + wait + read the probe's JSON from stdout + delete.
    pub fn run(&mut self, b: &Bundle) -> Res<Obs> {
        let pid = self.create_ok(b)?;
        self.start_ok(&b.id)?;
        let exit = self.wait_exit(pid, Duration::from_secs(15));
        ensure!(exit.is_some(), "container process {pid} did not exit");
        let out = b.stdout();
        let o = self.rt(&["delete", &b.id]);
        ensure!(o.ok, "delete after exit failed: {}", o.brief());
        let j: Value = serde_json::from_str(out.trim()).map_err(|e| {
            Outcome::Fail(format!(
                "no probe report ({e}); exit {exit:?}; stdout {:?}; stderr {:?}",
                out.chars().take(200).collect::<String>(),
                b.stderr().chars().take(300).collect::<String>()
            ))
        })?;
        Ok(Obs { j, exit })
    }

    /// Probe with `ops`, in a bundle modified by `f`.
    pub fn probe(&mut self, ops: &[&str], f: impl FnOnce(&mut Bundle)) -> Res<Obs> {
        let mut b = self.bundle();
        let mut args = vec!["/probe"];
        args.extend_from_slice(ops);
        b.set_args(&args);
        f(&mut b);
        self.run(&b)
    }

    /// The probe in the base bundle (the baseline) and in the modified one.
    pub fn probe_pair(&mut self, ops: &[&str], f: impl FnOnce(&mut Bundle)) -> Res<(Obs, Obs)> {
        let base = self.probe(ops, |_| {}).map_err(|e| match e {
            Outcome::Fail(m) => Outcome::Fail(format!("baseline: {m}")),
            s => s,
        })?;
        let obs = self.probe(ops, f)?;
        Ok((base, obs))
    }

    /// Path of a cgroup v1 file for container `id`.
    pub fn cg_path(&self, ctrl: &str, id: &str, file: &str) -> PathBuf {
        PathBuf::from(format!(
            "/sys/fs/cgroup/{ctrl}{}/{id}/{file}",
            self.r.cg_parent
        ))
    }

    pub fn cg_read(&self, ctrl: &str, id: &str, file: &str) -> Res<String> {
        let p = self.cg_path(ctrl, id, file);
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| Outcome::Fail(format!("reading {}: {e}", p.display())))
    }

    /// Start a host helper process (killed at cleanup).
    pub fn helper(&mut self, argv: &[&str]) -> u32 {
        let ch = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helper");
        let pid = ch.id();
        self.helpers.push(ch);
        pid
    }

    /// Mount on the host (unmounted at cleanup).
    pub fn host_mount(&mut self, src: &str, target: &Path, fstype: &str, flags: u64) -> Res {
        use std::ffi::CString;
        let s = CString::new(src).unwrap();
        let t = CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
        let ty = CString::new(fstype).unwrap();
        // SAFETY: valid C strings; no data argument.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                t.as_ptr(),
                ty.as_ptr(),
                flags as libc::c_ulong,
                std::ptr::null(),
            )
        };
        if r != 0 {
            fail!(
                "host mount {}: {}",
                target.display(),
                std::io::Error::last_os_error()
            );
        }
        self.mounts.push(target.to_path_buf());
        Ok(())
    }

    /// A mount made on the host by other means (unshare --net=FILE): unmounted at cleanup.
    pub fn register_mount(&mut self, target: &Path) {
        self.mounts.push(target.to_path_buf());
    }

    /// Undo everything this scenario created.
    pub fn cleanup(&mut self) {
        for id in self.containers.clone().iter().rev() {
            let st = self.rt(&["state", id]);
            if st.ok {
                let _ = self.rt(&["kill", id, "KILL"]);
                let _ = self.rt(&["delete", "--force", id]);
                if self.rt(&["state", id]).ok {
                    eprintln!("warning: container {id} still exists after delete --force");
                }
            }
        }
        // Anything still in this scenario's cgroups is ours (a stuck init, say): kill it.
        for id in self.containers.clone() {
            for ctrl in ["pids", "memory", "cpu", "devices", "freezer"] {
                let p = self.cg_path(ctrl, &id, "cgroup.procs");
                for pid in read_pids(&p) {
                    // SAFETY: killing a process inside our own test-only cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for pid in std::mem::take(&mut self.pids) {
            // Only kill a pid that is still our own unreaped child, so pid reuse can't
            // hit an unrelated process.
            let mut st = 0;
            // SAFETY: waitpid/kill on a pid we know to be our child.
            unsafe {
                if libc::waitpid(pid, &mut st, libc::WNOHANG) == 0 {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut st, 0);
                }
            }
        }
        for mut h in std::mem::take(&mut self.helpers) {
            let _ = h.kill();
            let _ = h.wait();
        }
        for m in std::mem::take(&mut self.mounts).iter().rev() {
            let t = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: unmounting a path we mounted.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
        for d in std::mem::take(&mut self.dirs) {
            let _ = fs::remove_dir_all(&d);
        }
        reap_orphans();
    }
}

/// Receive one fd (SCM_RIGHTS) from a unix stream.
fn recv_fd(st: &std::os::unix::net::UnixStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    st.set_nonblocking(false).ok()?;
    st.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = [0u8; 4096];
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr/iovec point at live local buffers of the stated sizes; the cmsg
    // walk uses the libc macros on that buffer.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(st.as_raw_fd(), &mut msg, 0) < 0 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

fn read_pids(p: &Path) -> Vec<i32> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p| *p > 1)
        .collect()
}

/// Reap every zombie child (orphans reparented to us as subreaper). Only called when no
/// std `Child` of ours is outstanding.
pub fn reap_orphans() {
    loop {
        let mut st = 0;
        // SAFETY: reaping our own children.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// Kill whatever is left in the test cgroup tree (it is ours), then remove the tree from
/// every hierarchy (children first). Returns the paths that could not be removed.
pub fn remove_cgroup_tree(parent: &str) -> Vec<String> {
    for _ in 0..3 {
        let mut any = false;
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for h in rd.filter_map(|e| e.ok()) {
                let p = h.path().join(parent.trim_start_matches('/'));
                for pid in procs_below(&p) {
                    any = true;
                    // SAFETY: the process is inside our own test-only cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if !any {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        reap_orphans();
    }
    let mut left = vec![];
    let Ok(rd) = fs::read_dir("/sys/fs/cgroup") else {
        return left;
    };
    for h in rd.filter_map(|e| e.ok()) {
        let p = h.path().join(parent.trim_start_matches('/'));
        if p.is_dir() {
            rmdir_tree(&p);
            if p.exists() {
                left.push(p.display().to_string());
            }
        }
    }
    left
}

fn procs_below(p: &Path) -> Vec<i32> {
    let mut v = read_pids(&p.join("cgroup.procs"));
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                v.extend(procs_below(&e.path()));
            }
        }
    }
    v
}

fn rmdir_tree(p: &Path) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if fs::remove_dir(p).is_ok() || !p.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A seccomp notify agent for `listenerPath`: accepts one connection on `sock`, takes the
/// container process state and the listener fd (SCM_RIGHTS), and answers every notification
/// with `-errno` until no notification comes for `idle`. Returns the state and the syscall
/// numbers it saw (or what went wrong).
pub fn seccomp_agent(
    sock: &Path,
    errno: i32,
    idle: Duration,
) -> std::io::Result<std::thread::JoinHandle<Result<(Value, Vec<i32>), String>>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let listener = std::os::unix::net::UnixListener::bind(sock)?;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("no runtime connected to listenerPath: {e}")),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: recvmsg into buffers that outlive the call; the control buffer is u64-aligned.
        let (n, fd) = unsafe {
            let mut mh: libc::msghdr = std::mem::zeroed();
            mh.msg_iov = &mut iov;
            mh.msg_iovlen = 1;
            mh.msg_control = cmsg.as_mut_ptr().cast();
            mh.msg_controllen = std::mem::size_of_val(&cmsg) as _;
            let n = libc::recvmsg(conn.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC);
            if n <= 0 {
                return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
            }
            let c = libc::CMSG_FIRSTHDR(&mh);
            if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
                return Err("the state came without an SCM_RIGHTS fd".into());
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
            (n as usize, OwnedFd::from_raw_fd(fd))
        };
        let state: Value = serde_json::from_slice(&buf[..n])
            .map_err(|e| format!("the state is not JSON ({e}): {:?}", &buf[..n.min(200)]))?;
        // struct seccomp_notif / seccomp_notif_resp (linux/seccomp.h), as u64 words:
        // notif = id, pid|flags, nr|arch, ip, args[6]; resp = id, val, error|flags.
        const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
        const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
        let mut seen = vec![];
        loop {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one descriptor we own.
            let r = unsafe { libc::poll(&mut pfd, 1, idle.as_millis() as i32) };
            if r <= 0 || pfd.revents & libc::POLLIN == 0 {
                break;
            }
            let mut notif = [0u64; 10];
            // SAFETY: the kernel fills 80 bytes (struct seccomp_notif) into the array.
            if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, notif.as_mut_ptr()) } < 0 {
                continue;
            }
            seen.push((notif[2] & 0xffff_ffff) as i32);
            let resp = [notif[0], 0u64, (-errno) as u32 as u64];
            // SAFETY: 24 bytes of struct seccomp_notif_resp; a stale id just fails.
            unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
        }
        Ok((state, seen))
    }))
}
