//! start and delete, shared by the `start`, `run` and `delete` commands.

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::Signal;
use oci_spec::runtime::{Hooks, Spec};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use super::state::{CONFIG_FILE, Container, EXEC_FIFO, STATE_FILE, Status, process_matches};
use crate::cgroups::{Driver, Kind};
use crate::hooks;

/// The spec saved in the state dir at create.
pub fn saved_spec(c: &Container) -> Result<Spec> {
    let text = std::fs::read(c.config_path())
        .map_err(|e| anyhow!("reading {}: {e}", c.config_path().display()))?;
    let v = crate::config::parse_value(&text)?;
    crate::config::deserialize(&v)
}

/// The hooks of the spec saved in the state dir, without parsing it when it has none: that
/// file is written by berth (serde_json, which never escapes ASCII letters), so a config
/// without the text `"hooks"` has no hooks.
pub fn saved_hooks(c: &Container) -> Result<Option<oci_spec::runtime::Hooks>> {
    let text = std::fs::read(c.config_path())
        .map_err(|e| anyhow!("reading {}: {e}", c.config_path().display()))?;
    if !text.windows(7).any(|w| w == b"\"hooks\"") {
        return Ok(None);
    }
    let v = crate::config::parse_value(&text)?;
    let spec: Spec = crate::config::deserialize(&v)?;
    Ok(spec.hooks().clone())
}

/// Let a created container's process exec, then run the poststart hooks.
pub fn start(c: &Container) -> Result<()> {
    start_with(c, None)
}

/// The hooks given by the caller, or those of the saved config.json.
fn hooks_of(c: &Container, known: Option<Option<&Hooks>>) -> Result<Option<Hooks>> {
    match known {
        Some(h) => Ok(h.cloned()),
        None => saved_hooks(c),
    }
}

fn start_with(c: &Container, known: Option<Option<&Hooks>>) -> Result<()> {
    let id = &c.state.id;
    match c.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start container {id:?}: it has stopped"),
        Status::Running | Status::Paused => {
            bail!("cannot start container {id:?}: it is already running")
        }
        Status::Creating => bail!("cannot start container {id:?}: it is still being created"),
    }
    let fifo = c.dir.join(EXEC_FIFO);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                anyhow!("cannot start container {id:?}: its process is no longer waiting (it died)")
            } else {
                anyhow!(
                    "cannot start container {id:?}: opening {}: {e}",
                    fifo.display()
                )
            }
        })?;
    f.write_all(&[0])
        .map_err(|e| anyhow!("cannot start container {id:?}: {e}"))?;
    drop(f);
    let _ = std::fs::remove_file(&fifo);
    poststart(c, known)
}

/// The poststart hooks, once the container's process was let go; `known`: the hooks when the
/// caller has them in memory (`run`, which created the container from the same config.json
/// that was saved), otherwise they are read from the saved copy.
pub fn poststart(c: &Container, known: Option<Option<&Hooks>>) -> Result<()> {
    if let Some(h) = hooks_of(c, known)? {
        let st = serde_json::to_vec(&c.oci_state(Status::Running))?;
        hooks::run_all_warn("poststart", h.poststart().as_ref(), &st);
    }
    Ok(())
}

/// Remove a container: kill what is left, remove its cgroup, run poststop hooks, remove its
/// state directory. The caller decides whether the status allows it.
pub fn destroy(c: &Container) -> Result<()> {
    destroy_with(c, None)
}

/// `destroy` with the hooks already in memory (see `start_known`).
pub fn destroy_known(c: &Container, hooks: Option<&Hooks>) -> Result<()> {
    destroy_with(c, Some(hooks))
}

fn destroy_with(c: &Container, known: Option<Option<&Hooks>>) -> Result<()> {
    let mut drv = c.state.cgroup.as_ref().map(Driver::from_state);
    if let Some(m) = drv.as_ref().map(|d| d.fs()) {
        if m.is_frozen() {
            let _ = m.thaw();
        }
        let _ = m.kill_all(Signal::SIGKILL);
    }
    if process_matches(c.state.pid, c.state.pid_start) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.state.pid), Signal::SIGKILL);
    }
    wait_gone(c.state.pid, c.state.pid_start, Duration::from_secs(10));
    if let Some(d) = &mut drv {
        // Thawed and signalled above.
        remove_cgroup(d)?;
    }
    if c.state.status != Status::Creating
        && let Ok(Some(h)) = hooks_of(c, known)
    {
        let st = serde_json::to_vec(&c.oci_state(Status::Stopped))?;
        hooks::run_all_warn("poststop", h.poststop().as_ref(), &st);
    }
    remove_state_dir(&c.dir)
}

/// The files berth keeps in a state directory (the exec fifo and config.json first: a
/// directory whose state.json is still there is a container `delete` can finish removing),
/// then the directory; anything else in it is removed by a walk.
fn remove_state_dir(dir: &std::path::Path) -> Result<()> {
    for f in [EXEC_FIFO, CONFIG_FILE, STATE_FILE] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let not_found = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    };
    std::fs::remove_dir(dir)
        .or_else(not_found)
        .or_else(|_| std::fs::remove_dir_all(dir).or_else(not_found))
        .map_err(|e| anyhow!("removing {}: {e}", dir.display()))
}

/// Kill whatever is left in a container's cgroup and remove it (thawed first: a frozen task
/// cannot die).
pub fn empty_and_remove_cgroup(d: &mut Driver) -> Result<()> {
    let m = d.fs();
    if m.is_frozen() {
        let _ = m.thaw();
    }
    let _ = m.kill_all(Signal::SIGKILL);
    remove_cgroup(d)
}

/// Wait until a signalled cgroup is empty (signalling again), then remove it (with the
/// systemd driver: stop the unit).
fn remove_cgroup(d: &mut Driver) -> Result<()> {
    let m = d.fs();
    // Processes leave the cgroup shortly after they die.
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.pids().map(|p| !p.is_empty()).unwrap_or(false) && Instant::now() < deadline {
        let _ = m.kill_all(Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(2));
    }
    let t = Instant::now();
    let res = d.destroy();
    if crate::logger::debug_enabled()
        && let Some(s) = d.dbus_stats()
    {
        crate::logger::debug(&format!(
            "delete: cgroup removal ({s}): {:.2} ms",
            t.elapsed().as_secs_f64() * 1e3
        ));
    }
    res
}

/// `delete --force` of a container whose state.json cannot be read (corrupt, or cut short by a
/// failing disk): the cgroup is found again from the config.json saved at create (the same
/// `linux.cgroupsPath` and id give the same cgroup), its processes are killed and it is removed
/// with the directory. No hooks run: without a state there is nothing to give them. `driver`:
/// the cgroup driver the caller names (`--systemd-cgroup`), as the state cannot tell.
pub fn destroy_unreadable(root: &std::path::Path, id: &str, driver: Kind) -> Result<()> {
    let dir = super::state::container_dir(root, id);
    let _lock = std::fs::File::open(&dir)
        .ok()
        .and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok());
    let spec = std::fs::read(dir.join(super::state::CONFIG_FILE))
        .ok()
        .and_then(|t| crate::config::parse_value(&t).ok())
        .and_then(|v| crate::config::deserialize::<Spec>(&v).ok());
    match spec {
        Some(s) => {
            let p = s.linux().as_ref().and_then(|l| l.cgroups_path().clone());
            let mut d = Driver::new(driver, p.as_deref(), id, &Default::default())?;
            empty_and_remove_cgroup(&mut d)?;
        }
        None => crate::logger::warn(&format!(
            "container {id:?}: no readable config.json either; its cgroup (if any) is left"
        )),
    }
    std::fs::remove_dir_all(&dir).or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(anyhow!("removing {}: {e}", dir.display()))
        }
    })
}

fn wait_gone(pid: i32, start: u64, max: Duration) {
    let deadline = Instant::now() + max;
    while process_matches(pid, start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}
