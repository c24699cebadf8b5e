//! Control groups: one `Manager` for cgroup v1, pure v2 and hybrid hosts.
//!
//! Where a container's cgroup is (runc's cgroupfs rules, libcontainer/cgroups/fs and fs2):
//! `linux.cgroupsPath` absolute is taken from the root of each hierarchy. Relative (and absent,
//! which means the container's id) is taken from berth's own cgroup on v1 hierarchies and on
//! the cgroup2 part of a hybrid host, but on a pure cgroup v2 host from the *parent* of berth's
//! own cgroup: berth's own cgroup holds processes (berth, and whatever service called it), and
//! cgroup v2 lets no cgroup with processes enable controllers for children. So a berth called
//! from `/system.slice/foo.service` puts container `c1` at `/system.slice/c1`, as runc does, and
//! berth never writes the caller's own cgroup (see `create`). The manager's state is kept in
//! state.json so every later command drives the same directories.

pub mod bpf;
pub mod dbus;
pub mod devices;
pub mod driver;
pub mod fs;
pub mod gvariant;
pub mod resources;
pub mod stats;
pub mod systemd;

pub use driver::{Driver, Kind};

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every controller on its own v1 hierarchy.
    V1,
    /// v1 hierarchies plus a cgroup2 mount (/sys/fs/cgroup/unified) holding some controllers.
    Hybrid,
    /// One cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
}

/// Everything needed to find a container's cgroups again.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CgroupState {
    pub mode: Mode,
    /// The cgroup path as seen from the root of the hierarchies (e.g. `/berth-test/abc`).
    pub path: String,
    /// v1 hierarchies: mount options key (`memory`, `cpu,cpuacct`, `name=systemd`) → directory.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 directory (pure v2, or the unified part of a hybrid host).
    #[serde(default)]
    pub v2: Option<PathBuf>,
    /// With the systemd driver: the unit that owns the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

pub struct Manager {
    st: CgroupState,
}

/// The host's cgroup layout.
pub fn host_mode() -> Mode {
    if fs::is_cgroup2(Path::new("/sys/fs/cgroup")) {
        Mode::V2
    } else if fs::is_cgroup2(Path::new("/sys/fs/cgroup/unified")) {
        Mode::Hybrid
    } else {
        Mode::V1
    }
}

impl Manager {
    /// Work out the directories for a container (nothing is created yet).
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Manager> {
        Self::build(cgroups_path, id, false)
    }

    /// Names the caller's own cgroups (nothing is created): a rootless container that may not
    /// make a cgroup stays in its caller's, and its cgroup mount shows those.
    pub fn callers_own() -> Result<Manager> {
        Self::build(None, "", true)
    }

    fn build(cgroups_path: Option<&Path>, id: &str, callers: bool) -> Result<Manager> {
        let mode = host_mode();
        let own = fs::own_cgroups()?;
        // An empty cgroupsPath is no cgroupsPath (runc: the container's id, relative).
        let cgroups_path = cgroups_path.filter(|p| !p.as_os_str().is_empty());
        let rel = |base: &str| -> String {
            if callers {
                return base.to_string();
            }
            match cgroups_path {
                Some(p) if p.is_absolute() => p.to_string_lossy().into_owned(),
                Some(p) => join_cg(base, &p.to_string_lossy()),
                None => join_cg(base, id),
            }
        };
        let mounts = fs::cgroup_mounts()?;
        let mut st = CgroupState {
            mode,
            path: String::new(),
            v1: BTreeMap::new(),
            v2: None,
            systemd: None,
        };
        for m in &mounts {
            if m.v2 {
                let keep = match mode {
                    Mode::V2 => m.mount_point == Path::new("/sys/fs/cgroup"),
                    Mode::Hybrid => m.mount_point == Path::new("/sys/fs/cgroup/unified"),
                    Mode::V1 => false,
                };
                if keep && st.v2.is_none() {
                    let own_path = own.get("").cloned().unwrap_or_else(|| "/".into());
                    // Pure v2: beside the caller, never inside its cgroup (runc's fs2
                    // defaultDirPath). Hybrid: the unified part follows the v1 rule (runc
                    // joins it like a v1 hierarchy).
                    let base = match mode {
                        Mode::V2 if !callers => parent_cg(&own_path),
                        _ => own_path,
                    };
                    let p = rel(&base);
                    st.v2 = Some(m.dir_for(&p)?);
                    st.path = p;
                }
            } else if mode != Mode::V2 {
                let own_path = m
                    .controllers
                    .iter()
                    .find_map(|c| own.get(c.as_str()))
                    .cloned()
                    .unwrap_or_else(|| "/".into());
                let p = rel(&own_path);
                if st.path.is_empty() || m.controllers.iter().any(|c| c == "memory") {
                    st.path = p.clone();
                }
                st.v1.insert(m.controllers.join(","), m.dir_for(&p)?);
            }
        }
        if st.v1.is_empty() && st.v2.is_none() {
            bail!("no cgroup hierarchy is mounted under /sys/fs/cgroup");
        }
        Ok(Manager { st })
    }

    pub fn from_state(st: &CgroupState) -> Manager {
        Manager { st: st.clone() }
    }

    pub fn state(&self) -> &CgroupState {
        &self.st
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.st.v1.values().chain(self.st.v2.iter())
    }

    /// The v1 directory of a controller.
    fn v1_dir(&self, controller: &str) -> Option<&PathBuf> {
        self.st
            .v1
            .iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, v)| v)
    }

    /// Whether this caller may make the container's cgroup directories: the nearest existing
    /// ancestor of each is writable (for rootless callers, where only a delegated subtree is).
    pub fn writable(&self) -> bool {
        self.dirs().all(|d| {
            let mut p = d.as_path();
            while !p.exists() {
                match p.parent() {
                    Some(q) => p = q,
                    None => return false,
                }
            }
            nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
        })
    }

    /// Pure cgroup v2, unprivileged: whether this process may move a process of its own into
    /// the container's cgroup. The kernel asks for write access to `cgroup.procs` of the
    /// destination and of the nearest common ancestor of source and destination: a rootless
    /// `exec` from a login session (`session-N.scope`, root's) into a scope of the user's
    /// systemd instance (`user@UID.service`, the user's) has the first but not the second.
    pub fn may_move_into(&self) -> bool {
        let (Mode::V2, Some(dest)) = (self.st.mode, &self.st.v2) else {
            return true;
        };
        let own = fs::own_cgroups()
            .ok()
            .and_then(|m| m.get("").cloned())
            .unwrap_or_default();
        let mut common = PathBuf::from("/sys/fs/cgroup");
        for (a, b) in own.split('/').zip(self.st.path.split('/')) {
            if a != b {
                break;
            }
            if !a.is_empty() {
                common.push(a);
            }
        }
        let w = |d: &Path| {
            nix::unistd::access(&d.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
        };
        w(dest) && w(&common)
    }

    /// Create the cgroup directories (and on cgroup2 enable the controllers down the path).
    pub fn create(&self) -> Result<()> {
        for (key, d) in &self.st.v1 {
            fs::create_v1(d, key.split(',').any(|c| c == "cpuset"))?;
        }
        if let Some(d) = &self.st.v2 {
            if self.st.mode == Mode::V2 {
                self.check_v2_parent(d)?;
            }
            fs::create_v2(d)?;
        }
        Ok(())
    }

    /// Pure cgroup v2: the cgroup whose `cgroup.subtree_control` berth would write first (the
    /// deepest existing ancestor of the container's cgroup) must hold no processes, unless it
    /// is the root. Writing it anyway fails for the domain controllers (EBUSY) and, worse,
    /// succeeds for the threaded ones (cpu, pids, cpuset), which turns the cgroup into a
    /// thread root: the container's process then cannot be moved in (EOPNOTSUPP), and the
    /// caller's cgroup (berth's own, or a service's) has been changed. Checked before anything
    /// is created.
    fn check_v2_parent(&self, dir: &Path) -> Result<()> {
        let Some(parent) = dir.ancestors().skip(1).find(|a| a.exists()) else {
            return Ok(());
        };
        if !parent.join("cgroup.type").exists() {
            return Ok(()); // the root cgroup: exempt from the no-internal-processes rule
        }
        let procs = fs::read_procs(parent).unwrap_or_default();
        if procs.is_empty() {
            return Ok(());
        }
        let mine = procs.contains(&(std::process::id() as i32));
        bail!(
            "linux.cgroupsPath: cannot create the container's cgroup {}: its parent {} holds processes{}              (pids {}), and cgroup v2 enables no controllers for the children of a cgroup with processes              (the no-internal-processes rule); use a cgroupsPath whose parent holds no processes              (without one, or with a relative one, berth places the container beside its own cgroup)",
            dir.display(),
            parent.display(),
            if mine { " (berth's own cgroup)" } else { "" },
            procs
                .iter()
                .take(5)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
                + if procs.len() > 5 { " ..." } else { "" }
        );
    }

    /// Apply `linux.resources` at create: every resource, and the device rules (always: with no
    /// `linux.resources.devices` the container still gets the default devices only).
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.apply_resources(r, false)?;
        self.apply_devices(r.devices().as_deref().unwrap_or(&[]))
    }

    /// `berth update`: the fields set in `delta` (0 = unchanged), and the device rules when given.
    pub fn update(
        &self,
        delta: &LinuxResources,
        devices: Option<&[LinuxDeviceCgroup]>,
    ) -> Result<()> {
        self.apply_resources(delta, true)?;
        if let Some(d) = devices {
            self.apply_devices(d)?;
        }
        Ok(())
    }

    /// v1 devices.allow/deny, or on cgroup v2 the eBPF device program.
    ///
    /// Rootless (runc's rule): a failure to apply them is ignored, silently (rootless podman
    /// always sends a deny-all rule). A rootless caller can neither load a device eBPF program
    /// (that takes CAP_SYS_ADMIN or CAP_BPF in the initial user namespace) nor write v1
    /// `devices.*`, and its container can open only the device nodes bound from the host,
    /// with the caller's own permissions on them. Bad rules are an error all the same.
    pub fn apply_devices(&self, spec: &[LinuxDeviceCgroup]) -> Result<()> {
        let rules = devices::rules(spec)?;
        match self.apply_rules(&rules) {
            Err(e) if crate::rootless::enabled() => {
                crate::logger::debug(&format!("rootless: device rules not applied: {e:#}"));
                Ok(())
            }
            r => r,
        }
    }

    fn apply_rules(&self, rules: &[devices::Rule]) -> Result<()> {
        if self.st.mode != Mode::V2 {
            return match self.v1_dir("devices") {
                Some(d) => devices::apply_v1(d, rules),
                None => bail!(
                    "linux.resources.devices: the devices cgroup controller is not mounted on this host"
                ),
            };
        }
        let d = self
            .st
            .v2
            .as_ref()
            .ok_or_else(|| anyhow!("linux.resources.devices: no cgroup2 directory"))?;
        bpf::apply(d, rules)
    }

    /// The container's cgroup files its first process needs to place itself (opened now,
    /// before the fork, while berth is still root in its own namespaces).
    pub fn placement(&self) -> Result<Placement> {
        let v1: Vec<PathBuf> = self.st.v1.values().cloned().collect();
        Placement::open(&v1, self.st.v2.as_deref())
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let d = self
            .st
            .v2
            .as_ref()
            .filter(|_| self.st.mode == Mode::V2)
            .or_else(|| self.v1_dir("pids"))
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.dirs().next())
            .ok_or_else(|| anyhow!("no cgroup"))?;
        fs::read_procs_recursive(d)
    }

    fn freezer(&self) -> Option<(PathBuf, bool)> {
        if self.st.mode == Mode::V2 {
            self.st.v2.clone().map(|d| (d, true))
        } else {
            self.v1_dir("freezer").map(|d| (d.clone(), false))
        }
    }

    /// The directory whose freezer stops the container (v1 freezer hierarchy, or the cgroup2
    /// directory): CRIU freezes the container through it at checkpoint.
    pub fn freezer_dir(&self) -> Option<PathBuf> {
        self.freezer().map(|(d, _)| d)
    }

    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some((d, true)) => fs::read(&d, "cgroup.freeze") == "1",
            // "" when unreadable (the cgroup is gone): not frozen.
            Some((d, false)) => !matches!(fs::read(&d, "freezer.state").as_str(), "THAWED" | ""),
            None => false,
        }
    }

    pub fn freeze(&self) -> Result<()> {
        match self.freezer() {
            Some((d, true)) => fs::freeze_v2(&d, true),
            Some((d, false)) => fs::freeze_v1(&d, true),
            None => bail!("no freezer cgroup controller on this host"),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.freezer() {
            Some((d, true)) => fs::freeze_v2(&d, false),
            Some((d, false)) => fs::freeze_v1(&d, false),
            None => bail!("no freezer cgroup controller on this host"),
        }
    }

    /// Send a signal to every process of the container (frozen meanwhile, so none escapes by
    /// forking). On cgroup v2 SIGKILL uses cgroup.kill.
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        if sig == Signal::SIGKILL
            && self.st.mode == Mode::V2
            && let Some(d) = &self.st.v2
            && d.join("cgroup.kill").exists()
        {
            return fs::write_file(d, "cgroup.kill", "1", "cgroup.kill");
        }
        // An empty cgroup cannot gain members by forking: nothing to freeze or signal (the
        // common case at `delete` of a stopped container, where freezing costs a v1 round
        // trip through freezer.state).
        if self.pids()?.is_empty() {
            return Ok(());
        }
        // A container the user paused stays paused: only a freeze made here is undone.
        let frozen = self.freezer().is_some() && !self.is_frozen() && self.freeze().is_ok();
        let mut res = Ok(());
        for pid in self.pids()? {
            if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
                && e != nix::errno::Errno::ESRCH
            {
                res = Err(anyhow!("signalling pid {pid}: {e}"));
            }
        }
        if frozen {
            let _ = self.thaw();
        }
        res
    }

    /// Remove the cgroup directories, sub-cgroups first (`exec --cgroup` may have made some).
    /// Missing ones are fine; busy ones are retried briefly.
    pub fn destroy(&self) -> Result<()> {
        let mut err = None;
        for d in self.dirs() {
            // Usually a leaf: one rmdir. Sub-cgroups (EBUSY) go first, leaves first.
            match std::fs::remove_dir(d) {
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => {}
            }
            for sub in fs::sub_cgroups(d) {
                if let Err(e) = fs::remove_dir(&sub) {
                    err = Some(e);
                }
            }
            if let Err(e) = fs::remove_dir(d) {
                err = Some(e);
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How a new process gets into its cgroups without anybody waiting for the kernel's global
/// threadgroup lock. Moving *another* process (writing its pid to `cgroup.procs`) takes that
/// lock for writing, which waits for an RCU grace period: 5–20 ms per move on this 2-core VM,
/// the largest part of a v1 `create` or `exec`. A single-threaded process that writes "0" to a
/// v1 `tasks` file moves only itself and skips the lock (kernel/cgroup/cgroup.c,
/// cgroup_procs_write_start): 0.1 ms for all hierarchies. On cgroup2 (pure or the unified part
/// of a hybrid host) clone3(CLONE_INTO_CGROUP) places the child as it is born; if clone3
/// refuses that, the child writes "0" to `cgroup.procs` (correct, with the lock).
///
/// The files are opened by berth before the fork: the kernel checks a migration against the
/// credentials of the opener, so the child may already be in a new user namespace.
pub struct Placement {
    /// v1 `tasks` files.
    v1: Vec<(PathBuf, OwnedFd)>,
    /// The cgroup2 directory (for CLONE_INTO_CGROUP) and its `cgroup.procs`.
    v2: Option<(OwnedFd, PathBuf, OwnedFd)>,
    /// berth places the process first (the systemd driver: systemd moves it into the unit):
    /// the process waits for berth's word before joining the rest itself.
    after_parent: bool,
}

impl Placement {
    pub fn open(v1_dirs: &[PathBuf], v2_dir: Option<&Path>) -> Result<Placement> {
        let open_w = |p: PathBuf| -> Result<(PathBuf, OwnedFd)> {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&p)
                .map_err(|e| anyhow!("cgroup placement: opening {}: {e}", p.display()))?;
            Ok((p, f.into()))
        };
        let mut v1 = vec![];
        for d in v1_dirs {
            v1.push(open_w(d.join("tasks"))?);
        }
        let v2 = match v2_dir {
            Some(d) => {
                let dir = std::fs::File::open(d)
                    .map_err(|e| anyhow!("cgroup placement: opening {}: {e}", d.display()))?;
                let (p, procs) = open_w(d.join("cgroup.procs"))?;
                Some((dir.into(), p, procs))
            }
            None => None,
        };
        Ok(Placement {
            v1,
            v2,
            after_parent: false,
        })
    }

    /// The same, once berth has placed the process (see `after_parent`).
    pub fn after_parent(p: Placement) -> Placement {
        Placement {
            after_parent: true,
            ..p
        }
    }

    /// Must the new process wait for berth before placing itself?
    pub fn waits_for_parent(&self) -> bool {
        self.after_parent
    }

    /// The cgroup2 directory for clone3(CLONE_INTO_CGROUP).
    pub fn clone_into(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.v2.as_ref().map(|(d, _, _)| d.as_raw_fd())
    }

    /// In the new (single-threaded) process: move itself into every hierarchy not placed by
    /// the clone already. Must run before it forks or unshares a cgroup namespace.
    pub fn join_self(&self, v2_placed: bool) -> Result<()> {
        let write0 = |p: &Path, f: &OwnedFd| -> Result<()> {
            match nix::unistd::write(f, b"0") {
                Ok(1) => Ok(()),
                Ok(_) => bail!("cgroup placement: short write to {}", p.display()),
                Err(e) => bail!("cgroup placement: moving into {}: {e}", p.display()),
            }
        };
        for (p, f) in &self.v1 {
            write0(p, f)?;
        }
        if let Some((_, p, f)) = &self.v2
            && !v2_placed
        {
            write0(p, f)?;
        }
        Ok(())
    }
}

/// The parent of a cgroup path ("/a/b" → "/a", "/a" → "/", "/" → "/").
fn parent_cg(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((head, _)) => head.into(),
    }
}

/// Join two cgroup paths ("/a" + "b/c" → "/a/b/c").
fn join_cg(base: &str, rel: &str) -> String {
    if rel.trim_matches('/').is_empty() && !rel.starts_with('/') {
        return base.to_string();
    }
    let base = base.trim_end_matches('/');
    format!("{base}/{}", rel.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cgroup_paths() {
        assert_eq!(
            super::parent_cg("/system.slice/foo.service"),
            "/system.slice"
        );
        assert_eq!(super::parent_cg("/a"), "/");
        assert_eq!(super::parent_cg("/"), "/");
        assert_eq!(super::parent_cg("/a/b/"), "/a");
        assert_eq!(super::join_cg("/", "c1"), "/c1");
        assert_eq!(super::join_cg("/system.slice", "c1"), "/system.slice/c1");
    }
}
