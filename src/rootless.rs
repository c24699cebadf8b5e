//! Rootless: berth run by an ordinary user, or as root inside a user namespace someone else made
//! (rootless podman, rootlesskit, `unshare -r`). The rules are runc's: what is decided here is
//! whether berth is rootless, where its state lives, and how a new user namespace gets its id
//! maps. Cgroups (none where the caller may not make one) are in `spawn`.

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::LinuxIdMapping;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static ROOTLESS: AtomicBool = AtomicBool::new(false);

/// Whether this invocation is rootless (set once by the command line).
pub fn enabled() -> bool {
    ROOTLESS.load(Ordering::Relaxed)
}

/// The id ranges of berth's own user namespace: (inside, outside, count) per line of
/// /proc/self/uid_map or gid_map.
fn own_map(file: &str) -> Vec<(u64, u64, u64)> {
    crate::sys::read_small_string(Path::new(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some((f.next()??, f.next()??, f.next()??))
        })
        .collect()
}

/// Inside a user namespace whose uid map is not the whole range (the initial namespace maps
/// `0 0 4294967295`): one made by someone else, as runc's `userns.RunningInUserNS` decides.
/// Read once per process (berth asks up to three times on the create path).
pub fn in_userns() -> bool {
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let m = own_map("/proc/self/uid_map");
            let yes = !(m.is_empty() || m == [(0, 0, 4294967295)]);
            CACHE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Berth's effective uid as the outer user namespace sees it (its own uid outside a user
/// namespace; under rootless podman, root inside is the user outside). What a peer there (the
/// user's D-Bus session bus) reads from the socket, so what D-Bus's EXTERNAL authentication
/// must claim.
pub fn outer_euid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw() as u64;
    if !in_userns() {
        return euid as u32;
    }
    own_map("/proc/self/uid_map")
        .iter()
        .find(|&&(inside, _, n)| inside <= euid && euid < inside + n)
        .map_or(euid, |&(inside, outside, _)| outside + (euid - inside)) as u32
}

/// `--rootless true|false|auto` (absent = auto). Auto: rootless when the effective uid is not 0,
/// or when berth runs inside a user namespace someone else made.
pub fn decide(flag: Option<&str>) -> Result<bool> {
    let on = match flag {
        None | Some("auto") => !nix::unistd::geteuid().is_root() || in_userns(),
        Some("true") => true,
        Some("false") => false,
        Some(other) => bail!("--rootless: {other:?} is not one of true, false, auto"),
    };
    ROOTLESS.store(on, Ordering::Relaxed);
    Ok(on)
}

/// The default `--root`: `/run/berth`, or for a rootless caller `$XDG_RUNTIME_DIR/berth` (runc:
/// `$XDG_RUNTIME_DIR/runc`). As runc, root inside someone else's user namespace uses
/// XDG_RUNTIME_DIR unless USER is root, and falls back to /run/berth when it is unset.
pub fn default_root() -> Result<PathBuf> {
    const SYSTEM: &str = "/run/berth";
    let euid = nix::unistd::geteuid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    let honor = if !euid.is_root() {
        true
    } else if !in_userns() {
        false
    } else {
        xdg.is_some() && std::env::var("USER").map_or(true, |u| u != "root")
    };
    if !honor {
        return Ok(SYSTEM.into());
    }
    let Some(xdg) = xdg else {
        bail!(
            "rootless: XDG_RUNTIME_DIR is not set, so there is no place for the containers' state: \
             set it to a directory of yours (usually /run/user/{euid}) or pass --root DIR"
        );
    };
    let dir = PathBuf::from(xdg);
    let md = std::fs::metadata(&dir).map_err(|e| {
        anyhow!(
            "rootless: XDG_RUNTIME_DIR={}: {}: set it to a directory of yours or pass --root DIR",
            dir.display(),
            errno_text(&e)
        )
    })?;
    if std::os::unix::fs::MetadataExt::uid(&md) != euid.as_raw() {
        bail!(
            "rootless: XDG_RUNTIME_DIR={} belongs to uid {}, not to the caller (uid {euid}): set it \
             to a directory of yours (usually /run/user/{euid}) or pass --root DIR",
            dir.display(),
            std::os::unix::fs::MetadataExt::uid(&md)
        );
    }
    Ok(dir.join("berth"))
}

/// An I/O error the way Go prints an errno ("permission denied"), which engines match on.
use crate::logger::io_errno_text as errno_text;

/// How one id map of a new user namespace is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// berth writes /proc/<pid>/{uid,gid}_map itself.
    Direct,
    /// Through the setuid helper newuidmap / newgidmap (shadow's `uidmap` package), which
    /// allows the caller's ranges in /etc/subuid and /etc/subgid.
    Helper,
}

/// How the maps of a new user namespace are written, decided (and checked) before anything is
/// created.
#[derive(Clone, Copy, Debug)]
pub struct MapPlan {
    pub uid: Writer,
    pub gid: Writer,
    /// Write "deny" to /proc/<pid>/setgroups before the gid map (an unprivileged process may
    /// map its own gid only so).
    pub deny_setgroups: bool,
}

const HELPERS: [(&str, &str, &str); 2] = [
    ("uidMappings", "newuidmap", "/etc/subuid"),
    ("gidMappings", "newgidmap", "/etc/subgid"),
];

/// Decide how the maps are written and check that the caller may have them, so that a mapping
/// it cannot have fails here, naming the field, and not as a bare EPERM after the clone.
pub fn plan_maps(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<MapPlan> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    if euid == 0 {
        if in_userns() {
            // Root of someone else's user namespace: the kernel lets it map what its own
            // namespace maps, and nothing else.
            for ((field, _, _), maps, own) in [
                (HELPERS[0], uid, own_map("/proc/self/uid_map")),
                (HELPERS[1], gid, own_map("/proc/self/gid_map")),
            ] {
                let have: Vec<(u64, u64)> = own.iter().map(|&(i, _, n)| (i, n)).collect();
                for (i, m) in maps.iter().enumerate() {
                    if !covered(&have, m.host_id() as u64, m.size() as u64) {
                        bail!(
                            "linux.{field}[{i}]: host ids {} are not mapped in the user namespace \
                             berth runs in (it maps {}): map only ids of that namespace",
                            span(m),
                            ranges_text(&have)
                        );
                    }
                }
            }
        }
        return Ok(MapPlan {
            uid: Writer::Direct,
            gid: Writer::Direct,
            deny_setgroups: false,
        });
    }
    let own_only = |maps: &[LinuxIdMapping], id: u32| {
        maps.len() == 1 && maps[0].host_id() == id && maps[0].size() == 1
    };
    let uid_w = if own_only(uid, euid) {
        Writer::Direct
    } else {
        Writer::Helper
    };
    let gid_w = if own_only(gid, egid) {
        Writer::Direct
    } else {
        Writer::Helper
    };
    let name = crate::spawn::child::passwd_field(euid, 0);
    let user = match &name {
        Some(n) => format!("{n} (uid {euid})"),
        None => format!("uid {euid}"),
    };
    for ((field, helper, file), maps, w, own, kind) in [
        (HELPERS[0], uid, uid_w, euid, "uid"),
        (HELPERS[1], gid, gid_w, egid, "gid"),
    ] {
        if w == Writer::Direct {
            continue;
        }
        let ranges = sub_ranges(file, name.as_deref(), euid);
        for (i, m) in maps.iter().enumerate() {
            let (h, n) = (m.host_id() as u64, m.size() as u64);
            if (n == 1 && h == own as u64) || covered(&ranges, h, n) {
                continue;
            }
            bail!(
                "linux.{field}[{i}]: host {kind}s {} cannot be mapped by {user}: an unprivileged \
                 user may map only its own {kind} ({own}) and the ranges {file} gives it ({})",
                span(m),
                if ranges.is_empty() {
                    "none".to_string()
                } else {
                    ranges_text(&ranges)
                }
            );
        }
        if find_helper(helper).is_none() {
            bail!(
                "linux.{field}: mapping more than the caller's own id needs {helper} (Debian \
                 package uidmap), which is not installed"
            );
        }
    }
    Ok(MapPlan {
        uid: uid_w,
        gid: gid_w,
        deny_setgroups: gid_w == Writer::Direct,
    })
}

fn span(m: &LinuxIdMapping) -> String {
    let (h, n) = (m.host_id() as u64, m.size() as u64);
    if n == 1 {
        format!("{h}-{h}")
    } else {
        format!("{h}-{}", h + n - 1)
    }
}

fn ranges_text(r: &[(u64, u64)]) -> String {
    r.iter()
        .map(|&(s, n)| format!("{s}-{}", s + n.max(1) - 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether [start, start+count) lies within the union of `ranges` (start, count).
fn covered(ranges: &[(u64, u64)], start: u64, count: u64) -> bool {
    let mut r: Vec<(u64, u64)> = ranges.to_vec();
    r.sort();
    let (mut at, end) = (start, start + count);
    for (s, n) in r {
        if s <= at && at < s + n {
            at = s + n;
        }
        if at >= end {
            return true;
        }
    }
    at >= end
}

/// The caller's ranges in /etc/subuid or /etc/subgid (lines `name-or-uid:start:count`).
fn sub_ranges(file: &str, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 || !(Some(f[0]) == name || f[0] == uid) {
                return None;
            }
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .collect()
}

fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Write the maps of the new user namespace of `pid`, as planned.
pub fn write_maps(
    pid: i32,
    plan: &MapPlan,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<()> {
    if plan.deny_setgroups {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").map_err(|e| {
            anyhow!(
                "linux.gidMappings: writing \"deny\" to /proc/{pid}/setgroups: {}",
                errno_text(&e)
            )
        })?;
    }
    for ((field, helper, _), maps, w, file) in [
        (HELPERS[0], uid, plan.uid, "uid_map"),
        (HELPERS[1], gid, plan.gid, "gid_map"),
    ] {
        match w {
            Writer::Direct => {
                let text: String = maps
                    .iter()
                    .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                    .collect();
                std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| {
                    anyhow!(
                        "linux.{field}: writing /proc/{pid}/{file}: {}",
                        errno_text(&e)
                    )
                })?;
            }
            Writer::Helper => {
                let exe = find_helper(helper).ok_or_else(|| {
                    anyhow!("linux.{field}: {helper} (Debian package uidmap) is not installed")
                })?;
                let mut cmd = std::process::Command::new(&exe);
                cmd.arg(pid.to_string());
                for m in maps {
                    cmd.args([
                        m.container_id().to_string(),
                        m.host_id().to_string(),
                        m.size().to_string(),
                    ]);
                }
                let out = cmd
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| anyhow!("linux.{field}: running {}: {e}", exe.display()))?;
                if !out.status.success() {
                    bail!(
                        "linux.{field}: {helper} refused the mapping ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
    }
    Ok(())
}

/// A rootless container that gets no cgroup (the caller may not make one: cgroup v1, or a
/// cgroup2 tree not delegated to it) runs in the caller's cgroup. As runc: a limit it asks for
/// is an error (nothing could enforce it), device rules are ignored (one warning), and an
/// explicit `linux.cgroupsPath` is an error.
pub fn check_no_cgroup(linux: Option<&oci_spec::runtime::Linux>) -> Result<()> {
    let why = "a rootless caller may not create cgroups here (cgroup v1 is never delegated to \
               ordinary users; on cgroup v2 only a delegated subtree is writable)";
    let Some(linux) = linux else { return Ok(()) };
    if let Some(p) = linux.cgroups_path() {
        bail!(
            "linux.cgroupsPath: {}: {why}: remove linux.cgroupsPath (the container then stays in \
             the caller's cgroup)",
            p.display()
        );
    }
    let Some(r) = linux.resources() else {
        return Ok(());
    };
    let mut limits = vec![];
    if r.memory().is_some() {
        limits.push("memory");
    }
    if r.cpu().is_some() {
        limits.push("cpu");
    }
    if r.pids().is_some() {
        limits.push("pids");
    }
    if r.block_io().is_some() {
        limits.push("blockIO");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        limits.push("hugepageLimits");
    }
    if r.network().is_some() {
        limits.push("network");
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        limits.push("rdma");
    }
    if r.unified().as_ref().is_some_and(|h| !h.is_empty()) {
        limits.push("unified");
    }
    if !limits.is_empty() {
        bail!(
            "linux.resources.{}: cannot set {} limit: the container could not join or create a \
             cgroup: {why}; remove the limits",
            limits.join(", linux.resources."),
            limits.join(", ")
        );
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        crate::logger::warn(
            "rootless: no cgroup for the container, so these are ignored: linux.resources.devices \
             (the devices a rootless container can open are those bound from the host)",
        );
    }
    Ok(())
}

/// The processes of a container that has no cgroup (rootless): those in the pid namespace of
/// its init, when that is not berth's own; else the init alone.
pub fn pids_without_cgroup(init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(&init.to_string()) else {
        return vec![];
    };
    if ns("self").as_ref() == Some(&theirs) {
        return vec![init];
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns(&p.to_string()).as_ref() == Some(&theirs))
        .collect();
    pids.sort();
    pids
}

#[cfg(test)]
mod tests {
    use super::covered;

    #[test]
    fn coverage() {
        let r = [(100000, 65536), (165536, 10)];
        assert!(covered(&r, 100000, 65536));
        assert!(covered(&r, 100000, 65546));
        assert!(covered(&r, 165540, 6));
        assert!(!covered(&r, 100000, 65547));
        assert!(!covered(&r, 99999, 2));
        assert!(!covered(&[], 1, 1));
    }
}
