//! `events ID [--stats] [--interval 5s]`: runc's event stream. `--stats` prints one stats event
//! and exits; otherwise a stats event every interval and an `oom` event whenever the kernel's
//! OOM killer strikes in the container, until the container stops.

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

use super::Global;
use crate::cgroups::Manager;
use crate::container::{Container, Status};

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// Print the stats once and exit
    #[arg(long)]
    stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms, 1m)
    #[arg(long, default_value = "5s")]
    interval: String,
}

fn parse_interval(s: &str) -> Result<Duration> {
    let bad = || anyhow!("--interval: {s:?} is not a duration like 5s, 500ms or 1m");
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        bail!("--interval: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn emit(v: serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")?;
    out.flush()?;
    Ok(())
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let interval = parse_interval(&a.interval)?;
    let c = Container::load(&g.root, &a.id)?;
    if c.status() == Status::Stopped {
        bail!("container {:?} is not running", a.id);
    }
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| anyhow!("container {:?} has no cgroup", a.id))?;
    let m = Manager::from_state(cg);
    let stats = || json!({"type": "stats", "id": a.id, "data": m.stats()});
    if a.stats {
        emit(stats())?;
        return Ok(0);
    }
    let mut ooms = m.oom_kills();
    // Woken at once when the kernel changes memory.events (cgroup v2), not only every 100 ms:
    // with the systemd driver the scope's cgroup, and its count of OOM kills with it, is
    // removed as soon as its last process is gone.
    let watch = m.oom_events_file().and_then(|p| {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        ino.add_watch(&p, AddWatchFlags::IN_MODIFY).ok()?;
        Some(ino)
    });
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            emit(stats())?;
            next = now + interval;
        }
        let k = m.oom_kills();
        if k > ooms {
            emit(json!({"type": "oom", "id": a.id}))?;
            ooms = k;
        }
        match Container::load(&g.root, &a.id) {
            Ok(c) if c.status() != Status::Stopped => {}
            _ => {
                // The kill that ended it may have come after the last look.
                if m.oom_kills() > ooms {
                    emit(json!({"type": "oom", "id": a.id}))?;
                }
                return Ok(0);
            }
        }
        let nap = Duration::from_millis(100).min(interval);
        match &watch {
            Some(ino) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                use std::os::fd::AsFd;
                let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(nap.as_millis()).unwrap_or(100);
                let _ = poll(&mut fds, PollTimeout::from(ms));
                let _ = ino.read_events();
            }
            None => std::thread::sleep(nap),
        }
    }
}
