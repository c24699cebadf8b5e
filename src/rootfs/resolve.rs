//! Paths inside the container's root, resolved by the kernel with openat2(RESOLVE_IN_ROOT): a
//! symlink in the rootfs can never lead a mount or a device node out of it. Targets are then
//! used through `/proc/self/fd/N`, so what is mounted on is exactly what was resolved.

use anyhow::{Result, anyhow};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::sys::openat2;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// The directory every container path is resolved in.
pub struct Root {
    pub fd: OwnedFd,
}

pub enum Kind {
    Dir,
    File,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("opening rootfs {}: {e}", path.display()))?;
        Ok(Root { fd })
    }

    /// Open an existing path inside the root (O_PATH), or None if it does not exist.
    pub fn open_path(&self, p: &Path) -> Result<Option<OwnedFd>> {
        match openat2(
            self.fd.as_fd(),
            &rel(p),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(anyhow!("resolving {} in the rootfs: {e}", p.display())),
        }
    }

    /// Open a path inside the root following a final symlink (still inside the root).
    pub fn open_follow(&self, p: &Path, flags: i32) -> nix::Result<OwnedFd> {
        openat2(
            self.fd.as_fd(),
            &rel(p),
            flags,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Make sure `p` exists inside the root as a directory or an empty file, creating missing
    /// parent directories (mode 0755), and return an O_PATH descriptor of it.
    pub fn mkdir_all(&self, p: &Path, kind: Kind) -> Result<OwnedFd> {
        let want_last_dir = matches!(kind, Kind::Dir);
        // The usual case, a target that exists: one resolution of the whole path, which is
        // the object the walk below would end at (every prefix is resolved in the root too).
        let flags = libc::O_PATH | if want_last_dir { libc::O_DIRECTORY } else { 0 };
        match openat2(
            self.fd.as_fd(),
            &rel(p),
            flags,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(fd),
            // Missing, or not a directory somewhere: the walk creates or names it.
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {}
            Err(e) => return Err(anyhow!("resolving {} in the rootfs: {e}", p.display())),
        }
        let comps: Vec<&std::ffi::OsStr> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        // The directory the next component is created in: the root itself, then each prefix.
        let mut cur: Option<OwnedFd> = None;
        let mut sofar = PathBuf::from("/");
        for (i, c) in comps.iter().enumerate() {
            sofar.push(c);
            let last = i + 1 == comps.len();
            let want_dir = !last || want_last_dir;
            // Resolve from the root each time so symlinks stay inside it.
            let flags = libc::O_PATH | if want_dir { libc::O_DIRECTORY } else { 0 };
            match openat2(
                self.fd.as_fd(),
                &rel(&sofar),
                flags,
                0,
                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            ) {
                Ok(fd) => {
                    cur = Some(fd);
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(Errno::ENOTDIR) => {
                    return Err(anyhow!(
                        "{} in the rootfs is not a directory",
                        sofar.display()
                    ));
                }
                Err(e) => return Err(anyhow!("resolving {} in the rootfs: {e}", sofar.display())),
            }
            // Create it in the parent we hold (a dangling symlink at this name fails with EEXIST).
            let parent = cur.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let name = Path::new(c);
            if want_dir {
                match nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(anyhow!(
                            "creating directory {} in the rootfs: {e}",
                            sofar.display()
                        ));
                    }
                }
            } else {
                match nix::fcntl::openat(
                    parent,
                    name,
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC
                        | nix::fcntl::OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o644),
                ) {
                    Ok(f) => drop(f),
                    Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(anyhow!(
                            "creating file {} in the rootfs: {e}",
                            sofar.display()
                        ));
                    }
                }
            }
            cur = Some(
                openat2(
                    self.fd.as_fd(),
                    &rel(&sofar),
                    flags,
                    0,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                )
                .map_err(|e| anyhow!("resolving {} in the rootfs: {e}", sofar.display()))?,
            );
        }
        match cur {
            Some(fd) => Ok(fd),
            // The root itself ("/" or ".").
            None => openat2(
                self.fd.as_fd(),
                Path::new("."),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                RESOLVE_IN_ROOT,
            )
            .map_err(|e| anyhow!("opening rootfs: {e}")),
        }
    }
}

/// `/proc/self/fd/N` for a descriptor, to pass a verified object to mount(2).
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn rel(p: &Path) -> PathBuf {
    let s = p.strip_prefix("/").unwrap_or(p);
    if s.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        s.to_path_buf()
    }
}
