//! `berth check`: every line is cross-checked against the host's own facts, read here
//! independently (/proc/mounts, /proc/sys, util-linux's unshare, `criu check`), so the test holds
//! on any host: this hybrid v1 machine and the pure v2 VM (hack/vm, VM_CARGO_TESTS="check").
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const NAMES: &[&str] = &[
    "kernel",
    "privileges",
    "namespaces",
    "cgroup",
    "cgroup.delegation",
    "systemd",
    "systemd.dbus",
    "userns",
    "userns.unprivileged",
    "newuidmap",
    "seccomp",
    "seccomp.notify",
    "apparmor",
    "selinux",
    "idmapped-mounts",
    "clone3",
    "clone-into-cgroup",
    "pidfd",
    "time-namespace",
    "overlayfs",
    "criu",
];

/// `berth check ARGS` (as `uid` when given); exit code, stdout, stderr.
fn check(args: &[&str], uid: Option<u32>) -> (i32, String, String) {
    let env = Env::new("check");
    let mut c = Command::new(berth_bin());
    if let Some(uid) = uid {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // A copy the user can run (the build tree may be in root's 0700 home).
        let copy = env.tmp.join("berth");
        std::fs::copy(berth_bin(), &copy).unwrap();
        for p in [&env.tmp, &copy] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        c = Command::new(copy);
        c.uid(uid).gid(uid); // (std drops the supplementary groups)
    }
    c.arg("check").args(args).stdin(Stdio::null());
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(uid: Option<u32>) -> (i32, Value) {
    let (code, out, err) = check(&["--format", "json"], uid);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?} {err}"));
    (code, v)
}

fn get<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

fn status(v: &Value, name: &str) -> String {
    get(v, name)["status"].as_str().unwrap().to_string()
}

fn detail(v: &Value, name: &str) -> String {
    get(v, name)["detail"].as_str().unwrap().to_string()
}

/// The cgroup layout from /proc/mounts: (mode, v1 controllers).
fn cgroup_layout() -> (&'static str, Vec<String>) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let mut v2_root = false;
    let mut v2_unified = false;
    let mut v1 = vec![];
    for l in mounts.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        match (f[1], f[2]) {
            ("/sys/fs/cgroup", "cgroup2") => v2_root = true,
            ("/sys/fs/cgroup/unified", "cgroup2") => v2_unified = true,
            (_, "cgroup") => {
                for o in f[3].split(',') {
                    if [
                        "cpu",
                        "cpuacct",
                        "cpuset",
                        "memory",
                        "devices",
                        "freezer",
                        "blkio",
                        "pids",
                        "net_cls",
                        "net_prio",
                        "perf_event",
                        "hugetlb",
                        "rdma",
                        "misc",
                    ]
                    .contains(&o)
                        && !v1.contains(&o.to_string())
                    {
                        v1.push(o.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    v1.sort();
    let mode = if v2_root {
        "v2"
    } else if v2_unified {
        "hybrid"
    } else {
        "v1"
    };
    (mode, v1)
}

#[test]
fn json_shape_is_stable() {
    let (code, v) = report(None);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{v}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["berth"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let o = c.as_object().unwrap();
            assert_eq!(o.len(), 4, "{c}");
            assert!(
                ["ok", "missing", "limited"].contains(&c["status"].as_str().unwrap()),
                "{c}"
            );
            assert!(c["required"].is_boolean(), "{c}");
            assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
            c["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, NAMES);
    // ready: no required check missing; the exit status says the same.
    let ready = !v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["required"] == true && c["status"] == "missing");
    assert_eq!(v["ready"], ready);
    assert_eq!(code, if ready { 0 } else { 1 });
    // As root on a host that runs these tests, a basic container runs.
    assert!(ready, "{v}");
    for n in ["kernel", "privileges", "namespaces", "cgroup"] {
        assert_eq!(get(&v, n)["required"], true, "{n}");
    }
}

#[test]
fn text_has_one_line_per_check_in_the_same_order() {
    let (_, v) = report(None);
    let (code, out, err) = check(&[], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(lines.len(), checks.len() + 1, "{out}");
    for (l, c) in lines.iter().zip(checks) {
        let mut w = l.split_whitespace();
        assert_eq!(w.next(), c["status"].as_str(), "{l}");
        assert_eq!(w.next(), c["name"].as_str(), "{l}");
    }
    assert_eq!(lines[checks.len()], "berth can run containers on this host");
}

#[test]
fn kernel_and_namespaces_are_this_hosts() {
    let (_, v) = report(None);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(status(&v, "kernel"), "ok");
    assert!(
        detail(&v, "kernel").contains(&format!("Linux {} ", release.trim()))
            || detail(&v, "kernel").contains(&format!("Linux {}:", release.trim())),
        "{}",
        detail(&v, "kernel")
    );
    let has_time = Path::new("/proc/self/ns/time").exists();
    assert_eq!(status(&v, "time-namespace") == "ok", has_time);
    assert_eq!(
        detail(&v, "namespaces")
            .split_whitespace()
            .any(|n| n == "time"),
        has_time
    );
    assert_eq!(status(&v, "privileges"), "ok");
    assert_eq!(status(&v, "cgroup.delegation"), "ok");
}

#[test]
fn cgroup_mode_and_controllers_match_proc_mounts() {
    let (_, v) = report(None);
    let (mode, v1) = cgroup_layout();
    let d = detail(&v, "cgroup");
    assert!(d.starts_with(&format!("{mode}: ")), "mode {mode}: {d}");
    if mode != "v2" {
        // Every mounted v1 controller is listed, and nothing else in the v1 part.
        let listed = d
            .split_once("v1 [")
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(l, _)| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default();
        assert_eq!(listed, v1, "{d}");
    } else {
        let ctrls = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap();
        assert!(d.contains(&format!("[{}]", ctrls.trim())), "{d}");
    }
    // CLONE_INTO_CGROUP needs a cgroup2 hierarchy.
    let into = status(&v, "clone-into-cgroup");
    if mode == "v1" {
        assert_eq!(into, "missing");
    } else {
        assert_eq!(into, "ok", "{}", detail(&v, "clone-into-cgroup"));
    }
}

#[test]
fn systemd_dbus_and_lsms_match_the_host() {
    let (_, v) = report(None);
    assert_eq!(
        status(&v, "systemd") == "ok",
        Path::new("/run/systemd/system").is_dir()
    );
    let bus = std::os::unix::net::UnixStream::connect("/run/dbus/system_bus_socket").is_ok()
        || std::os::unix::net::UnixStream::connect("/run/systemd/private").is_ok();
    assert_eq!(status(&v, "systemd.dbus") == "ok", bus);
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    assert_eq!(status(&v, "apparmor") == "ok", apparmor);
    // Usable SELinux: selinuxfs there and a policy loaded (before one is, every process's
    // label is "kernel"; the VM boots a kernel with SELinux enabled and no policy).
    let policy = std::fs::read_to_string("/proc/self/attr/current")
        .is_ok_and(|l| l.trim_end_matches(['\0', '\n']) != "kernel");
    assert_eq!(
        status(&v, "selinux") == "ok",
        Path::new("/sys/fs/selinux/enforce").exists() && policy
    );
}

#[test]
fn seccomp_overlay_and_user_namespaces_match_the_host() {
    let (_, v) = report(None);
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap();
    assert_eq!(status(&v, "seccomp"), "ok");
    assert!(detail(&v, "seccomp").contains(actions.trim()));
    assert_eq!(
        status(&v, "seccomp.notify") == "ok",
        actions.split_whitespace().any(|a| a == "user_notif")
    );
    let overlay = std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.ends_with("\toverlay"));
    if overlay {
        assert_eq!(status(&v, "overlayfs"), "ok");
    } else {
        assert_ne!(status(&v, "overlayfs"), "ok");
    }
    // util-linux's unshare makes a user namespace as root, and as nobody.
    let userns = |uid: Option<u32>| {
        let mut c = Command::new("unshare");
        c.args(["--user", "true"]).stderr(Stdio::null());
        if let Some(u) = uid {
            use std::os::unix::process::CommandExt;
            c.uid(u).gid(u);
        }
        c.status().unwrap().success()
    };
    assert_eq!(status(&v, "userns") == "ok", userns(None));
    assert_eq!(
        status(&v, "userns.unprivileged") != "missing",
        userns(Some(65534))
    );
    let uidmap = ["newuidmap", "newgidmap"]
        .iter()
        .all(|t| Path::new("/usr/bin").join(t).exists());
    assert_eq!(
        status(&v, "newuidmap") == "ok",
        uidmap,
        "{}",
        detail(&v, "newuidmap")
    );
}

/// The criu line against `criu check` run here (in a private mount namespace with its own /run,
/// as berth runs it, so that neither leaves a cache file on the host).
#[test]
fn criu_line_matches_criu_check() {
    let kdat = Path::new("/run/criu.kdat");
    let had_kdat = kdat.exists();
    let (_, v) = report(None);
    assert_eq!(kdat.exists(), had_kdat, "berth check changed /run");
    let criu = ["/usr/sbin/criu", "/usr/bin/criu", "/sbin/criu"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(criu) = criu else {
        assert_eq!(status(&v, "criu"), "missing");
        return;
    };
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("mount -t tmpfs tmpfs /run && exec {criu} check"))
        .output()
        .unwrap();
    let d = detail(&v, "criu");
    if out.status.success() {
        assert_eq!(status(&v, "criu"), "ok", "{d}");
    } else {
        assert_eq!(status(&v, "criu"), "limited", "{d}");
        // CRIU's own first error, in the line.
        let text = String::from_utf8_lossy(&out.stderr);
        let first = text
            .lines()
            .find(|l| l.starts_with("Error"))
            .and_then(|l| l.split_once("): "))
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default();
        assert!(d.contains(&first), "{d:?} lacks criu's {first:?}");
    }
}

/// An unprivileged caller: the basic container (`berth spec`'s) needs root, so the report
/// says so (pointing at rootless containers) and exits 1, and the lines about rootless support describe this user's view.
#[test]
fn unprivileged_caller_is_not_ready() {
    let (code, v) = report(Some(65534));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["ready"], false);
    assert_eq!(status(&v, "privileges"), "missing");
    assert!(detail(&v, "privileges").contains("uid 65534"));
    assert!(detail(&v, "privileges").contains("spec --rootless"));
    let (mode, _) = cgroup_layout();
    if mode != "v2" {
        assert_eq!(status(&v, "cgroup.delegation"), "missing");
    }
    assert_ne!(status(&v, "criu"), "ok", "criu check needs root");
    let (code, out, _) = check(&[], Some(65534));
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("berth cannot run a basic container on this host: privileges"),
        "{out}"
    );
}
