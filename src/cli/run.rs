use anyhow::{Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::Global;
use super::create::{CreateFlags, options};
use crate::container::{Container, lifecycle};
use crate::spawn;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    #[command(flatten)]
    flags: CreateFlags,
    /// Start the container and return at once
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits (do not delete it)
    #[arg(long)]
    keep: bool,
    /// Do not make berth a child subreaper: processes orphaned in the container go to the
    /// host's init (or the nearest subreaper) instead of to berth. (When the container's
    /// process is not berth's own child — a joined pid namespace or a time namespace needs a
    /// second fork — berth stays the subreaper until it exits, or it could not learn the exit
    /// status.)
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
}

/// The parent pid of `pid` (from /proc/<pid>/stat).
fn ppid(pid: i32) -> Option<i32> {
    let s =
        crate::sys::read_small_string(std::path::Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    s[s.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::validate_id(&a.id)?;
    let bundle = crate::config::load_with(&a.flags.bundle, a.flags.config.as_deref())?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if a.detach && terminal && a.flags.console_socket.is_none() {
        bail!("process.terminal is true: --detach needs --console-socket");
    }
    if !a.detach {
        // Orphans of the container (and its process, after a second fork) come to us.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| anyhow!("prctl(SUBREAPER): {e}"))?;
    }
    let relay = terminal && a.flags.console_socket.is_none();
    // Start and delete below use these, not the copy of config.json saved at create.
    let hooks = bundle.spec.hooks().clone();
    let mut opts = options(g, &a.id, &a.flags, relay);
    opts.start_by_socket = true;
    let mut created = spawn::create(&g.root, bundle, &opts)?;
    if a.no_subreaper
        && !a.detach
        && ppid(created.container.state.pid) == Some(std::process::id() as i32)
    {
        // The container's process is our own child: we can wait for it without being the
        // subreaper, as runc --no-subreaper does.
        nix::sys::prctl::set_child_subreaper(false)
            .map_err(|e| anyhow!("prctl(SUBREAPER): {e}"))?;
    }
    if a.detach {
        if let Err(e) = created.start(hooks.as_ref()) {
            let _ = lifecycle::destroy_known(&created.container, hooks.as_ref());
            return Err(e);
        }
        return Ok(0);
    }
    let mut ph = spawn::Phases::new("run");
    let sfd = forwardable_signals()?;
    if let Err(e) = created.start(hooks.as_ref()) {
        let _ = lifecycle::destroy_known(&created.container, hooks.as_ref());
        return Err(e);
    }
    ph.mark("start");
    let pid = created.container.state.pid;
    let code = wait_loop(pid, &sfd, created.console_master)?;
    ph.mark("wait");
    if !a.keep {
        // The state this process wrote at create (nothing else rewrites state.json).
        let _lock = Container::lock_dir(&g.root, &a.id)?;
        lifecycle::destroy_known(&created.container, hooks.as_ref())?;
        ph.mark("delete");
    }
    Ok(code)
}

/// Block every signal that can be forwarded; they are read from the returned signalfd.
pub(crate) fn forwardable_signals() -> Result<SignalFd> {
    let mut mask = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        mask.remove(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    Ok(SignalFd::with_flags(
        &mask,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Forward signals, relay the terminal, reap children until the process `pid` exits.
pub(crate) fn wait_loop(pid: i32, sfd: &SignalFd, master: Option<OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let raw = master
        .as_ref()
        .and_then(|_| RawMode::enter(stdin.as_raw_fd()));
    if let Some(m) = &master
        && let Some((r, c)) = crate::tty::get_size(0)
    {
        crate::tty::set_size(m.as_raw_fd(), r, c);
    }
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut exit: Option<i32> = None;
    loop {
        if let Some(code) = exit
            && !master_open
        {
            drop(raw);
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open && exit.is_none() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        let timeout = if exit.is_some() {
            PollTimeout::from(200u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => {
                // The container exited and its terminal went quiet.
                master_open = false;
                continue;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow!("poll: {e}")),
        }
        let rev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !rev[0].is_empty() {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    loop {
                        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => {
                                exit = Some(code)
                            }
                            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                                exit = Some(128 + sig as i32)
                            }
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master
                        && let Some((r, c)) = crate::tty::get_size(0)
                    {
                        crate::tty::set_size(m.as_raw_fd(), r, c);
                    }
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
        }
        let mut idx = 1;
        if let Some(m) = &master {
            if master_open {
                if !rev[idx].is_empty() {
                    let mut buf = [0u8; 8192];
                    match nix::unistd::read(m.as_fd(), &mut buf) {
                        Ok(0) | Err(_) => master_open = false,
                        Ok(n) => write_all(1, &buf[..n]),
                    }
                }
                idx += 1;
            }
            if stdin_open && exit.is_none() && idx < rev.len() && !rev[idx].is_empty() {
                let mut buf = [0u8; 8192];
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => write_all(m.as_raw_fd(), &buf[..n]),
                }
            }
        }
        if exit.is_some() && master.is_none() {
            master_open = false;
        }
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    let f = crate::sys::borrow_fd(fd);
    while !data.is_empty() {
        match nix::unistd::write(f, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// The caller's terminal in raw mode while relaying, restored on drop.
struct RawMode {
    fd: i32,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter(fd: i32) -> Option<RawMode> {
        let b = crate::sys::borrow_fd(fd);
        let saved = nix::sys::termios::tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let b = crate::sys::borrow_fd(self.fd);
        let _ = nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}
