//! What CRIU cannot find out about a container by itself, from its config.json: the mounts
//! whose source lies outside the container (CRIU dumps a mount's content only for
//! filesystems it can recreate, such as tmpfs; a bind from the host must be named, and bound
//! again at restore from wherever the new config says), and the namespaces that were joined
//! by path instead of made for the container.
//!
//! A mount is named by the same string at checkpoint and at restore: at checkpoint CRIU
//! gets (mountpoint → name), at restore (name → source on this host).

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use std::path::{Path, PathBuf};

use crate::cgroups::{CgroupState, Mode};
use crate::rootfs::mounts::parse;

/// Where CRIU sees a mount: its destination with symlinks resolved inside the rootfs (as the
/// mount was made), or as written when it cannot be resolved.
fn mountpoint(rootfs: &Path, dest: &Path) -> String {
    let resolved = crate::rootfs::resolve::Root::open(rootfs)
        .ok()
        .and_then(|r| r.open_path(dest).ok().flatten())
        .and_then(|fd| {
            std::fs::read_link(crate::rootfs::resolve::fd_path(std::os::fd::AsFd::as_fd(
                &fd,
            )))
            .ok()
        })
        .and_then(|p| {
            p.strip_prefix(rootfs)
                .ok()
                .map(|r| Path::new("/").join(r).to_string_lossy().into_owned())
        });
    resolved.unwrap_or_else(|| dest.to_string_lossy().into_owned())
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || parse(m.options().as_deref().unwrap_or(&[])).bind()
}

fn is_cgroup(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2"))
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == t))
}

/// The binds berth makes for a `cgroup` mount (rootfs/mounts.rs `mount_cgroup`): none when it
/// is a real cgroup2 mount (pure v2 with a cgroup namespace), otherwise (mountpoint,
/// host directory) for each hierarchy bound in.
fn cgroup_binds(dest: &str, cg: &CgroupState, cgroup_ns: bool) -> Vec<(String, PathBuf)> {
    let dest = dest.trim_end_matches('/');
    if cg.mode == Mode::V2 {
        return match (&cg.v2, cgroup_ns) {
            (Some(d), false) => vec![(dest.to_string(), d.clone())],
            _ => vec![],
        };
    }
    let mut out: Vec<(String, PathBuf)> = cg
        .v1
        .iter()
        .map(|(key, dir)| {
            let name = key.strip_prefix("name=").unwrap_or(key);
            (format!("{dest}/{name}"), dir.clone())
        })
        .collect();
    if let Some(d) = &cg.v2 {
        out.push((format!("{dest}/unified"), d.clone()));
    }
    out
}

/// The device nodes of the container (the defaults and linux.devices): bound from the host
/// inside a user namespace, so named as external mounts (by their path) like runc does.
fn device_paths(spec: &Spec) -> Vec<String> {
    let mut v: Vec<String> = crate::rootfs::devices::defaults()
        .iter()
        .map(|d| d.path.to_string_lossy().into_owned())
        .collect();
    if let Some(l) = spec.linux() {
        for d in l.devices().iter().flatten() {
            let p = d.path().to_string_lossy().into_owned();
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    v
}

/// The name masked files share: they are /dev/null bound over a path.
const MASKED_FILE: &str = "/dev/null";

/// At checkpoint: (mountpoint, name) of every mount CRIU must treat as external. `pid` is the
/// container's process (masked paths are looked at through its root).
pub fn dump_mounts(
    spec: &Spec,
    rootfs: &Path,
    cg: Option<&CgroupState>,
    pid: i32,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    let cgroup_ns = has_ns(spec, LinuxNamespaceType::Cgroup);
    for m in spec.mounts().iter().flatten() {
        if is_cgroup(m) {
            if let Some(cg) = cg {
                for (mp, _) in cgroup_binds(&mountpoint(rootfs, m.destination()), cg, cgroup_ns) {
                    out.push((mp.clone(), mp));
                }
            }
        } else if is_bind(m) {
            let mp = mountpoint(rootfs, m.destination());
            out.push((mp.clone(), mp));
        }
    }
    if let Some(l) = spec.linux() {
        for p in l.masked_paths().iter().flatten() {
            // Files only: directories are masked with a tmpfs, which CRIU dumps itself.
            let st = nix::sys::stat::stat(format!("/proc/{pid}/root{p}").as_str());
            if st.is_ok_and(|s| s.st_mode & libc::S_IFMT != libc::S_IFDIR) {
                out.push((p.clone(), MASKED_FILE.into()));
            }
        }
    }
    for d in device_paths(spec) {
        if !out.iter().any(|(k, _)| *k == d) {
            out.push((d.clone(), d));
        }
    }
    out
}

/// At restore: (name, source on this host) of the same mounts, from the config being restored
/// (the bundle's: its bind sources may differ from the checkpointed container's).
pub fn restore_mounts(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    cg: Option<&CgroupState>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    let cgroup_ns = has_ns(spec, LinuxNamespaceType::Cgroup);
    for m in spec.mounts().iter().flatten() {
        if is_cgroup(m) {
            if let Some(cg) = cg {
                for (mp, dir) in cgroup_binds(&mountpoint(rootfs, m.destination()), cg, cgroup_ns) {
                    out.push((mp, dir.to_string_lossy().into_owned()));
                }
            }
        } else if is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_relative() {
                bundle.join(src)
            } else {
                src
            };
            out.push((
                mountpoint(rootfs, m.destination()),
                src.to_string_lossy().into_owned(),
            ));
        }
    }
    if spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.masked_paths().as_ref().is_some_and(|m| !m.is_empty()))
    {
        out.push((MASKED_FILE.into(), MASKED_FILE.into()));
    }
    for d in device_paths(spec) {
        if !out.iter().any(|(k, _)| *k == d) {
            out.push((d.clone(), d));
        }
    }
    out
}

/// CRIU's name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The key under which an external namespace is saved (runc's and crun's: extRootNetNS,
/// extRootPidNS), so that images are interchangeable.
pub fn ns_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "extRootNetNS",
        LinuxNamespaceType::Pid => "extRootPidNS",
        _ => "",
    }
}

/// The namespaces joined by path: (type, path).
pub fn joined_namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, PathBuf)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| {
            ns.iter()
                .filter_map(|n| n.path().as_ref().map(|p| (n.typ(), p.clone())))
                .collect()
        })
        .unwrap_or_default()
}
