//! The command line, runc-compatible: global options (--root, --log, --debug...) before the
//! subcommand, as runc and crun take them; one file per subcommand.

mod check;
mod checkpoint;
mod create;
mod delete;
#[cfg(any(test, feature = "docs"))]
mod docs;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod restore;
mod resume;
mod run;
pub(crate) mod spec;
mod start;
mod state;
mod update;

use anyhow::Result;
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
    /// The criu binary for checkpoint and restore (a name looked up in PATH, or a path)
    #[arg(long, value_name = "PATH")]
    criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Options every command sees.
pub struct Global {
    pub root: PathBuf,
    /// `--criu`: the criu binary (default: criu in PATH).
    pub criu: Option<PathBuf>,
    /// `--systemd-cgroup`: the cgroup driver of containers this command creates (later
    /// commands use the one recorded in the container's state).
    pub cgroup_driver: crate::cgroups::Kind,
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
    /// Report whether this host can run containers: kernel, cgroups, namespaces, seccomp...
    Check(check::Args),
    /// Checkpoint a running container with CRIU
    Checkpoint(checkpoint::Args),
    /// Restore a container from a checkpoint with CRIU
    Restore(restore::Args),
}

/// runc's Go flag parsing takes `-name` for `--name`, and containerd's runc client passes
/// `restore ... -no-subreaper` that way. Rewritten for `restore` only, where no argument is
/// the container's own (exec's command line must stay as given).
fn go_style_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if !a.starts_with('-') {
            break;
        }
        // A global option whose value is the next argument.
        if matches!(a.as_ref(), "--root" | "--log" | "--log-format" | "--criu")
            || (a == "--rootless"
                && args
                    .get(i + 1)
                    .is_some_and(|v| matches!(v.to_str(), Some("true" | "false" | "auto"))))
        {
            i += 1;
        }
        i += 1;
    }
    if args.get(i).is_some_and(|c| c == "restore") {
        for a in &mut args[i + 1..] {
            if a == "-no-subreaper" {
                *a = "--no-subreaper".into();
            }
        }
    }
    args
}

pub fn main() -> Result<i32> {
    // Man pages and completions: only in a build with the `docs` feature (see docs.rs).
    #[cfg(feature = "docs")]
    if let Some(r) = docs::main_if_asked() {
        return r;
    }
    let cli = match Cli::try_parse_from(go_style_args(std::env::args_os().collect())) {
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
    let rootless = crate::rootless::decide(cli.rootless.as_deref())?;
    let root = match (cli.root, &cmd) {
        (Some(r), _) => r,
        // These keep no state.
        (None, Cmd::Spec(_) | Cmd::Features(_) | Cmd::Check(_)) => PathBuf::from("/run/berth"),
        (None, _) => crate::rootless::default_root()?,
    };
    let g = Global {
        root,
        criu: cli.criu,
        // A rootless caller's systemd is the user's own instance (as runc: the session bus).
        cgroup_driver: match (cli.systemd_cgroup, rootless) {
            (false, _) => crate::cgroups::Kind::Fs,
            (true, false) => crate::cgroups::Kind::Systemd(crate::cgroups::dbus::Bus::System),
            (true, true) => crate::cgroups::Kind::Systemd(crate::cgroups::dbus::Bus::User),
        },
    };
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
        Cmd::Check(a) => check::run(&g, a),
        Cmd::Checkpoint(a) => checkpoint::run(&g, a),
        Cmd::Restore(a) => restore::run(&g, a),
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

#[cfg(test)]
mod tests {
    use super::{Cli, go_style_args};
    use clap::CommandFactory;

    /// runc 1.5's flags (src/cli/runc-flags.txt, with its provenance): berth accepts every one
    /// of them, under the same name, short option and aliases, taking a value where runc's
    /// takes one.
    #[test]
    fn accepts_every_runc_flag() {
        let mut cli = Cli::command();
        cli.build();
        let mut missing = vec![];
        let (mut listed, mut checked) = (0, 0);
        for line in include_str!("runc-flags.txt").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut w = line.split_whitespace();
            let (cmd, names, value) = (w.next().unwrap(), w.next(), w.next() == Some("value"));
            let sub = if cmd == "global" {
                &cli
            } else {
                match cli.find_subcommand(cmd) {
                    Some(s) => s,
                    None => {
                        missing.push(format!("{cmd}: no such command"));
                        continue;
                    }
                }
            };
            let Some(names) = names else { continue };
            listed += 1;
            let mut names = names.split(',');
            let long = names.next().unwrap();
            let shorts: Vec<char> = names
                .filter(|n| n.len() == 1)
                .map(|n| n.chars().next().unwrap())
                .collect();
            let arg = sub.get_arguments().find(|a| {
                a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|v| v.contains(&long))
            });
            let what = format!("{cmd} --{long}");
            match arg {
                None if long == "help" => {} // clap's own
                None => missing.push(format!("{what}: not accepted")),
                Some(a) => {
                    for s in &shorts {
                        let ok = a.get_short() == Some(*s)
                            || a.get_all_short_aliases().is_some_and(|v| v.contains(s));
                        if !ok {
                            missing.push(format!("{what}: no -{s}"));
                        }
                    }
                    if a.get_action().takes_values() != value {
                        missing.push(format!(
                            "{what}: {} a value in berth, {} in runc",
                            if value { "takes no" } else { "takes" },
                            if value { "takes one" } else { "takes none" },
                        ));
                    }
                }
            }
            checked += 1;
        }
        assert!(listed > 100, "only {listed} flags read from runc-flags.txt");
        assert!(checked > 70, "only {checked} flags checked");
        assert!(
            missing.is_empty(),
            "runc flags berth lacks:\n{}",
            missing.join("\n")
        );
    }

    fn run(a: &[&str]) -> Vec<String> {
        go_style_args(a.iter().map(|s| s.into()).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn containerds_single_dash_no_subreaper_is_taken_by_restore_only() {
        assert_eq!(
            run(&[
                "berth",
                "--root",
                "/r",
                "--log-format",
                "json",
                "restore",
                "-d",
                "-no-subreaper",
                "x"
            ]),
            [
                "berth",
                "--root",
                "/r",
                "--log-format",
                "json",
                "restore",
                "-d",
                "--no-subreaper",
                "x"
            ]
        );
        assert_eq!(
            run(&[
                "berth",
                "--rootless",
                "false",
                "restore",
                "-no-subreaper",
                "x"
            ])[4],
            "--no-subreaper"
        );
        // Anywhere else, the argument is left as it is.
        let exec = ["berth", "exec", "c", "restore", "-no-subreaper"];
        assert_eq!(run(&exec), exec);
        let root = ["berth", "--root", "restore", "state", "-no-subreaper"];
        assert_eq!(run(&root), root);
    }
}
