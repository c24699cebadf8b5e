//! Rootless: berth run by a real unprivileged user that each test makes (useradd, which gives it
//! /etc/subuid and /etc/subgid ranges) and removes afterwards, also when the test fails. The
//! user runs berth through `runuser -u`; what it gets is checked inside the container and on
//! the host (/proc/<pid>/status, /proc/<pid>/cgroup, the owner of files it writes).
mod common;
use common::*;
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static N: AtomicU32 = AtomicU32::new(0);

struct User {
    name: String,
    uid: u32,
    gid: u32,
    /// The test's directory (root's, 0755): the berth binary, the rootfs, the user's dirs.
    tmp: PathBuf,
    xdg: PathBuf,
    bin: PathBuf,
    rootfs: PathBuf,
    subuid: (u64, u64),
    subgid: (u64, u64),
}

fn sub_range(file: &str, name: &str) -> Option<(u64, u64)> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == name).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
    })
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

impl User {
    fn new(tag: &str) -> User {
        let name = format!(
            "brl{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        // useradd takes the passwd lock; other tests (or other users of the machine) may hold it.
        let mut last = String::new();
        let mut made = false;
        for _ in 0..100 {
            let out = Command::new("useradd")
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name])
                .output()
                .expect("running useradd");
            if out.status.success() {
                made = true;
                break;
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(made, "useradd {name}: {last}");
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let tmp = std::env::temp_dir().join(format!("berth-rootless-{tag}-{name}"));
        let mut u = User {
            uid: id("-u"),
            gid: id("-g"),
            xdg: tmp.join("xdg"),
            bin: tmp.join("berth"),
            rootfs: tmp.join("rootfs"),
            tmp,
            subuid: (0, 0),
            subgid: (0, 0),
            name,
        };
        // From here on Drop removes the user, whatever fails.
        u.subuid = sub_range("/etc/subuid", &u.name).expect("useradd gave no /etc/subuid range");
        u.subgid = sub_range("/etc/subgid", &u.name).expect("useradd gave no /etc/subgid range");
        let _ = std::fs::remove_dir_all(&u.tmp);
        std::fs::create_dir_all(&u.tmp).unwrap();
        std::fs::set_permissions(&u.tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(&u.xdg).unwrap();
        std::fs::set_permissions(&u.xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&u.xdg, u.uid, u.gid);
        // A private copy of the binary and the rootfs: the repository may sit in a directory
        // the user cannot enter.
        std::fs::copy(berth_bin(), &u.bin).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs_src())
            .arg(&u.rootfs)
            .status()
            .unwrap();
        assert!(st.success());
        // The user's own rootfs, as an unprivileged user's would be.
        let st = Command::new("chown")
            .args(["-R", "--no-dereference", &format!("{}:{}", u.uid, u.gid)])
            .arg(&u.rootfs)
            .status()
            .unwrap();
        assert!(st.success());
        u
    }

    /// A command run as the user, with its XDG_RUNTIME_DIR.
    fn cmd(&self, prog: &Path) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
            .arg(prog);
        c.stdin(Stdio::null());
        c
    }

    /// berth ARGS as the user. Its output goes through files: a created container keeps
    /// berth's stdout and stderr, so pipes would not reach EOF before the container ends.
    fn berth(&self, args: &[&str]) -> Output {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.tmp.join(format!(".stdout-{n}")),
            self.tmp.join(format!(".stderr-{n}")),
        );
        let status = self
            .cmd(&self.bin)
            .args(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} as {}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A directory of the user's under the test's directory.
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.tmp.join(name);
        std::fs::create_dir(&d).unwrap();
        chown(&d, self.uid, self.gid);
        d
    }

    /// A bundle written by `berth spec --rootless` as the user, running `args` without a
    /// terminal from the shared rootfs, with /out bound read-write from `<bundle>/out`.
    fn bundle(&self, name: &str, args: &[&str]) -> (PathBuf, Value) {
        let dir = self.dir(name);
        self.ok(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()]);
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        c["root"] = json!({"path": self.rootfs, "readonly": true});
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        chown(&out, self.uid, self.gid);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "type": "bind", "source": out,
                "options": ["rbind", "rw"]}));
        save(&dir, &c);
        (dir, c)
    }

    /// The live host pids (not zombies waiting for a reaper) whose real, effective, saved or fs
    /// uid is the user's or one of its /etc/subuid range (a container process mapped there).
    fn procs(&self) -> Vec<i32> {
        let (s, n) = self.subuid;
        let mine = |u: u64| u == self.uid as u64 || (s <= u && u < s + n);
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| uids(*p).is_some_and(|u| u.into_iter().any(mine)) && alive(*p))
            .collect()
    }

    /// The user's containers under its XDG_RUNTIME_DIR.
    fn state_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.xdg.join("berth"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn assert_nothing_left(&self) {
        assert_eq!(self.state_dirs(), Vec::<String>::new(), "state left behind");
        assert_eq!(self.procs(), Vec::<i32>::new(), "processes left behind");
    }
}

impl Drop for User {
    fn drop(&mut self) {
        for id in self.state_dirs() {
            let _ = self.berth(&["delete", "--force", &id]);
        }
        for p in self.procs() {
            // SAFETY: kill(2) of a process that runs as the user this test made.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
        let mut ok = false;
        for _ in 0..100 {
            let st = Command::new("userdel")
                .args(["-f", &self.name])
                .stderr(Stdio::null())
                .status();
            let gone = || {
                !Command::new("id")
                    .arg(&self.name)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if st.is_ok_and(|s| s.success()) || gone() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !ok {
            eprintln!("rootless tests: could not remove the user {}", self.name);
        }
    }
}

fn save(dir: &Path, c: &Value) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(c).unwrap(),
    )
    .unwrap();
}

/// The four uids (or gids) of /proc/<pid>/status.
fn status_ids(pid: i32, key: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    Some(
        line[key.len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect(),
    )
}

fn uids(pid: i32) -> Option<Vec<u64>> {
    status_ids(pid, "Uid:")
}

fn wait_file(p: &Path) -> String {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(s) = std::fs::read_to_string(p)
            && !s.is_empty()
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", p.display());
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The cgroup lines of a process: (hierarchy, path) without the hierarchy id.
fn cgroups(pid: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(|l| l.split_once(':').unwrap().1.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn rootless_spec_is_runcs() {
    let u = User::new("spec");
    let ours = u.dir("ours");
    let theirs = u.dir("theirs");
    u.ok(&["spec", "--rootless", "--bundle", ours.to_str().unwrap()]);
    let o = u
        .cmd(Path::new("runc"))
        .args(["spec", "--rootless", "--bundle", theirs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "runc spec --rootless: {}", text(&o));
    let load = |d: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap()
    };
    let (mut a, mut b) = (load(&ours), load(&theirs));
    assert_eq!(
        a["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    assert_eq!(
        a["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": u.gid, "size": 1}])
    );
    // Where berth's default spec differs from runc 1.1's (the version, the name, runc 1.2's
    // cgroup namespace and empty ambient set), and nowhere else.
    for v in [&mut a, &mut b] {
        v["ociVersion"] = json!("");
        v["hostname"] = json!("");
        v["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("ambient");
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    }
    assert_eq!(a, b, "berth spec --rootless differs from runc's");
}

#[test]
fn rootless_run_root_inside_user_outside_exit_status() {
    let u = User::new("run");
    let (dir, _) = u.bundle(
        "b",
        &[
            "sh",
            "-c",
            "id -u > /out/id; cat /proc/self/uid_map > /out/map; \
             while [ ! -e /out/go ]; do sleep 0.05; done; exit 42",
        ],
    );
    let pid_file = dir.join("out/pid");
    let child = u
        .cmd(&u.bin)
        .args(["run", "--bundle", dir.to_str().unwrap(), "--pid-file"])
        .arg(&pid_file)
        .arg("r1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid: i32 = wait_file(&pid_file).trim().parse().unwrap();
    // Host side: the user's ids, not root's; the state under XDG_RUNTIME_DIR; no cgroup of
    // its own (it stays in the caller's, which is this test's).
    let all = |v: u64| vec![v; 4];
    assert_eq!(uids(pid), Some(all(u.uid as u64)));
    assert_eq!(status_ids(pid, "Gid:"), Some(all(u.gid as u64)));
    assert_eq!(u.state_dirs(), vec!["r1".to_string()]);
    assert_eq!(cgroups(&pid.to_string()), cgroups("self"));
    // Inside: root, mapped to the user.
    assert_eq!(
        wait_file(&dir.join("out/map"))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", &u.uid.to_string(), "1"]
    );
    assert_eq!(wait_file(&dir.join("out/id")), "0\n");
    assert_eq!(
        std::fs::metadata(dir.join("out/id")).unwrap().uid(),
        u.uid,
        "a file root made inside belongs to the user outside"
    );
    std::fs::write(dir.join("out/go"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(42), "{}", text(&o));
    u.assert_nothing_left();
}

#[test]
fn rootless_lifecycle_state_under_xdg_runtime_dir() {
    let u = User::new("life");
    let (dir, _) = u.bundle("b", &["sleep", "1000"]);
    u.ok(&["create", "--bundle", dir.to_str().unwrap(), "l1"]);
    let st: Value = serde_json::from_str(&u.ok(&["state", "l1"])).unwrap();
    assert_eq!(st["status"], "created");
    let sdir = u.xdg.join("berth/l1");
    assert_eq!(std::fs::metadata(&sdir).unwrap().uid(), u.uid);
    assert!(sdir.join("state.json").exists());
    let pid = st["pid"].as_i64().unwrap() as i32;
    u.ok(&["start", "l1"]);
    let st: Value = serde_json::from_str(&u.ok(&["state", "l1"])).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(uids(pid), Some(vec![u.uid as u64; 4]));
    // Without a cgroup, ps lists the container's pid namespace.
    let ps: Vec<i32> = serde_json::from_str(&u.ok(&["ps", "--format", "json", "l1"])).unwrap();
    assert_eq!(ps, vec![pid]);
    u.ok(&["kill", "l1", "KILL"]);
    let t0 = Instant::now();
    while alive(pid) {
        assert!(t0.elapsed() < Duration::from_secs(10), "kill did not kill");
        std::thread::sleep(Duration::from_millis(10));
    }
    let st: Value = serde_json::from_str(&u.ok(&["state", "l1"])).unwrap();
    assert_eq!(st["status"], "stopped");
    u.ok(&["delete", "l1"]);
    assert!(!sdir.exists());
    u.assert_nothing_left();
}

#[test]
fn rootless_subuid_ranges_through_newuidmap() {
    let u = User::new("sub");
    let (dir, mut c) = u.bundle("b", &["sh", "-c", "cat /proc/self/setgroups; id -u; id -G"]);
    for (key, own, (start, _)) in [
        ("uidMappings", u.uid, u.subuid),
        ("gidMappings", u.gid, u.subgid),
    ] {
        c["linux"][key] = json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": start, "size": 65536}
        ]);
    }
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    save(&dir, &c);
    u.ok(&["create", "--bundle", dir.to_str().unwrap(), "s1"]);
    let st: Value = serde_json::from_str(&u.ok(&["state", "s1"])).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    // Container uid 1000 is host uid <first subuid> + 999.
    assert_eq!(uids(pid), Some(vec![u.subuid.0 + 999; 4]));
    assert_eq!(status_ids(pid, "Gid:"), Some(vec![u.subgid.0 + 999; 4]));
    let groups = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        groups.contains(&format!("Groups:\t{} \n", u.subgid.0 + 4)),
        "additional gid 5 is host gid <first subgid> + 4: {groups}"
    );
    u.ok(&["delete", "--force", "s1"]);
    // And run: setgroups stays allowed (newgidmap), the exit status passes through.
    let o = u.berth(&["run", "--bundle", dir.to_str().unwrap(), "s2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "allow\n1000\n1000 5\n");
    u.assert_nothing_left();
}

#[test]
fn rootless_mapping_not_owned_fails_naming_it() {
    let u = User::new("deny");
    let (dir, c) = u.bundle("b", &["true"]);
    let cases = [
        (
            "uidMappings",
            json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                   {"containerID": 1, "hostID": u.subuid.0 + u.subuid.1, "size": 10}]),
            "linux.uidMappings[1]",
            "/etc/subuid",
        ),
        (
            "gidMappings",
            json!([{"containerID": 0, "hostID": 0, "size": 1}]),
            "linux.gidMappings[0]",
            "/etc/subgid",
        ),
    ];
    for (key, maps, field, file) in cases {
        let mut c = c.clone();
        c["linux"][key] = maps;
        save(&dir, &c);
        for cmd in ["create", "run"] {
            let o = u.berth(&[cmd, "--bundle", dir.to_str().unwrap(), "d1"]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(
                err.contains(field) && err.contains(file) && err.contains(&u.name),
                "{cmd}: the error must name {field}, {file} and the user: {err}"
            );
            u.assert_nothing_left();
        }
    }
}

#[test]
fn rootless_limits_and_state_root_errors() {
    let u = User::new("err");
    let (dir, mut c) = u.bundle("b", &["true"]);
    c["linux"]["resources"] = json!({"memory": {"limit": 100_000_000}, "pids": {"limit": 10}});
    save(&dir, &c);
    let o = u.berth(&["run", "--bundle", dir.to_str().unwrap(), "e1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("linux.resources.memory") && err.contains("linux.resources.pids"),
        "{err}"
    );
    u.assert_nothing_left();
    // Device rules alone are ignored (nothing can enforce them), with a warning.
    c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    save(&dir, &c);
    let o = u.berth(&["run", "--bundle", dir.to_str().unwrap(), "e2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("linux.resources.devices"),
        "{}",
        text(&o)
    );
    // The state root: XDG_RUNTIME_DIR unset, or someone else's.
    let o = Command::new("runuser")
        .args(["-u", &u.name, "--", "env", "-u", "XDG_RUNTIME_DIR"])
        .arg(&u.bin)
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR is not set"));
    let o = Command::new("runuser")
        .args(["-u", &u.name, "--", "env", "XDG_RUNTIME_DIR=/tmp"])
        .arg(&u.bin)
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR=/tmp belongs to uid 0"),
        "{}",
        text(&o)
    );
    let o = u.berth(&["--rootless", "maybe", "list"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rootless"));
    u.assert_nothing_left();
}

/// Under a user namespace someone else made (`unshare -r`, as rootless podman and rootlesskit
/// do): berth is root there but rootless; the config has no user namespace of its own, so no
/// maps are written; devices are bound from the host.
#[test]
fn rootless_inside_someone_elses_user_namespace() {
    let u = User::new("uns");
    let (dir, mut c) = u.bundle(
        "b",
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; stat -c '%t:%T' /dev/null; exit 7",
        ],
    );
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "user");
    let l = c["linux"].as_object_mut().unwrap();
    l.remove("uidMappings");
    l.remove("gidMappings");
    save(&dir, &c);
    let o = u
        .cmd(Path::new("unshare"))
        .args(["-r"])
        .arg(&u.bin)
        .args(["run", "--bundle", dir.to_str().unwrap(), "n1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0", &u.uid.to_string(), "1"]);
    assert_eq!(lines[2], ["1:3"], "/dev/null is the host's, bound");
    u.assert_nothing_left();
}

/// Supplementary groups need setgroups(2), which is denied where the user wrote its own gid
/// map (a single-id mapping) and under `unshare -r`: refused before anything is made, naming
/// process.user.additionalGids and why (runc fails at setgroups, half way).
#[test]
fn rootless_additional_gids_without_setgroups_fail_up_front() {
    let u = User::new("gids");
    let (dir, mut c) = u.bundle("b", &["id", "-G"]);
    c["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [5]});
    save(&dir, &c);
    for cmd in ["create", "run"] {
        let o = u.berth(&[cmd, "--bundle", dir.to_str().unwrap(), "g1"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            err.contains("process.user.additionalGids")
                && err.contains("linux.gidMappings")
                && err.contains("setgroups")
                && err.contains("/etc/subgid"),
            "{cmd}: {err}"
        );
        u.assert_nothing_left();
    }
    // No user namespace of its own, in one whose setgroups is denied (`unshare -r`).
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "user");
    let l = c["linux"].as_object_mut().unwrap();
    l.remove("uidMappings");
    l.remove("gidMappings");
    save(&dir, &c);
    let o = u
        .cmd(Path::new("unshare"))
        .args(["-r"])
        .arg(&u.bin)
        .args(["run", "--bundle", dir.to_str().unwrap(), "g2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("process.user.additionalGids") && err.contains("/proc/self/setgroups"),
        "{err}"
    );
    u.assert_nothing_left();
    // Without additionalGids the same container runs.
    c["process"]["user"] = json!({"uid": 0, "gid": 0});
    save(&dir, &c);
    let o = u
        .cmd(Path::new("unshare"))
        .args(["-r"])
        .arg(&u.bin)
        .args(["run", "--bundle", dir.to_str().unwrap(), "g3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    u.assert_nothing_left();
}
