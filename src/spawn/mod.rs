//! The create path, parent side, top to bottom: validate → claim the id (a `creating` state) →
//! cgroup → exec fifo, console socket, sync socket → clone → id maps, hooks →
//! `created` state. The child side is in `child.rs` (it places itself in its cgroups, see
//! `cgroups::Placement`). Any error rolls everything back.

pub mod child;
pub mod clone;
pub mod exec;
pub mod netdev;
pub mod plan;
pub mod procattr;
pub mod sync;
pub mod trampoline;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::cgroups::{Driver, Kind, Manager};
use crate::config::Bundle;
use crate::container::state::{self, CONFIG_FILE, EXEC_FIFO, STATE_FILE, write_atomic};
use crate::container::{Container, State, Status};
use crate::hooks;
use crate::logger;
use sync::Msg;

pub struct Options {
    pub id: String,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of the container's process once it exists.
    pub pidfd_socket: Option<PathBuf>,
    /// `run` with a terminal and no console socket: berth receives the master itself.
    pub console_relay: bool,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `run`: berth starts the container itself, over the sync socket (`Created::start`),
    /// so no exec fifo is made (a file created and removed on the state root's filesystem).
    pub start_by_socket: bool,
    /// The cgroup driver (`--systemd-cgroup`).
    pub cgroup_driver: Kind,
}

pub struct Created {
    pub container: Container,
    /// The config has a `process` (without one the container cannot be started).
    has_process: bool,
    /// The pty master, when `console_relay` was asked for.
    pub console_master: Option<OwnedFd>,
    /// With `start_by_socket`: the channel the container's process waits on instead of the
    /// exec fifo.
    start: Option<sync::Channel>,
}

impl Created {
    /// Let the container's process exec (`start_by_socket`), then run the poststart hooks
    /// (`hooks`: those of the config this container was created from).
    pub fn start(&mut self, hooks: Option<&oci_spec::runtime::Hooks>) -> Result<()> {
        let id = &self.container.state.id;
        if !self.has_process {
            bail!("{}", no_process(id));
        }
        let ch = self
            .start
            .take()
            .ok_or_else(|| anyhow!("cannot start container {id:?}: not created by this process"))?;
        ch.send(&Msg::Go).map_err(|e| {
            anyhow!("cannot start container {id:?}: its process is no longer waiting ({e:#})")
        })?;
        crate::container::lifecycle::poststart(&self.container, Some(hooks))
    }
}

/// Why a container created from a config without `process` cannot be started.
pub fn no_process(id: &str) -> String {
    format!(
        "cannot start container {id:?}: its config.json has no process (start needs process: \
         the program to run); delete it and create it from a config with one"
    )
}

/// Per-phase timings for `--debug`.
pub struct Phases {
    last: std::time::Instant,
    on: bool,
    of: &'static str,
}

impl Phases {
    pub fn new(of: &'static str) -> Phases {
        Phases {
            last: std::time::Instant::now(),
            on: logger::debug_enabled(),
            of,
        }
    }
    pub fn mark(&mut self, what: &str) {
        if self.on {
            let now = std::time::Instant::now();
            logger::debug(&format!(
                "{} phase {what}: {:.2} ms",
                self.of,
                (now - self.last).as_secs_f64() * 1000.0
            ));
            self.last = now;
        }
    }
}

/// Undo what a failed create did, in reverse: processes, cgroup, state directory.
struct Rollback {
    dir: Option<PathBuf>,
    cgroup: Option<Driver>,
    children: Vec<i32>,
    armed: bool,
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.children {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(d) = self.cgroup.as_mut().filter(|d| d.owned()) {
            let m = d.fs();
            let _ = m.kill_all(Signal::SIGKILL);
            for _ in 0..500 {
                if m.pids().map(|p| p.is_empty()).unwrap_or(true) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if let Err(e) = d.destroy() {
                logger::warn(&format!("rollback: {e:#}"));
            }
        }
        if let Some(d) = &self.dir
            && let Err(e) = std::fs::remove_dir_all(d)
        {
            logger::warn(&format!("rollback: removing {}: {e}", d.display()));
        }
    }
}

/// Claim `<root>/<id>` atomically: the directory is built aside with its `creating` state and
/// renamed into place with RENAME_NOREPLACE, so of two racing creates exactly one wins.
pub(crate) fn claim(root: &Path, st: &State, config: &[u8], fifo: bool) -> Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(|e| anyhow!("creating state root {}: {e}", root.display()))?;
    let dir = state::container_dir(root, &st.id);
    if dir.exists() {
        bail!("container {:?} already exists", st.id);
    }
    let tmp = root.join(format!(".creating-{}-{}", st.id, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&tmp)
        .map_err(|e| anyhow!("creating {}: {e}", tmp.display()))?;
    let res = (|| -> Result<()> {
        // Not fsync'd, for the reason given at Container::save; no temporary file either: the
        // directory becomes visible (renamed into place) only once it is complete.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(tmp.join(STATE_FILE))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &serde_json::to_vec(st)?))
            .map_err(|e| anyhow!("writing the state: {e}"))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp.join(CONFIG_FILE))
            .and_then(|mut f| std::io::Write::write_all(&mut f, config))
            .map_err(|e| anyhow!("saving config.json in the state dir: {e}"))?;
        if fifo {
            nix::unistd::mkfifo(
                &tmp.join(EXEC_FIFO),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| anyhow!("creating the exec fifo: {e}"))?;
        }
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &tmp,
            nix::fcntl::AT_FDCWD,
            &dir,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EEXIST | nix::errno::Errno::ENOTEMPTY => {
                anyhow!("container {:?} already exists", st.id)
            }
            e => anyhow!("creating {}: {e}", dir.display()),
        })
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(dir)
}

pub fn create(root: &Path, bundle: Bundle, opts: &Options) -> Result<Created> {
    let mut ph = Phases::new("create");
    crate::container::validate_id(&opts.id)?;
    let plan = plan::Plan::new(&bundle, opts).context("config.json")?;
    ph.mark("parse+validate");

    let (me_start, owner) = (
        state::process_start_time(std::process::id() as i32).unwrap_or(0),
        user_name(nix::unistd::geteuid().as_raw()),
    );
    let spec = &bundle.spec;
    let mut mgr = Driver::new(
        opts.cgroup_driver,
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
        spec.annotations().as_ref().unwrap_or(&Default::default()),
    )?;
    // Rootless without a cgroup it may make: the container stays in the caller's cgroups,
    // which `mgr` then only names (for a cgroup mount); nothing is created or removed. With
    // the systemd driver the user's own systemd makes the unit.
    let own_cgroup =
        !crate::rootless::enabled() || opts.cgroup_driver != Kind::Fs || mgr.fs().writable();
    if !own_cgroup {
        crate::rootless::check_no_cgroup(spec.linux().as_ref())?;
        mgr = Driver::Fs(Manager::callers_own()?);
    }
    // The systemd driver's bus: a missing one is an error before anything exists.
    if opts.cgroup_driver != Kind::Fs {
        mgr.connect()?;
        ph.mark("D-Bus connect");
    }
    let mut st = State {
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        pid_start: 0,
        creator_pid: std::process::id() as i32,
        creator_start: me_start,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: logger::rfc3339_now(),
        owner,
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: own_cgroup.then(|| mgr.state().clone()),
        rootless: crate::rootless::enabled(),
    };
    let config_bytes = serde_json::to_vec(&bundle.raw)?;
    let dir = claim(root, &st, &config_bytes, !opts.start_by_socket)?;
    let mut rb = Rollback {
        dir: Some(dir.clone()),
        cgroup: None,
        children: vec![],
        armed: true,
    };
    let lock_file = std::fs::File::open(&dir)?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("locking {}: {e}", dir.display()))?;
    ph.mark("state");

    // Armed before the first mkdir (or unit), so that a create failing half way removes what
    // it made.
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let (placement, naming) = if own_cgroup {
        let mgr = rb.cgroup.insert(mgr);
        (mgr.prepare(&resources)?, None)
    } else {
        (crate::cgroups::Placement::open(&[], None)?, Some(mgr))
    };
    ph.mark("cgroup");

    let fifo = match opts.start_by_socket {
        true => None,
        false => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(dir.join(EXEC_FIFO))
                .map_err(|e| anyhow!("opening the exec fifo: {e}"))?,
        ),
    };
    let console: Option<OwnedFd> = match (&opts.console_socket, opts.console_relay) {
        (Some(p), _) => Some(crate::tty::connect(p)?),
        (None, true) => None,
        (None, false) => {
            if plan.terminal {
                bail!(
                    "process.terminal is true: pass --console-socket (or use `berth run` in the foreground)"
                );
            }
            None
        }
    };
    let pidfd_sock = match &opts.pidfd_socket {
        Some(p) => Some(crate::tty::connect_socket("--pidfd-socket", p)?),
        None => None,
    };
    let (relay_parent, relay_child) = crate::tty::relay_pair(opts.console_relay && plan.terminal)?;
    let console_child = console
        .as_ref()
        .or(relay_child.as_ref())
        .map(|f| f.as_raw_fd());
    let (parent_ch, child_ch) = sync::pair()?;

    // ---- the fork ----
    // The child starts with its working directory in the rootfs, entered here with berth's
    // privileges: it reaches the rootfs from there, so directories above it that the
    // container's root cannot search (a bundle under a 0700 directory, with a user namespace)
    // do not stop it. berth's own working directory is restored right after the fork.
    let own_cwd = enter_rootfs(&bundle.rootfs);
    let cloned = clone::clone(plan.clone_flags, placement.clone_into());
    if !matches!(cloned, Ok((clone::Forked::Child, _)))
        && let Some(cwd) = &own_cwd
    {
        nix::unistd::fchdir(cwd).map_err(|e| anyhow!("returning to the working directory: {e}"))?;
    }
    let (forked, v2_placed) = cloned?;
    let child_pid = match forked {
        clone::Forked::Child => {
            drop(parent_ch);
            // A descriptor of a host directory: not for the container.
            let cwd_is_rootfs = own_cwd.is_some();
            drop(own_cwd);
            let Some(cg_state) = rb.cgroup.as_ref().or(naming.as_ref()).map(|d| d.state()) else {
                unreachable!("the cgroup driver is set before the clone")
            };
            // Never returns: the child either execs the container process or exits.
            child::run(child::Ctx {
                plan: &plan,
                spec,
                bundle: &bundle,
                opts,
                sync: child_ch,
                fifo: fifo.as_ref().map(|f| f.as_raw_fd()),
                console: console_child,
                cgroup: cg_state,
                placement: &placement,
                v2_placed,
                state: &st,
                cwd_is_rootfs,
            })
        }
        clone::Forked::Parent(pid) => pid,
    };
    drop(own_cwd);
    drop(child_ch);
    drop(relay_child);
    drop(fifo);
    drop(console);
    rb.children.push(child_pid);
    ph.mark("clone");
    if placement.waits_for_parent()
        && let Some(d) = rb.cgroup.as_mut()
    {
        // The child is in its cgroup once systemd's job is done: it sets itself up while the
        // cgroup files are written here.
        d.enter(child_pid, &resources)?;
        parent_ch.send(&Msg::Go)?;
        if let Some(s) = d.dbus_stats() {
            ph.mark(&format!("systemd unit ({s})"));
        }
        d.finish(&resources)?;
        st.cgroup = Some(d.state().clone());
        ph.mark("cgroupfs writes");
    }
    drop(placement);

    let mut container_pid = child_pid;
    let mut intermediate: Option<i32> = None;
    loop {
        let Some((msg, fd)) = parent_ch.recv()? else {
            let status = waitpid(Pid::from_raw(child_pid), None).ok();
            rb.children.retain(|&p| p != child_pid);
            bail!("the container process exited during setup ({status:?}) without saying why");
        };
        match msg {
            Msg::UserNs => {
                plan.write_id_maps(child_pid)?;
                ph.mark("id maps");
                parent_ch.send(&Msg::Go)?;
            }
            Msg::TimeOffsets => {
                for off in &plan.time_offsets {
                    crate::procfs::write(&format!("{child_pid}/timens_offsets"), off)
                        .map_err(|e| anyhow!("linux.timeOffsets: writing {off:?}: {e}"))?;
                }
                parent_ch.send(&Msg::Go)?;
            }
            Msg::NetDevices => {
                netdev::move_all(&plan.net_devices, child_pid)?;
                ph.mark("net devices");
                parent_ch.send(&Msg::Go)?;
            }
            Msg::Pid(p) => {
                intermediate = Some(container_pid);
                container_pid = p;
                rb.children.push(p);
            }
            Msg::RunHooks => {
                ph.mark("child mounts");
                let mut s2 = st.clone();
                s2.pid = container_pid;
                let c = Container {
                    dir: dir.clone(),
                    state: s2,
                };
                let state_json = serde_json::to_vec(&c.oci_state(Status::Creating))?;
                let res = (|| -> Result<()> {
                    if let Some(h) = spec.hooks() {
                        hooks::run_all("prestart", h.prestart().as_ref(), &state_json)?;
                        hooks::run_all("createRuntime", h.create_runtime().as_ref(), &state_json)?;
                    }
                    Ok(())
                })();
                if let Err(e) = res {
                    let _ = parent_ch.send(&Msg::Abort(format!("{e:#}")));
                    return Err(e);
                }
                parent_ch.send(&Msg::HooksDone(container_pid))?;
                ph.mark("runtime hooks");
            }
            Msg::Ready => {
                // With a seccomp notify filter its listener comes with `ready`.
                if fd.is_some() {
                    let mut s2 = st.clone();
                    s2.pid = container_pid;
                    let c = Container {
                        dir: dir.clone(),
                        state: s2,
                    };
                    forward_seccomp_listener(spec, fd, &c.oci_state(Status::Creating))?;
                }
                break;
            }
            Msg::Error(e) => {
                bail!("{e}");
            }
            other => bail!("unexpected message from the container process: {other:?}"),
        }
    }
    ph.mark("child setup");

    let console_master = match relay_parent {
        Some(sock) => Some(receive_fd(&sock)?),
        None => None,
    };
    st.status = Status::Created;
    st.pid = container_pid;
    st.pid_start = state::process_start_time(container_pid)
        .ok_or_else(|| anyhow!("the container process died right after setup"))?;
    let c = Container {
        dir: dir.clone(),
        state: st,
    };
    c.save()?;
    if let Some(pf) = &opts.pid_file {
        let pf = std::path::absolute(pf)?;
        write_atomic(&pf, container_pid.to_string().as_bytes(), false)
            .with_context(|| "--pid-file".to_string())?;
    }
    if let Some(sock) = &pidfd_sock {
        crate::tty::send_pidfd(sock, container_pid, "standard")?;
    }
    if let Some(i) = intermediate {
        let _ = kill(Pid::from_raw(i), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(i), None);
    }
    ph.mark("state write");
    rb.armed = false;
    Ok(Created {
        container: c,
        has_process: plan.has_process,
        console_master,
        start: opts.start_by_socket.then_some(parent_ch),
    })
}

/// The name of `uid` from /etc/passwd (berth runs as root: no NSS round trips through nscd and
/// nsswitch.conf for the `owner` field), or the number.
/// chdir into the rootfs; berth's own working directory (to go back to) if that worked. If it
/// did not, the child reaches the rootfs by its path (and says what is wrong with it).
fn enter_rootfs(rootfs: &Path) -> Option<OwnedFd> {
    let own = nix::fcntl::open(
        ".",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    nix::unistd::chdir(rootfs).ok()?;
    Some(own)
}

pub(crate) fn user_name(uid: u32) -> String {
    child::passwd_field(uid, 0).unwrap_or_else(|| uid.to_string())
}

/// Hand the seccomp notify listener the container sent us to `linux.seccomp.listenerPath`.
pub(crate) fn forward_seccomp_listener(
    spec: &oci_spec::runtime::Spec,
    fd: Option<OwnedFd>,
    state: &serde_json::Value,
) -> Result<()> {
    use std::os::fd::AsFd;
    let fd = fd.ok_or_else(|| anyhow!("seccomp listener message without a descriptor"))?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or_else(|| anyhow!("seccomp listener without linux.seccomp"))?;
    crate::security::seccomp::send_listener(seccomp, fd.as_fd(), state)
}

pub(crate) fn receive_fd(sock: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| anyhow!("receiving the pty master: {e}"))?;
    for c in msg.cmsgs().map_err(|e| anyhow!("{e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            return Ok(crate::sys::take_fd(fd));
        }
    }
    bail!("the container did not send its pty master")
}
