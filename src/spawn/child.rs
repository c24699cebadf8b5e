//! The create path, child side: from the clone to the exec of the container process. Every
//! error is reported to the parent over the sync socket with its reason, then the child exits.

use anyhow::{Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::plan::Plan;
use super::sync::{Channel, Msg};
use super::{Options, clone};
use crate::cgroups::{CgroupState, Placement};
use crate::config::Bundle;
use crate::container::{Container, State, Status};
use crate::rootfs::{self, mounts, resolve::Root};
use crate::security::caps;
use crate::security::seccomp::Filter;

pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub spec: &'a Spec,
    pub bundle: &'a Bundle,
    pub opts: &'a Options,
    pub sync: Channel,
    /// The exec fifo to wait on for `start`; None: wait for `Go` on `sync` (`start_by_socket`).
    pub fifo: Option<RawFd>,
    pub console: Option<RawFd>,
    pub cgroup: &'a CgroupState,
    /// The cgroup files to move itself with; `v2_placed`: clone3 did the cgroup2 part.
    pub placement: &'a Placement,
    pub v2_placed: bool,
    pub state: &'a State,
    /// berth forked this process with its working directory in the rootfs.
    pub cwd_is_rootfs: bool,
}

/// Entry point of the cloned child. Never returns.
pub fn run(ctx: Ctx) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(&ctx)));
    let err = match r {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "internal error in the container setup (a bug in berth)".to_string(),
    };
    let _ = ctx.sync.send(&Msg::Error(err));
    // No atexit handlers or destructors of the parent's state we were copied from.
    crate::sys::exit_now(1)
}

enum Never {}

pub(crate) fn request(sync: &Channel, m: Msg) -> Result<Option<i32>> {
    sync.send(&m)?;
    match sync.recv()? {
        Some((Msg::Go, _)) => Ok(None),
        Some((Msg::HooksDone(pid), _)) => Ok(Some(pid)),
        Some((Msg::Abort(why), _)) => bail!("{why}"),
        Some((other, _)) => bail!("unexpected message from berth: {other:?}"),
        None => bail!("berth went away"),
    }
}

/// Wait for berth's `Go` (without asking anything).
pub(crate) fn await_go(sync: &Channel) -> Result<()> {
    match sync.recv()? {
        Some((Msg::Go, _)) => Ok(()),
        Some((Msg::Abort(why), _)) => bail!("{why}"),
        Some((other, _)) => bail!("unexpected message from berth: {other:?}"),
        None => bail!("berth went away"),
    }
}

pub(crate) fn set_dumpable(on: bool) -> Result<()> {
    nix::sys::prctl::set_dumpable(on).map_err(|e| anyhow!("prctl(PR_SET_DUMPABLE): {e}"))
}

pub(crate) fn die_with_parent(expected_parent: i32) -> Result<()> {
    crate::sys::set_pdeathsig(Some(Signal::SIGKILL))
        .map_err(|e| anyhow!("prctl(PDEATHSIG): {e}"))?;
    let pp = nix::unistd::getppid().as_raw();
    if pp != expected_parent && pp != 0 {
        bail!("berth exited during setup");
    }
    Ok(())
}

fn setup(ctx: &Ctx) -> Result<Never> {
    let plan = ctx.plan;
    let spec = ctx.spec;
    let parent = ctx.state.creator_pid;
    // `--debug` timings, written to the log by this process.
    let mut ph = super::Phases::new("child");
    die_with_parent(parent)?;
    // The systemd driver: systemd moves this process into the container's unit, and berth
    // says when that is done; until then nothing runs whose cgroup matters.
    if ctx.placement.waits_for_parent() {
        await_go(&ctx.sync)?;
    }
    // First of all, so that everything this process forks or runs is in the container's
    // cgroups, and a cgroup namespace made below is rooted there.
    ctx.placement.join_self(ctx.v2_placed)?;
    // Until the exec, this process is a copy of berth, with host descriptors, a host root and
    // cwd until pivot_root: nothing in the container may open its /proc/<pid>/exe, fd/, root or
    // mem (CVE-2019-5736, CVE-2016-9962). In a user namespace its own /proc files would then
    // belong to the host's root, out of reach of the container's root who writes
    // timens_offsets and oom_score_adj: there it is made non-dumpable right after those.
    if !plan.in_userns {
        set_dumpable(false)?;
    }

    // ---- namespaces ----
    for (t, path, flag) in &plan.joins {
        let f = std::fs::File::open(path)
            .map_err(|e| anyhow!("linux.namespaces: opening {} ({t:?}): {e}", path.display()))?;
        setns(f.as_fd(), CloneFlags::from_bits_retain(*flag))
            .map_err(|e| anyhow!("linux.namespaces: joining {} ({t:?}): {e}", path.display()))?;
    }
    if plan.new_userns {
        if plan.clone_flags & libc::CLONE_NEWUSER == 0 {
            unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| anyhow!("unshare(user): {e}"))?;
        }
        request(&ctx.sync, Msg::UserNs)?;
    }
    if plan.in_userns {
        // Become the container's root (if it is mapped) for the rest of the setup.
        let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
        let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
        // The credential change cleared the parent-death signal.
        die_with_parent(parent)?;
    }
    if plan.unshare_flags != 0 {
        unshare(CloneFlags::from_bits_retain(plan.unshare_flags))
            .map_err(|e| anyhow!("linux.namespaces: unshare: {e}"))?;
    }
    // Rooted at the container's cgroup: this process is in it already (join_self above).
    if plan.cgroup_ns {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| anyhow!("linux.namespaces: new cgroup namespace: {e}"))?;
    }
    if plan.new_netns {
        super::netdev::loopback_up()?;
    }
    if !plan.net_devices.is_empty() {
        request(&ctx.sync, Msg::NetDevices)?;
    }
    if plan.second_fork {
        second_fork(ctx)?;
    }
    nix::unistd::setsid().map_err(|e| anyhow!("setsid: {e}"))?;
    ph.mark("cgroup+namespaces");

    // ---- rootfs ----
    // Reached from the working directory berth forked this process with (see rootfs::Rootfs),
    // unless a mount namespace joined by path moved it.
    let joined_mnt = plan
        .joins
        .iter()
        .any(|(t, _, _)| *t == oci_spec::runtime::LinuxNamespaceType::Mount);
    let mut rootfs = match ctx.cwd_is_rootfs && !joined_mnt {
        true => rootfs::Rootfs::from_cwd(&ctx.bundle.rootfs)?,
        false => rootfs::Rootfs::by_path(&ctx.bundle.rootfs),
    };
    let linux = spec.linux().as_ref();
    // Without a mount namespace nothing but the config's mounts is made (see plan.rs).
    let prop = match plan.mount_ns {
        true => Some(rootfs::prepare_root(
            &mut rootfs,
            linux.and_then(|l| l.rootfs_propagation().as_deref()),
        )?),
        false => None,
    };
    let root = Root::open(&rootfs.path())?;
    let mount_label = linux.and_then(|l| l.mount_label().as_deref());
    let mctx = mounts::Ctx {
        bundle: &ctx.bundle.dir,
        in_userns: plan.userns_limits,
        cgroup_ns: plan.cgroup_ns,
        cgroup: Some(ctx.cgroup),
        mount_label,
        idmap: &plan.idmap_userns,
    };
    rootfs::mount_all(&root, spec, &mctx, plan.userns_limits)?;
    // A missing cwd is created (as runc does), inside the rootfs.
    root.mkdir_all(&plan.cwd, rootfs::resolve::Kind::Dir)
        .map_err(|e| anyhow!("process.cwd: {e:#}"))?;
    drop(root);
    ph.mark("mounts");

    // ---- hooks in the runtime namespace (run by berth), then createContainer here ----
    let mut host_pid = 0;
    if plan.has_hooks {
        host_pid = request(&ctx.sync, Msg::RunHooks)?.unwrap_or(0);
        if let Some(h) = spec.hooks() {
            let st = hook_state(ctx, host_pid, Status::Creating);
            // Without `env`: the process's environment as configured (runc's, see hooks.rs).
            crate::hooks::run_all_env(
                "createContainer",
                h.create_container().as_ref(),
                &st,
                Some(&plan.env),
            )?;
        }
    }

    // ---- pivot_root and what is done from inside ----
    match prop {
        Some(prop) => {
            rootfs::pivot(&rootfs, ctx.opts.no_pivot)?;
            rootfs::set_root_propagation(prop)?;
        }
        None => rootfs::chroot(&rootfs)?,
    }
    drop(rootfs);
    // sysctls before readonlyPaths: /proc/sys is usually among them.
    if let Some(l) = linux {
        set_sysctls(l.sysctl().as_ref())?;
    }
    if let Some(l) = linux {
        rootfs::mask_paths(l.masked_paths().as_deref().unwrap_or(&[]), mount_label)?;
        rootfs::readonly_paths(
            l.readonly_paths().as_deref().unwrap_or(&[]),
            plan.userns_limits,
        )?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        rootfs::readonly_root(plan.userns_limits)?;
    }
    ph.mark("pivot, masked and read-only paths");
    if plan.terminal {
        let (master, peer) = crate::tty::open_pty()?;
        if let Some(sz) = spec.process().as_ref().and_then(|p| p.console_size()) {
            crate::tty::set_size(peer_raw(&peer), sz.height() as u16, sz.width() as u16);
        }
        let sock = ctx
            .console
            .ok_or_else(|| anyhow!("process.terminal: no console socket"))?;
        crate::tty::send_master(sock, peer_raw(&master))?;
        crate::tty::bind_console(&peer)?;
        drop(master);
        crate::tty::make_stdio(&peer)?;
        let _ = nix::unistd::fchown(peer.as_fd(), Some(Uid::from_raw(plan.uid)), None);
    }
    if let Some(h) = spec.hostname()
        && !h.is_empty()
    {
        nix::unistd::sethostname(h).map_err(|e| anyhow!("hostname: {e}"))?;
    }
    if let Some(d) = spec.domainname()
        && !d.is_empty()
    {
        crate::sys::setdomainname(d.as_bytes()).map_err(|e| anyhow!("domainname: {e}"))?;
    }
    set_rlimits(&plan.rlimits)?;
    if let Some(adj) = plan.oom_score_adj {
        set_oom_score_adj(adj)?;
    }
    set_dumpable(false)?;
    if !ctx.opts.no_new_keyring {
        join_keyring(&ctx.opts.id)?;
    }
    // With the capabilities still held (real-time policies, negative nice, RT I/O class).
    // `process.execCPUAffinity` is not applied here: the runtime-spec says it is not for the
    // container's init process (it is used by `berth exec`).
    plan.attrs.apply()?;

    if !plan.has_process {
        ph.mark("process");
        return hold_without_process(ctx);
    }

    // ---- the process: cwd, user, capabilities, no_new_privs ----
    // The seccomp filter is loaded last, right before the exec (see `load_and_exec`): no
    // syscall of berth's own comes after it but that execve, so a profile cannot break the
    // setup by denying one (the cwd check, the executable lookup, the user switch...).
    // The parent now: berth, or after a second fork the intermediate process.
    let parent_now = nix::unistd::getppid().as_raw();
    let (exe, env) = become_process(
        &Creds {
            caps: plan.caps.as_ref(),
            uid: plan.uid,
            gid: plan.gid,
            additional_gids: &plan.additional_gids,
            cwd: &plan.cwd,
            umask: plan.umask,
            no_new_privs: plan.no_new_privs,
            seccomp: plan.seccomp.is_some(),
            args: &plan.args,
            env: &plan.env,
        },
        parent_now,
    )?;
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    crate::security::labels::apply_exec_labels(spec)?;
    let program = super::trampoline::Exec::new(plan.trampoline.as_ref(), &exe, &plan.args, &envp);

    // ---- ready: wait for `start` ----
    crate::sys::set_pdeathsig(None).map_err(|e| anyhow!("prctl: {e}"))?;
    // A notify filter is the exception: its listener must reach berth (and the agent) with
    // `ready`, so it is loaded now; what follows it until the exec — sending `ready` (sendmsg),
    // waiting for start (poll and read, or read), startContainer hooks, the signal and
    // descriptor reset (rt_sigprocmask, rt_sigaction, close_range) — must not be denied by
    // such a profile (the agent may be asked about them).
    let notify = plan.seccomp.as_ref().filter(|f| f.wants_notify());
    if let Some(f) = notify {
        let l = f.load()?;
        ctx.sync
            .send_with_fd(&Msg::Ready, l.as_ref().map(peer_raw))?;
        drop(l);
    } else {
        ph.mark("process");
        ctx.sync.send(&Msg::Ready)?;
    }
    match ctx.fifo {
        Some(f) => wait_for_start(f)?,
        // `run`: berth says go on the sync socket (or is gone: then this process ends).
        None => wait_for_go(&ctx.sync)?,
    }

    if let Some(h) = spec.hooks()
        && h.start_container().as_ref().is_some_and(|v| !v.is_empty())
    {
        let st = hook_state(ctx, host_pid, Status::Created);
        // Without `env`: the environment the process gets (with HOME), as runc.
        if let Err(e) = crate::hooks::run_all_env(
            "startContainer",
            h.start_container().as_ref(),
            &st,
            Some(&env),
        ) {
            crate::logger::error(&format!("{e:#}"));
            crate::sys::exit_now(1)
        }
    }
    let filter = plan.seccomp.as_ref().filter(|f| !f.wants_notify());
    load_and_exec(plan, filter, &program)
}

/// Signals back to their defaults (the mask and ignored dispositions survive exec) and every
/// descriptor above the preserved ones close-on-exec.
fn reset_signals_and_fds(plan: &Plan) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Rust's runtime ignores SIGPIPE; the container's process gets the default.
    crate::sys::default_sigpipe();
    let _ = crate::sys::cloexec_from(3 + plan.preserve_fds);
}

/// The end of the setup: the seccomp filter (if not loaded already for notify), then the exec,
/// with no other system call in between — everything else was done before. After `start` an
/// error can only go to the container's stderr.
fn load_and_exec(plan: &Plan, filter: Option<&Filter>, program: &super::trampoline::Exec) -> ! {
    reset_signals_and_fds(plan);
    if let Some(f) = filter
        && let Err(e) = f.load()
    {
        crate::logger::error(&format!("{e:#}"));
        crate::sys::exit_now(1)
    }
    let err = program.exec();
    // Go's errno text (the logger's form), as far as the filter lets the write through.
    crate::logger::error(&format!("exec {}: {err}", program.name()));
    crate::sys::exit_now(127)
}

/// A config without `process` (config.md makes it optional for create): the container is
/// set up — namespaces, cgroup, mounts, hooks — and this process only holds it, running
/// nothing, until `delete` kills it. `start` refuses such a container (it needs `process`).
fn hold_without_process(ctx: &Ctx) -> Result<Never> {
    crate::sys::set_pdeathsig(None).map_err(|e| anyhow!("prctl: {e}"))?;
    // The exec fifo loses its only reader before `created` is visible, so that `start` finds
    // nobody waiting on it.
    if let Some(f) = ctx.fifo {
        crate::sys::close_fd(f);
    }
    ctx.sync.send(&Msg::Ready)?;
    // Nothing is exec'd, so close berth's descriptors (the sync socket, the trampoline...)
    // rather than keep them in the container; none is used or dropped again.
    crate::sys::close_from(3);
    loop {
        nix::unistd::pause();
    }
}

fn peer_raw(f: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    f.as_raw_fd()
}

/// Enter a new pid namespace (or the joined one) and/or a new time namespace by forking: the
/// child of this process is the container process. This process reports its pid and waits to be
/// killed by berth.
fn second_fork(ctx: &Ctx) -> Result<()> {
    let plan = ctx.plan;
    if plan.time_ns {
        unshare(CloneFlags::from_bits_retain(0x80))
            .map_err(|e| anyhow!("linux.namespaces: new time namespace: {e}"))?;
        // Written by berth, before the fork below puts the first task in the namespace: the
        // writer needs CAP_SYS_TIME over the user namespace owning the time namespace and
        // write access to this process's /proc file. In a user namespace this process has the
        // first but not the second (its credential change made it non-dumpable, so its /proc
        // files belong to the host's root).
        if !plan.time_offsets.is_empty() {
            request(&ctx.sync, Msg::TimeOffsets)?;
        }
    }
    if plan.unshare_pid {
        unshare(CloneFlags::CLONE_NEWPID)
            .map_err(|e| anyhow!("linux.namespaces: new pid namespace: {e}"))?;
    }
    let me = std::process::id() as i32;
    match clone::fork()? {
        clone::Forked::Child => {
            die_with_parent(me)?;
            Ok(())
        }
        clone::Forked::Parent(pid) => {
            ctx.sync.send(&Msg::Pid(pid))?;
            loop {
                // Killed by berth once the container process is ready (or on failure).
                nix::unistd::pause();
            }
        }
    }
}

fn hook_state(ctx: &Ctx, pid: i32, status: Status) -> Vec<u8> {
    let mut s = ctx.state.clone();
    s.pid = pid;
    let c = Container {
        dir: PathBuf::new(),
        state: s,
    };
    serde_json::to_vec(&c.oci_state(status)).unwrap_or_default()
}

/// `linux.sysctl`, written through a verified procfs handle: nothing mounted or symlinked over
/// a file under /proc/sys is written through.
fn set_sysctls(sysctl: Option<&std::collections::HashMap<String, String>>) -> Result<()> {
    let Some(map) = sysctl else { return Ok(()) };
    for (k, v) in map {
        if k.is_empty() || k.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
            bail!("linux.sysctl: {k:?} is not a sysctl name");
        }
        crate::procfs::write(&format!("sys/{}", k.replace('.', "/")), v).map_err(|e| {
            anyhow!(
                "linux.sysctl: setting {k}={v}: /proc/sys/{}: {e}",
                k.replace('.', "/")
            )
        })?;
    }
    Ok(())
}

/// `process.rlimits`, in the calling process.
pub(crate) fn set_rlimits(rlimits: &[super::plan::Rlimit]) -> Result<()> {
    for r in rlimits {
        crate::sys::setrlimit(r.resource, r.soft, r.hard).map_err(|e| {
            anyhow!(
                "process.rlimits: setting {} to {}/{}: {}",
                r.name,
                r.soft,
                r.hard,
                e
            )
        })?;
    }
    Ok(())
}

/// A new session keyring `_ses.<id>` (as runc), where the kernel allows one.
pub(crate) fn join_keyring(id: &str) -> Result<()> {
    match crate::sys::join_session_keyring(&format!("_ses.{id}")) {
        Ok(())
        | Err(nix::errno::Errno::ENOSYS)
        | Err(nix::errno::Errno::EACCES)
        | Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => bail!("creating a session keyring: {e}"),
    }
}

pub(crate) fn set_oom_score_adj(adj: i32) -> Result<()> {
    crate::procfs::write("self/oom_score_adj", &adj.to_string())
        .map_err(|e| anyhow!("process.oomScoreAdj: writing {adj} to /proc/self/oom_score_adj: {e}"))
}

/// What the process becomes, of either plan (create's or exec's).
pub(crate) struct Creds<'a> {
    pub caps: Option<&'a caps::Sets>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: &'a [u32],
    pub cwd: &'a Path,
    pub umask: u32,
    pub no_new_privs: bool,
    /// A seccomp filter is loaded later (without noNewPrivileges that takes CAP_SYS_ADMIN).
    pub seccomp: bool,
    pub args: &'a [CString],
    pub env: &'a [String],
}

/// Become the process, as the last steps before the labels, the seccomp filter and the exec:
/// the working directory, the bounding set, the user, the capabilities, the umask and
/// no_new_privs. `parent` is the process whose death must kill this one. Returns the
/// executable and the environment (with HOME). The seccomp filter comes after all of this, so
/// a profile cannot break the setup by denying one of its syscalls (the cwd check, the
/// executable lookup, the user switch...).
pub(crate) fn become_process(c: &Creds, parent: i32) -> Result<(CString, Vec<String>)> {
    // Entered while still root where it can be (a directory only root may enter), checked again
    // as the user below.
    let cwd_ok_as_root = nix::unistd::chdir(c.cwd).is_ok();
    if let Some(caps) = c.caps {
        caps::drop_bounding(caps)?;
    }
    switch_user(c.uid, c.gid, c.additional_gids)?;
    // A credential change resets both of these (the parent-death signal whenever the
    // effective uid or gid changes: a process of a subuid-mapped user, rootless with
    // newuidmap, would outlive a berth killed before the exec). The parent is checked after
    // the prctl, so one that died before it is not missed.
    set_dumpable(false)?;
    die_with_parent(parent)?;
    // Without noNewPrivileges loading the filter takes CAP_SYS_ADMIN: kept effective until then
    // (caps::apply says why that ends at the exec).
    let keep_admin = c.seccomp && !c.no_new_privs;
    match c.caps {
        Some(caps) => caps::apply(caps, keep_admin)?,
        None if keep_admin && c.uid != 0 => caps::raise_admin()?,
        None => {}
    }
    if !cwd_ok_as_root {
        nix::unistd::chdir(c.cwd).map_err(|e| anyhow!("process.cwd: {}: {e}", c.cwd.display()))?;
    }
    verify_cwd(c.cwd)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(c.umask));
    if c.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(|e| anyhow!("process.noNewPrivileges: {e}"))?;
    }
    let mut env = c.env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(c.uid)));
    }
    let exe = find_executable(&c.args[0], &env)?;
    Ok((exe, env))
}

/// Switch to the process's user (gid, supplementary groups, uid), keeping the permitted
/// capabilities for `caps::apply`.
pub(crate) fn switch_user(uid: u32, gid: u32, additional_gids: &[u32]) -> Result<()> {
    nix::sys::prctl::set_keepcaps(true).map_err(|e| anyhow!("prctl(KEEPCAPS): {e}"))?;
    let groups: Vec<Gid> = additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !setgroups_denied {
        nix::unistd::setgroups(&groups)
            .map_err(|e| anyhow!("process.user.additionalGids: setgroups: {e}"))?;
    } else if !groups.is_empty() {
        bail!("process.user.additionalGids: setgroups is denied in this user namespace");
    }
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(|e| anyhow!("process.user.gid: setting gid {gid}: {e}"))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u)
        .map_err(|e| anyhow!("process.user.uid: setting uid {uid}: {e}"))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| anyhow!("prctl(KEEPCAPS): {e}"))?;
    Ok(())
}

pub(crate) fn verify_cwd(cwd: &Path) -> Result<()> {
    let now =
        std::env::current_dir().map_err(|e| anyhow!("process.cwd: {}: {e}", cwd.display()))?;
    if !now.is_absolute() || now.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        bail!("process.cwd: {} is outside the container", cwd.display());
    }
    Ok(())
}

pub(crate) fn home_of(uid: u32) -> String {
    passwd_field(uid, 5).unwrap_or_else(|| "/".into())
}

/// Field `idx` of `uid`'s line in /etc/passwd (0: name, 5: home), as seen by this process.
pub(crate) fn passwd_field(uid: u32, idx: usize) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > idx.max(2) && f[2].parse::<u32>().ok() == Some(uid))
        .map(|f| f[idx].to_string())
}

/// What would make execve of `p` fail although it is an executable file: a noexec mount, a
/// missing `#!` interpreter, a missing ELF interpreter (PT_INTERP). The program is exec'd
/// through the trampoline (CVE-2019-5736), which can only exit 127 if that exec fails, so these
/// are caught here, with the reason. Other formats (binfmt_misc) are left to the kernel.
fn loadable(p: &Path) -> Result<(), String> {
    if let Ok(st) = nix::sys::statvfs::statvfs(p)
        && st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC)
    {
        return Err("on a noexec mount".into());
    }
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| format!("{e}"))?;
    head.truncate(n);
    let interp = if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        line.split_whitespace().next().map(str::to_string)
    } else {
        elf_interp(&head)
    };
    match interp {
        Some(i) if !Path::new(&i).exists() => Err(format!("its interpreter {i}: not found")),
        _ => Ok(()),
    }
}

/// PT_INTERP of a little-endian ELF (32 or 64 bit) whose headers are within `h`.
fn elf_interp(h: &[u8]) -> Option<String> {
    if h.len() < 52 || &h[..4] != b"\x7fELF" || h[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(h.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(h.get(o..o + 4)?.try_into().ok()?) as usize);
    let u64_at = |o: usize| Some(u64::from_le_bytes(h.get(o..o + 8)?.try_into().ok()?) as usize);
    let wide = h[4] == 2;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?)
    } else {
        (u32_at(0x1c)?, u16_at(0x2a)?, u16_at(0x2c)?)
    };
    for i in 0..phnum.min(64) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != 3 {
            continue;
        }
        let (off, size) = if wide {
            (u64_at(ph + 8)?, u64_at(ph + 32)?)
        } else {
            (u32_at(ph + 4)?, u32_at(ph + 16)?)
        };
        let raw = h.get(off..off.checked_add(size)?)?;
        let raw = raw.split(|&b| b == 0).next()?;
        return Some(String::from_utf8_lossy(raw).into_owned());
    }
    None
}

/// The executable: a name with a `/` as is, a bare name through PATH of `process.env`.
pub(crate) fn find_executable(arg0: &CString, env: &[String]) -> Result<CString> {
    let name = arg0.to_string_lossy().into_owned();
    // Errno texts as Go writes them: engines map "no such file or directory" to exit status
    // 127 and "permission denied" to 126 by the text.
    let go = crate::logger::errno_text;
    let check = |p: &Path| -> Result<(), String> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => Err("is a directory".into()),
            Ok(_) => match nix::unistd::access(p, nix::unistd::AccessFlags::X_OK) {
                Ok(()) => loadable(p),
                Err(e) => Err(format!("not executable: {}", go(e))),
            },
            Err(e) => Err(match e.raw_os_error() {
                Some(n) => go(nix::errno::Errno::from_raw(n)),
                None => e.to_string(),
            }),
        }
    };
    if name.contains('/') {
        return match check(Path::new(&name)) {
            Ok(()) => Ok(arg0.clone()),
            Err(why) => bail!("process.args[0]: {name}: {why}"),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut last = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(&name);
        match check(&p) {
            Ok(()) => {
                return CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("bad path"));
            }
            Err(why) if p.exists() => last = Some(format!("{}: {why}", p.display())),
            Err(_) => {}
        }
    }
    match last {
        Some(l) => bail!("process.args[0]: {l}"),
        // runc's wording: engines look for "executable file not found" (docker: exit 127).
        None => {
            bail!("process.args[0]: exec: {name:?}: executable file not found in $PATH ({path})")
        }
    }
}

/// Block until `start` writes to the exec fifo.
fn wait_for_start(fifo: RawFd) -> Result<()> {
    // The fifo descriptor stays open in this process until exec.
    let fd = crate::sys::borrow_fd(fifo);
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting on the exec fifo: {e}"),
        }
        let mut b = [0u8; 1];
        match nix::unistd::read(fd, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                // A writer came and went without writing: keep waiting.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("reading the exec fifo: {e}"),
        }
    }
}

/// Block until berth sends `Go` on the sync socket (`run`). A plain read(2), as for the exec
/// fifo: the container's seccomp profile may be loaded already, and may not allow recvmsg.
fn wait_for_go(sync: &Channel) -> Result<()> {
    let mut b = [0u8; 64];
    loop {
        match nix::unistd::read(sync.fd.as_fd(), &mut b) {
            Ok(0) => bail!("berth went away before starting the container"),
            Ok(n) => {
                return match serde_json::from_slice::<Msg>(&b[..n]) {
                    Ok(Msg::Go) => Ok(()),
                    _ => bail!("unexpected message from berth while waiting for start"),
                };
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting for start: {e}"),
        }
    }
}
