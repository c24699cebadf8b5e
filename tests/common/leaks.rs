//! Host checks for the reliability and stress suites: what a scenario may not leave behind
//! (state dirs, mounts, cgroups, processes), and commands with a deadline so that a hang is a
//! test failure with a message, never a stuck CI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::common::{Env, alive};

/// The outcome of a berth command run with a deadline.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// ru_maxrss of the command, in KiB.
    pub maxrss_kb: i64,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Run `cmd` with stdin null and stdout/stderr going to files under `dir` (never pipes: a
/// detached container holding a pipe would make us wait forever), reaped with wait4 to get its
/// rusage. Past `limit` it is SIGKILLed (by its pid) and the test fails with `what`.
pub fn run_limited(mut cmd: Command, dir: &Path, limit: Duration, what: &str) -> Ran {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (o, e) = (dir.join(format!(".out-{n}")), dir.join(format!(".err-{n}")));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("{what}: spawn: {err}"));
    let pid = child.id() as i32;
    // std's Child is not used to wait: wait4 gives the rusage of this one child.
    std::mem::forget(child);
    let (status, rss) = loop {
        let mut st = 0;
        // SAFETY: an all-zero rusage is valid; wait4 of our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut st, libc::WNOHANG, &mut ru) };
        if r == pid {
            use std::os::unix::process::ExitStatusExt;
            break (ExitStatus::from_raw(st), ru.ru_maxrss);
        }
        assert!(r == 0, "{what}: wait4: {}", std::io::Error::last_os_error());
        if t0.elapsed() > limit {
            // SAFETY: kill and reap the child we started (its pid is ours until reaped).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut st, 0);
            }
            let err = std::fs::read_to_string(&e).unwrap_or_default();
            let _ = (std::fs::remove_file(&o), std::fs::remove_file(&e));
            panic!("{what}: still running after {limit:?} (killed); stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = t0.elapsed();
    let stdout = std::fs::read_to_string(&o).unwrap_or_default();
    let stderr = std::fs::read_to_string(&e).unwrap_or_default();
    let _ = (std::fs::remove_file(&o), std::fs::remove_file(&e));
    Ran {
        status,
        stdout,
        stderr,
        took,
        maxrss_kb: rss,
    }
}

/// `berth --root <env root> args...` with a deadline.
pub fn berth_limited(env: &Env, args: &[&str], limit: Duration) -> Ran {
    let mut c = env.cmd();
    c.args(args);
    run_limited(c, &env.tmp, limit, &format!("berth {args:?}"))
}

pub const T: Duration = Duration::from_secs(30);

/// `berth args...` that must succeed within 30 s.
pub fn must(env: &Env, args: &[&str]) -> String {
    let r = berth_limited(env, args, T);
    assert!(r.ok(), "berth {args:?} failed: {}", r.stderr);
    r.stdout
}

/// Entries of the state root (container dirs and temporary `.creating-*` dirs).
pub fn state_entries(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Mount points (from /proc/self/mountinfo) under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m == &d || m.starts_with(&format!("{d}/")))
        .collect()
}

pub fn mountinfo_lines() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Cgroup directories below the env's test parent, in every hierarchy (each v1 controller and
/// the v2 / unified one).
pub fn cgroups_under_parent(env: &Env) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
                walk(&e.path(), out);
            }
        }
    }
    let mut v = vec![];
    for d in env.cgroup_parent_dirs() {
        walk(&d, &mut v);
    }
    v
}

/// Live (non-zombie) processes among `pids`.
pub fn live(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|&p| p > 0 && alive(p))
        .collect()
}

/// Wait up to `max` for every pid to be gone; returns those still alive.
pub fn wait_dead(pids: &[i32], max: Duration) -> Vec<i32> {
    let t0 = Instant::now();
    loop {
        let l = live(pids);
        if l.is_empty() || t0.elapsed() > max {
            return l;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Everything a scenario must have cleaned: no state dir (temporary ones included), no mount
/// under the env's directory, no cgroup below the test parent, none of `pids` alive; and `list`
/// still works and is empty.
pub fn assert_host_clean(env: &Env, pids: &[i32], what: &str) {
    let st = state_entries(&env.root);
    assert!(st.is_empty(), "{what}: state dirs left: {st:?}");
    let m = mounts_under(&env.tmp);
    assert!(m.is_empty(), "{what}: mounts left: {m:?}");
    let cg = cgroups_under_parent(env);
    assert!(cg.is_empty(), "{what}: cgroups left: {cg:?}");
    let l = wait_dead(pids, Duration::from_secs(5));
    assert!(l.is_empty(), "{what}: processes left: {l:?}");
    let r = berth_limited(env, &["list", "-q"], T);
    assert!(r.ok(), "{what}: list failed: {}", r.stderr);
    assert_eq!(r.stdout.trim(), "", "{what}: list not empty");
}

/// Our own children (zombies included), from /proc.
pub fn children_of_self() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let ppid = stat[i + 2..].split(' ').nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(me) {
            v.push(pid);
        }
    }
    v
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The host pid in an OCI state JSON (as hooks get it on stdin).
pub fn pid_of_state(text: &str) -> i32 {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("state JSON {text:?}: {e}"));
    v["pid"].as_i64().unwrap() as i32
}

/// Wait for a file to exist and be non-empty (up to `max`).
pub fn wait_file(p: &Path, max: Duration) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(p)
            && t.ends_with('\n')
        {
            return t;
        }
        assert!(
            t0.elapsed() < max,
            "{} did not appear within {max:?}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
