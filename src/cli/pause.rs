//! `pause ID`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).

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
    match c.status() {
        // runc freezes created containers too.
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container {:?} is already paused", a.id),
        s => bail!("container {:?} is not running (it is {s})", a.id),
    }
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| anyhow!("container {:?} has no cgroup", a.id))?;
    Driver::from_state(cg).set_frozen(true)?;
    Ok(0)
}
