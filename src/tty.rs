//! Terminals (`process.terminal`): the pty is made in the container's devpts, its master sent to
//! `--console-socket` with SCM_RIGHTS, its peer made the process's stdio and controlling terminal.

use anyhow::{Result, anyhow};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Connect to the console socket (in the runtime's namespace, before the fork).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    connect_socket("--console-socket", path)
}

/// Connect to the unix socket a flag names (`--console-socket`, `--pidfd-socket`).
pub fn connect_socket(flag: &str, path: &Path) -> Result<OwnedFd> {
    let s = if path.as_os_str().len() < 100 {
        UnixStream::connect(path)
    } else {
        // Long paths do not fit in sockaddr_un: go through the directory's descriptor.
        let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))
            .map_err(|e| anyhow!("{flag} {}: {e}", path.display()))?;
        let p = format!(
            "/proc/self/fd/{}/{}",
            dir.as_raw_fd(),
            path.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        );
        UnixStream::connect(p)
    }
    .map_err(|e| anyhow!("{flag} {}: connecting: {e}", path.display()))?;
    Ok(s.into())
}

/// Open a new pty in /dev/ptmx (the container's). Returns (master, peer).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let m = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| anyhow!("process.terminal: opening /dev/ptmx: {e}"))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    if unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(anyhow!(
            "process.terminal: unlocking the pty: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: TIOCGPTPEER opens the peer without a path lookup and returns a new descriptor.
    let peer = unsafe {
        libc::ioctl(
            m.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(anyhow!(
            "process.terminal: opening the pty peer: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a new descriptor from the kernel.
    Ok((m, unsafe { OwnedFd::from_raw_fd(peer) }))
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Send the master over the console socket, named like runc names it.
pub fn send_master(sock: RawFd, master: RawFd) -> Result<()> {
    let name = b"/dev/ptmx";
    let fds = [master];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| anyhow!("process.terminal: sending the pty to the console socket: {e}"))?;
    Ok(())
}

/// `--pidfd-socket`: send a pidfd of `pid` (opened by berth, in the host's pid namespace) over
/// the connected socket, with the name runc gives it ("standard" for a container's process,
/// "setns" for an exec'd one).
pub fn send_pidfd(sock: &OwnedFd, pid: i32, name: &str) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(pid)
        .map_err(|e| anyhow!("--pidfd-socket: pidfd_open of pid {pid}: {e}"))?;
    let fds = [pidfd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| anyhow!("--pidfd-socket: sending the pidfd: {e}"))?;
    Ok(())
}

/// Make `peer` the controlling terminal and stdin/stdout/stderr of this (session leader) process.
pub fn make_stdio(peer: &OwnedFd) -> Result<()> {
    let fd = peer.as_raw_fd();
    // SAFETY: TIOCSCTTY with arg 0 on a terminal we own.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(anyhow!(
            "process.terminal: setting the controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(anyhow!(
                "process.terminal: dup2: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Bind the pty peer over /dev/console (runtime-linux.md: /dev/console is set up when
/// process.terminal is true).
pub fn bind_console(peer: &OwnedFd) -> Result<()> {
    use nix::mount::{MsFlags, mount};
    use std::os::fd::AsFd;
    // Resolved inside the root without following a final symlink (CVE-2025-52565): the pty is
    // bound onto /dev/console itself, never onto what a symlink there points at.
    let root = crate::rootfs::resolve::Root::open(Path::new("/"))?;
    if root.open_path(Path::new("/dev/console"))?.is_none() {
        root.mkdir_all(
            Path::new("/dev/console"),
            crate::rootfs::resolve::Kind::File,
        )
        .map_err(|e| anyhow!("process.terminal: creating /dev/console: {e:#}"))?;
    }
    let target = root
        .open_path(Path::new("/dev/console"))?
        .ok_or_else(|| anyhow!("process.terminal: /dev/console vanished"))?;
    let st = nix::sys::stat::fstat(target.as_fd())
        .map_err(|e| anyhow!("process.terminal: /dev/console: {e}"))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(anyhow!(
            "process.terminal: /dev/console in the container is not a file or a device (a symlink?): refusing to bind the console there"
        ));
    }
    let src = format!("/proc/self/fd/{}", peer.as_raw_fd());
    mount(
        Some(src.as_str()),
        &crate::rootfs::resolve::fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| anyhow!("process.terminal: binding the pty to /dev/console: {e}"))
}

/// The socket pair over which a foreground `run`/`exec` gets the pty master from the container
/// side (for the terminal relay), when `needed`.
pub fn relay_pair(needed: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !needed {
        return Ok((None, None));
    }
    let (a, b) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| anyhow!("socketpair for the terminal relay: {e}"))?;
    Ok((Some(a), Some(b)))
}
