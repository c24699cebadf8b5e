//! Thin wrappers over system calls that nix or libc do not wrap. Each `unsafe` block is a single
//! syscall with arguments built right above it.

use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Read a small file whole (state.json, /proc and cgroup files): open, read into a 4 KiB
/// buffer until EOF, close. std::fs::read/read_to_string first statx the file for a size hint
/// (0 for /proc and cgroupfs files) and then probe with reads growing from 32 bytes: 9 syscalls
/// for a /proc/<pid>/stat instead of 4. `list` reads three such files per container.
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `read_small` of a text file.
pub fn read_small_string(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_small(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_else(|_| c"/nonexistent".into())
}

/// openat2(2) with `resolve` flags (RESOLVE_IN_ROOT etc.).
pub fn openat2(
    dir: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    let c = cstr(path);
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: valid C string and open_how struct with its exact size, as openat2(2) requires.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new descriptor that we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = Errno::last();
        if e != Errno::EAGAIN && e != Errno::EINTR {
            return Err(e);
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// mount_setattr(2) on `path` relative to `dir`, recursively when `recursive`.
pub fn mount_setattr(
    dir: RawFd,
    path: &Path,
    recursive: bool,
    set: u64,
    clr: u64,
    userns: Option<RawFd>,
) -> nix::Result<()> {
    let c = cstr(path);
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: userns.map(|f| f as u64).unwrap_or(0),
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: valid C string and mount_attr struct with its exact size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dir,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// pivot_root(2).
pub fn pivot_root(new: &Path, old: &Path) -> nix::Result<()> {
    nix::unistd::pivot_root(new, old)
}

/// A detached recursive copy of the mount tree at the directory `at` (open_tree(2) with
/// OPEN_TREE_CLONE | AT_RECURSIVE, close-on-exec): what `mount --rbind` would attach.
pub fn clone_tree(at: BorrowedFd) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    let flags = OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32 | libc::AT_EMPTY_PATH as u32;
    let flags = flags | libc::O_CLOEXEC as u32;
    // SAFETY: open_tree on a live descriptor with an empty C string; returns a new descriptor
    // or -1.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, at.as_raw_fd(), c"".as_ptr(), flags) };
    Errno::result(r)?;
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Attach the detached tree `tree` on the directory `target` (move_mount(2) between two
/// descriptors). `tree` then stands for the attached mount.
pub fn attach_tree(tree: BorrowedFd, target: BorrowedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: move_mount between two live descriptors with empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// Close a raw descriptor that nothing owns or uses any more.
pub fn close_fd(fd: RawFd) {
    // SAFETY: the caller hands over a descriptor no object owns; closing it frees nothing else.
    unsafe { libc::close(fd) };
}

/// Close every descriptor from `first` up (the caller must not use, nor drop, any of them
/// afterwards).
pub fn close_from(first: u32) {
    // SAFETY: close_range closes descriptors; the caller owns none of them any more.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if r != 0 {
        for fd in first..1024 {
            // SAFETY: as above, one descriptor at a time where close_range is missing.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

/// Set the close-on-exec flag on every descriptor from `first` up.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes descriptor flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::last())?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&fd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        let _ = nix::fcntl::fcntl(
            // SAFETY: only used for the duration of this fcntl; closed fds yield EBADF.
            unsafe { BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}

/// Join a new session keyring (runc does this unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    let c = CString::new(name).unwrap_or_default();
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    Errno::result(r).map(drop)
}

/// prctl(PR_SET_PDEATHSIG).
pub fn set_pdeathsig(sig: Option<nix::sys::signal::Signal>) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(sig)
}

/// An execve(2) whose path and NULL-terminated argument and environment arrays are built
/// beforehand (`new`), so that `exec` itself allocates nothing and makes no system call but
/// execve: it can run after a seccomp filter is loaded, with nothing else for the filter to
/// deny.
pub struct PreparedExec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl PreparedExec {
    pub fn new(path: CString, args: Vec<CString>, env: Vec<CString>) -> PreparedExec {
        let mut p = PreparedExec {
            path,
            args,
            env,
            argv: vec![],
            envp: vec![],
        };
        // The CStrings' heap buffers do not move when the struct does.
        p.argv = p.args.iter().map(|a| a.as_ptr()).collect();
        p.argv.push(std::ptr::null());
        p.envp = p.env.iter().map(|e| e.as_ptr()).collect();
        p.envp.push(std::ptr::null());
        p
    }

    pub fn path(&self) -> &CString {
        &self.path
    }

    pub fn args(&self) -> &[CString] {
        &self.args
    }

    pub fn env(&self) -> &[CString] {
        &self.env
    }

    /// Returns only if execve failed.
    pub fn exec(&self) -> Errno {
        // SAFETY: the path and every array element point at NUL-terminated strings owned by
        // `self`, and both arrays end with a null pointer.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        Errno::last()
    }
}
