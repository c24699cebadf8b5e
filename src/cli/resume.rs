//! `resume ID`: thaw a paused container.

use anyhow::{Result, anyhow, bail};

use super::Global;
use crate::cgroups::Driver;
use crate::container::{Container, Status};

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let (c, _lock) = Container::lock(&g.root, &a.id)?;
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| anyhow!("container {:?} has no cgroup", a.id))?;
    let mut d = Driver::from_state(cg);
    let status = c.status();
    // A paused created container still reads as "created": look at the freezer itself.
    if status != Status::Paused && !(status == Status::Created && d.fs().is_frozen()) {
        bail!("container {:?} is not paused (it is {status})", a.id);
    }
    d.set_frozen(false)?;
    Ok(0)
}
