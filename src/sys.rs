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

/// A detached copy of the mount at `path` (open_tree(2) with OPEN_TREE_CLONE, close-on-exec;
/// with `recursive` the mounts under it too).
pub fn open_tree_path(path: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let c = cstr(path);
    // SAFETY: open_tree with a valid C string; returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
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

/// Make the program `cmd` runs die (SIGKILL) with the calling process: PR_SET_PDEATHSIG in the
/// forked child before exec, and a spawn error (ESRCH) if the caller already died between the
/// fork and the prctl (the signal would then never come).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe,
    // and the closure neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// ioprio_set(2) of the calling process (IOPRIO_WHO_PROCESS, pid 0) to the encoded `prio`.
pub fn ioprio_set_self(prio: libc::c_int) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integer arguments only.
    Errno::result(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })
        .map(drop)
}

/// sched_setattr(2) of the calling thread.
pub fn sched_setattr_self(attr: &crate::spawn::procattr::SchedAttr) -> nix::Result<()> {
    // SAFETY: a pointer to a live #[repr(C)] struct whose `size` field is its exact size; the
    // kernel only reads it.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            attr as *const crate::spawn::procattr::SchedAttr,
            0,
        )
    })
    .map(drop)
}

/// set_mempolicy(2) of the calling thread: `mode` (with its flags) over the node mask `nodes`
/// (64 nodes per word; empty for none).
pub fn set_mempolicy(mode: libc::c_int, nodes: &[libc::c_ulong]) -> nix::Result<()> {
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel reads maxnode - 1 bits.
        (nodes.as_ptr(), nodes.len() * 64 + 1)
    };
    // SAFETY: a pointer to `nodes` (or null) and its size in bits; the kernel only reads it.
    Errno::result(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// setdomainname(2) (the NIS domain name of the calling process's UTS namespace).
pub fn setdomainname(name: &[u8]) -> nix::Result<()> {
    // SAFETY: the pointer and length describe a live byte string that is only read.
    Errno::result(unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) })
        .map(drop)
}

/// setrlimit(2) of the calling process.
pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid struct that setrlimit only reads.
    Errno::result(unsafe { libc::setrlimit(resource, &lim) }).map(drop)
}

/// The clock ticks per second that /proc's times are counted in (sysconf(_SC_CLK_TCK)); 100
/// if sysconf cannot say.
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// seccomp(SECCOMP_SET_MODE_FILTER) of the classic BPF program `prog` with `flags`, in the
/// calling thread. Returns the notification listener when `flags` asks for one
/// (SECCOMP_FILTER_FLAG_NEW_LISTENER). Async-signal-safe: one syscall on memory prepared by
/// the caller.
pub fn seccomp_set_filter(prog: &[libc::sock_filter], flags: u32) -> nix::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const FLAG_NEW_LISTENER: u32 = 1 << 3;
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(r)?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER seccomp(2) returns a new descriptor (O_CLOEXEC) we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(r as RawFd) }))
    } else {
        Ok(None)
    }
}

/// Does this kernel take these seccomp filter flags? seccomp(SECCOMP_SET_MODE_FILTER) with no
/// program fails with EFAULT if it does, EINVAL if not; nothing is installed either way.
pub fn seccomp_accepts_flags(flags: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: a NULL program is never read: the call fails before or at reading it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && Errno::last() == Errno::EFAULT
}

/// seccomp(SECCOMP_GET_NOTIF_SIZES): succeeds where the kernel has seccomp user notification
/// (Linux 5.0); only reads three sizes.
pub fn seccomp_notif_sizes() -> nix::Result<()> {
    const SECCOMP_GET_NOTIF_SIZES: libc::c_ulong = 3;
    let mut sizes = [0u16; 3];
    // SAFETY: the kernel writes struct seccomp_notif_sizes (three u16) into `sizes`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_NOTIF_SIZES,
            0 as libc::c_ulong,
            sizes.as_mut_ptr(),
        )
    };
    Errno::result(r).map(drop)
}

/// pidfd_open(2) of `pid`.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    Errno::result(r).map(|fd| {
        // SAFETY: the kernel returned a new descriptor that we now own.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// Whether `path` has the extended attribute `name` (e.g. `security.capability`).
pub fn has_xattr(path: &Path, name: &str) -> bool {
    let (p, n) = (cstr(path), CString::new(name).unwrap_or_default());
    // SAFETY: valid C strings; a NULL buffer of size 0 only asks for the value's size.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
    r >= 0
}

/// Run `cmd` in a mount namespace of its own with an empty tmpfs on `dir` (e.g. so that a
/// program's cache files there vanish with it instead of landing on the host).
pub fn with_private_tmpfs(cmd: &mut std::process::Command, dir: &'static str) {
    use nix::mount::{MsFlags, mount};
    use std::os::unix::process::CommandExt;
    let f = move || -> std::io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and only makes syscalls (berth
    // is single-threaded, so nothing it would wait for is held by another thread).
    unsafe { cmd.pre_exec(f) };
}

/// _exit(2): end a forked child at once (no atexit handlers, no destructors, no stdio flush of
/// SIGPIPE back to its default disposition (Rust's runtime ignores it, and an ignored
/// disposition survives exec).
pub fn default_sigpipe() {
    // SAFETY: signal(2) with a constant signal number and SIG_DFL; no handler is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// what it copied from the parent).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// dup2(2) with raw numbers, for a forked child arranging the descriptors of the program it
/// is about to exec (the copy at `target` is not close-on-exec).
pub fn dup_to(src: RawFd, target: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 only changes the descriptor table; a stale `target` is simply replaced.
    Errno::result(unsafe { libc::dup2(src, target) }).map(drop)
}

/// A close-on-exec copy of `fd` numbered `min` or above (fcntl F_DUPFD_CLOEXEC).
pub fn dup_cloexec_above(fd: RawFd, min: RawFd) -> nix::Result<RawFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only adds a descriptor to the table.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// One packet of a SOCK_SEQPACKET socket, whole, with the first descriptor passed along with
/// it (SCM_RIGHTS; received close-on-exec, any further ones are closed). An empty packet
/// list (None) means the peer closed the socket.
pub fn recv_packet(sock: RawFd) -> nix::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recv, recvmsg};
    let len = loop {
        match recv(sock, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    let mut buf = vec![0u8; len.max(1)];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let n = msg.bytes;
    let mut passed = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: a descriptor just received with SCM_RIGHTS is ours alone.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                if passed.is_none() {
                    passed = Some(owned);
                }
            }
        }
    }
    if n == 0 {
        return Ok(None);
    }
    buf.truncate(n);
    Ok(Some((buf, passed)))
}

/// Borrow a descriptor number the caller was given (e.g. on the command line); a number that
/// is not open makes the calls on it fail with EBADF.
pub fn borrow_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: I/O safety only (the number is not owned here and nothing closes it while
    // borrowed); memory safety does not depend on it.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Take ownership of a descriptor number handed to berth to use and close (runc's
/// `--status-fd`; one just received with SCM_RIGHTS). The caller knows that it is open and
/// that nothing else owns it.
pub fn take_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: berth owns the number from here on (the caller handed it over) and closes it
    // exactly once, when the OwnedFd drops.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Send `data` with one descriptor (SCM_RIGHTS) on a socket.
pub fn send_fd(sock: RawFd, data: &[u8], fd: RawFd) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd];
    sendmsg::<()>(
        sock,
        &[std::io::IoSlice::new(data)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
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
