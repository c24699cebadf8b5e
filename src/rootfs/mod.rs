//! The container's filesystem view (config.md "Root", "Mounts"; config-linux.md "Devices",
//! "Masked Paths", "Readonly Paths", "Rootfs Mount Propagation"). Runs in the child, in its own
//! mount namespace, in this order: propagation → rootfs bind → mounts → devices → symlinks →
//! (hooks) → pivot_root → read-only root, masked and read-only paths. Without a mount namespace
//! (the container shares berth's) only the mounts and devices are made, then `chroot`.

pub mod devices;
pub mod idmap;
pub mod mounts;
pub mod resolve;

use anyhow::{Result, anyhow, bail};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::SFlag;
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use resolve::{Root, fd_path};

/// How the child reaches the rootfs. Normally through a descriptor: berth forks the child
/// with its working directory in the rootfs (`spawn::create`), the child opens it from there
/// and every later step goes through `/proc/self/fd/N` — never through the directories above
/// the rootfs, which the container's root may not search once the user namespace takes effect
/// (a bundle under a 0700 directory). By the path only where the working directory is not the
/// rootfs any more (a mount namespace joined by path: setns moved it to that namespace's root).
pub struct Rootfs {
    /// The configured path, for messages.
    pub shown: PathBuf,
    fd: Option<OwnedFd>,
}

impl Rootfs {
    /// The rootfs is the working directory.
    pub fn from_cwd(shown: &Path) -> Result<Rootfs> {
        let fd = nix::fcntl::open(
            ".",
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("opening rootfs {}: {e}", shown.display()))?;
        Ok(Rootfs {
            shown: shown.to_path_buf(),
            fd: Some(fd),
        })
    }

    pub fn by_path(shown: &Path) -> Rootfs {
        Rootfs {
            shown: shown.to_path_buf(),
            fd: None,
        }
    }

    /// The path to use in system calls.
    pub fn path(&self) -> PathBuf {
        match &self.fd {
            Some(fd) => fd_path(fd.as_fd()),
            None => self.shown.clone(),
        }
    }
}

/// Set the propagation of the whole view and make the rootfs a mount point.
///
/// The order matters for `linux.rootfsPropagation`: an unbindable mount cannot be the source of
/// the rootfs bind, and pivot_root refuses a new root that is shared or whose parent is. So the
/// setup runs with a propagation that allows both — the one asked for, with unbindable replaced
/// by slave — and `set_root_propagation` applies the one asked for to `/` after pivot_root.
/// With a non-recursive value the mount holding the rootfs, if shared, is made a slave (for
/// slave and unbindable) or private (shared, private) first.
pub fn prepare_root(rootfs: &mut Rootfs, propagation: Option<&str>) -> Result<MsFlags> {
    let prop = match propagation {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => mounts::propagation_flag(p)
            .ok_or_else(|| anyhow!("linux.rootfsPropagation: {p:?} is not one of shared, slave, private, unbindable (r-prefixed too)"))?,
    };
    let setup = if prop.contains(MsFlags::MS_UNBINDABLE) {
        (prop & MsFlags::MS_REC) | MsFlags::MS_SLAVE
    } else {
        prop
    };
    mount(None::<&str>, "/", None::<&str>, setup, None::<&str>)
        .map_err(|e| anyhow!("setting mount propagation of /: {e}"))?;
    // After a recursive slave or private propagation of / (the default: rslave) no mount of
    // this namespace is shared any more, so there is nothing to look up in mountinfo.
    let none_shared = setup.contains(MsFlags::MS_REC)
        && setup.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE);
    if !none_shared {
        let as_slave = setup.contains(MsFlags::MS_SLAVE);
        make_parent_unshared(&rootfs.shown, as_slave)?;
    }
    let failed = |e: Errno| {
        anyhow!(
            "bind-mounting the rootfs {} onto itself: {e}",
            rootfs.shown.display()
        )
    };
    match &rootfs.fd {
        // A recursive copy attached onto the directory itself (as `mount --rbind`); the copy's
        // descriptor then stands for the new mount, which a path through the old descriptor
        // (under it) would miss.
        Some(under) => {
            let tree = crate::sys::clone_tree(under.as_fd()).map_err(failed)?;
            crate::sys::attach_tree(tree.as_fd(), under.as_fd()).map_err(failed)?;
            rootfs.fd = Some(tree);
        }
        None => mount(
            Some(&rootfs.shown),
            &rootfs.shown,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(failed)?,
    }
    Ok(prop)
}

/// The mount holding `rootfs`, if shared, becomes a slave (`as_slave`: it keeps receiving the
/// host's mounts, as the rootfs bind made from it will) or private.
fn make_parent_unshared(rootfs: &Path, as_slave: bool) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(String, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = f[4].replace("\\040", " ");
        if rootfs.starts_with(&mp) && best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            let shared = f[6..]
                .iter()
                .take_while(|x| **x != "-")
                .any(|x| x.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        let to = if as_slave {
            MsFlags::MS_SLAVE
        } else {
            MsFlags::MS_PRIVATE
        };
        mount(None::<&str>, mp.as_str(), None::<&str>, to, None::<&str>).map_err(|e| {
            anyhow!(
                "making {mp} {}: {e}",
                if as_slave { "a slave" } else { "private" }
            )
        })?;
    }
    Ok(())
}

/// All of `mounts`, then /dev.
pub fn mount_all(root: &Root, spec: &Spec, ctx: &mounts::Ctx, userns: bool) -> Result<()> {
    let list = spec.mounts().as_deref().unwrap_or(&[]);
    for (i, m) in list.iter().enumerate() {
        mounts::mount_entry(root, m, i, ctx)?;
    }
    // A /dev bound from the host already has its devices.
    let dev_is_bind = list.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && mounts::parse(m.options().as_deref().unwrap_or(&[])).bind()
    });
    if !dev_is_bind {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let mut devs = devices::defaults();
        if let Some(l) = spec.linux() {
            for (i, d) in l.devices().iter().flatten().enumerate() {
                devs.retain(|x| x.path != *d.path());
                devs.push(devices::from_spec(d, i)?);
            }
        }
        let res = devices::open_dev(root).and_then(|dev| {
            devs.iter()
                .try_for_each(|d| devices::create(root, dev.as_fd(), d, userns))?;
            devices::symlinks(dev.as_fd())
        });
        nix::sys::stat::umask(old);
        res?;
    }
    Ok(())
}

/// Make the rootfs the root: pivot_root, or MS_MOVE + chroot with --no-pivot.
pub fn pivot(rootfs: &Rootfs, no_pivot: bool) -> Result<()> {
    let path = rootfs.path();
    nix::unistd::chdir(&path).map_err(|e| anyhow!("chdir to rootfs: {e}"))?;
    if no_pivot {
        mount(
            Some(&path),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| anyhow!("moving the rootfs to / (--no-pivot): {e}"))?;
        nix::unistd::chroot(".").map_err(|e| anyhow!("chroot (--no-pivot): {e}"))?;
    } else {
        let old = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("opening /: {e}"))?;
        // pivot_root(".", ".") stacks the old root on top of the new one; it is then unmounted.
        crate::sys::pivot_root(Path::new("."), Path::new("."))
            .map_err(|e| anyhow!("pivot_root to {}: {e}", rootfs.shown.display()))?;
        nix::unistd::fchdir(&old).map_err(|e| anyhow!("fchdir to the old root: {e}"))?;
        // Never let the unmount propagate to the host.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| anyhow!("making the old root a slave: {e}"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| anyhow!("unmounting the old root: {e}"))?;
    }
    nix::unistd::chdir("/").map_err(|e| anyhow!("chdir to /: {e}"))?;
    Ok(())
}

/// Enter the rootfs with chroot: a container without a mount namespace, which shares the
/// runtime's (pivot_root would change the runtime's own root).
pub fn chroot(rootfs: &Rootfs) -> Result<()> {
    nix::unistd::chdir(&rootfs.path()).map_err(|e| anyhow!("chdir to rootfs: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| anyhow!("chroot into the rootfs: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| anyhow!("chdir to /: {e}"))?;
    Ok(())
}

/// After pivot_root: propagation of / when shared or unbindable was asked for.
pub fn set_root_propagation(prop: MsFlags) -> Result<()> {
    if prop.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(|e| anyhow!("linux.rootfsPropagation: applying to /: {e}"))?;
    }
    Ok(())
}

/// `root.readonly`: remount / read-only (keeping what the kernel locked in a user namespace).
pub fn readonly_root(userns: bool) -> Result<()> {
    mounts::remount_bind(Path::new("/"), MsFlags::MS_RDONLY | MsFlags::MS_REC, userns)
        .map_err(|e| anyhow!("root.readonly: remounting / read-only: {e}"))
}

/// `linux.maskedPaths`: files get /dev/null bound over them (verified to be char 1:3),
/// directories a read-only empty tmpfs. Absent paths are skipped.
pub fn mask_paths(paths: &[String], label: Option<&str>) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = Root::open(Path::new("/"))?;
    // /dev/null is opened once, without following a symlink, checked, and bound from that
    // descriptor: swapping it for a symlink or another file (CVE-2025-31133) cannot make berth
    // mask with something else.
    let null = root
        .open_path(Path::new("/dev/null"))?
        .ok_or_else(|| anyhow!("linux.maskedPaths: /dev/null is missing in the container"))?;
    let st = nix::sys::stat::fstat(null.as_fd())
        .map_err(|e| anyhow!("linux.maskedPaths: /dev/null: {e}"))?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFCHR
        || st.st_rdev != nix::sys::stat::makedev(1, 3)
    {
        bail!(
            "linux.maskedPaths: /dev/null in the container is not the null device (char 1:3): refusing to mask with it"
        );
    }
    let null_src = fd_path(null.as_fd());
    for (i, p) in paths.iter().enumerate() {
        let Some(fd) = root.open_path(Path::new(p))? else {
            continue;
        };
        let st = nix::sys::stat::fstat(fd.as_fd())
            .map_err(|e| anyhow!("linux.maskedPaths[{i}]: {p}: {e}"))?;
        let target = fd_path(fd.as_fd());
        let r = if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            let data = match label {
                Some(l) => format!("size=0,context=\"{l}\""),
                None => "size=0".into(),
            };
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some(data.as_str()),
            )
        } else {
            mount(
                Some(&null_src),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(|e| anyhow!("linux.maskedPaths[{i}]: masking {p}: {e}"))?;
    }
    Ok(())
}

/// `linux.readonlyPaths`: bound onto themselves read-only. Absent paths are skipped.
pub fn readonly_paths(paths: &[String], userns: bool) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = Root::open(Path::new("/"))?;
    for (i, p) in paths.iter().enumerate() {
        let Some(fd) = root.open_path(Path::new(p))? else {
            continue;
        };
        let target = fd_path(fd.as_fd());
        mount(
            Some(&target),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| anyhow!("linux.readonlyPaths[{i}]: binding {p}: {e}"))?;
        let fd2 = root
            .open_path(Path::new(p))?
            .ok_or_else(|| anyhow!("linux.readonlyPaths[{i}]: {p} vanished"))?;
        mounts::remount_bind(
            &fd_path(fd2.as_fd()),
            MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_REC,
            userns,
        )
        .or_else(|e| match e {
            // Some filesystems refuse nosuid/nodev/noexec changes; read-only is what matters.
            Errno::EPERM | Errno::EINVAL => mounts::remount_bind(
                &fd_path(fd2.as_fd()),
                MsFlags::MS_RDONLY | MsFlags::MS_REC,
                userns,
            ),
            e => Err(e),
        })
        .map_err(|e| anyhow!("linux.readonlyPaths[{i}]: remounting {p} read-only: {e}"))?;
    }
    Ok(())
}
