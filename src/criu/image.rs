//! What berth keeps in a checkpoint's image directory besides CRIU's images:
//!
//! - `descriptors.json`: where the container process's descriptors 0, 1, 2 led when it was
//!   checkpointed, as runc writes it (a JSON array of /proc/<pid>/fd link texts such as
//!   `"pipe:[1234]"` or `"/dev/null"`), so runc and berth can restore each other's images;
//! - `berth-checkpoint.json`: whether the checkpoint is complete (written `complete: false`
//!   before CRIU runs and rewritten on success, so a failed or interrupted checkpoint is never
//!   taken for a good one), the CRIU keys of descriptors 0-2 that lead to files outside the
//!   container's mounts, and the container's config and state at checkpoint time.

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DESCRIPTORS: &str = "descriptors.json";
pub const META: &str = "berth-checkpoint.json";
pub const DUMP_LOG: &str = "dump.log";
pub const RESTORE_LOG: &str = "restore.log";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Dump,
    PreDump,
}

/// A descriptor declared external at checkpoint, handed over anew at restore: the host's
/// /dev/null for one that was /dev/null; for a file, the same path opened again the way it
/// was (what CRIU itself does with the files it can see; it then checks that a file not
/// opened for appending has the size it had), or the restoring command's own descriptor of
/// that number when the path is gone.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExternalFd {
    pub fd: i32,
    /// CRIU's key: `file[<mnt_id>:<inode>]` (hex).
    pub key: String,
    #[serde(default)]
    pub null: bool,
    /// The file's path on the host and its open flags (fdinfo).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub flags: i32,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Meta {
    pub complete: bool,
    pub kind: Kind,
    /// A `--lazy-pages` checkpoint: the memory pages are not in the directory but served by
    /// the checkpointing side's page server (complete once that server is ready).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lazy: bool,
    /// Why the checkpoint failed (when it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// CRIU's log of the checkpoint.
    pub log: PathBuf,
    pub id: String,
    /// When the checkpoint was taken (RFC 3339).
    pub time: String,
    pub berth_version: String,
    /// Descriptors 0-2 of the container's process that lead to a file CRIU cannot find inside
    /// the container (a host file given as stdio).
    #[serde(default)]
    pub external_stdio: Vec<ExternalFd>,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub state: serde_json::Value,
}

impl Meta {
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::container::state::write_atomic(
            &dir.join(META),
            &serde_json::to_vec_pretty(self)?,
            true,
        )
    }

    /// The metadata of an image directory, if berth wrote one (runc's images have none).
    pub fn read(dir: &Path) -> Result<Option<Meta>> {
        match std::fs::read(dir.join(META)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| anyhow!("{}: {e}", dir.join(META).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(
                "{}: {}",
                dir.join(META).display(),
                super::io_errno_text(&e)
            )),
        }
    }
}

/// Where descriptor `fd` of process `pid` leads, and what CRIU must be told when that is a
/// file on a mount the container does not have: CRIU finds an open file through its mount,
/// so a host file given as stdio (a log file, or the host's /dev/null, which runc would have
/// reopened inside the container but berth does not, to keep create lean) cannot be dumped
/// unless declared external, and is handed over anew at restore.
pub fn stdio_of(pid: i32, fd: i32, container_mounts: &[u32]) -> (String, Option<ExternalFd>) {
    let link = match std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
        Ok(l) => l.to_string_lossy().into_owned(),
        // Closed: nothing for CRIU to do.
        Err(_) => return ("/dev/null".into(), None),
    };
    if !link.starts_with('/') {
        // pipe:[..], socket:[..], anon_inode:[..]: CRIU dumps these itself.
        return (link, None);
    }
    let Ok(st) = nix::sys::stat::stat(format!("/proc/{pid}/fd/{fd}").as_str()) else {
        return (link, None);
    };
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let mnt_id = field("mnt_id:").and_then(|v| v.parse::<u32>().ok());
    let flags = field("flags:")
        .and_then(|v| i32::from_str_radix(&v, 8).ok())
        .unwrap_or(libc::O_RDWR);
    match mnt_id {
        Some(m) if !container_mounts.contains(&m) => {
            let null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
                && st.st_rdev == nix::sys::stat::makedev(1, 3);
            let key = format!("file[{m:x}:{:x}]", st.st_ino);
            let path = link.clone();
            (
                link,
                Some(ExternalFd {
                    fd,
                    key,
                    null,
                    path,
                    flags,
                }),
            )
        }
        _ => (link, None),
    }
}

/// The mount ids of a process's mount namespace.
pub fn mount_ids(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next().and_then(|n| n.parse().ok()))
        .collect()
}

/// runc's descriptors.json: one link text per descriptor 0, 1, 2.
pub fn read_descriptors(dir: &Path) -> Result<Vec<String>> {
    let p = dir.join(DESCRIPTORS);
    let b = std::fs::read(&p).map_err(|e| {
        anyhow!(
            "{}: {} (not a checkpoint made by berth or runc?)",
            p.display(),
            super::io_errno_text(&e)
        )
    })?;
    serde_json::from_slice(&b).map_err(|e| anyhow!("{}: {e}", p.display()))
}

pub fn write_descriptors(dir: &Path, d: &[String]) -> Result<()> {
    crate::container::state::write_atomic(&dir.join(DESCRIPTORS), &serde_json::to_vec(d)?, true)
}

/// The first lines of CRIU's log that say what went wrong, or "" when there are none.
pub fn log_reasons(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .map(|t| super::error_lines(&t))
        .unwrap_or_default()
}
