//! berth: an OCI container runtime, a drop-in replacement for runc.

mod cgroups;
mod cli;
mod config;
mod container;
mod criu;
mod hooks;
mod logger;
mod procfs;
mod rootfs;
mod rootless;
mod security;
mod signals;
mod spawn;
mod sys;
mod tty;

/// The runtime-spec version berth implements (reported by `--version`, `state`, `spec`).
pub const SPEC_VERSION: &str = "1.2.0";

fn main() {
    // A panic is a bug: report it in one line, never as a raw backtrace, and let the unwinding
    // run the rollback guards of whatever was in progress.
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let line = format!("internal error (a bug in berth, please report it): {msg}{loc}");
        logger::error(&line);
    }));
    let code = match std::panic::catch_unwind(cli::main) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            // stderr (`berth: error: ...`) and the --log file, errno texts as Go prints them.
            logger::error(&format!("{e:#}"));
            1
        }
        Err(_) => 1,
    };
    std::process::exit(code);
}
