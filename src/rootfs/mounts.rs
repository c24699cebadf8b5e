//! One entry of `mounts`: option parsing (runc's vocabulary) and the mount itself, made on a
//! target resolved inside the rootfs.

use anyhow::{Result, anyhow, bail};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::resolve::{Kind, Root, fd_path};
use crate::cgroups::{CgroupState, Mode};
use crate::sys;

#[derive(Debug)]
pub struct Opts {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub rec_set: u64,
    pub rec_clr: u64,
    pub data: Vec<String>,
    pub idmap: Option<bool>,
}

impl Opts {
    pub fn bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

pub fn parse(options: &[String]) -> Opts {
    let mut o = Opts {
        flags: MsFlags::empty(),
        propagation: vec![],
        rec_set: 0,
        rec_clr: 0,
        data: vec![],
        idmap: None,
    };
    for opt in options {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "idmap" => {
                o.idmap = Some(false);
                continue;
            }
            "ridmap" => {
                o.idmap = Some(true);
                continue;
            }
            r if recursive_attr(r).is_some() => {
                let (set, clr) = recursive_attr(r).unwrap_or((0, 0));
                if set & sys::MOUNT_ATTR__ATIME != 0 || clr & sys::MOUNT_ATTR__ATIME != 0 {
                    o.rec_clr |= sys::MOUNT_ATTR__ATIME;
                }
                o.rec_set |= set;
                o.rec_clr |= clr;
                continue;
            }
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
    }
    o
}

pub fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The recursive (`r`-prefixed) mount attributes applied with mount_setattr(AT_RECURSIVE).
fn recursive_attr(s: &str) -> Option<(u64, u64)> {
    Some(match s {
        "rro" => (sys::MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, sys::MOUNT_ATTR_RDONLY),
        "rnosuid" => (sys::MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, sys::MOUNT_ATTR_NOSUID),
        "rnodev" => (sys::MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, sys::MOUNT_ATTR_NODEV),
        "rnoexec" => (sys::MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, sys::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (sys::MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, sys::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (sys::MOUNT_ATTR_RELATIME, 0),
        "rnorelatime" => (0, 0),
        "rnoatime" => (sys::MOUNT_ATTR_NOATIME, 0),
        "ratime" => (0, 0),
        "rstrictatime" => (sys::MOUNT_ATTR_STRICTATIME, 0),
        "rnostrictatime" => (0, 0),
        "rnosymfollow" => (sys::MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, sys::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// What a mount needs to know about the container.
pub struct Ctx<'a> {
    pub bundle: &'a Path,
    pub in_userns: bool,
    pub cgroup_ns: bool,
    pub cgroup: Option<&'a CgroupState>,
    pub mount_label: Option<&'a str>,
    /// Idmapped mount trees made before the fork, by index in `mounts`.
    pub idmap: &'a [(usize, std::os::fd::OwnedFd)],
}

fn flag_str(o: &Opts) -> String {
    format!("{:?}", o.flags)
}

/// Perform one entry of `mounts`.
pub fn mount_entry(root: &Root, m: &Mount, idx: usize, ctx: &Ctx) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse(m.options().as_deref().unwrap_or(&[]));
    let what = |e: String| {
        anyhow!(
            "mounts[{idx}] ({} at {}): {e}",
            if typ.is_empty() { "bind" } else { typ },
            dest.display()
        )
    };
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, &opts, ctx).map_err(|e| what(format!("{e:#}")));
    }
    let source: Option<PathBuf> = m.source().as_ref().map(|s| {
        if opts.bind() && s.is_relative() {
            ctx.bundle.join(s)
        } else {
            s.clone()
        }
    });
    if opts.idmap.is_some() {
        let src = source.ok_or_else(|| what("a bind mount needs a source".into()))?;
        let tree = ctx
            .idmap
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|(_, fd)| fd.as_fd())
            .ok_or_else(|| what("no idmapped mount was prepared for this entry".into()))?;
        let meta =
            std::fs::metadata(&src).map_err(|e| what(format!("source {}: {e}", src.display())))?;
        let target = root
            .mkdir_all(dest, if meta.is_dir() { Kind::Dir } else { Kind::File })
            .map_err(|e| what(format!("{e:#}")))?;
        super::idmap::attach(tree, target.as_fd()).map_err(|e| what(format!("{e:#}")))?;
    } else if opts.bind() {
        let src = source.ok_or_else(|| what("a bind mount needs a source".into()))?;
        let meta =
            std::fs::metadata(&src).map_err(|e| what(format!("source {}: {e}", src.display())))?;
        let target = root
            .mkdir_all(dest, if meta.is_dir() { Kind::Dir } else { Kind::File })
            .map_err(|e| what(format!("{e:#}")))?;
        let tpath = fd_path(target.as_fd());
        mount(
            Some(&src),
            &tpath,
            None::<&str>,
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(|e| what(format!("bind-mounting {}: {e}", src.display())))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            // Re-resolve: the target is now the new mount.
            let t2 = root.mkdir_all(dest, if meta.is_dir() { Kind::Dir } else { Kind::File })?;
            remount_bind(&fd_path(t2.as_fd()), extra, ctx.in_userns)
                .map_err(|e| what(format!("remounting with {}: {e}", flag_str(&opts))))?;
        }
    } else {
        if matches!(typ, "proc" | "sysfs") {
            ordinary_directory(root, dest, typ).map_err(|e| what(format!("{e:#}")))?;
        }
        let target = root
            .mkdir_all(dest, Kind::Dir)
            .map_err(|e| what(format!("{e:#}")))?;
        let tpath = fd_path(target.as_fd());
        let mut data = opts.data.join(",");
        if let Some(label) = ctx.mount_label
            && matches!(typ, "tmpfs" | "devpts" | "mqueue")
        {
            if !data.is_empty() {
                data.push(',');
            }
            data.push_str(&format!("context=\"{label}\""));
        }
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        let r = mount(
            Some(source.as_deref().unwrap_or(Path::new(typ))),
            &tpath,
            Some(typ),
            flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        );
        match r {
            Ok(()) => {}
            // Inside a user namespace without its own network namespace sysfs cannot be
            // mounted; runc binds the host's instead, and so do we.
            Err(Errno::EPERM) if ctx.in_userns && typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &tpath,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| what(format!("binding /sys: {e}")))?;
                let t2 = root.mkdir_all(dest, Kind::Dir)?;
                remount_bind(
                    &fd_path(t2.as_fd()),
                    flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    true,
                )
                .map_err(|e| what(format!("{e}")))?;
            }
            Err(Errno::EPERM) if ctx.in_userns && typ == "mqueue" => {
                mount(
                    Some("/dev/mqueue"),
                    &tpath,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| what(format!("binding /dev/mqueue: {e}")))?;
            }
            Err(e) => return Err(what(format!("{e}"))),
        }
    }
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    // The new mount, resolved again (the descriptor above is the directory under it).
    let target = root
        .open_path(dest)?
        .ok_or_else(|| what("vanished after mounting".into()))?;
    let tpath = fd_path(target.as_fd());
    for p in &opts.propagation {
        mount(None::<&str>, &tpath, None::<&str>, *p, None::<&str>)
            .map_err(|e| what(format!("setting propagation: {e}")))?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        sys::mount_setattr(
            libc::AT_FDCWD,
            &tpath,
            true,
            opts.rec_set,
            opts.rec_clr,
            None,
        )
        .map_err(|e| what(format!("applying recursive mount options: {e}")))?;
    }
    Ok(())
}

/// proc and sysfs go on an ordinary directory only (runc and crun refuse the same: the
/// CVE-2019-19921 family, where a symlink at /proc sends the mount, and with it the runtime's
/// later writes to /proc, somewhere else). The last component of `dest` may be missing (it is
/// created) or a directory; a symlink there is refused whether or not its target exists.
fn ordinary_directory(root: &Root, dest: &Path, typ: &str) -> Result<()> {
    let Some(fd) = root.open_path(dest)? else {
        return Ok(());
    };
    let st = nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| anyhow!("{} in the rootfs: {e}", dest.display()))?;
    let kind =
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT;
    if kind == nix::sys::stat::SFlag::S_IFDIR {
        return Ok(());
    }
    if kind == nix::sys::stat::SFlag::S_IFLNK {
        let to = nix::fcntl::readlinkat(fd.as_fd(), "")
            .map(|t| format!(" (to {})", t.to_string_lossy()))
            .unwrap_or_default();
        bail!(
            "{} in the rootfs is a symlink{to}: {typ} must be mounted on an ordinary directory \
             (replace the symlink in the rootfs with a directory)",
            dest.display()
        );
    }
    bail!(
        "{} in the rootfs is not a directory: {typ} must be mounted on an ordinary directory",
        dest.display()
    )
}

/// Remount a bind mount with `flags`; inside a user namespace keep the flags the kernel locked
/// on the source (nosuid, nodev, noexec, ro, atime).
pub fn remount_bind(target: &Path, flags: MsFlags, in_userns: bool) -> nix::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Err(Errno::EPERM) if in_userns => {
            let st = nix::sys::statvfs::statvfs(target)?;
            use nix::sys::statvfs::FsFlags;
            let f = st.flags();
            let mut locked = MsFlags::empty();
            for (ff, mf) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if f.contains(ff) {
                    locked |= mf;
                }
            }
            mount(
                None::<&str>,
                target,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
        }
        r => r,
    }
}

/// A `cgroup` mount: with a cgroup namespace on cgroup2, a fresh cgroup2 mount (where the host's
/// is there already, the container's own cgroup bound); otherwise the container's own cgroup
/// directories bound in (a tmpfs with one bind per v1 hierarchy).
fn mount_cgroup(root: &Root, dest: &Path, opts: &Opts, ctx: &Ctx) -> Result<()> {
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let common = opts.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY);
    let Some(cg) = ctx.cgroup else {
        bail!("no cgroup to mount")
    };
    let target = root.mkdir_all(dest, Kind::Dir)?;
    let tpath = fd_path(target.as_fd());
    if cg.mode == Mode::V2 {
        let bind_own = !ctx.cgroup_ns
            || match mount(
                Some("cgroup2"),
                &tpath,
                Some("cgroup2"),
                common,
                None::<&str>,
            ) {
                Ok(()) => false,
                // The target is the host's cgroup2 mount already (a user namespace without a
                // network namespace gets the host's /sys bound, /sys/fs/cgroup included), and
                // the kernel refuses the same filesystem twice on one mount point. The
                // container's own cgroup bound there is the view a new mount in its cgroup
                // namespace would give.
                Err(Errno::EBUSY) if cg.v2.is_some() => true,
                Err(e) => bail!("mounting cgroup2: {e}"),
            };
        if bind_own && let Some(d) = &cg.v2 {
            mount(
                Some(d.as_path()),
                &tpath,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| anyhow!("binding {}: {e}", d.display()))?;
            let t2 = root.mkdir_all(dest, Kind::Dir)?;
            remount_bind(&fd_path(t2.as_fd()), common, ctx.in_userns)
                .map_err(|e| anyhow!("remounting: {e}"))?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &tpath,
        Some("tmpfs"),
        common & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(|e| anyhow!("mounting tmpfs: {e}"))?;
    // The fresh tmpfs, resolved again (`target` is the directory under it). It holds only
    // what is made below, before anything runs in the container: its entries are opened
    // relative to it, without following symlinks, instead of walking from the root each time.
    let cgdir = root.mkdir_all(dest, Kind::Dir)?;
    let open_sub = |name: &str| -> Result<std::os::fd::OwnedFd> {
        nix::fcntl::openat(
            cgdir.as_fd(),
            name,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("opening {}: {e}", dest.join(name).display()))
    };
    let bind_ro = |name: &str, dir: &Path| -> Result<()> {
        match nix::sys::stat::mkdirat(
            cgdir.as_fd(),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("creating {}: {e}", dest.join(name).display()),
        }
        let t = open_sub(name)?;
        mount(
            Some(dir),
            &fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| anyhow!("binding {}: {e}", dir.display()))?;
        // The bind mount just made on it.
        let t2 = open_sub(name)?;
        remount_bind(&fd_path(t2.as_fd()), common, ctx.in_userns)
            .map_err(|e| anyhow!("remounting {}: {e}", dest.join(name).display()))
    };
    for (key, dir) in &cg.v1 {
        let name = key.strip_prefix("name=").unwrap_or(key);
        bind_ro(name, dir)?;
        // Co-mounted controllers (cpu,cpuacct) are also reachable by each name.
        if key.contains(',') {
            for c in key.split(',') {
                let _ =
                    nix::unistd::symlinkat(Path::new(key.as_str()), cgdir.as_fd(), Path::new(c));
            }
        }
    }
    if let Some(d) = &cg.v2 {
        bind_ro("unified", d)?;
    }
    if ro {
        mount(
            None::<&str>,
            &fd_path(cgdir.as_fd()),
            None::<&str>,
            MsFlags::MS_REMOUNT | common,
            Some("mode=755"),
        )
        .map_err(|e| anyhow!("remounting tmpfs read-only: {e}"))?;
    }
    Ok(())
}
