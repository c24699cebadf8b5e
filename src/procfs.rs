//! Writes to /proc through handles verified to be procfs (CVE-2025-52881: a bind mount or a
//! symlink over a /proc file redirects a runtime's write elsewhere). Every write berth makes to
//! /proc (sysctl, oom_score_adj, timens_offsets, LSM attributes) goes through `write`.
//!
//! `/proc` is opened and checked with fstatfs (PROC_SUPER_MAGIC); the file is then opened
//! relative to it with openat2 RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH, so no
//! mount point and no symlink on the way is followed, and the opened file is checked again.
//! `self` and `thread-self` (procfs's own symlinks to `<pid>` and `<pid>/task/<tid>`) are the
//! only symlinks followed, and only within the same procfs mount.

use nix::errno::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::sys::openat2;

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

#[derive(Debug)]
pub enum Error {
    /// `/proc` (or the file) is not procfs.
    NotProcfs(&'static str),
    /// A mount point or a symlink is on the way (EXDEV/ELOOP from openat2).
    Redirected(Errno),
    Io(Errno),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotProcfs(what) => write!(f, "{what} is not procfs"),
            Error::Redirected(e) => write!(
                f,
                "something is mounted or symlinked over it inside /proc ({e}); refusing to write through it"
            ),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

fn is_proc(fd: BorrowedFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

fn map(e: Errno) -> Error {
    match e {
        Errno::EXDEV | Errno::ELOOP => Error::Redirected(e),
        e => Error::Io(e),
    }
}

/// Open `rel` (e.g. `sys/kernel/shmmax`, `self/oom_score_adj`) under this process's /proc for
/// writing, verified as above.
pub fn open_write(rel: &str) -> Result<OwnedFd, Error> {
    let proc = nix::fcntl::open(
        "/proc",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Error::Io)?;
    if !is_proc(proc.as_fd()) {
        return Err(Error::NotProcfs("/proc"));
    }
    // The leading `self`/`thread-self` symlink, resolved by procfs itself, in the same mount.
    let (base, rest) = match rel.split_once('/') {
        Some((first @ ("self" | "thread-self"), rest)) => {
            let d = openat2(
                proc.as_fd(),
                Path::new(first),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS,
            )
            .map_err(map)?;
            (d, rest)
        }
        _ => (proc, rel),
    };
    let f = openat2(
        base.as_fd(),
        Path::new(rest),
        libc::O_WRONLY | libc::O_NOCTTY,
        0,
        RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
    )
    .map_err(map)?;
    if !is_proc(f.as_fd()) {
        return Err(Error::NotProcfs("the file"));
    }
    Ok(f)
}

/// Write `value` to `/proc/<rel>` in one write(2), through a verified handle.
pub fn write(rel: &str, value: &str) -> Result<(), Error> {
    let f = open_write(rel)?;
    let n = nix::unistd::write(&f, value.as_bytes()).map_err(Error::Io)?;
    if n != value.len() {
        return Err(Error::Io(Errno::EIO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_and_non_proc() {
        // A symlink inside procfs other than the leading self/thread-self is refused.
        assert!(matches!(
            open_write("self/cwd/x"),
            Err(Error::Redirected(_)) | Err(Error::Io(_))
        ));
        assert!(matches!(
            open_write("mounts"),
            Err(Error::Redirected(Errno::ELOOP))
        ));
        // Harmless and allowed: this process's own oom_score_adj, rewritten with its value.
        let cur = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        write("self/oom_score_adj", cur.trim()).unwrap();
    }
}
