//! `<root>/<id>/state.json`: written atomically (temp file + fsync + rename), read lock-free,
//! mutated under an exclusive flock on the container directory. Status is derived from the live
//! process: its pid must exist with the start time recorded at create, so a reused pid is never
//! taken for the container.

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cgroups::CgroupState;

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What berth records about a container. `status` is the phase berth last wrote
/// (`creating` until create finishes, then `created`); the live status is derived.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    pub id: String,
    pub status: Status,
    /// Host pid of the container process (0 while creating before the clone).
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub pid_start: u64,
    /// The berth process doing the create, and its start time (to tell a crashed create).
    pub creator_pid: i32,
    pub creator_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<CgroupState>,
    #[serde(default)]
    pub rootless: bool,
}

/// A container's directory with its state.
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    /// Load without locking (state.json is replaced atomically, so a read is never torn).
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        crate::container::validate_id(id)?;
        let dir = container_dir(root, id);
        let text = match crate::sys::read_small(&dir.join(STATE_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(anyhow!("reading state of container {id:?}: {e}")),
        };
        let state: State = serde_json::from_slice(&text).map_err(|e| {
            anyhow!(
                "state of container {id:?} is corrupt ({e}); `berth delete --force {id}` removes it"
            )
        })?;
        Ok(Container { dir, state })
    }

    /// Take the container's lock (exclusive flock on its directory) and reload the state.
    pub fn lock(root: &Path, id: &str) -> Result<(Container, Flock<File>)> {
        let lock = Container::lock_dir(root, id)?;
        let c = Container::load(root, id)?;
        Ok((c, lock))
    }

    /// The container's lock, without reading its state (for a caller that has it already).
    pub fn lock_dir(root: &Path, id: &str) -> Result<Flock<File>> {
        crate::container::validate_id(id)?;
        let dir = container_dir(root, id);
        let f = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(anyhow!("opening {}: {e}", dir.display())),
        };
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("locking container {id:?}: {e}"))
    }

    /// Not fsync'd: the rename (an exchange of names, see `write_replacing`) alone makes the
    /// write atomic for every reader and against a killed berth. Only a crash of the whole
    /// machine could leave a torn or empty state.json, and then every container it describes
    /// is gone too; such a file is shown by `list` as what it is and removed by `delete
    /// --force` (tests/reliability.rs). An fsync costs ~0.5 ms per write where the root is on
    /// disk (`/run` is ext4 on this machine), twice per create.
    pub fn save(&self) -> Result<()> {
        write_replacing(
            &self.dir.join(STATE_FILE),
            &serde_json::to_vec(&self.state)?,
            false,
            true,
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The live status.
    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.status == Status::Creating {
            return if process_matches(s.creator_pid, s.creator_start) {
                Status::Creating
            } else {
                // A create that died half way: nothing runs, `delete --force` cleans it.
                Status::Stopped
            };
        }
        if !process_matches(s.pid, s.pid_start) {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &s.cgroup
            && crate::cgroups::Manager::from_state(cg).is_frozen()
        {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (runtime.md "State"), with runc's extra fields.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let s = &self.state;
        let pid = match status {
            Status::Stopped => 0,
            Status::Creating if s.pid == 0 => 0,
            _ => s.pid,
        };
        serde_json::json!({
            "ociVersion": crate::SPEC_VERSION,
            "id": s.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": s.bundle,
            "rootfs": s.rootfs,
            "created": s.created,
            "owner": s.owner,
            "annotations": s.annotations,
        })
    }
}

/// Write a file atomically: a temporary file in the same directory, fsync'd when `durable`,
/// then renamed over the target.
pub fn write_atomic(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    write_replacing(path, data, durable, false)
}

/// `write_atomic`; with `exchange`, a target that exists is replaced by exchanging names (see
/// below), only for files berth owns (state.json): a directory there would be swapped too.
fn write_replacing(path: &Path, data: &[u8], durable: bool, exchange: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        if !exchange {
            return std::fs::rename(&tmp, path);
        }
        // Replace by exchanging the two names, then unlink the old file under the temporary
        // name: readers see the old or the new file, as with rename(2). A rename over an
        // existing file makes ext4 (auto_da_alloc) allocate the new file's blocks and start
        // writing them at once; where the filesystem is mounted with `discard` (/run here:
        // ext4 on a virtio disk), deleting the file later then waits for that write and for a
        // synchronous discard of its block (~0.2 ms per container on this machine). An
        // exchange does neither: a short-lived state.json never reaches the disk.
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &tmp,
            nix::fcntl::AT_FDCWD,
            path,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        ) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                Ok(())
            }
            // No file to replace yet, or a filesystem without exchange.
            Err(_) => std::fs::rename(&tmp, path),
        }
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!("writing {}: {e}", path.display()));
    }
    Ok(())
}

/// Start time (clock ticks since boot) of a process, or None if it does not exist or is a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = crate::sys::read_small_string(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // rest starts at field 3 (state); start time is field 22.
    fields.nth(18)?.parse().ok()
}

pub fn process_matches(pid: i32, start: u64) -> bool {
    process_start_time(pid).is_some_and(|s| s == start)
}

/// List container ids under root (directories holding a state.json or being created).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut ids = vec![];
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}
