//! Commands whose implementation has not landed yet: a clear error, never a silent no-op.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn fail(cmd: &str) -> Result<i32> {
    bail!("{cmd}: not supported by this version of berth yet")
}
