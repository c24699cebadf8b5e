//! The command line, runc-compatible: global options (--root, --log, --debug...) before the
//! subcommand, as runc and crun take them; one file per subcommand.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
pub(crate) mod spec;
mod start;
mod state;
mod unsupported;
mod update;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::logger;

// The options before the subcommand are top-level only, as in runc (`runc create --root X`
// is an error there too): `global = true` copied all of them into every subcommand on each
// invocation (~90 KB of heap, most of `--version`'s work).
#[derive(Parser)]
#[command(
    name = "berth",
    about = "berth: an OCI container runtime (a drop-in replacement for runc)",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for the containers' state (default /run/berth; $XDG_RUNTIME_DIR/berth when
    /// rootless)
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Write log lines to this file (default: stderr)
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Log format
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: logger::Format,
    /// Log debug information, including per-phase timings of create
    #[arg(long)]
    debug: bool,
    /// Manage cgroups through systemd
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Path to criu (accepted for compatibility; checkpoint/restore is not supported yet)
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Options every command sees.
pub struct Global {
    pub root: PathBuf,
}

#[derive(Subcommand)]
// Each subcommand's arguments are built only when that subcommand is used: building all of them
// took ~220 KB of heap and ~1.5 M instructions on every invocation.
#[command(defer = true)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Cmd {
    /// Create a container (runs everything up to the exec of the process)
    Create(create::Args),
    /// Start a created container
    Start(start::Args),
    /// Create, start and wait for a container
    Run(run::Args),
    /// Print the state of a container (OCI state JSON)
    State(state::Args),
    /// Send a signal to a container's process (or all with --all)
    Kill(kill::Args),
    /// Delete a container
    Delete(delete::Args),
    /// List containers
    #[command(alias = "ls")]
    List(list::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Run a process in a running container
    Exec(exec::Args),
    /// List a container's processes
    Ps(ps::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(resume::Args),
    /// Update a container's resources
    Update(update::Args),
    /// Container events (stats, oom) or one stats snapshot
    Events(events::Args),
    /// Describe what this runtime supports (OCI features document)
    Features(features::Args),
    /// Checkpoint a container (not supported)
    Checkpoint(unsupported::Args),
    /// Restore a container (not supported)
    Restore(unsupported::Args),
}

pub fn main() -> Result<i32> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => 1,
            };
            let _ = e.print();
            return Ok(code);
        }
    };
    if cli.version {
        print_version();
        return Ok(0);
    }
    logger::init(cli.log.as_deref(), cli.log_format, cli.debug)?;
    let Some(cmd) = cli.cmd else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(1);
    };
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup: the systemd cgroup driver is not supported yet; run without it (cgroupfs driver)"
        );
    }
    crate::rootless::decide(cli.rootless.as_deref())?;
    let root = match (cli.root, &cmd) {
        (Some(r), _) => r,
        // These two keep no state.
        (None, Cmd::Spec(_) | Cmd::Features(_)) => PathBuf::from("/run/berth"),
        (None, _) => crate::rootless::default_root()?,
    };
    let g = Global { root };
    match cmd {
        Cmd::Create(a) => create::run(&g, a),
        Cmd::Start(a) => start::run(&g, a),
        Cmd::Run(a) => run::run(&g, a),
        Cmd::State(a) => state::run(&g, a),
        Cmd::Kill(a) => kill::run(&g, a),
        Cmd::Delete(a) => delete::run(&g, a),
        Cmd::List(a) => list::run(&g, a),
        Cmd::Spec(a) => spec::run(&g, a),
        Cmd::Exec(a) => exec::run(&g, a),
        Cmd::Ps(a) => ps::run(&g, a),
        Cmd::Pause(a) => pause::run(&g, a),
        Cmd::Resume(a) => resume::run(&g, a),
        Cmd::Update(a) => update::run(&g, a),
        Cmd::Events(a) => events::run(&g, a),
        Cmd::Features(a) => features::run(&g, a),
        Cmd::Checkpoint(_) => unsupported::fail("checkpoint"),
        Cmd::Restore(_) => unsupported::fail("restore"),
    }
}

fn print_version() {
    println!("berth version {}", env!("CARGO_PKG_VERSION"));
    println!(
        "commit: {}",
        option_env!("BERTH_COMMIT").unwrap_or("unknown")
    );
    println!("spec: {}", crate::SPEC_VERSION);
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into());
    println!("libseccomp: {v}");
}
