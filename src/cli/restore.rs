//! `berth restore`: runc's flags; the work is in criu::restore. In the foreground (without
//! --detach) berth then waits for the restored process like `run` does, relays its terminal,
//! forwards signals, deletes the container when it exits and exits with its status.

use anyhow::{Result, anyhow};
use std::path::PathBuf;

use super::Global;
use super::checkpoint::{cg_mode, empty_ns};
use crate::container::{Container, lifecycle};
use crate::criu::restore::{self, Options};

// runc's flags (each may be given more than once, as for checkpoint).
#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".", overrides_with = "bundle")]
    bundle: PathBuf,
    /// Directory of CRIU's image files (default: ./checkpoint)
    #[arg(long = "image-path", overrides_with = "image_path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path", overrides_with = "work_path")]
    work_path: Option<PathBuf>,
    /// Return once the container runs again
    #[arg(short, long, overrides_with = "detach")]
    detach: bool,
    /// Write the restored process's pid to this file
    #[arg(long = "pid-file", overrides_with = "pid_file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket", overrides_with = "console_socket")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: CRIU restores the mount namespace itself
    #[arg(long = "no-pivot", overrides_with = "no_pivot")]
    no_pivot: bool,
    /// Do not become a subreaper for the container's orphans while waiting in the foreground
    #[arg(long = "no-subreaper", overrides_with = "no_subreaper")]
    no_subreaper: bool,
    /// Restore established TCP connections
    #[arg(long = "tcp-established", overrides_with = "tcp_established")]
    tcp_established: bool,
    /// Restore UNIX sockets connected to the outside
    #[arg(long = "ext-unix-sk", overrides_with = "ext_unix_sk")]
    ext_unix_sk: bool,
    /// Restore a shell job (attached to this command's terminal)
    #[arg(long = "shell-job", overrides_with = "shell_job")]
    shell_job: bool,
    /// Restore file locks
    #[arg(long = "file-locks", overrides_with = "file_locks")]
    file_locks: bool,
    /// How CRIU handles cgroups: soft, full, strict or ignore (default: CRIU's, soft)
    #[arg(long = "manage-cgroups-mode", overrides_with = "manage_cgroups_mode")]
    manage_cgroups_mode: Option<String>,
    /// Make the namespace but do not restore its content (network)
    #[arg(long = "empty-ns", value_delimiter = ',')]
    empty_ns: Vec<String>,
    /// Deduplicate memory images while restoring
    #[arg(long = "auto-dedup", overrides_with = "auto_dedup")]
    auto_dedup: bool,
    /// Fetch memory pages lazily from a `criu lazy-pages` daemon (userfaultfd)
    #[arg(long = "lazy-pages", overrides_with = "lazy_pages")]
    lazy_pages: bool,
    /// LSM profile for the restored process (TYPE:NAME)
    #[arg(long = "lsm-profile", overrides_with = "lsm_profile")]
    lsm_profile: Option<String>,
    /// LSM mount context for the restored mounts
    #[arg(long = "lsm-mount-context", overrides_with = "lsm_mount_context")]
    lsm_mount_context: Option<String>,
    /// Accepted for containerd's runc client: the image directory names its parent itself
    #[arg(long = "parent-path", hide = true, overrides_with = "parent_path")]
    parent_path: Option<PathBuf>,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::validate_id(&a.id)?;
    let bundle = crate::config::load(&a.bundle)?;
    let _ = (a.no_pivot, a.parent_path);
    if !a.detach && !a.no_subreaper {
        // Orphans of the container's processes come to us while we wait.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| anyhow!("prctl(SUBREAPER): {e}"))?;
    }
    let o = Options {
        id: a.id.clone(),
        image_path: match a.image_path {
            Some(p) => p,
            None => std::env::current_dir()?.join("checkpoint"),
        },
        work_path: a.work_path,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: cg_mode(a.manage_cgroups_mode.as_deref())?,
        empty_ns: empty_ns(&a.empty_ns)?,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        lsm_profile: a.lsm_profile,
        lsm_mount_context: a.lsm_mount_context,
    };
    let r = restore::restore(&g.root, g.criu.as_deref(), g.cgroup_driver, bundle, &o)?;
    if a.detach {
        return Ok(0);
    }
    let sfd = super::run::forwardable_signals()?;
    let code = super::run::wait_loop(r.container.state.pid, &sfd, r.console_master)?;
    let _lock = Container::lock_dir(&g.root, &a.id)?;
    lifecycle::destroy_known(&r.container, r.hooks.as_ref())?;
    Ok(code)
}
