use anyhow::Result;

use super::Global;
use crate::container::Container;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let st = c.oci_state(c.status());
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(0)
}
