//! Low-level cgroup filesystem helpers: mounts, own membership, reading and writing files.

use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// One cgroup hierarchy mount from /proc/self/mountinfo.
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The cgroup path at the root of this mount (not "/" inside a cgroup namespace's bind).
    pub root: String,
    pub v2: bool,
    /// v1 controllers (and `name=...`) of the hierarchy, sorted.
    pub controllers: Vec<String>,
}

impl CgroupMount {
    /// The directory of cgroup path `p` under this mount.
    pub fn dir_for(&self, p: &str) -> Result<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let rel = if root.is_empty() {
            p
        } else if let Some(r) = p.strip_prefix(root) {
            r
        } else {
            // The path lies outside what this mount shows: take it from the mount's root.
            p
        };
        Ok(self.mount_point.join(rel.trim_start_matches('/')))
    }
}

pub fn cgroup_mounts() -> Result<Vec<CgroupMount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| anyhow!("reading /proc/self/mountinfo: {e}"))?;
    let mut out: Vec<CgroupMount> = vec![];
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let lf: Vec<&str> = left.split(' ').collect();
        let rf: Vec<&str> = right.split(' ').collect();
        if lf.len() < 5 || rf.len() < 3 {
            continue;
        }
        let fstype = rf[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let mount_point = PathBuf::from(unescape(lf[4]));
        let controllers: Vec<String> = if fstype == "cgroup" {
            let mut c: Vec<String> = rf[2]
                .split(',')
                .filter(|o| {
                    !matches!(*o, "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime")
                        && !o.starts_with("release_agent")
                        && *o != "clone_children"
                        && *o != "noprefix"
                        && *o != "xattr"
                        && *o != "cpuset_v2_mode"
                })
                .map(String::from)
                .collect();
            c.sort();
            c
        } else {
            vec![]
        };
        // One mount per hierarchy is enough (the first one wins).
        if out
            .iter()
            .any(|m| m.v2 == (fstype == "cgroup2") && m.controllers == controllers)
        {
            continue;
        }
        out.push(CgroupMount {
            mount_point,
            root: unescape(lf[3]),
            v2: fstype == "cgroup2",
            controllers,
        });
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// berth's own cgroups: controller (or "" for cgroup2, `name=systemd` for named) → path.
pub fn own_cgroups() -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| anyhow!("reading /proc/self/cgroup: {e}"))?;
    let mut m = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if ctrls.is_empty() {
            m.insert(String::new(), path.to_string());
        } else {
            for c in ctrls.split(',') {
                m.insert(c.to_string(), path.to_string());
            }
        }
    }
    Ok(m)
}

/// Write a cgroup file; the error names the config field and the file. The file is never
/// created: a missing one means the controller or the feature is absent on this host.
/// Open a cgroup file for writing; a missing file is reported as unsupported by the host.
pub fn open_w(dir: &Path, file: &str, field: &str) -> Result<std::fs::File> {
    let p = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "{field}: {} does not exist: not supported by this host's cgroups",
                    p.display()
                )
            } else {
                anyhow!("{field}: opening {}: {e}", p.display())
            }
        })
}

pub fn write_file(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    use std::io::Write;
    let p = dir.join(file);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "{field}: {} does not exist: not supported by this host's cgroups",
                p.display()
            )
        } else {
            anyhow!(
                "{field}: writing {value:?} to {}: {}",
                p.display(),
                std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))
            )
        }
    })
}

/// Read a cgroup file, trimmed ("" when it cannot be read).
pub fn read(dir: &Path, file: &str) -> String {
    crate::sys::read_small_string(&dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Read a cgroup file holding one number ("max" → None).
pub fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file).parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events) → map.
pub fn read_kv(dir: &Path, file: &str) -> std::collections::BTreeMap<String, u64> {
    read(dir, file)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Sub-cgroups of `dir` (e.g. made for `exec --cgroup`), deepest first.
pub fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(sub_cgroups(&e.path()));
                out.push(e.path());
            }
        }
    }
    out
}

/// Pids in `dir` and every sub-cgroup of it (as runc's ps and kill --all see a container).
pub fn read_procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = read_procs(dir)?;
    for d in sub_cgroups(dir) {
        pids.extend(read_procs(&d)?);
    }
    Ok(pids)
}

pub fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let p = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(anyhow!("reading {}: {e}", p.display())),
    };
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Create a v1 cgroup directory and its missing parents. A new cpuset cgroup starts with empty
/// cpus and mems (and then takes no process): copy them from the parent, as runc does.
pub fn create_v1(dir: &Path, cpuset: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("creating cgroup {}: {e}", dir.display()))?;
    if cpuset {
        // From the top down: every ancestor below the mount root needs cpus and mems.
        let mut chain: Vec<&Path> = dir
            .ancestors()
            .take_while(|a| a.parent().is_some_and(|p| p.join("cpuset.cpus").exists()))
            .collect();
        chain.reverse();
        for a in chain {
            let Some(parent) = a.parent() else { continue };
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let cur = std::fs::read_to_string(a.join(f)).unwrap_or_default();
                if cur.trim().is_empty() {
                    let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                    write_file(a, f, v.trim(), "cgroup cpuset")?;
                }
            }
        }
    }
    Ok(())
}

/// Create a cgroup2 directory, enabling the available controllers in each parent's
/// cgroup.subtree_control on the way down.
pub fn create_v2(dir: &Path) -> Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
    missing.reverse();
    if let Some(first) = missing.first()
        && let Some(parent) = first.parent()
        && !is_cgroup2(parent)
    {
        bail!(
            "creating cgroup {}: {} is not on cgroup2",
            dir.display(),
            parent.display()
        );
    }
    for a in missing {
        if let Some(parent) = a.parent() {
            enable_controllers(parent);
        }
        if let Err(e) = std::fs::create_dir(a)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            bail!("creating cgroup {}: {e}", a.display());
        }
    }
    Ok(())
}

pub fn enable_controllers(dir: &Path) {
    let avail = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let want: Vec<String> = avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();

    // Enabling may fail for a controller the parent cannot delegate (e.g. a threaded cpuset):
    // enable what can be enabled, one by one.
    for w in want {
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), &w);
    }
}

pub fn remove_dir(d: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => bail!("removing cgroup {}: {e}", d.display()),
        }
    }
}

pub fn freeze_v1(dir: &Path, freeze: bool) -> Result<()> {
    let want = if freeze { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        write_file(dir, "freezer.state", want, "freezer")?;
        let now = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
        if now.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cgroup {} did not reach {want}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn freeze_v2(dir: &Path, freeze: bool) -> Result<()> {
    write_file(
        dir,
        "cgroup.freeze",
        if freeze { "1" } else { "0" },
        "cgroup.freeze",
    )?;
    let want = if freeze { "frozen 1" } else { "frozen 0" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if ev.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cgroup {} did not reach {want}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
