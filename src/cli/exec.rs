//! `berth exec`: run a process in a running container, as runc does: the process comes from
//! `--process FILE` (an OCI Process JSON) or from the container's own process with the trailing
//! arguments as its args; the flags override it.

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::{Capability, Process};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

use super::Global;
use crate::container::state::write_atomic;
use crate::container::{Container, Status, lifecycle};
use crate::logger;
use crate::spawn::exec as spawn_exec;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// The command and its arguments (when no --process is given)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
    /// An OCI Process JSON file describing the process to run
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the new process (SCM_RIGHTS, as the console master
    /// is sent; runc 1.3+)
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pidfd_socket: Option<PathBuf>,
    /// Return once the process has started instead of waiting for it
    #[arg(short, long)]
    detach: bool,
    /// Write the process's host pid to this file
    #[arg(long = "pid-file", value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE); repeatable
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Run as this user: UID[:GID]
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Additional group ids; repeatable
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets; repeatable
    #[arg(short, long = "cap", value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label", value_name = "LABEL")]
    process_label: Option<String>,
    /// Pass this many extra descriptors (from 3 up) to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// Run in an existing sub-cgroup of the container: [CONTROLLER:]PATH; repeatable
    #[arg(long = "cgroup", value_name = "[CONTROLLER:]PATH")]
    cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let (c, lock) = Container::lock(&g.root, &a.id)?;
    match c.status() {
        Status::Created | Status::Running => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        Status::Stopped => bail!("cannot exec in a stopped container: {:?} has stopped", a.id),
        Status::Creating => bail!(
            "cannot exec in container {:?}: it is still being created",
            a.id
        ),
    }
    let spec = lifecycle::saved_spec(&c)?;
    // Not held while the process runs: kill, pause and delete must stay possible.
    drop(lock);

    let process = process(&a, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.detach && a.console_socket.is_none() {
        bail!("cannot allocate a tty when detaching without --console-socket");
    }
    if !terminal && a.console_socket.is_some() {
        bail!("--console-socket needs a terminal (--tty or process.terminal)");
    }
    let sub_cgroups = spawn_exec::parse_cgroup_args(&a.cgroup)?;
    let opts = spawn_exec::Options {
        console_socket: a.console_socket.clone(),
        console_relay: terminal && !a.detach && a.console_socket.is_none(),
        preserve_fds: a.preserve_fds,
        sub_cgroups,
    };
    let pidfd_sock = match &a.pidfd_socket {
        Some(p) => Some(crate::tty::connect_socket("--pidfd-socket", p)?),
        None => None,
    };
    // Blocked before the fork, so that no signal (nor the process's SIGCHLD) is missed.
    let sfd = if a.detach {
        None
    } else {
        Some(super::run::forwardable_signals()?)
    };
    let spawned = spawn_exec::exec(&c, &spec, &process, &opts)?;
    if let Some(sock) = &pidfd_sock
        && let Err(e) = crate::tty::send_pidfd(sock, spawned.pid, "setns")
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(spawned.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        return Err(e);
    }
    if let Some(pf) = &a.pid_file {
        let pf = std::path::absolute(pf)?;
        write_atomic(&pf, spawned.pid.to_string().as_bytes(), false)
            .map_err(|e| anyhow!("--pid-file: {e:#}"))?;
    }
    match sfd {
        None => Ok(0),
        Some(sfd) => super::run::wait_loop(spawned.pid, &sfd, spawned.console_master),
    }
}

/// The process to run: the file, or the container's process with the given args; then the
/// flags on top.
fn process(a: &Args, spec: &oci_spec::runtime::Spec) -> Result<Process> {
    let mut p: Process = match &a.process {
        Some(path) => {
            if !a.command.is_empty() {
                bail!("give either --process or a command, not both");
            }
            let text =
                std::fs::read(path).map_err(|e| anyhow!("--process {}: {e}", path.display()))?;
            let mut v = crate::config::parse_value(&text)
                .map_err(|e| anyhow!("--process {}: {e:#}", path.display()))?;
            filter_capabilities(&mut v);
            crate::spawn::procattr::fix_scheduler_flag_names(&mut v);
            crate::config::deserialize_at("process", &v)
                .map_err(|e| anyhow!("--process {}: {e:#}", path.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: give the command to run (or --process FILE)");
            }
            let mut p = spec
                .process()
                .clone()
                .ok_or_else(|| anyhow!("the container's config has no process"))?;
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(false));
            // The container's console size is not this terminal's.
            p.set_console_size(None);
            p
        }
    };
    if a.tty {
        p.set_terminal(Some(true));
    }
    if let Some(cwd) = &a.cwd {
        if !cwd.is_absolute() {
            bail!("--cwd {}: must be an absolute path", cwd.display());
        }
        p.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or(e);
            match env.iter_mut().find(|x| x.split('=').next() == Some(key)) {
                Some(x) => *x = e.clone(),
                None => env.push(e.clone()),
            }
        }
        p.set_env(Some(env));
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {u:?}: the uid must be a number (UID[:GID])"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| anyhow!("--user {u:?}: the gid must be a number (UID[:GID])"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&a.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let mut caps = p
            .capabilities()
            .clone()
            .or_else(|| {
                spec.process()
                    .as_ref()
                    .and_then(|c| c.capabilities().clone())
            })
            .unwrap_or_default();
        let add = |set: &Option<HashSet<Capability>>, c: Capability| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(c);
            Some(s)
        };
        for name in &a.cap {
            let up = name.to_ascii_uppercase();
            let full = if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            };
            let c: Capability = serde_json::from_value(Value::String(full))
                .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
            caps.set_bounding(add(caps.bounding(), c));
            caps.set_effective(add(caps.effective(), c));
            caps.set_permitted(add(caps.permitted(), c));
            // Ambient needs inheritable too: only when the process has an inheritable set.
            if caps.inheritable().as_ref().is_some_and(|s| !s.is_empty()) {
                caps.set_ambient(add(caps.ambient(), c));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// Capability names this build does not know are dropped with a warning (as for config.json).
fn filter_capabilities(v: &mut Value) {
    let Some(sets) = v.get_mut("capabilities").and_then(|c| c.as_object_mut()) else {
        return;
    };
    let known: HashSet<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    for (set, list) in sets.iter_mut() {
        if let Some(arr) = list.as_array_mut() {
            let mut unknown = vec![];
            arr.retain(|n| {
                let ok = n.as_str().is_some_and(|s| known.contains(s));
                if !ok {
                    unknown.push(n.to_string());
                }
                ok
            });
            if !unknown.is_empty() {
                logger::warn(&format!(
                    "process.capabilities.{set}: ignoring unknown {} {}",
                    if unknown.len() == 1 {
                        "capability"
                    } else {
                        "capabilities"
                    },
                    unknown.join(", ")
                ));
            }
        }
    }
}
