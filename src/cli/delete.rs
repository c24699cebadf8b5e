use anyhow::{Result, bail};

use super::Global;
use crate::container::{Container, Status, lifecycle, state};

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// Kill the container first if it is still running
    #[arg(short, long)]
    force: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::validate_id(&a.id)?;
    let dir = state::container_dir(&g.root, &a.id);
    if !dir.exists() {
        if a.force {
            return Ok(0);
        }
        bail!("container {:?} does not exist", a.id);
    }
    let (c, _lock) = match Container::lock(&g.root, &a.id) {
        Ok(x) => x,
        Err(e) if a.force => {
            // An unreadable state (a create that died before writing it, or a corrupt file):
            // --force removes the directory.
            crate::logger::warn(&format!(
                "removing container {:?} with unreadable state: {e:#}",
                a.id
            ));
            lifecycle::destroy_unreadable(&g.root, &a.id, g.cgroup_driver)?;
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    match c.status() {
        Status::Stopped | Status::Created => {}
        s if a.force => {
            let _ = s;
        }
        s => bail!(
            "cannot delete container {:?}: it is {s} (stop it first, or use --force)",
            a.id
        ),
    }
    lifecycle::destroy(&c)?;
    Ok(0)
}
