use anyhow::{Result, anyhow, bail};
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::Global;
use crate::cgroups::Manager;
use crate::container::{Container, Status};
use crate::signals::parse_signal;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// Signal: a name (KILL, SIGKILL) or a number (default SIGTERM)
    #[arg(default_value = "SIGTERM")]
    signal: String,
    /// Send the signal to every process of the container
    #[arg(short, long)]
    all: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let sig = parse_signal(&a.signal)?;
    let (c, _lock) = Container::lock(&g.root, &a.id)?;
    let status = c.status();
    if status == Status::Stopped && !a.all {
        bail!("container {:?} is not running", a.id);
    }
    if a.all {
        match &c.state.cgroup {
            Some(cg) => Manager::from_state(cg).kill_all(sig)?,
            // Rootless without a cgroup: the processes of its pid namespace.
            None if c.state.pid > 0 && status != Status::Stopped => {
                for p in crate::rootless::pids_without_cgroup(c.state.pid) {
                    let _ = kill(Pid::from_raw(p), sig);
                }
            }
            None => {}
        }
        return Ok(0);
    }
    if status == Status::Creating && c.state.pid == 0 {
        bail!("container {:?} is still being created", a.id);
    }
    kill(Pid::from_raw(c.state.pid), sig).map_err(|e| {
        anyhow!(
            "sending {sig} to container {:?} (pid {}): {e}",
            a.id,
            c.state.pid
        )
    })?;
    Ok(0)
}
