//! A private containerd with the CRI plugin: own root, state, sockets and config, the runtime
//! under test as the default runtime (runc shim, `BinaryName`), started inside its own network
//! namespace (`ip netns add`) so that CNI (bridge + host-local + loopback, private conf, bin and
//! IPAM dirs) touches nothing on the host. Stopped and restarted by its PID; `teardown` removes
//! whatever is left (processes, mounts, cgroups, the namespace, the work dir).

use crate::host;
use std::fs;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Directories containerd and CNI create outside their configured roots whatever they are
/// told (shim sockets, libcni's cache). Those that did not exist before are removed after the
/// run if they are empty; a non-empty one is reported as a leftover.
pub const SYS_PATHS: &[&str] = &[
    "/run/containerd/s",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/run/netns",
];

pub struct Daemon {
    pub work: PathBuf,
    pub netns: String,
    pub runtime: PathBuf,
    /// SystemdCgroup = true in the runc options (the systemd cgroup driver).
    pub systemd: bool,
    pub sandbox_image: String,
    child: Option<Child>,
    existed: Vec<(String, bool)>,
    netns_made: bool,
    /// Paths that existed before under the cgroup roots kubelet's layout uses.
    pub cg_existed: Vec<PathBuf>,
    /// Pod cgroup dirs (relative to each hierarchy root) made during the run; also appended
    /// to <work>/cg-dirs so that `berth-cri cleanup` finds them after a crash.
    pub cg_dirs: Vec<String>,
    torn_down: bool,
}

impl Daemon {
    pub fn new(
        work: PathBuf,
        tag: &str,
        runtime: PathBuf,
        systemd: bool,
        sandbox_image: &str,
    ) -> Self {
        // BCRI_SHARED_PARENTS: other runs use the same parents at the same time (hack/cri.sh
        // with CRI_PARALLEL=1, which removes them after all runs): kept as if they had existed
        let shared = std::env::var_os("BCRI_SHARED_PARENTS").is_some();
        let existed = SYS_PATHS
            .iter()
            .map(|p| (p.to_string(), shared || Path::new(p).exists()))
            .collect();
        let mut cg_existed = vec![];
        for h in host::hierarchies() {
            for sub in [
                "kubepods",
                "kubepods/burstable",
                "kubepods.slice",
                "kubepods.slice/kubepods-burstable.slice",
            ] {
                let p = h.mountpoint.join(sub);
                if shared || p.exists() {
                    cg_existed.push(p);
                }
            }
        }
        Daemon {
            work,
            netns: format!("bcri-{tag}"),
            runtime,
            systemd,
            sandbox_image: sandbox_image.to_string(),
            child: None,
            existed,
            netns_made: false,
            cg_existed,
            cg_dirs: vec![],
            torn_down: false,
        }
    }

    /// The daemon of an earlier run whose work dir is `work` (for `berth-cri cleanup`).
    pub fn from_work(work: PathBuf) -> Self {
        let tag = work
            .file_name()
            .map(|f| f.to_string_lossy().trim_start_matches("bcri-").to_string())
            .unwrap_or_default();
        let mut d = Daemon::new(work.clone(), &tag, PathBuf::new(), false, "");
        d.netns_made = d.netns_path().exists();
        d.cg_dirs = host::read(work.join("cg-dirs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        d
    }

    pub fn add_cg_dir(&mut self, rel: String) {
        use std::io::Write;
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("cg-dirs"))
        {
            let _ = writeln!(f, "{rel}");
        }
        self.cg_dirs.push(rel);
    }

    pub fn sock(&self) -> PathBuf {
        self.work.join("containerd.sock")
    }
    pub fn rt_root(&self) -> PathBuf {
        self.work.join("rt-root")
    }
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }
    pub fn log(&self) -> PathBuf {
        self.work.join("containerd.log")
    }
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Work dir, CNI and containerd config, network namespace (lo up).
    pub fn setup(&mut self) -> Result<(), String> {
        let w = &self.work;
        for d in [
            "root", "state", "opt", "rt-root", "cni/bin", "cni/conf", "cni/ipam", "logs", "host",
        ] {
            fs::create_dir_all(w.join(d))
                .map_err(|e| format!("mkdir {}: {e}", w.join(d).display()))?;
        }
        for p in ["bridge", "host-local", "loopback"] {
            let src = ["/usr/lib/cni", "/opt/cni/bin"]
                .iter()
                .map(|d| Path::new(d).join(p))
                .find(|p| p.exists())
                .ok_or(format!(
                    "CNI plugin {p} not found in /usr/lib/cni (install containernetworking-plugins)"
                ))?;
            std::os::unix::fs::symlink(&src, w.join("cni/bin").join(p))
                .map_err(|e| format!("symlink {p}: {e}"))?;
        }
        let cni = format!(
            r#"{{"cniVersion": "1.0.0", "name": "bcri", "plugins": [
  {{"type": "bridge", "bridge": "bcri0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {{"type": "host-local", "dataDir": "{}", "ranges": [[{{"subnet": "10.222.0.0/16"}}]],
            "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "loopback"}}]}}
"#,
            w.join("cni/ipam").display()
        );
        fs::write(w.join("cni/conf/10-bcri.conflist"), cni).map_err(|e| e.to_string())?;
        let d = w.display();
        // a table of its own, last: every key after a [table] header belongs to that table
        let debug = if std::env::var_os("BCRI_DEBUG").is_some() {
            "[debug]\n  level = \"debug\"\n"
        } else {
            ""
        };
        let cfg = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{img}"
  # CAP_SYS_RESOURCE is missing here: the sandbox's -998 cannot be set (see host notes)
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # pod network namespaces under the state dir, not /run/netns
  netns_mounts_under_state_dir = true
  systemd_cgroup = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "test"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test.options]
        BinaryName = "{rt}"
        Root = "{d}/rt-root"
        SystemdCgroup = {sd}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
    max_conf_num = 1
{debug}"#,
            img = self.sandbox_image,
            rt = self.runtime.display(),
            sd = self.systemd,
        );
        fs::write(w.join("config.toml"), cfg).map_err(|e| e.to_string())?;
        host::sh("ip", &["netns", "add", &self.netns])?;
        self.netns_made = true;
        host::sh("ip", &["-n", &self.netns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Start containerd in the network namespace (own session), wait until it answers.
    pub fn start(&mut self) -> Result<(), String> {
        let ns = fs::File::open(self.netns_path()).map_err(|e| format!("open netns: {e}"))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| e.to_string())?;
        let nsfd = ns.as_raw_fd();
        let mut c = Command::new("containerd");
        c.arg("--config")
            .arg(self.work.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: between fork and exec only async-signal-safe calls (setsid, setns) on an fd
        // that stays open in the parent until spawn returns.
        unsafe {
            c.pre_exec(move || {
                if libc::setsid() < 0 || libc::setns(nsfd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c
            .spawn()
            .map_err(|e| format!("containerd: {e} (is it installed?)"))?;
        drop(ns);
        let _ = fs::write(self.work.join("containerd.pid"), child.id().to_string());
        self.child = Some(child);
        let t0 = Instant::now();
        // the bolt db in our root: containerd took the private root (not /var/lib/containerd)
        while !self.sock().exists()
            || !self
                .work
                .join("root/io.containerd.metadata.v1.bolt")
                .exists()
        {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().ok().flatten() {
                self.child = None;
                return Err(format!(
                    "containerd exited: {st}; log: {}",
                    self.log_tail(5)
                ));
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "containerd socket not there after 30 s; log: {}",
                    self.log_tail(5)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM by PID, SIGKILL after 20 s; reaped.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut c) = self.child.take() else {
            return self.stop_by_pidfile();
        };
        let pid = c.id() as i32;
        // SAFETY: kill(2) of the process we started and have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if c.try_wait().ok().flatten().is_some() {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = c.kill();
                let _ = c.wait();
                return Err("containerd ignored SIGTERM for 20 s (killed)".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// containerd of an earlier run (its pid file), if it is still that containerd.
    fn stop_by_pidfile(&mut self) -> Result<(), String> {
        let Some(pid) =
            host::read(self.work.join("containerd.pid")).and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return Ok(());
        };
        let cfg = self.work.join("config.toml").to_string_lossy().into_owned();
        let cmd = host::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !host::alive(pid) || !cmd.contains(&cfg) {
            return Ok(());
        }
        // SAFETY: kill(2) of the containerd whose command line names our config.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = Instant::now();
        while host::alive(pid) {
            if t0.elapsed() > Duration::from_secs(20) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err("containerd ignored SIGTERM for 20 s (killed)".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn log_tail(&self, n: usize) -> String {
        let s = host::read(self.log()).unwrap_or_default();
        let v: Vec<&str> = s.lines().collect();
        v[v.len().saturating_sub(n)..].join(" | ")
    }

    /// `ctr -n k8s.io images import TAR`.
    pub fn import(&self, tar: &Path) -> Result<(), String> {
        host::sh(
            "ctr",
            &[
                "--address",
                &self.sock().to_string_lossy(),
                "-n",
                "k8s.io",
                "images",
                "import",
                &tar.to_string_lossy(),
            ],
        )
        .map(|_| ())
    }

    /// Processes started by this daemon that are still alive: shims (their command line names
    /// our socket), and anything else naming the work dir.
    pub fn own_processes(&self) -> Vec<(i32, String)> {
        let w = self.work.to_string_lossy().into_owned() + "/";
        let me = std::process::id() as i32;
        host::processes()
            .into_iter()
            .filter(|(p, c)| *p != me && Some(*p) != self.pid() && c.contains(&w))
            .collect()
    }

    /// Shim socket of a task group (containerd 1.6: /run/containerd/s/sha256(address/ns/id)).
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let a = format!("{}/k8s.io/{id}", self.sock().display());
        PathBuf::from("/run/containerd/s").join(host::sha256(&a))
    }

    /// What this run left in the system paths containerd and CNI use whatever they are told:
    /// shim sockets and libcni cache entries of its sandboxes and containers (`ids`), its
    /// network namespace. Entries of other runs (another suite or benchmark at the same
    /// time) are not counted. The sockets and cache entries found are reported, then removed
    /// (they are this run's own: a run whose pods could not be stopped leaves them).
    pub fn sys_leftovers(&self, ids: &[String]) -> Vec<String> {
        let mut v = vec![];
        for id in ids {
            let s = self.shim_socket(id);
            if s.exists() {
                v.push(format!("shim socket {} (of {id})", s.display()));
                let _ = fs::remove_file(&s);
            }
        }
        if let Ok(rd) = fs::read_dir("/var/lib/cni/results") {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if ids.iter().any(|i| n.contains(i.as_str())) {
                    v.push(format!("CNI cache /var/lib/cni/results/{n}"));
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        if self.netns_path().exists() {
            v.push(format!("netns {}", self.netns_path().display()));
        }
        v
    }

    /// Remove everything this daemon left. `cg_dirs` are the cgroup paths (relative to each
    /// hierarchy root) of the pods the suite made. Returns what could not be removed.
    pub fn teardown(&mut self) -> Vec<String> {
        self.torn_down = true;
        let cg_dirs = self.cg_dirs.clone();
        // BCRI_LOGS=DIR keeps containerd's log (with the shims' and runtime's errors)
        if let Some(dir) = std::env::var_os("BCRI_LOGS") {
            let _ = fs::create_dir_all(&dir);
            let _ = fs::copy(
                self.log(),
                Path::new(&dir).join(format!("{}.containerd.log", self.netns)),
            );
            let _ = Command::new("cp")
                .arg("-a")
                .arg(self.work.join("logs"))
                .arg(Path::new(&dir).join(format!("{}.pod-logs", self.netns)))
                .status();
        }
        let mut left = vec![];
        if let Err(e) = self.stop() {
            left.push(e);
        }
        // shims and anything else naming the work dir, by PID
        for _ in 0..3 {
            let ps = self.own_processes();
            if ps.is_empty() {
                break;
            }
            for (p, _) in &ps {
                // SAFETY: kill(2) of a process whose command line names our private work dir.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        // container processes still in the pods' cgroups
        remove_cgroups(&cg_dirs, &self.cg_existed, &mut left);
        for m in unmount_under(&self.work) {
            left.push(format!("mount {m}"));
        }
        if self.netns_made {
            if let Err(e) = host::sh("ip", &["netns", "del", &self.netns]) {
                left.push(e);
            }
            self.netns_made = false;
        }
        if host::mounts_under(&self.work).is_empty() {
            let _ = fs::remove_dir_all(&self.work);
        }
        // `ip netns add` made /run/netns a shared bind mount of itself the first time: undone
        // when this run made it and no namespace is left in it
        let rn = Path::new("/run/netns");
        let before = self.existed.iter().any(|(p, e)| p == "/run/netns" && *e);
        if !before
            && fs::read_dir(rn)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        {
            let c = std::ffi::CString::new("/run/netns").unwrap();
            // SAFETY: umount2 of a fixed path; fails harmlessly (EBUSY/EINVAL) if in use or
            // not a mount point.
            unsafe { libc::umount2(c.as_ptr(), 0) };
        }
        self.remove_sys_dirs();
        left
    }

    /// The system dirs of SYS_PATHS this run made, if empty (anything else may be someone
    /// else's).
    pub fn remove_sys_dirs(&self) {
        for (p, existed) in &self.existed {
            if !existed {
                let _ = fs::remove_dir(p);
            }
        }
    }
}

impl Drop for Daemon {
    /// A panic unwinds through here: nothing of the run stays behind.
    fn drop(&mut self) {
        if !self.torn_down && self.work.exists() {
            for l in self.teardown() {
                eprintln!("berth-cri: left behind: {l}");
            }
        }
    }
}

/// Unmount everything at or under `dir` (deepest first); returns what stayed mounted.
pub fn unmount_under(dir: &Path) -> Vec<String> {
    for _ in 0..3 {
        let mut ms = host::mounts_under(dir);
        if ms.is_empty() {
            return ms;
        }
        ms.sort();
        ms.dedup();
        for m in ms.iter().rev() {
            let c = std::ffi::CString::new(m.as_str()).unwrap();
            // SAFETY: umount2 of a path string we own; MNT_DETACH if busy.
            unsafe {
                if libc::umount2(c.as_ptr(), 0) != 0 {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    host::mounts_under(dir)
}

/// Remove the given cgroup dirs (relative to each hierarchy's root) leaves first, killing
/// processes still in them (thawing first), then the kubepods parents if this run made them
/// and they are empty.
pub fn remove_cgroups(rel: &[String], existed: &[PathBuf], left: &mut Vec<String>) {
    for h in host::hierarchies() {
        for r in rel {
            let top = h.mountpoint.join(r.trim_start_matches('/'));
            if !top.exists() {
                continue;
            }
            for _ in 0..10 {
                let mut dirs = vec![];
                walk_dirs(&top, &mut dirs);
                for d in &dirs {
                    let _ = fs::write(d.join("freezer.state"), "THAWED");
                    for p in host::read(d.join("cgroup.procs"))
                        .unwrap_or_default()
                        .lines()
                    {
                        if let Ok(p) = p.trim().parse::<i32>() {
                            // SAFETY: kill(2) of a process inside a cgroup this run created.
                            unsafe { libc::kill(p, libc::SIGKILL) };
                        }
                    }
                }
                for d in dirs.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
                if !top.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if top.exists() {
                left.push(format!("cgroup {}", top.display()));
            }
        }
        for sub in [
            "kubepods/burstable",
            "kubepods",
            "kubepods.slice/kubepods-burstable.slice",
            "kubepods.slice",
        ] {
            let p = h.mountpoint.join(sub);
            if p.exists() && !existed.contains(&p) {
                let _ = fs::remove_dir(&p);
            }
        }
    }
}

fn walk_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk_dirs(&e.path(), out);
            }
        }
    }
}
