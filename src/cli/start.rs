use anyhow::Result;

use super::Global;
use crate::container::{Container, lifecycle};

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let (c, _lock) = Container::lock(&g.root, &a.id)?;
    lifecycle::start(&c)?;
    Ok(0)
}
