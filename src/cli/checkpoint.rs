//! `berth checkpoint`: runc's flags, checked here; the work is in criu::dump.

use anyhow::{Result, anyhow, bail};
use std::path::PathBuf;

use super::Global;
use crate::criu::dump::{self, Options};
use crate::criu::rpc::CgMode;

// runc's flags. Each may be given more than once, the last one counting, as runc takes them
// (podman 4.3 passes `--leave-running` twice).
#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// Directory for CRIU's image files (default: ./checkpoint)
    #[arg(long = "image-path", overrides_with = "image_path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path", overrides_with = "work_path")]
    work_path: Option<PathBuf>,
    /// A previous pre-dump's image directory, relative to --image-path
    #[arg(long = "parent-path", overrides_with = "parent_path")]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running", overrides_with = "leave_running")]
    leave_running: bool,
    /// Checkpoint established TCP connections
    #[arg(long = "tcp-established", overrides_with = "tcp_established")]
    tcp_established: bool,
    /// Skip TCP connections that are still being established (in flight)
    #[arg(long = "tcp-skip-in-flight", overrides_with = "tcp_skip_in_flight")]
    tcp_skip_in_flight: bool,
    /// Allow CRIU to link files that were deleted but are still open back, to dump them
    #[arg(long = "link-remap", overrides_with = "link_remap")]
    link_remap: bool,
    /// Checkpoint UNIX sockets connected to the outside
    #[arg(long = "ext-unix-sk", overrides_with = "ext_unix_sk")]
    ext_unix_sk: bool,
    /// Checkpoint a shell job (a process attached to the caller's terminal)
    #[arg(long = "shell-job", overrides_with = "shell_job")]
    shell_job: bool,
    /// Leave the memory pages to be fetched lazily by the restoring side (userfaultfd)
    #[arg(long = "lazy-pages", overrides_with = "lazy_pages")]
    lazy_pages: bool,
    /// With --lazy-pages: CRIU writes a zero byte to this descriptor once its page server is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true, overrides_with = "status_fd")]
    status_fd: i32,
    /// Send the memory pages to a CRIU page server at ADDRESS:PORT
    #[arg(
        long = "page-server",
        value_name = "ADDRESS:PORT",
        overrides_with = "page_server"
    )]
    page_server: Option<String>,
    /// Checkpoint file locks
    #[arg(long = "file-locks", overrides_with = "file_locks")]
    file_locks: bool,
    /// Dump the memory only and leave the container running (for a later --parent-path)
    #[arg(long = "pre-dump", overrides_with = "pre_dump")]
    pre_dump: bool,
    /// How CRIU handles cgroups: soft, full, strict or ignore (default: CRIU's, soft)
    #[arg(long = "manage-cgroups-mode", overrides_with = "manage_cgroups_mode")]
    manage_cgroups_mode: Option<String>,
    /// Make the namespace at restore but do not restore its content (network)
    #[arg(long = "empty-ns", value_delimiter = ',')]
    empty_ns: Vec<String>,
    /// Deduplicate memory images against the parent image
    #[arg(long = "auto-dedup", overrides_with = "auto_dedup")]
    auto_dedup: bool,
}

/// `--manage-cgroups-mode`.
pub(super) fn cg_mode(v: Option<&str>) -> Result<Option<CgMode>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => CgMode::parse(s).map(Some).ok_or_else(|| {
            anyhow!("--manage-cgroups-mode {s:?}: not one of soft, full, strict, ignore")
        }),
    }
}

/// `--empty-ns`: only the network namespace (CRIU supports no other).
pub(super) fn empty_ns(v: &[String]) -> Result<u32> {
    let mut mask = 0u32;
    for ns in v {
        match ns.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            other => bail!("--empty-ns {other:?}: not supported (only \"network\")"),
        }
    }
    Ok(mask)
}

/// `--page-server ADDRESS:PORT` (an IPv6 address in brackets).
fn page_server(v: &str) -> Result<(String, i32)> {
    let bad = || anyhow!("--page-server {v:?}: use ADDRESS:PORT");
    let (addr, port) = match v.strip_prefix('[') {
        Some(r) => r.split_once("]:").ok_or_else(bad)?,
        None => v.rsplit_once(':').ok_or_else(bad)?,
    };
    if addr.is_empty() {
        return Err(bad());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("--page-server {v:?}: {port:?} is not a port number"))?;
    Ok((addr.to_string(), port as i32))
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::validate_id(&a.id)?;
    let o = Options {
        image_path: match a.image_path {
            Some(p) => p,
            None => std::env::current_dir()?.join("checkpoint"),
        },
        work_path: a.work_path,
        parent_path: a.parent_path,
        leave_running: a.leave_running,
        tcp_established: a.tcp_established,
        tcp_skip_in_flight: a.tcp_skip_in_flight,
        link_remap: a.link_remap,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        lazy_pages: a.lazy_pages,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server: a.page_server.as_deref().map(page_server).transpose()?,
        file_locks: a.file_locks,
        pre_dump: a.pre_dump,
        manage_cgroups_mode: cg_mode(a.manage_cgroups_mode.as_deref())?,
        empty_ns: empty_ns(&a.empty_ns)?,
        auto_dedup: a.auto_dedup,
    };
    dump::checkpoint(&g.root, g.criu.as_deref(), &a.id, &o)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_server_forms() {
        assert_eq!(
            super::page_server("10.0.0.1:27").unwrap(),
            ("10.0.0.1".into(), 27)
        );
        assert_eq!(super::page_server("[::1]:27").unwrap(), ("::1".into(), 27));
        assert!(super::page_server("10.0.0.1").is_err());
        assert!(super::page_server(":27").is_err());
        assert!(super::page_server("a:b").is_err());
        assert_eq!(super::empty_ns(&["network".into()]).unwrap(), 0x4000_0000);
        assert!(super::empty_ns(&["pid".into()]).is_err());
        assert!(super::cg_mode(Some("hard")).is_err());
    }
}
