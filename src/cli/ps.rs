//! `ps ID [--format table|json] [PS ARGS...]`: the container's processes. json is the list of
//! host pids (what containerd parses); table runs ps(1) (default `-ef`) and keeps the header
//! and the lines of the container's processes, as runc does.

use anyhow::{Result, anyhow, bail};

use super::Global;
use crate::cgroups::Manager;
use crate::container::{Container, Status};

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Container id
    id: String,
    /// Options for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    if c.status() == Status::Stopped {
        bail!("container {:?} is not running", a.id);
    }
    let mut pids = match &c.state.cgroup {
        Some(cg) => Manager::from_state(cg).pids()?,
        // Rootless without a cgroup: the processes of its pid namespace.
        None => crate::rootless::pids_without_cgroup(c.state.pid),
    };
    pids.sort();
    if a.format == "json" {
        if !a.ps_args.is_empty() {
            bail!("ps: options for ps(1) cannot be combined with --format json");
        }
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| anyhow!("running ps: {e}"))?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps {}: the output has no PID column", args.join(" ")))?;
    println!("{header}");
    for l in lines {
        let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}
