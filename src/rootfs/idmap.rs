//! Idmapped bind mounts (`idmap` / `ridmap` with a mount's `uidMappings` / `gidMappings`).
//!
//! Before the container's fork, berth makes one user namespace per idmapped mount: a helper
//! process is cloned straight into a new user namespace, berth writes its maps, keeps a
//! descriptor of the namespace and kills and reaps the helper (the namespace lives on through
//! the descriptor). In the container's mount namespace the source is cloned with open_tree,
//! given the mapping with mount_setattr(MOUNT_ATTR_IDMAP) and attached with move_mount onto the
//! target resolved inside the rootfs.

use anyhow::{Result, anyhow, bail};
use nix::mount::MsFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::sys;

/// The maps of an idmapped mount: its own, else (runc's rule) the container's user namespace
/// maps. None when the mount is not idmapped. Errors name the field.
pub fn mount_maps(
    m: &Mount,
    idx: usize,
    container: Option<(&[LinuxIdMapping], &[LinuxIdMapping])>,
) -> Result<Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)>> {
    let opts = super::mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let (u, g) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
    if opts.idmap.is_none() {
        if u.is_some_and(|v| !v.is_empty()) || g.is_some_and(|v| !v.is_empty()) {
            bail!(
                "mounts[{idx}].uidMappings: mappings without the \"idmap\" or \"ridmap\" option \
                 (add one to mounts[{idx}].options)"
            );
        }
        return Ok(None);
    }
    if !opts.bind() {
        bail!(
            "mounts[{idx}].options: idmap/ridmap is supported on bind mounts only (add \"rbind\" \
             or \"bind\")"
        );
    }
    let maps = match (u, g) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => (u.clone(), g.clone()),
        (None, None) => match container {
            Some((u, g)) => (u.to_vec(), g.to_vec()),
            None => bail!(
                "mounts[{idx}].uidMappings: an idmapped mount needs uidMappings and gidMappings \
                 (or a user namespace in linux.namespaces whose maps it takes)"
            ),
        },
        _ => bail!("mounts[{idx}]: an idmapped mount needs both uidMappings and gidMappings"),
    };
    for (name, list) in [("uidMappings", &maps.0), ("gidMappings", &maps.1)] {
        for (i, e) in list.iter().enumerate() {
            if e.size() == 0 {
                bail!("mounts[{idx}].{name}[{i}].size: must be greater than 0");
            }
        }
    }
    Ok(Some(maps))
}

/// Kill and reap the helper on every path out of `userns`.
struct Helper(i32);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(self.0), None);
    }
}

/// A user namespace with these maps, as a descriptor (no process stays in it).
pub fn userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping], field: &str) -> Result<OwnedFd> {
    let me = std::process::id() as i32;
    let helper = match crate::spawn::clone::clone(libc::CLONE_NEWUSER, None)?.0 {
        crate::spawn::clone::Forked::Child => {
            // Only waits to be killed; never returns into berth's code.
            let _ = sys::set_pdeathsig(Some(Signal::SIGKILL));
            if nix::unistd::getppid().as_raw() != me {
                sys::exit_now(0)
            }
            loop {
                nix::unistd::pause();
            }
        }
        crate::spawn::clone::Forked::Parent(pid) => Helper(pid),
    };
    let fmt = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let pid = helper.0;
    std::fs::write(format!("/proc/{pid}/uid_map"), fmt(uid))
        .map_err(|e| anyhow!("{field}.uidMappings: writing the map: {e}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), fmt(gid))
        .map_err(|e| anyhow!("{field}.gidMappings: writing the map: {e}"))?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| anyhow!("{field}: opening the mapping's user namespace: {e}"))?;
    drop(helper);
    Ok(OwnedFd::from(f))
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// An idmapped clone of mount `idx`'s source, made by berth before the fork: detached
/// (OPEN_TREE_CLONE, recursive with `rbind`; the idmap recursive with `ridmap`) with the mount
/// attributes of its options. It must be made here, in berth's user namespace: the kernel
/// wants CAP_SYS_ADMIN over the source filesystem's namespace for MOUNT_ATTR_IDMAP, which a
/// container process in a new user namespace never has. The child only attaches it.
pub fn prepare(m: &Mount, idx: usize, bundle: &Path, userns: BorrowedFd) -> Result<OwnedFd> {
    let opts = super::mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let field = format!("mounts[{idx}]");
    let src = m
        .source()
        .as_ref()
        .map(|s| {
            if s.is_relative() {
                bundle.join(s)
            } else {
                s.clone()
            }
        })
        .ok_or_else(|| anyhow!("{field}.source: an idmapped bind mount needs a source"))?;
    let mut attrs = 0;
    for (f, a) in [
        (MsFlags::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
    ] {
        if opts.flags.contains(f) {
            attrs |= a;
        }
    }
    let tree = sys::open_tree_path(&src, opts.flags.contains(MsFlags::MS_REC))
        .map_err(|e| anyhow!("{field}: open_tree {}: {e}", src.display()))?;
    sys::mount_setattr(
        tree.as_raw_fd(),
        Path::new(""),
        opts.idmap == Some(true),
        MOUNT_ATTR_IDMAP | attrs,
        0,
        Some(userns.as_raw_fd()),
    )
    .map_err(|e| {
        anyhow!(
            "{field}: mount_setattr(MOUNT_ATTR_IDMAP) on {}: {e}{}",
            src.display(),
            if e == nix::errno::Errno::EINVAL {
                " (does its filesystem support idmapped mounts?)"
            } else {
                ""
            }
        )
    })?;
    Ok(tree)
}

/// Attach a tree made by `prepare` onto `target` (in the container's mount namespace).
pub fn attach(tree: BorrowedFd, target: BorrowedFd) -> Result<()> {
    sys::attach_tree(tree, target).map_err(|e| anyhow!("move_mount: {e}"))?;
    Ok(())
}
