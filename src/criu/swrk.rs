//! `criu swrk N`: CRIU as a child process that serves one request on descriptor N, a
//! SOCK_SEQPACKET socket pair (how runc and libcriu drive it, so that answers, notifications
//! and errors come back as messages, not as text on stderr).
//!
//! The child is made with berth's own clone (no threads, no std::process): it can be placed in
//! the container's cgroup as it is born (restore: CRIU forks the restored tree from inside it),
//! run a setup step before the exec (restore: a private mount namespace with the rootfs bound
//! where CRIU wants it), and get descriptors at known numbers for `inherit_fd`:
//! 0 = stdin (berth's, or /dev/null), 1 = /dev/null, 2 = a memfd that keeps what CRIU prints
//! before its log file is open, 3 = the socket, 4.. = the descriptors passed with `pass_fd`.

use anyhow::Result;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::CString;
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::rpc::{Req, ReqType, Resp};
use super::{errno_text, io_errno_text};
use crate::cgroups::Placement;
use crate::spawn::clone::{Forked, clone};

/// Why a call to CRIU did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// criu could not be started (exec failed, or the setup before it did).
    Start(String),
    /// criu answered the request with success = false.
    Refused {
        errno: Option<i32>,
        msg: Option<String>,
    },
    /// criu went away without answering.
    Died(String),
    /// berth's handling of a notification failed; criu was told so and gave up.
    Handler(anyhow::Error),
    /// An answer berth cannot read.
    Protocol(String),
}

#[derive(Debug)]
pub struct Error {
    pub failure: Failure,
    /// What criu wrote to stderr (before its log file was open, usually nothing).
    pub stderr: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            Failure::Start(m) => write!(f, "cannot start criu: {m}"),
            Failure::Refused { errno, msg } => {
                write!(f, "criu failed")?;
                // cr_errmsg is CRIU's last error line ("Error (file:line): what\n").
                if let Some(m) = msg.as_deref() {
                    let lines = super::error_lines(m);
                    match lines.first() {
                        Some(l) => write!(f, ": {l}")?,
                        None if !m.trim().is_empty() => write!(f, ": {}", m.trim())?,
                        None => {}
                    }
                }
                match errno {
                    Some(e) if *e > 0 => {
                        write!(f, " ({})", errno_text(nix::errno::Errno::from_raw(*e)))
                    }
                    _ => Ok(()),
                }
            }
            Failure::Died(s) => write!(f, "criu exited without answering ({s})"),
            Failure::Handler(e) => write!(f, "{e:#}"),
            Failure::Protocol(m) => write!(f, "unreadable answer from criu: {m}"),
        }
    }
}

/// The first criu in PATH (or `name` itself when it has a slash).
pub fn find_binary(name: &Path) -> Result<PathBuf, String> {
    if name.as_os_str().as_encoded_bytes().contains(&b'/') {
        return match std::fs::metadata(name) {
            Ok(m) if m.is_file() => Ok(name.to_path_buf()),
            Ok(_) => Err(format!("{} is not a file", name.display())),
            Err(e) => Err(format!("{}: {}", name.display(), io_errno_text(&e))),
        };
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            return Ok(p);
        }
    }
    Err(format!(
        "{} not found in PATH (install CRIU, e.g. `apt-get install criu`, or name it with --criu)",
        name.display()
    ))
}

/// What criu finds at its descriptors 4, 5, ...
enum Source {
    /// A copy of one of berth's descriptors.
    Fd(RawFd),
    /// A directory opened on criu's side, after the setup (in its mount namespace).
    Dir(PathBuf),
}

/// One `criu swrk` process, being set up.
pub struct Swrk<'a> {
    bin: &'a Path,
    stdin: bool,
    sources: Vec<Source>,
    placement: Option<&'a Placement>,
    setup: Option<Box<dyn FnOnce() -> Result<()> + 'a>>,
}

/// The first descriptor number `pass_fd` hands out.
const FIRST_PASSED_FD: RawFd = 4;

impl<'a> Swrk<'a> {
    pub fn new(bin: &'a Path) -> Swrk<'a> {
        Swrk {
            bin,
            stdin: false,
            sources: vec![],
            placement: None,
            setup: None,
        }
    }

    /// criu's stdin is berth's (shell jobs, and a pipe restored onto descriptor 0).
    pub fn inherit_stdin(&mut self) {
        self.stdin = true;
    }

    /// Give criu a copy of `fd`; returns the number it has there.
    pub fn pass_fd(&mut self, fd: RawFd) -> i32 {
        self.sources.push(Source::Fd(fd));
        FIRST_PASSED_FD + self.sources.len() as i32 - 1
    }

    /// Open directory `p` on criu's side once the setup ran (so in the mount namespace the
    /// setup made); returns the number criu has it at. CRIU opens the directories it is given
    /// (images_dir_fd, work_dir_fd) through /proc/<peer>/fd/N of its socket's peer, the
    /// process that made the socket pair: when a directory is opened on criu's side the
    /// socket pair is made there too, so that the peer is criu itself and those numbers are
    /// its own. (A directory reached through berth's mount namespace would be useless to
    /// CRIU in another one: it mounts its cgroup yard in its working directory.)
    pub fn open_dir(&mut self, p: PathBuf) -> i32 {
        self.sources.push(Source::Dir(p));
        FIRST_PASSED_FD + self.sources.len() as i32 - 1
    }

    /// Start criu inside the container's cgroups.
    pub fn place(&mut self, p: &'a Placement) {
        self.placement = Some(p);
    }

    /// Run `f` in the child before the exec (its error is the call's error).
    pub fn setup(&mut self, f: impl FnOnce() -> Result<()> + 'a) {
        self.setup = Some(Box::new(f));
    }

    /// Start criu, send `req`, answer its notifications with `on_notify` (the notification
    /// and the descriptor that came with it), and return the final answer.
    pub fn call(
        self,
        req: &Req,
        on_notify: impl FnMut(&Resp, Option<OwnedFd>) -> Result<()>,
    ) -> Result<Resp, Error> {
        self.call_with(req.typ, |_| Ok(req.encode()), on_notify)
    }

    /// `call` with the request made once criu runs (`build` gets its pid).
    pub fn call_with(
        self,
        typ: ReqType,
        build: impl FnOnce(i32) -> Result<Vec<u8>>,
        mut on_notify: impl FnMut(&Resp, Option<OwnedFd>) -> Result<()>,
    ) -> Result<Resp, Error> {
        let stderr = nix::sys::memfd::memfd_create(
            c"berth-criu-stderr",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| start_err(format!("memfd_create: {e}")))?;
        let mut proc = self.start(stderr.as_raw_fd())?;
        let res = match build(proc.pid) {
            Ok(req) => proc.serve(typ, &req, &mut on_notify),
            Err(e) => Err(Failure::Start(format!("{e:#}"))),
        };
        let status = proc.finish();
        let stderr = read_memfd(stderr);
        let res = match (res, status) {
            (Ok(r), Ok(())) => Ok(r),
            // A pre-dump's criu waits for the next request of an iterative migration and
            // goes away when the socket closes, with a status that means nothing.
            (Ok(r), Err(_)) if typ == ReqType::PreDump => Ok(r),
            (Ok(_), Err(s)) => Err(Failure::Died(s)),
            (Err(f), _) => Err(f),
        };
        res.map_err(|failure| Error { failure, stderr })
    }

    fn start(self, stderr: RawFd) -> Result<Running, Error> {
        let pair = || {
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| start_err(format!("socketpair: {}", errno_text(e))))
        };
        // The child reports on `ctl`: "ok" (with the socket's far end when it made the
        // socket pair), or why it failed; the parent's end reads EOF once the exec succeeded.
        let (ctl, ctl_child) = pair()?;
        let own_socket = self.sources.iter().any(|s| matches!(s, Source::Dir(_)));
        let premade = if own_socket { None } else { Some(pair()?) };
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| start_err(format!("opening /dev/null: {}", io_errno_text(&e))))?;
        let path = crate::sys::cstr(self.bin);
        let argv = [c"criu".to_owned(), c"swrk".to_owned(), CString::from(c"3")];
        let (forked, v2_placed) = clone(0, self.placement.and_then(|p| p.clone_into()))
            .map_err(|e| start_err(format!("{e:#}")))?;
        match forked {
            Forked::Child => {
                drop(ctl);
                let stdin = if self.stdin { 0 } else { null.as_raw_fd() };
                let theirs = premade.map(|(ours, theirs)| {
                    drop(ours);
                    theirs
                });
                let e = self.child(
                    v2_placed,
                    &path,
                    &argv,
                    [stdin, null.as_raw_fd(), stderr],
                    theirs,
                    &ctl_child,
                );
                let _ = send(
                    ctl_child.as_raw_fd(),
                    format!("{e:#}").as_bytes(),
                    MsgFlags::empty(),
                );
                crate::sys::exit_now(127)
            }
            Forked::Parent(pid) => {
                drop(ctl_child);
                let mut running = Running {
                    pid,
                    sock: None,
                    reaped: false,
                };
                let mut fail = |m: String| -> Error {
                    let _ = running.finish();
                    start_err(m)
                };
                let first = crate::sys::recv_packet(ctl.as_raw_fd())
                    .map_err(|e| fail(format!("reading from the criu child: {}", errno_text(e))))?;
                let sock = match first {
                    Some((m, fd)) if m == b"ok" => match (fd, premade) {
                        (Some(fd), _) => fd,
                        (None, Some((ours, _))) => ours,
                        (None, None) => return Err(fail("no socket from the criu child".into())),
                    },
                    Some((m, _)) => return Err(fail(String::from_utf8_lossy(&m).into_owned())),
                    None => return Err(fail("the criu child died before starting".into())),
                };
                running.sock = Some(sock);
                // EOF: exec'd (the descriptor was close-on-exec); a message: exec failed.
                if let Ok(Some((m, _))) = crate::sys::recv_packet(ctl.as_raw_fd()) {
                    let _ = running.finish();
                    return Err(start_err(String::from_utf8_lossy(&m).into_owned()));
                }
                Ok(running)
            }
        }
    }

    /// In the child: cgroup, setup, descriptors, exec. Returns only on error.
    fn child(
        self,
        v2_placed: bool,
        path: &CString,
        argv: &[CString],
        stdio: [RawFd; 3],
        sock: Option<OwnedFd>,
        ctl: &OwnedFd,
    ) -> anyhow::Error {
        let res = (|| -> Result<std::convert::Infallible> {
            use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            if let Some(p) = self.placement {
                p.join_self(v2_placed)?;
            }
            if let Some(f) = self.setup {
                f()?;
            }
            let mut opened = vec![];
            for s in &self.sources {
                if let Source::Dir(p) = s {
                    let f = std::fs::File::open(p).map_err(|e| {
                        anyhow::anyhow!("opening {}: {}", p.display(), io_errno_text(&e))
                    })?;
                    opened.push(OwnedFd::from(f));
                }
            }
            let sock = match sock {
                Some(s) => {
                    send(ctl.as_raw_fd(), b"ok", MsgFlags::empty())?;
                    s
                }
                None => {
                    let (ours, theirs) = socketpair(
                        AddressFamily::Unix,
                        SockType::SeqPacket,
                        None,
                        SockFlag::SOCK_CLOEXEC,
                    )?;
                    crate::sys::send_fd(ctl.as_raw_fd(), b"ok", ours.as_raw_fd())?;
                    theirs
                }
            };
            let mut dirs = opened.iter();
            let sources: Vec<RawFd> = stdio
                .iter()
                .copied()
                .chain(std::iter::once(sock.as_raw_fd()))
                .chain(self.sources.iter().map(|s| match s {
                    Source::Fd(fd) => *fd,
                    Source::Dir(_) => dirs.next().map(|d| d.as_raw_fd()).unwrap_or(-1),
                }))
                .collect();
            // Every source is first copied above the targets (numbers 0..n), so that no dup2
            // below replaces a source that is still to be copied.
            let n = sources.len() as RawFd;
            let mut high = Vec::with_capacity(sources.len());
            for s in sources {
                high.push(crate::sys::dup_cloexec_above(s, n)?);
            }
            for (target, src) in high.iter().enumerate() {
                crate::sys::dup_to(*src, target as RawFd)?;
            }
            Ok(nix::unistd::execv(path, argv)?)
        })();
        match res {
            Err(e) => anyhow::anyhow!("{}: {e:#}", self_name(path)),
            Ok(never) => match never {},
        }
    }
}

fn self_name(path: &CString) -> String {
    format!("exec {}", path.to_string_lossy())
}

fn start_err(m: String) -> Error {
    Error {
        failure: Failure::Start(m),
        stderr: String::new(),
    }
}

fn read_memfd(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    if f.rewind().is_ok() {
        let _ = f.take(64 * 1024).read_to_string(&mut s);
    }
    s
}

/// A started criu.
struct Running {
    pid: i32,
    sock: Option<OwnedFd>,
    reaped: bool,
}

impl Running {
    fn sock(&self) -> RawFd {
        self.sock.as_ref().map(|s| s.as_raw_fd()).unwrap_or(-1)
    }

    fn send(&self, b: &[u8]) -> Result<(), Failure> {
        match send(self.sock(), b, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) if n == b.len() => Ok(()),
            Ok(_) => Err(Failure::Protocol("short write to criu".into())),
            Err(e) => Err(Failure::Died(format!("sending to criu: {}", errno_text(e)))),
        }
    }

    /// One answer and the descriptor that came with it; None when criu closed the socket.
    fn recv(&self) -> Result<Option<(Resp, Option<OwnedFd>)>, Failure> {
        match crate::sys::recv_packet(self.sock()) {
            Ok(None) => Ok(None),
            Ok(Some((b, fd))) => Resp::decode(&b)
                .map(|r| Some((r, fd)))
                .map_err(Failure::Protocol),
            Err(e) => Err(Failure::Died(format!(
                "reading from criu: {}",
                errno_text(e)
            ))),
        }
    }

    fn serve(
        &mut self,
        typ: ReqType,
        req: &[u8],
        on_notify: &mut impl FnMut(&Resp, Option<OwnedFd>) -> Result<()>,
    ) -> Result<Resp, Failure> {
        self.send(req)?;
        let mut handler_err: Option<anyhow::Error> = None;
        loop {
            let Some((resp, fd)) = self.recv()? else {
                // criu closed the socket: let the exit status say why.
                let status = self
                    .finish()
                    .err()
                    .unwrap_or_else(|| "exit status 0".into());
                return Err(match handler_err {
                    Some(e) => Failure::Handler(e),
                    None => Failure::Died(status),
                });
            };
            if resp.typ == Some(ReqType::Notify) && resp.success {
                let ok = match on_notify(&resp, fd) {
                    Ok(()) => true,
                    Err(e) => {
                        handler_err = Some(e);
                        false
                    }
                };
                self.send(
                    &Req {
                        typ: ReqType::Notify,
                        opts: None,
                        notify_success: Some(ok),
                        features: None,
                    }
                    .encode(),
                )?;
                continue;
            }
            if let Some(e) = handler_err {
                return Err(Failure::Handler(e));
            }
            if !resp.success {
                return Err(Failure::Refused {
                    errno: resp.cr_errno,
                    msg: resp.cr_errmsg,
                });
            }
            if resp.typ != Some(typ) {
                return Err(Failure::Protocol(format!(
                    "answer of type {} to a {} request",
                    resp.typ_raw,
                    typ.name()
                )));
            }
            return Ok(resp);
        }
    }

    /// Close our end and reap criu; Err(how it ended) unless it exited with 0.
    fn finish(&mut self) -> Result<(), String> {
        if self.reaped {
            return Ok(());
        }
        self.sock = None;
        self.reaped = true;
        loop {
            match waitpid(Pid::from_raw(self.pid), None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(WaitStatus::Exited(_, c)) => return Err(format!("exit status {c}")),
                Ok(WaitStatus::Signaled(_, s, _)) => return Err(format!("killed by {s}")),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("waiting for criu: {e}")),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
