//! `berth check [--format text|json]`: can berth replace runc on this host? One line per item:
//! ok, missing or limited, and why. Every probe is cheap and leaves the host as it was: files
//! under /proc and /sys are read, a few syscalls are called with arguments that only ask
//! (clone3 and user namespaces are tried in children that exit at once), sockets are connected
//! to and closed, and `criu check` runs in a mount namespace of its own (its cache file in /run
//! goes nowhere). No container is started. The exit status is 1 only when a basic container
//! (what `berth spec` writes) cannot run here; any other gap is reported and exits 0.
//!
//! JSON (stable; fields are only ever added):
//! `{"version": 1, "berth": "0.1.0", "ready": bool, "checks": [{"name": "...",
//! "status": "ok|missing|limited", "required": bool, "detail": "..."}, ...]}`. `ready` is false
//! iff a `required` check is "missing"; names are listed in the README.

use anyhow::Result;
use nix::errno::Errno;
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Global;
use crate::cgroups::{self, Mode};

#[derive(clap::Args)]
pub struct Args {
    /// Output format: text (one line per item) or json
    #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Missing,
    Limited,
}

#[derive(Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    required: bool,
    detail: String,
}

fn item(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        required: false,
        detail: detail.into(),
    }
}

fn required(mut c: Check) -> Check {
    c.required = true;
    c
}

pub fn run(_g: &Global, a: Args) -> Result<i32> {
    let root = nix::unistd::geteuid().is_root();
    let mode = cgroups::host_mode();
    let checks = vec![
        required(kernel()),
        required(privileges(root)),
        required(namespaces()),
        required(cgroup(mode)),
        delegation(root, mode),
        systemd(),
        dbus(root),
        userns(root),
        userns_unprivileged(root),
        id_mappers(root),
        seccomp(),
        seccomp_notify(),
        apparmor(),
        selinux(),
        idmapped_mounts(),
        clone3(),
        clone_into_cgroup(mode),
        pidfd(),
        time_namespace(),
        overlayfs(),
        criu(root),
    ];
    let ready = !checks
        .iter()
        .any(|c| c.required && c.status == Status::Missing);
    if a.format == "json" {
        #[derive(Serialize)]
        struct Report<'a> {
            version: u32,
            berth: &'a str,
            ready: bool,
            checks: &'a [Check],
        }
        let doc = Report {
            version: 1,
            berth: env!("CARGO_PKG_VERSION"),
            ready,
            checks: &checks,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &checks {
            let st = match c.status {
                Status::Ok => "ok",
                Status::Missing => "missing",
                Status::Limited => "limited",
            };
            println!("{st:<8} {:<20} {}", c.name, c.detail);
        }
        if ready {
            println!("berth can run containers on this host");
        } else {
            let failed: Vec<&str> = checks
                .iter()
                .filter(|c| c.required && c.status == Status::Missing)
                .map(|c| c.name)
                .collect();
            println!(
                "berth cannot run a basic container on this host: {}",
                failed.join(", ")
            );
        }
    }
    Ok(if ready { 0 } else { 1 })
}

/// Errno texts as Go (and so runc) prints them: "operation not permitted".
use crate::logger::{errno_text, io_errno_text as io_text};

fn read(p: &str) -> Option<String> {
    crate::sys::read_small_string(Path::new(p))
        .ok()
        .map(|s| s.trim().to_string())
}

/// An executable named `name` in $PATH or the usual system directories.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain([
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok())
}

fn kernel() -> Check {
    let u = nix::sys::utsname::uname();
    let release = u
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    // berth resolves every path in the rootfs with openat2(RESOLVE_IN_ROOT) (Linux 5.6).
    let openat2 = std::fs::File::open("/")
        .map_err(|_| Errno::EIO)
        .and_then(|f| {
            use std::os::fd::AsFd;
            crate::sys::openat2(
                f.as_fd(),
                Path::new("."),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                0x08, // RESOLVE_IN_ROOT
            )
        });
    match openat2 {
        Ok(_) => item(
            "kernel",
            Status::Ok,
            format!("Linux {release}: openat2 present"),
        ),
        Err(e) => item(
            "kernel",
            Status::Missing,
            format!(
                "Linux {release}: openat2(RESOLVE_IN_ROOT) fails ({e}): berth needs Linux 5.6 or later"
            ),
        ),
    }
}

fn privileges(root: bool) -> Check {
    if root {
        return item("privileges", Status::Ok, "running as root");
    }
    item(
        "privileges",
        Status::Missing,
        format!(
            "running as uid {}: the spec `berth spec` writes needs root; as this user, run rootless containers (`berth spec --rootless`; the userns, newuidmap and cgroup.delegation lines say what this host offers them)",
            nix::unistd::geteuid()
        ),
    )
}

fn namespaces() -> Check {
    let all = ["mnt", "pid", "ipc", "uts", "net", "cgroup", "user", "time"];
    let have: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| Path::new("/proc/self/ns").join(n).exists())
        .collect();
    let basic = ["mnt", "pid", "ipc", "uts", "net"];
    let lacking: Vec<&str> = all.iter().copied().filter(|n| !have.contains(n)).collect();
    if lacking.is_empty() {
        return item("namespaces", Status::Ok, all.join(" "));
    }
    let status = if basic.iter().any(|n| lacking.contains(n)) {
        Status::Missing
    } else {
        Status::Limited
    };
    item(
        "namespaces",
        status,
        format!("{}; no {}", have.join(" "), lacking.join(" ")),
    )
}

/// The controllers of each cgroup mount; the cgroup2 ones from its root's cgroup.controllers.
fn cgroup(mode: Mode) -> Check {
    let mounts = cgroups::fs::cgroup_mounts().unwrap_or_default();
    let mut v1: Vec<String> = vec![];
    let mut v2: Option<(PathBuf, Vec<String>)> = None;
    for m in &mounts {
        if m.v2 {
            if v2.is_none() {
                let c = read(&m.mount_point.join("cgroup.controllers").to_string_lossy())
                    .unwrap_or_default();
                let c = c.split_whitespace().map(str::to_string).collect();
                v2 = Some((m.mount_point.clone(), c));
            }
        } else {
            for c in &m.controllers {
                if !c.starts_with("name=") && !v1.contains(c) {
                    v1.push(c.clone());
                }
            }
        }
    }
    v1.sort();
    let v2_ctrls = v2.as_ref().map(|v| v.1.clone()).unwrap_or_default();
    let usable: Vec<&String> = v1.iter().chain(v2_ctrls.iter()).collect();
    let has = |c: &str| usable.iter().any(|u| *u == c);
    let v2_part = v2
        .as_ref()
        .map(|(p, c)| format!("cgroup2 at {} with [{}]", p.display(), c.join(" ")))
        .unwrap_or_default();
    let (name, layout) = match mode {
        Mode::V2 => ("v2", v2_part),
        Mode::Hybrid => ("hybrid", format!("v1 [{}] + {v2_part}", v1.join(" "))),
        Mode::V1 => ("v1", format!("v1 [{}]", v1.join(" "))),
    };
    if usable.is_empty() && mounts.is_empty() {
        return item(
            "cgroup",
            Status::Missing,
            "no cgroup filesystem is mounted (/sys/fs/cgroup)",
        );
    }
    // (On v2, devices is eBPF and the freezer is cgroup.freeze: no controllers to look for.)
    let wanted: &[&str] = if mode == Mode::V2 {
        &["cpu", "memory", "pids"]
    } else {
        &["cpu", "memory", "pids", "devices", "freezer"]
    };
    let lacking: Vec<&str> = wanted.iter().copied().filter(|c| !has(c)).collect();
    if lacking.is_empty() {
        item("cgroup", Status::Ok, format!("{name}: {layout}"))
    } else {
        item(
            "cgroup",
            Status::Limited,
            format!(
                "{name}: {layout}; no {} controller: limits on it are refused",
                lacking.join(", ")
            ),
        )
    }
}

/// For rootless containers: can the caller write its own cgroup?
fn delegation(root: bool, mode: Mode) -> Check {
    if root {
        return item("cgroup.delegation", Status::Ok, "not needed (root)");
    }
    if mode != Mode::V2 {
        return item(
            "cgroup.delegation",
            Status::Missing,
            "cgroup v1 is never delegated to users: rootless containers get no resource limits",
        );
    }
    let own = cgroups::fs::own_cgroups()
        .ok()
        .and_then(|m| m.get("").cloned())
        .unwrap_or_default();
    let dir = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
    let uid = nix::unistd::geteuid().as_raw();
    let owned = std::fs::metadata(&dir).is_ok_and(|m| m.uid() == uid);
    let writable = ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| {
            nix::unistd::access(dir.join(f).as_path(), nix::unistd::AccessFlags::W_OK).is_ok()
        });
    if owned && writable {
        item(
            "cgroup.delegation",
            Status::Ok,
            format!("{} is delegated to uid {uid}", dir.display()),
        )
    } else {
        item(
            "cgroup.delegation",
            Status::Missing,
            format!(
                "{} is not delegated to uid {uid} (start from a systemd scope with Delegate=yes)",
                dir.display()
            ),
        )
    }
}

fn systemd() -> Check {
    if Path::new("/run/systemd/system").is_dir() {
        item(
            "systemd",
            Status::Ok,
            "PID 1 is systemd (/run/systemd/system)",
        )
    } else {
        item(
            "systemd",
            Status::Missing,
            "not booted with systemd (no /run/systemd/system): use the cgroupfs driver, not --systemd-cgroup",
        )
    }
}

fn dbus(root: bool) -> Check {
    let connect = |p: &str| std::os::unix::net::UnixStream::connect(p).map(drop);
    let bus = "/run/dbus/system_bus_socket";
    let private = "/run/systemd/private";
    let mut seen = vec![];
    let mut failed = vec![];
    for p in [bus, private] {
        if p == private && !root {
            continue; // systemd's private socket is root's only
        }
        match connect(p) {
            Ok(()) => seen.push(p),
            Err(e) => failed.push(format!("{p}: {}", io_text(&e))),
        }
    }
    if !seen.is_empty() {
        item(
            "systemd.dbus",
            Status::Ok,
            format!("connected to {}", seen.join(" and ")),
        )
    } else {
        item(
            "systemd.dbus",
            Status::Missing,
            format!("no D-Bus to systemd ({})", failed.join("; ")),
        )
    }
}

/// Try unshare(CLONE_NEWUSER) in a child that exits at once; as `nobody` when `as_nobody`.
fn try_userns(as_nobody: bool) -> std::result::Result<(), Errno> {
    use crate::spawn::clone::{Forked, fork};
    use nix::sys::wait::{WaitStatus, waitpid};
    match fork() {
        Ok(Forked::Child) => {
            let mut code = 0;
            if as_nobody {
                let nobody = nix::unistd::Uid::from_raw(65534);
                let nogroup = nix::unistd::Gid::from_raw(65534);
                if let Err(e) = nix::unistd::setgroups(&[])
                    .and_then(|()| nix::unistd::setresgid(nogroup, nogroup, nogroup))
                    .and_then(|()| nix::unistd::setresuid(nobody, nobody, nobody))
                {
                    crate::sys::exit_now(e as i32 & 0xff);
                }
            }
            if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                code = e as i32 & 0xff;
            }
            crate::sys::exit_now(code)
        }
        Ok(Forked::Parent(pid)) => match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, c)) => Err(Errno::from_raw(c)),
            _ => Err(Errno::ECHILD),
        },
        Err(_) => Err(Errno::EAGAIN),
    }
}

fn userns(root: bool) -> Check {
    let max = read("/proc/sys/user/max_user_namespaces").unwrap_or_else(|| "?".into());
    if !Path::new("/proc/self/ns/user").exists() {
        return item(
            "userns",
            Status::Missing,
            "the kernel has no user namespaces",
        );
    }
    if max == "0" {
        return item(
            "userns",
            Status::Missing,
            "user.max_user_namespaces is 0: no user namespace can be made",
        );
    }
    let who = if root { "root" } else { "this user" };
    match try_userns(false) {
        Ok(()) => item(
            "userns",
            Status::Ok,
            format!("{who} can make user namespaces (max_user_namespaces {max})"),
        ),
        Err(e) => item(
            "userns",
            Status::Missing,
            format!(
                "{who} cannot make a user namespace: {} (max_user_namespaces {max})",
                errno_text(e)
            ),
        ),
    }
}

/// Whether an unprivileged user may make user namespaces (rootless containers, and what
/// engines like rootless podman need). As root, tried as `nobody`.
fn userns_unprivileged(root: bool) -> Check {
    let mut notes = vec![];
    let clone = read("/proc/sys/kernel/unprivileged_userns_clone");
    if let Some(v) = &clone {
        notes.push(format!("kernel.unprivileged_userns_clone={v}"));
    }
    let aa = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    if let Some(v) = &aa {
        notes.push(format!("kernel.apparmor_restrict_unprivileged_userns={v}"));
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    let probe = try_userns(root);
    match probe {
        Ok(()) if aa.as_deref() == Some("1") => item(
            "userns.unprivileged",
            Status::Limited,
            format!("users can make user namespaces, but AppArmor restricts what they hold{note}"),
        ),
        Ok(()) => item(
            "userns.unprivileged",
            Status::Ok,
            format!(
                "unprivileged users can make user namespaces{}{note}",
                if root { " (tried as nobody)" } else { "" }
            ),
        ),
        Err(e) => item(
            "userns.unprivileged",
            Status::Missing,
            format!(
                "unprivileged users cannot make user namespaces: {}{note}",
                errno_text(e)
            ),
        ),
    }
}

/// newuidmap/newgidmap (shadow's uidmap): setuid root or with file capabilities; for a user,
/// also their /etc/subuid and /etc/subgid ranges.
fn id_mappers(root: bool) -> Check {
    let mut found = vec![];
    let mut problems = vec![];
    for tool in ["newuidmap", "newgidmap"] {
        match which(tool) {
            None => problems.push(format!("{tool} is not installed (Debian: uidmap)")),
            Some(p) => {
                let md = std::fs::metadata(&p);
                let setuid = md
                    .as_ref()
                    .is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() == 0);
                if setuid {
                    found.push(format!("{} (setuid root)", p.display()));
                } else if crate::sys::has_xattr(&p, "security.capability") {
                    found.push(format!("{} (file capabilities)", p.display()));
                } else {
                    problems.push(format!(
                        "{} is neither setuid root nor has file capabilities",
                        p.display()
                    ));
                }
            }
        }
    }
    if !root && problems.is_empty() {
        let uid = nix::unistd::geteuid().as_raw();
        let name = read("/etc/passwd").and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        });
        for file in ["/etc/subuid", "/etc/subgid"] {
            let has = read(file).is_some_and(|t| {
                t.lines().any(|l| {
                    let who = l.split(':').next().unwrap_or("");
                    who == uid.to_string() || Some(who) == name.as_deref()
                })
            });
            if !has {
                problems.push(format!("no range for uid {uid} in {file}"));
            }
        }
    }
    if problems.is_empty() {
        item("newuidmap", Status::Ok, found.join(", "))
    } else {
        let status = if found.is_empty() {
            Status::Missing
        } else {
            Status::Limited
        };
        item("newuidmap", status, problems.join("; "))
    }
}

fn actions_avail() -> Option<String> {
    read("/proc/sys/kernel/seccomp/actions_avail")
}

fn seccomp() -> Check {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("libseccomp {}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "libseccomp version unknown".into());
    let mode = read("/proc/self/status").and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim().to_string()))
    });
    match (mode, actions_avail()) {
        (Some(_), Some(actions)) => item(
            "seccomp",
            Status::Ok,
            format!("filters with actions [{actions}]; {lib}"),
        ),
        (Some(_), None) => item(
            "seccomp",
            Status::Missing,
            "the kernel has seccomp but no filters (CONFIG_SECCOMP_FILTER): configs with linux.seccomp are refused",
        ),
        _ => item(
            "seccomp",
            Status::Missing,
            "the kernel has no seccomp: configs with linux.seccomp are refused",
        ),
    }
}

fn seccomp_notify() -> Check {
    let listed = actions_avail().is_some_and(|a| a.split_whitespace().any(|w| w == "user_notif"));
    match crate::sys::seccomp_notif_sizes() {
        Ok(()) if listed => item(
            "seccomp.notify",
            Status::Ok,
            "SCMP_ACT_NOTIFY (user notification: seccomp agents, linux.seccomp.listenerPath)",
        ),
        r => item(
            "seccomp.notify",
            Status::Missing,
            format!(
                "no seccomp user notification ({}): SCMP_ACT_NOTIFY is refused",
                match r {
                    Err(e) => errno_text(e),
                    Ok(()) => "user_notif is not in actions_avail".into(),
                }
            ),
        ),
    }
}

fn apparmor() -> Check {
    if crate::security::labels::apparmor_enabled() {
        item(
            "apparmor",
            Status::Ok,
            "enabled: process.apparmorProfile is applied",
        )
    } else {
        item(
            "apparmor",
            Status::Missing,
            "not enabled: configs that ask for process.apparmorProfile are refused",
        )
    }
}

fn selinux() -> Check {
    match crate::security::labels::selinux_state() {
        Ok(()) => {
            let mode = match read("/sys/fs/selinux/enforce").as_deref() {
                Some("1") => "enforcing",
                _ => "permissive",
            };
            item(
                "selinux",
                Status::Ok,
                format!("enabled ({mode}): process.selinuxLabel and linux.mountLabel are applied"),
            )
        }
        Err(why) => item(
            "selinux",
            Status::Missing,
            format!(
                "not usable ({why}): configs that ask for process.selinuxLabel or linux.mountLabel are refused"
            ),
        ),
    }
}

fn idmapped_mounts() -> Check {
    // With no valid descriptor the call can only fail: EBADF where it exists, ENOSYS where not.
    match crate::sys::mount_setattr(-1, Path::new(""), false, 0, 0, None) {
        Err(Errno::ENOSYS) => item(
            "idmapped-mounts",
            Status::Missing,
            "no mount_setattr (Linux 5.12): mounts with uidMappings/gidMappings are refused",
        ),
        _ => item(
            "idmapped-mounts",
            Status::Ok,
            "mount_setattr present (idmapped bind mounts, where the filesystem supports them)",
        ),
    }
}

fn clone3() -> Check {
    match crate::spawn::clone::probe(None) {
        Ok(()) => item("clone3", Status::Ok, "clone3 present"),
        Err(e) => item(
            "clone3",
            Status::Limited,
            format!(
                "clone3 fails ({}): berth falls back to clone",
                errno_text(e)
            ),
        ),
    }
}

/// A clone3 with CLONE_INTO_CGROUP into the caller's own cgroup2 cgroup (where the child
/// would be anyway).
fn clone_into_cgroup(mode: Mode) -> Check {
    let name = "clone-into-cgroup";
    if mode == Mode::V1 {
        return item(
            name,
            Status::Missing,
            "no cgroup2 hierarchy: containers are moved into their cgroups after clone",
        );
    }
    let mounts = cgroups::fs::cgroup_mounts().unwrap_or_default();
    let own = cgroups::fs::own_cgroups()
        .ok()
        .and_then(|m| m.get("").cloned());
    let dir = mounts
        .iter()
        .find(|m| m.v2)
        .zip(own)
        .and_then(|(m, p)| m.dir_for(&p).ok());
    let Some(dir) = dir else {
        return item(
            name,
            Status::Missing,
            "berth's own cgroup2 cgroup was not found",
        );
    };
    let fd = match std::fs::File::open(&dir) {
        Ok(f) => f,
        Err(e) => {
            return item(
                name,
                Status::Missing,
                format!("opening {}: {}", dir.display(), io_text(&e)),
            );
        }
    };
    use std::os::fd::AsRawFd;
    match crate::spawn::clone::probe(Some(fd.as_raw_fd())) {
        Ok(()) => item(
            name,
            Status::Ok,
            if mode == Mode::Hybrid {
                "CLONE_INTO_CGROUP: containers start in their cgroup2 cgroup (and join their v1 ones themselves)"
            } else {
                "CLONE_INTO_CGROUP: containers start in their cgroup"
            },
        ),
        Err(e) => item(
            name,
            Status::Limited,
            format!(
                "clone3 into {} fails ({}): containers are moved after clone",
                dir.display(),
                errno_text(e)
            ),
        ),
    }
}

fn pidfd() -> Check {
    match crate::sys::pidfd_open(std::process::id() as i32) {
        Ok(_) => item("pidfd", Status::Ok, "pidfd_open present"),
        Err(e) => item(
            "pidfd",
            Status::Missing,
            format!(
                "pidfd_open fails ({}): process waits fall back to polling",
                errno_text(e)
            ),
        ),
    }
}

fn time_namespace() -> Check {
    if Path::new("/proc/self/ns/time").exists() {
        item(
            "time-namespace",
            Status::Ok,
            "time namespaces (linux.timeOffsets)",
        )
    } else {
        item(
            "time-namespace",
            Status::Missing,
            "no time namespaces (Linux 5.6): configs with a time namespace are refused",
        )
    }
}

fn overlayfs() -> Check {
    let loaded = read("/proc/filesystems").is_some_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    });
    if loaded {
        return item(
            "overlayfs",
            Status::Ok,
            "overlay filesystem available (engines' image layers)",
        );
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let module = Path::new("/lib/modules")
        .join(&release)
        .join("kernel/fs/overlayfs");
    let loadable = std::fs::read_dir(&module).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("overlay.ko")))
    });
    if loadable {
        item(
            "overlayfs",
            Status::Limited,
            "overlay is a module that is not loaded yet (modprobe overlay, or the first mount loads it)",
        )
    } else {
        item(
            "overlayfs",
            Status::Missing,
            "no overlay filesystem: engines need another storage driver",
        )
    }
}

/// CRIU (checkpoint/restore): installed, and does `criu check` pass on this kernel?
fn criu(root: bool) -> Check {
    let Some(path) = which("criu") else {
        return item(
            "criu",
            Status::Missing,
            "criu is not installed (Debian: criu): no checkpoint/restore",
        );
    };
    let version = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "version unknown".into());
    if !root {
        return item(
            "criu",
            Status::Limited,
            format!(
                "{} {version} is installed; `criu check` needs root",
                path.display()
            ),
        );
    }
    let mut cmd = std::process::Command::new(&path);
    cmd.arg("check")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    crate::sys::with_private_tmpfs(&mut cmd, "/run");
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            return item(
                "criu",
                Status::Missing,
                format!(
                    "{} {version}: cannot run `criu check`: {}",
                    path.display(),
                    io_text(&e)
                ),
            );
        }
    };
    if out.status.success() {
        return item(
            "criu",
            Status::Ok,
            format!("{} {version}: `criu check` passes", path.display()),
        );
    }
    // CRIU's own reason: its first error line, without the "Error (file:line): " prefix.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let reason = text
        .lines()
        .find(|l| l.starts_with("Error"))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .map(|l| match l.split_once("): ") {
            Some((_, r)) if l.starts_with("Error (") => r.trim().to_string(),
            _ => l.trim().to_string(),
        })
        .unwrap_or_else(|| format!("exit status {}", out.status));
    item(
        "criu",
        Status::Limited,
        format!(
            "{} {version} is installed but `criu check` fails on this kernel: {reason}",
            path.display()
        ),
    )
}
