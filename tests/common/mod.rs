//! Test harness: real containers from the busybox rootfs, as root. Each `Env` has its own
//! `--root`, its own bundles and a test-only cgroup parent; everything it made is removed on
//! drop, even when the test fails.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The berth binary under test: the one cargo built for the tests, or `BERTH_BIN` (e.g.
/// target/static/berth: CI runs suites against `make static`'s build this way; or an older
/// build, to show that a new test fails there). `BERTH_TEST_BIN` is the same.
pub fn berth_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        match std::env::var("BERTH_BIN").or_else(|_| std::env::var("BERTH_TEST_BIN")) {
            Ok(p) if !p.is_empty() => {
                let p = std::path::absolute(&p).unwrap();
                assert!(p.is_file(), "BERTH_BIN={} does not exist", p.display());
                p.to_string_lossy().into_owned()
            }
            _ => env!("CARGO_BIN_EXE_berth").to_string(),
        }
    })
}

pub fn rootfs_src() -> PathBuf {
    let p = std::env::var_os("BERTH_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/.cache/rootfs"));
    if !p.join("bin/busybox").exists() {
        let st = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/mkrootfs.sh"))
            .arg(&p)
            .status()
            .expect("running hack/mkrootfs.sh");
        assert!(st.success(), "hack/mkrootfs.sh failed");
    }
    p
}

pub struct Env {
    /// The berth binary this env runs (a test may run a private copy of it).
    pub bin: PathBuf,
    pub tmp: PathBuf,
    pub root: PathBuf,
    /// Test-only cgroup parent (relative to the hierarchy roots), e.g. `/berth-test-123-4`;
    /// with the systemd driver the test slice's cgroup, `/berthtest_cgres_123_4.slice`.
    pub cg_parent: String,
    pub name: String,
    /// With the systemd driver (`systemd_driver()`): the test-only slice the containers'
    /// scopes go in (stopped at the end).
    pub slice: Option<String>,
}

/// Do this run's containers use the systemd cgroup driver? (BERTH_TEST_CGROUP_DRIVER=systemd:
/// every berth command gets --systemd-cgroup and the bundles a `slice:prefix:name`
/// cgroupsPath; for suites written for both drivers, run in the systemd guest.)
pub fn systemd_driver() -> bool {
    std::env::var("BERTH_TEST_CGROUP_DRIVER").as_deref() == Ok("systemd")
}

/// The scope prefix of test containers with the systemd driver: `berthtest-<id>.scope`.
pub const SCOPE_PREFIX: &str = "berthtest";

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

impl Env {
    /// An env with this run's cgroup driver (see `systemd_driver`).
    pub fn new(name: &str) -> Env {
        Env::with_driver(name, systemd_driver())
    }

    /// An env with the cgroupfs driver (false) or the systemd driver (true).
    pub fn with_driver(name: &str, systemd: bool) -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{name}-{}-{n}", std::process::id());
        let tmp = std::env::temp_dir().join(format!("berth-test-{tag}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        // A slice name's dashes mean nesting: the test slice has none.
        let slice = systemd.then(|| format!("berthtest_{}.slice", tag.replace('-', "_")));
        Env {
            bin: PathBuf::from(berth_bin()),
            root: tmp.join("state"),
            tmp,
            cg_parent: match &slice {
                Some(s) => format!("/{s}"),
                None => format!("/berth-test-{tag}"),
            },
            name: name.to_string(),
            slice,
        }
    }

    /// The cgroup path of container `id` (relative to the hierarchy roots).
    pub fn cg_rel(&self, id: &str) -> String {
        match &self.slice {
            Some(_) => format!("{}/{SCOPE_PREFIX}-{id}.scope", self.cg_parent),
            None => format!("{}/{id}", self.cg_parent),
        }
    }

    /// The `linux.cgroupsPath` of container `id` for this env's driver.
    pub fn cgroups_path(&self, id: &str) -> String {
        match &self.slice {
            Some(s) => format!("{s}:{SCOPE_PREFIX}:{id}"),
            None => format!("{}/{id}", self.cg_parent),
        }
    }

    /// A unique container id for this env.
    pub fn id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// A bundle with its own copy of the rootfs and a config like `berth spec` writes, with no
    /// terminal, the given args, and the cgroup under this env's parent.
    pub fn bundle(&self, id: &str, args: &[&str]) -> Bundle {
        let dir = self.tmp.join(format!("bundle-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cp = Command::new("cp")
            .arg("-a")
            .arg(rootfs_src())
            .arg(dir.join("rootfs"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            cp.status.success(),
            "copying the rootfs {} to {}: {}",
            rootfs_src().display(),
            dir.display(),
            String::from_utf8_lossy(&cp.stderr)
        );
        let out = Command::new(berth_bin())
            .arg("spec")
            .arg("--bundle")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["linux"]["cgroupsPath"] = json!(self.cgroups_path(id));
        let b = Bundle { dir, config };
        b.save();
        b
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        if self.slice.is_some() {
            c.arg("--systemd-cgroup");
        }
        c
    }

    /// Run berth with args; stdin is null, output captured.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `berth ARGS` (global options may lead) with stdin null; returns (exit code, stdout,
    /// stderr).
    pub fn call(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.berth(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `berth exec ARGS` with stdin null; returns (exit code, stdout, stderr).
    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        self.call(&[&["exec"], args].concat())
    }

    /// `berth run` of the bundle; returns (exit code, stdout, stderr).
    pub fn run(&self, id: &str, b: &Bundle) -> (i32, String, String) {
        b.save();
        let dir = b.dir.to_str().expect("bundle path is UTF-8");
        self.call(&["run", "--bundle", dir, id])
    }

    /// `berth create` with the container's stdio going to files in the bundle
    /// (`stdout`, `stderr`); panics with berth's stderr if it fails.
    pub fn create(&self, id: &str, b: &Bundle) {
        let out = self.try_create(id, b);
        assert!(
            out.status.success(),
            "create {id} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn try_create(&self, id: &str, b: &Bundle) -> Output {
        b.save();
        let so = std::fs::File::create(b.dir.join("stdout")).unwrap();
        let se = std::fs::File::create(b.dir.join("stderr")).unwrap();
        let mut c = self.cmd();
        c.args(["create", "--bundle"]).arg(&b.dir).arg(id);
        c.stdin(Stdio::null()).stdout(so).stderr(se);
        let status = c.status().unwrap();
        let stderr = std::fs::read(b.dir.join("stderr")).unwrap_or_default();
        Output {
            status,
            stdout: vec![],
            stderr,
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Wait until the container's status is `want` (up to 10 s).
    pub fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..2000 {
            // The container may not exist yet (a `run` still creating it).
            let out = self.berth(&["state", id]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                if v["status"] == want {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("container {id} never became {want}: {}", self.status(id));
    }

    /// The directories of this env's cgroup parent in every hierarchy.
    pub fn cgroup_parent_dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![];
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = e.path().join(self.cg_parent.trim_start_matches('/'));
            if p.exists() {
                v.push(p);
            }
        }
        let p = Path::new("/sys/fs/cgroup").join(self.cg_parent.trim_start_matches('/'));
        if p.exists() && !v.contains(&p) {
            v.push(p);
        }
        v
    }
}

fn rmdir_tree(p: &Path) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    for _ in 0..200 {
        match std::fs::remove_dir(p) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if id.starts_with('.') {
                    let _ = std::fs::remove_dir_all(e.path());
                    continue;
                }
                let _ = self
                    .cmd()
                    .args(["delete", "--force", &id])
                    .stdin(Stdio::null())
                    .output();
            }
        }
        if let Some(s) = &self.slice {
            // The test slice (systemd made it for the scopes in it, and keeps it until it is
            // stopped), with anything left in it.
            for args in [&["stop", s.as_str()][..], &["reset-failed", s.as_str()][..]] {
                let _ = Command::new("systemctl")
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for d in self.cgroup_parent_dirs() {
            // Anything still inside is killed first (by pid, from the cgroup itself).
            for procs in ["cgroup.procs"] {
                if let Ok(t) = std::fs::read_to_string(d.join(procs)) {
                    for pid in t.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill(2) of a pid we read from our own test cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            rmdir_tree(&d);
        }
        // Every mount a test made under its directory (tmp is not a mount point itself, so
        // `umount -R tmp` would not reach them): deepest first, lazily.
        for m in mounts_under(&self.tmp) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&m)
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// The mount points at or under `dir` in this mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes space, tab, newline and backslash as octal.
        .map(|m| {
            PathBuf::from(
                m.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// Wait (up to 10 s) until process `pid` runs exactly `argv`: its /proc cmdline is `argv`, NUL
/// separated, which it becomes only by the exec of that program. (A `sh -c '...; exec prog'`
/// command line already *contains* the program's name before the exec.) Panics with what the
/// process runs instead.
pub fn wait_exec(pid: i32, argv: &[&str]) {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut last = vec![];
    for _ in 0..2000 {
        last = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if last == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!(
        "process {pid} never exec'd {argv:?}: it runs {:?}",
        String::from_utf8_lossy(&last)
    );
}

/// Wait (up to 10 s) until the file `path` holds exactly `want` (a program's output so far).
pub fn wait_output(path: &Path, want: &str) {
    let mut last = String::new();
    for _ in 0..2000 {
        last = std::fs::read_to_string(path).unwrap_or_default();
        if last == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("{} never held {want:?}: {last:?}", path.display());
}

/// Is `pid` alive (and not a zombie)?
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let rest = &s[s.rfind(')').unwrap() + 2..];
            !rest.starts_with('Z') && !rest.starts_with('X')
        })
        .unwrap_or(false)
}
