//! OCI hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): each hook runs with the
//! container state on its stdin, its own args and env, and an optional timeout. A failing
//! prestart/createRuntime/createContainer/startContainer hook fails the operation; a failing
//! poststart/poststop hook is logged as a warning and the lifecycle goes on.
//!
//! Environment: a hook gets exactly its `env` (nothing when it has none, never berth's own
//! environment), except the hooks that run inside the container's setup, createContainer and
//! startContainer: without `env` they get the container process's environment, as runc gives
//! them (its `runc init` has that environment when it runs them; hooks written for runc rely on
//! it). A hook with `env`, even an empty list, gets exactly that list.

use anyhow::{Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::Hook;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::logger;

/// Run hooks in order; the first failure stops and is returned.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8]) -> Result<()> {
    run_all_env(kind, hooks, state, None)
}

/// As `run_all`; a hook without `env` gets `default_env` (createContainer and startContainer:
/// the container process's environment).
pub fn run_all_env(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        let t = Instant::now();
        run_one(h, state, default_env)
            .map_err(|e| anyhow!("{kind} hook #{i} ({}): {e}", h.path().display()))?;
        logger::debug(&format!(
            "{kind} hook #{i} took {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        ));
    }
    Ok(())
}

/// Run hooks in order; failures are warnings.
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8]) {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run_one(h, state, None) {
            logger::warn(&format!(
                "{kind} hook #{i} ({}) failed: {e}",
                h.path().display()
            ));
        }
    }
}

fn run_one(h: &Hook, state: &[u8], default_env: Option<&[String]>) -> Result<()> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for e in h.env().as_deref().or(default_env).into_iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A hook does not outlive the berth command that runs it: if berth is killed (a create
    // SIGKILLed while a createRuntime hook sleeps), the hook gets SIGKILL too, so that a dead
    // create leaves no process behind and `delete --force` has everything in hand. (runc only
    // kills hooks on timeout; a hook that wants to leave a daemon behind forks it, and the
    // daemon does not inherit the death signal.)
    crate::sys::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| anyhow!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let timeout = h.timeout().map(|t| {
        if t <= 0 {
            Duration::from_secs(0)
        } else {
            Duration::from_secs(t as u64)
        }
    });
    if let Some(t) = timeout
        && t.is_zero()
    {
        let _ = child.kill();
        let _ = child.wait();
        bail!("timeout must be greater than zero");
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut captured = Vec::new();
    let mut timed_out = false;
    while out.is_some() || err.is_some() {
        let remaining = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    timed_out = true;
                    break;
                }
                PollTimeout::try_from(d - now).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = vec![];
        if let Some(o) = &out {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
        }
        if let Some(e) = &err {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, remaining) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting for the hook: {e}"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 0;
        let mut buf = [0u8; 4096];
        if out.is_some() {
            if ready[idx] {
                match out.as_mut().map(|o| o.read(&mut buf)) {
                    Some(Ok(n)) if n > 0 => captured.extend_from_slice(&buf[..n]),
                    _ => out = None,
                }
            }
            idx += 1;
        }
        if err.is_some() && ready[idx] {
            match err.as_mut().map(|e| e.read(&mut buf)) {
                Some(Ok(n)) if n > 0 => captured.extend_from_slice(&buf[..n]),
                _ => err = None,
            }
        }
        captured.truncate(64 * 1024);
    }
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "timed out after {} s",
            timeout.unwrap_or_default().as_secs()
        );
    }
    let status = child.wait().map_err(|e| anyhow!("waiting: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let output = String::from_utf8_lossy(&captured);
    let output = output.trim();
    let why = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    if output.is_empty() {
        bail!("{why}")
    } else {
        bail!("{why}: {output}")
    }
}
