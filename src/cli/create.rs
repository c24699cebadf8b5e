use anyhow::Result;
use std::path::PathBuf;

use super::Global;
use crate::spawn;

/// The flags `create` and `run` share.
#[derive(clap::Args, Clone)]
pub struct CreateFlags {
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Pass this many extra descriptors (from 3 up) to the container process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Do not use pivot_root (MS_MOVE + chroot instead), for ramdisk roots
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
}

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    #[command(flatten)]
    flags: CreateFlags,
}

pub fn options(g: &Global, id: &str, f: &CreateFlags, relay: bool) -> spawn::Options {
    spawn::Options {
        id: id.to_string(),
        pid_file: f.pid_file.clone(),
        console_socket: f.console_socket.clone(),
        console_relay: relay,
        preserve_fds: f.preserve_fds,
        no_pivot: f.no_pivot,
        no_new_keyring: f.no_new_keyring,
        start_by_socket: false,
        cgroup_driver: g.cgroup_driver,
    }
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::validate_id(&a.id)?;
    let bundle = crate::config::load(&a.flags.bundle)?;
    spawn::create(&g.root, bundle, &options(g, &a.id, &a.flags, false))?;
    Ok(0)
}
