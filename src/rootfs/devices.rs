//! /dev: the default devices (runtime-linux.md), `linux.devices`, and the standard symlinks.
//! Device nodes are made with mknod, or bind-mounted from the host inside a user namespace
//! (where mknod is not allowed).

use anyhow::{Result, anyhow};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::resolve::{Kind, Root, fd_path};

pub struct Dev {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runtime-linux.md "Default Devices").
pub fn defaults() -> Vec<Dev> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, ma, mi)| Dev {
        path: PathBuf::from("/dev").join(n),
        kind: SFlag::S_IFCHR,
        major: ma,
        minor: mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_spec(d: &oci_spec::runtime::LinuxDevice, idx: usize) -> Result<Dev> {
    use oci_spec::runtime::LinuxDeviceType as T;
    let kind = match d.typ() {
        T::C | T::U => SFlag::S_IFCHR,
        T::B => SFlag::S_IFBLK,
        T::P => SFlag::S_IFIFO,
        T::A => {
            return Err(anyhow!(
                "linux.devices[{idx}].type: \"a\" is not a device type"
            ));
        }
    };
    if !d.path().is_absolute() || !d.path().starts_with("/dev") {
        return Err(anyhow!(
            "linux.devices[{idx}].path: {:?} must be an absolute path under /dev",
            d.path().display()
        ));
    }
    Ok(Dev {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// The container's /dev (created if missing), opened once for the devices and symlinks made
/// in it.
pub fn open_dev(root: &Root) -> Result<OwnedFd> {
    drop(
        root.mkdir_all(Path::new("/dev"), Kind::Dir)
            .map_err(|e| anyhow!("/dev in the rootfs: {e:#}"))?,
    );
    // mknodat needs a real directory fd, not O_PATH.
    root.open_follow(Path::new("/dev"), libc::O_DIRECTORY | libc::O_RDONLY)
        .map_err(|e| anyhow!("opening /dev in the rootfs: {e}"))
}

/// Create one device node in the rootfs; `dev` is the container's /dev (see `open_dev`), used
/// for the nodes directly in it. The caller has set the umask to 0.
pub fn create(root: &Root, dev: BorrowedFd, d: &Dev, bind: bool) -> Result<()> {
    let what = |e: String| anyhow!("creating device {}: {e}", d.path.display());
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d
        .path
        .file_name()
        .ok_or_else(|| what("no file name".into()))?;
    if bind {
        let t = root
            .mkdir_all(&d.path, Kind::File)
            .map_err(|e| what(format!("{e:#}")))?;
        return mount(
            Some(&d.path),
            &fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| what(format!("binding from the host: {e}")));
    }
    let other;
    let dirfd = if parent == Path::new("/dev") {
        dev
    } else {
        drop(
            root.mkdir_all(parent, Kind::Dir)
                .map_err(|e| what(format!("{e:#}")))?,
        );
        other = root
            .open_follow(parent, libc::O_DIRECTORY | libc::O_RDONLY)
            .map_err(|e| what(format!("opening {}: {e}", parent.display())))?;
        other.as_fd()
    };
    let mknod = || {
        mknodat(
            dirfd,
            name,
            d.kind,
            Mode::from_bits_truncate(d.mode),
            makedev(d.major, d.minor),
        )
    };
    // Whatever is there (a file of the image's /dev) is replaced.
    match mknod() {
        Err(Errno::EEXIST) => {
            match nix::unistd::unlinkat(dirfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(what(format!("removing what is there: {e}"))),
            }
            mknod()
        }
        r => r,
    }
    .map_err(|e| what(format!("mknod: {e}")))?;
    // With the umask at 0, mknod gave the permission bits exactly; setuid, setgid and sticky
    // bits need a chmod.
    if d.mode & !0o777 != 0 {
        nix::sys::stat::fchmodat(
            dirfd,
            name,
            Mode::from_bits_truncate(d.mode),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| what(format!("chmod: {e}")))?;
    }
    fchownat(
        dirfd,
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| what(format!("chown: {e}")))?;
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and (where it exists) /dev/core.
pub fn symlinks(dev: BorrowedFd) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            // Replace a device node or file with the symlink into the container's devpts.
            let _ = nix::unistd::unlinkat(dev, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(anyhow!("creating symlink /dev/{name}: {e}")),
        }
    }
    Ok(())
}
