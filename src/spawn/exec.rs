//! `berth exec`: a new process inside a container that is already running.
//!
//!     berth exec
//!       parent: open /proc/<pid>/ns/* and /proc/<pid>/root of the container's process (before
//!               anything joins its mount namespace, where those paths mean something else),
//!               fork ── sync socketpair ───────────────────────────────────────────────
//!       child:  moves itself into the container's cgroups (cgroups::Placement), non-dumpable,
//!               setns user first (then the others, mount last), chroot into
//!               the container's root; a second fork (CLONE_PARENT, so
//!               the process stays berth's child) when a pid or time namespace was joined,
//!               since those apply to children only
//!       process: terminal, rlimits, keyring, caps, seccomp, user, cwd, no_new_privs, label,
//!               executable looked up → "ready" → execve. The sync socket is close-on-exec:
//!               the parent sees EOF when execve succeeded, or an error message if it failed.

use anyhow::{Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{Process, Spec};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::child::{self, die_with_parent, set_dumpable};
use super::clone;
use super::plan::Rlimit;
use super::sync::{self, Channel, Msg};
use crate::cgroups::{CgroupState, Manager, Placement};
use crate::container::{Container, Status};
use crate::security::caps;
use crate::security::seccomp::Filter;

pub struct Options {
    pub console_socket: Option<PathBuf>,
    /// Foreground with a terminal and no console socket: berth receives the pty master itself.
    pub console_relay: bool,
    pub preserve_fds: u32,
    /// `--cgroup [controller:]path`: sub-cgroups of the container's cgroup to run in.
    pub sub_cgroups: Vec<(Option<String>, String)>,
}

pub struct Spawned {
    /// Host pid of the new process.
    pub pid: i32,
    /// The pty master, when `console_relay` was asked for.
    pub console_master: Option<OwnedFd>,
}

/// Namespaces in the order they are joined: user first (it grants the rights to join the
/// others), mount last.
const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", 0x80),
    ("mnt", libc::CLONE_NEWNS),
];

/// Everything the new process needs, computed and validated before the fork.
struct Plan {
    id: String,
    /// The sealed memfd the program is exec'd through (CVE-2019-5736).
    trampoline: Option<OwnedFd>,
    terminal: bool,
    console_size: Option<(u16, u16)>,
    /// Namespaces of the container that differ from berth's own.
    joins: Vec<(&'static str, File, libc::c_int)>,
    /// The container process's root directory (a path-only descriptor).
    root: File,
    /// A pid or time namespace was joined: they take effect in children only.
    second_fork: bool,
    caps: Option<caps::Sets>,
    rlimits: Vec<Rlimit>,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    umask: u32,
    args: Vec<CString>,
    env: Vec<String>,
    cwd: PathBuf,
    no_new_privs: bool,
    seccomp: Option<Filter>,
    oom_score_adj: Option<i32>,
    /// The container's spec with `process` replaced by the exec'd one (for the LSM labels).
    label_spec: Spec,
    preserve_fds: u32,
    attrs: super::procattr::Attrs,
}

fn same_file(a: &File, b: &Path) -> bool {
    match (a.metadata(), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl Plan {
    fn new(c: &Container, spec: &Spec, p: &Process, opts: &Options) -> Result<Plan> {
        let pid = c.state.pid;
        let mut joins = vec![];
        for (name, flag) in NAMESPACES {
            let path = format!("/proc/{pid}/ns/{name}");
            let f = match File::open(&path) {
                Ok(f) => f,
                // A kernel without this namespace type.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "time" => continue,
                Err(e) => bail!("opening {path} of the container's process: {e}"),
            };
            if same_file(&f, Path::new(&format!("/proc/self/ns/{name}"))) {
                continue;
            }
            joins.push((name, f, flag));
        }
        let joins_user = joins.iter().any(|j| j.0 == "user");
        let root = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(format!("/proc/{pid}/root"))
            .map_err(|e| anyhow!("opening the root of the container's process: {e}"))?;
        // The descriptors are the container's only if its process is still the one recorded.
        if !crate::container::state::process_matches(pid, c.state.pid_start) {
            bail!(
                "cannot exec in a stopped container: {:?} has stopped",
                c.state.id
            );
        }
        let second_fork = joins.iter().any(|(n, _, _)| *n == "pid" || *n == "time");

        let cfg = spec.process().as_ref();
        let caps_spec = p
            .capabilities()
            .as_ref()
            .or_else(|| cfg.and_then(|c| c.capabilities().as_ref()));
        let mut rlimits = vec![];
        let rl = match p.rlimits() {
            Some(r) if !r.is_empty() => Some(r),
            _ => cfg.and_then(|c| c.rlimits().as_ref()),
        };
        for r in rl.into_iter().flatten() {
            rlimits.push(Rlimit::from_spec(r));
        }
        let args = super::plan::args_cstrings(p.args().as_deref())?;
        if args.is_empty() {
            bail!("process.args: must not be empty (give the command to run)");
        }
        let env: Vec<String> = p.env().clone().unwrap_or_default();
        for (i, e) in env.iter().enumerate() {
            if e.contains('\0') {
                bail!("process.env[{i}]: contains a NUL byte");
            }
        }
        if !p.cwd().is_absolute() {
            bail!("process.cwd: {} is not an absolute path", p.cwd().display());
        }
        // The process inherits what it does not set from the container's process (as runc).
        let mut proc_for_labels = p.clone();
        if proc_for_labels.apparmor_profile().is_none() {
            proc_for_labels.set_apparmor_profile(cfg.and_then(|c| c.apparmor_profile().clone()));
        }
        if proc_for_labels.selinux_label().is_none() {
            proc_for_labels.set_selinux_label(cfg.and_then(|c| c.selinux_label().clone()));
        }
        let mut label_spec = spec.clone();
        label_spec.set_process(Some(proc_for_labels));
        crate::security::labels::validate(&label_spec)?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(Filter::compile(s)?),
            None => None,
        };
        // ioPriority, scheduler and execCPUAffinity not given for this process are the
        // container's (as runc); personality and memoryPolicy are the container's.
        let mut for_attrs = p.clone();
        if for_attrs.io_priority().is_none() {
            for_attrs.set_io_priority(cfg.and_then(|c| *c.io_priority()));
        }
        if for_attrs.scheduler().is_none() {
            for_attrs.set_scheduler(cfg.and_then(|c| c.scheduler().clone()));
        }
        if for_attrs.exec_cpu_affinity().is_none() {
            for_attrs.set_exec_cpu_affinity(cfg.and_then(|c| c.exec_cpu_affinity().clone()));
        }
        let attrs = super::procattr::Attrs::new(spec, &for_attrs)?;
        let user = p.user();
        Ok(Plan {
            trampoline: if crate::security::labels::has_exec_label(&label_spec) {
                None
            } else {
                super::trampoline::prepare()
            },
            id: c.state.id.clone(),
            terminal: p.terminal().unwrap_or(false),
            console_size: p
                .console_size()
                .map(|s| (s.height() as u16, s.width() as u16)),
            joins,
            root,
            second_fork,
            caps: caps_spec.map(|c| caps::from_spec(c, joins_user)),
            rlimits,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(0o022),
            args,
            env,
            cwd: p.cwd().clone(),
            no_new_privs: p
                .no_new_privileges()
                .or_else(|| cfg.and_then(|c| c.no_new_privileges()))
                .unwrap_or(false),
            seccomp,
            oom_score_adj: p.oom_score_adj(),
            label_spec,
            preserve_fds: opts.preserve_fds,
            attrs,
        })
    }
}

/// `--cgroup` arguments, by runc's rules: one `PATH` (for every hierarchy; the only form on
/// cgroup v2), or any number of `CONTROLLER[,CONTROLLER...]:PATH` (cgroup v1), each controller
/// at most once.
pub fn parse_cgroup_args(args: &[String]) -> Result<Vec<(Option<String>, String)>> {
    let mut out: Vec<(Option<String>, String)> = vec![];
    for a in args {
        match a.split_once(':') {
            Some((ctrls, path)) => {
                for c in ctrls.split(',') {
                    if c.is_empty() {
                        bail!(
                            "--cgroup {a:?}: an empty controller name (the form is \
                             CONTROLLER[,CONTROLLER...]:PATH)"
                        );
                    }
                    if out.iter().any(|(x, _)| x.as_deref() == Some(c)) {
                        bail!("--cgroup {a:?}: controller {c} is given more than once");
                    }
                    out.push((Some(c.to_string()), path.to_string()));
                }
            }
            None if args.len() == 1 => out.push((None, a.clone())),
            None => bail!(
                "--cgroup {a:?}: a PATH without CONTROLLER: must be the only --cgroup (with \
                 several, give CONTROLLER:PATH each)"
            ),
        }
    }
    Ok(out)
}

/// `sub` relative to the container's cgroup, joined as runc joins it: `/` (or empty) is the
/// container's cgroup itself, `/a` and `a` are the same sub-cgroup, and `..` may not lead out.
fn below(sub: &str) -> Result<PathBuf> {
    let mut parts: Vec<&str> = vec![];
    for c in sub.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!(
                        "--cgroup {sub:?}: leads out of the container's cgroup (give a path below \
                         it, or / for the container's cgroup itself)"
                    );
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.iter().collect())
}

fn join_below(dir: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    }
}

/// The cgroup directories the new process goes to (v1 hierarchies, cgroup2): the container's,
/// or with `--cgroup` its existing sub-cgroups (`subs` from `parse_cgroup_args`).
fn cgroup_targets(
    cg: &CgroupState,
    subs: &[(Option<String>, String)],
) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let mut rels = Vec::with_capacity(subs.len());
    for (c, s) in subs {
        rels.push((c.as_deref(), below(s)?));
    }
    let named = |key: &str, c: &str| key.split(',').any(|k| k == c || k == format!("name={c}"));
    for (c, _) in &rels {
        if let Some(c) = c {
            if cg.mode == crate::cgroups::Mode::V2 {
                bail!(
                    "--cgroup {c}:...: this host has cgroup v2 only: give one --cgroup PATH, \
                     without a controller"
                );
            }
            if !cg.v1.keys().any(|k| named(k, c)) {
                bail!("--cgroup {c}:...: no such cgroup v1 controller on this host");
            }
        }
    }
    let all = rels.iter().find(|(c, _)| c.is_none()).map(|(_, r)| r);
    let mut out = vec![];
    for (key, dir) in &cg.v1 {
        let mut pick: Option<&PathBuf> = None;
        for (c, r) in &rels {
            if let Some(c) = c
                && named(key, c)
            {
                if pick.is_some_and(|p| p != r) {
                    bail!("--cgroup: the controllers of hierarchy {key} are given different paths");
                }
                pick = Some(r);
            }
        }
        out.push(match pick.or(all) {
            Some(r) => join_below(dir, r),
            None => dir.clone(),
        });
    }
    let v2 = cg.v2.as_ref().map(|d| match all {
        Some(r) => join_below(d, r),
        None => d.clone(),
    });
    Ok((out, v2))
}

/// Kill and reap what was forked if the exec fails half way.
struct Guard {
    pids: Vec<i32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for &p in &self.pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(p), None);
        }
    }
}

/// Start `p` in the container `c` (whose saved spec is `spec`). Returns once the process has
/// exec'd (or with the reason it could not).
pub fn exec(c: &Container, spec: &Spec, p: &Process, opts: &Options) -> Result<Spawned> {
    let plan = Plan::new(c, spec, p, opts)?;
    // Opened before the fork; the child moves itself (see cgroups::Placement). Or, rootless
    // where the caller may not move it, systemd does (`via_systemd`: the child waits).
    let mut via_systemd = None;
    let placement = match &c.state.cgroup {
        Some(cg) if !opts.sub_cgroups.is_empty() => {
            let (v1, v2) = cgroup_targets(cg, &opts.sub_cgroups)?;
            Some(Placement::open(&v1, v2.as_deref()).map_err(|e| anyhow!("--cgroup: {e:#}"))?)
        }
        Some(cg) => {
            let m = Manager::from_state(cg);
            if crate::rootless::enabled()
                && !m.may_move_into()
                && let Some(u) = cg.systemd.as_ref().filter(|u| u.user)
            {
                via_systemd = Some(u.clone());
                None
            } else if crate::rootless::enabled() && !m.may_move_into() {
                // runc's rule for rootless callers: the process runs, outside the
                // container's cgroup (its limits do not apply to it).
                crate::logger::warn(&format!(
                    "rootless: this exec'd process stays in the caller's cgroup: the caller may \
                     not move processes into {} (cgroup v2 needs write access to cgroup.procs \
                     of the common ancestor of both; exec from a scope of the same systemd user \
                     instance, e.g. systemd-run --user --scope, to have it there)",
                    cg.path
                ));
                None
            } else {
                Some(m.placement()?)
            }
        }
        None => None,
    };
    let console = match &opts.console_socket {
        Some(path) => Some(crate::tty::connect(path)?),
        None => None,
    };
    let (relay_parent, relay_child) = crate::tty::relay_pair(opts.console_relay && plan.terminal)?;
    if plan.terminal && console.is_none() && relay_child.is_none() {
        bail!("process.terminal is true: pass --console-socket (or exec in the foreground)");
    }
    let console_child = console
        .as_ref()
        .or(relay_child.as_ref())
        .map(|f| f.as_raw_fd());
    let (parent_ch, child_ch) = sync::pair()?;
    let me = std::process::id() as i32;

    // execCPUAffinity.initial: berth takes these CPUs itself before the fork, so the joining
    // process has them from birth, before it reaches the container's cgroup (at clone3 with
    // CLONE_INTO_CGROUP, or by its own first write) — which may narrow them to its cpuset.
    let berth_affinity = match &plan.attrs.cpus_initial {
        Some(cpus) => {
            let old = nix::sched::sched_getaffinity(Pid::from_raw(0)).ok();
            super::procattr::set_affinity(0, cpus, "process.execCPUAffinity.initial")?;
            if crate::logger::debug_enabled()
                && let Ok(now) = nix::sched::sched_getaffinity(Pid::from_raw(0))
            {
                crate::logger::debug(&format!(
                    "exec: CPU affinity before joining the cgroup: {}",
                    super::procattr::cpu_list_string(&now)
                ));
            }
            old
        }
        None => None,
    };
    let (forked, v2_placed) = clone::clone(0, placement.as_ref().and_then(|p| p.clone_into()))?;
    let first = match forked {
        clone::Forked::Child => {
            drop(parent_ch);
            if via_systemd.is_some()
                && let Err(e) = child::await_go(&child_ch)
            {
                let _ = child_ch.send(&Msg::Error(format!("{e:#}")));
                crate::sys::exit_now(1)
            }
            if let Some(p) = &placement
                && let Err(e) = p.join_self(v2_placed)
            {
                let _ = child_ch.send(&Msg::Error(format!("{e:#}")));
                crate::sys::exit_now(1)
            }
            drop(placement);
            run_child(&plan, child_ch, me, console_child)
        }
        clone::Forked::Parent(pid) => {
            if let Some(old) = &berth_affinity {
                let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), old);
            }
            if let Some(u) = &via_systemd {
                // As runc 1.2: systemd's refusal leaves the process outside, with a warning.
                if let Err(e) = crate::cgroups::systemd::attach(u, pid) {
                    crate::logger::warn(&format!(
                        "rootless: this exec'd process stays in the caller's cgroup: {e:#}"
                    ));
                }
                if let Err(e) = parent_ch.send(&Msg::Go) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(pid), None);
                    bail!("exec: releasing the process after systemd placed it: {e}");
                }
            }
            pid
        }
    };
    drop(placement);
    drop(child_ch);
    drop(relay_child);
    drop(console);
    let mut guard = Guard { pids: vec![first] };

    let mut pid = (!plan.second_fork).then_some(first);
    let mut ready = false;
    loop {
        let Some((msg, fd)) = parent_ch.recv()? else {
            if ready {
                break;
            }
            bail!("the exec'd process exited during setup without saying why");
        };
        match msg {
            Msg::Pid(p) => {
                guard.pids.insert(0, p);
                pid = Some(p);
                // The intermediate process exits right after reporting.
                let _ = waitpid(Pid::from_raw(first), None);
                guard.pids.retain(|&x| x != first);
            }
            Msg::Ready => {
                // With a seccomp notify filter its listener comes with `ready`.
                if fd.is_some() {
                    super::forward_seccomp_listener(spec, fd, &c.oci_state(Status::Running))?;
                }
                ready = true;
            }
            Msg::Error(e) => bail!("{e}"),
            other => bail!("unexpected message from the exec'd process: {other:?}"),
        }
    }
    let pid = pid.ok_or_else(|| anyhow!("the exec'd process did not report its pid"))?;
    let console_master = match relay_parent {
        Some(sock) => Some(super::receive_fd(&sock)?),
        None => None,
    };
    guard.pids.clear();
    Ok(Spawned {
        pid,
        console_master,
    })
}

enum Never {}

/// The forked child. Never returns.
fn run_child(plan: &Plan, sync: Channel, berth: i32, console: Option<RawFd>) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        join(plan, &sync, berth, console)
    }));
    let err = match r {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "internal error in the exec setup (a bug in berth)".to_string(),
    };
    let _ = sync.send(&Msg::Error(err));
    crate::sys::exit_now(1)
}

/// Join the container's namespaces and root, then become (or fork) the process.
fn join(plan: &Plan, sync: &Channel, berth: i32, console: Option<RawFd>) -> Result<Never> {
    // Nothing in the container may open /proc/<pid>/exe or mem of berth (CVE-2019-5736).
    set_dumpable(false)?;
    die_with_parent(berth)?;
    // Before any setns: in a user namespace, the /proc files of a non-dumpable process belong
    // to the host's root, out of reach once the credentials are the container's. The value
    // survives setns, the fork below and exec.
    if let Some(adj) = plan.oom_score_adj {
        child::set_oom_score_adj(adj)?;
    }
    for (name, f, flag) in &plan.joins {
        setns(f.as_fd(), CloneFlags::from_bits_retain(*flag))
            .map_err(|e| anyhow!("joining the container's {name} namespace: {e}"))?;
        if *name == "user" {
            // Become the container's root (when mapped) to join the rest.
            let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
            let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
            set_dumpable(false)?;
            die_with_parent(berth)?;
        }
    }
    // The container's root, also when it was entered with chroot (--no-pivot).
    nix::unistd::fchdir(plan.root.as_fd())
        .map_err(|e| anyhow!("entering the container's root: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| anyhow!("chroot into the container's root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| anyhow!("chdir /: {e}"))?;
    // The process placed itself in the container's cgroups right after the fork (in exec()):
    // what is forked from here inherits them.
    if plan.second_fork {
        // CLONE_PARENT: the process is berth's child, so berth can wait for it.
        // (clone3 refuses CLONE_PARENT with an exit signal; the old clone takes the parent's.)
        let r = clone::fork_sibling();
        match r {
            Ok(0) => die_with_parent(berth)?,
            Ok(pid) => {
                sync.send(&Msg::Pid(pid))?;
                crate::sys::exit_now(0)
            }
            Err(e) => {
                // The kernel answers ENOMEM when the namespace's init has exited (a container
                // stopping while the exec joins it), not for a lack of memory.
                if e == nix::errno::Errno::ENOMEM {
                    bail!("the container stopped while the process was joining it");
                }
                bail!("fork into the container's pid namespace: {e}")
            }
        }
    }
    process(plan, sync, berth, console)
}

/// Set up the process the way the container's own was set up, then exec.
fn process(plan: &Plan, sync: &Channel, berth: i32, console: Option<RawFd>) -> Result<Never> {
    if plan.terminal {
        nix::unistd::setsid().map_err(|e| anyhow!("setsid: {e}"))?;
        let (master, peer) = crate::tty::open_pty()?;
        if let Some((rows, cols)) = plan.console_size {
            crate::tty::set_size(peer.as_raw_fd(), rows, cols);
        }
        let sock = console.ok_or_else(|| anyhow!("process.terminal: no console socket"))?;
        crate::tty::send_master(sock, master.as_raw_fd())?;
        drop(master);
        crate::tty::make_stdio(&peer)?;
        let _ = nix::unistd::fchown(peer.as_fd(), Some(Uid::from_raw(plan.uid)), None);
    }
    child::set_rlimits(&plan.rlimits)?;
    child::join_keyring(&plan.id)?;
    // With the capabilities still held (real-time policies, negative nice, RT I/O class).
    plan.attrs.apply()?;
    // After the cgroup placement (done before the fork that made this process).
    if let Some(cpus) = &plan.attrs.cpus_final {
        super::procattr::set_affinity(0, cpus, "process.execCPUAffinity.final")?;
    }

    // The seccomp filter is loaded last, right before the exec: no syscall of berth's own
    // comes after it but execve (with a notify filter, the sendmsg of `ready` with its
    // listener before), so a profile cannot break the setup by denying one.
    let (exe, env) = child::become_process(
        &child::Creds {
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
        berth,
    )?;
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    crate::security::labels::apply_exec_labels(&plan.label_spec)?;
    let program = super::trampoline::Exec::new(plan.trampoline.as_ref(), &exe, &plan.args, &envp);
    crate::sys::set_pdeathsig(None).map_err(|e| anyhow!("prctl: {e}"))?;

    // Signals: the mask and ignored dispositions survive exec; give the process defaults.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    crate::sys::default_sigpipe();
    let _ = crate::sys::cloexec_from(3 + plan.preserve_fds);
    match &plan.seccomp {
        // The listener goes to berth with `ready`; the filter must be loaded to make it.
        Some(f) if f.wants_notify() => {
            let l = f.load()?;
            sync.send_with_fd(&Msg::Ready, l.as_ref().map(|l| l.as_raw_fd()))?;
        }
        Some(f) => {
            sync.send(&Msg::Ready)?;
            f.load()?;
        }
        None => sync.send(&Msg::Ready)?,
    }
    let err = program.exec();
    bail!("exec {}: {err}", exe.to_string_lossy())
}
