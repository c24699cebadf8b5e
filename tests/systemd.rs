//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: units, their
//! properties as `systemctl show` reports them, the cgroup files (the same as the cgroupfs
//! driver writes, compared side by side), update, pause, exec, delete, and the failures:
//! bad input, systemd refusing, no bus, a create killed half way, racing creates — after each,
//! nothing left (no unit, not even a failed one; no cgroup, no state).
//!
//! Needs systemd as PID 1 on cgroup v2 with D-Bus: these run in the systemd guest
//! (`make sysvm-test`, hack/sysvm), where they are run with `--include-ignored`. On a host
//! without systemd only `without_systemd_or_its_bus_create_fails_cleanly` runs.
mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GUEST: &str = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)";

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemctl show UNIT`: every property.
fn show(unit: &str) -> HashMap<String, String> {
    let out = Command::new("systemctl")
        .args(["show", unit])
        .output()
        .unwrap();
    assert!(out.status.success(), "systemctl show {unit}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every unit systemd knows (loaded, also failed or inactive) whose name contains `pat`.
fn units_matching(pat: &str) -> Vec<String> {
    let out = Command::new("systemctl")
        .args(["list-units", "--all", "--no-legend", "--plain", "--full"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.contains(pat))
        .map(String::from)
        .collect()
}

fn unit_of(id: &str) -> String {
    format!("{SCOPE_PREFIX}-{id}.scope")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn cgdir(env: &Env, id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(env.cg_rel(id).trim_start_matches('/'))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The container `id` of `env` left nothing: no state, no unit (not even failed), no cgroup.
fn nothing_left(env: &Env, id: &str) {
    assert!(
        !env.root.join(id).exists(),
        "state dir of {id} left: {:?}",
        env.root.join(id)
    );
    let u = unit_of(id);
    wait_for(&format!("unit {u} to go"), || units_matching(&u).is_empty());
    assert!(!cgdir(env, id).exists(), "cgroup of {id} left");
}

/// How many device programs are attached to a cgroup (BPF_PROG_QUERY).
fn device_programs(dir: &Path) -> u32 {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }
    let f = std::fs::File::open(dir).unwrap();
    let mut ids = [0u32; 16];
    let mut q = Query {
        target_fd: f.as_raw_fd() as u32,
        attach_type: 6, // BPF_CGROUP_DEVICE
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
    };
    // SAFETY: bpf(BPF_PROG_QUERY) with an attr the size we pass and an id buffer that holds
    // prog_cnt entries; both outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            16,
            &mut q as *mut Query,
            std::mem::size_of::<Query>(),
        )
    };
    assert_eq!(r, 0, "BPF_PROG_QUERY on {}", dir.display());
    q.prog_cnt
}

/// Resources touching every property the driver translates.
fn all_resources() -> Value {
    json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {"weight": 300},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "100663296", "memory.min": "1048576"},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
        ]
    })
}

/// The cgroup files the resources set (io.weight where the kernel has it).
const FILES: &[&str] = &[
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "memory.high",
    "memory.min",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.bfq.weight",
    "hugetlb.2MB.max",
    "cgroup.controllers",
];

fn files(dir: &Path) -> Vec<(String, String)> {
    FILES
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| (f.to_string(), read(&dir.join(f))))
        .collect()
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn unit_properties_and_files_after_create_and_update() {
    let _ = GUEST;
    let sd = Env::with_driver("sdprops", true);
    let fs = Env::with_driver("sdpropsfs", false);
    let id = sd.id("a");
    let fid = fs.id("a");
    for (env, id) in [(&sd, &id), (&fs, &fid)] {
        let mut b = env.bundle(id, &["sleep", "1000"]);
        b.config["linux"]["resources"] = all_resources();
        // A device the rules do not allow (1:11), for the device check below.
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg",
            "options": ["bind", "ro"]
        }));
        env.create(id, &b);
    }
    let unit = unit_of(&id);
    let dir = cgdir(&sd, &id);
    let p = show(&unit);
    let want = [
        ("LoadState", "loaded"),
        ("ActiveState", "active"),
        ("Slice", sd.slice.as_deref().unwrap()),
        ("Delegate", "yes"),
        ("DefaultDependencies", "no"),
        ("MemoryAccounting", "yes"),
        ("CPUAccounting", "yes"),
        ("IOAccounting", "yes"),
        ("TasksAccounting", "yes"),
        ("MemoryMax", "67108864"),
        ("MemoryLow", "33554432"),
        ("MemorySwapMax", "67108864"),
        ("MemoryHigh", "100663296"),
        ("MemoryMin", "1048576"),
        ("CPUQuotaPerSecUSec", "500ms"),
        ("CPUQuotaPeriodUSec", "100ms"),
        ("AllowedCPUs", "0"),
        ("AllowedMemoryNodes", "0"),
        ("TasksMax", "50"),
        ("DevicePolicy", "strict"),
        ("ControlGroup", &sd.cg_rel(&id)),
    ];
    for (k, v) in want {
        assert_eq!(p.get(k).map(|s| s.as_str()), Some(v), "{unit}: {k}");
    }
    assert_eq!(p["Description"], format!("berth container {id}"));
    // The weights are the cgroupfs driver's conversions.
    assert_eq!(p["CPUWeight"], read(&dir.join("cpu.weight")), "CPUWeight");
    assert!(
        p["DeviceAllow"].contains("/dev/char/1:3 rw"),
        "{}",
        p["DeviceAllow"]
    );
    // The container's process is the scope's.
    let pid = sd.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/cgroup"))),
        format!("0::{}", sd.cg_rel(&id))
    );
    // Files: as the cgroupfs driver writes them for the same config.
    let fdir = cgdir(&fs, &fid);
    let got = files(&dir);
    assert_eq!(got, files(&fdir), "systemd driver vs cgroupfs driver");
    assert!(
        got.iter()
            .any(|(f, v)| f == "memory.max" && v == "67108864"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(f, v)| f == "cpu.max" && v == "50000 100000"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(f, v)| f == "hugetlb.2MB.max" && v == "4194304"),
        "{got:?}"
    );
    // berth's device program alone (systemd's, attached at the start, was replaced).
    assert_eq!(device_programs(&dir), 1);
    for env_id in [(&sd, &id), (&fs, &fid)] {
        let (env, id) = env_id;
        let (code, _, err) = env.exec(&[id, "sh", "-c", "echo x > /dev/null"]);
        assert_eq!(code, 0, "/dev/null: {err}");
        let (code, _, err) = env.exec(&[id, "head", "-c", "1", "/dev/kmsg"]);
        assert_ne!(code, 0, "reading /dev/kmsg must be denied");
        assert!(err.contains("Operation not permitted"), "{err}");
    }

    // update: systemd's properties and the files again, both drivers alike.
    let args = [
        "--memory",
        "134217728",
        "--memory-swap",
        "268435456",
        "--cpu-shares",
        "1024",
        "--cpu-quota",
        "20000",
        "--pids-limit",
        "80",
        "--cpuset-cpus",
        "0-1",
    ];
    for (env, id) in [(&sd, &id), (&fs, &fid)] {
        env.ok(&[&["update"][..], &args, &[id.as_str()]].concat());
    }
    let p = show(&unit);
    for (k, v) in [
        ("MemoryMax", "134217728"),
        ("MemorySwapMax", "134217728"),
        ("TasksMax", "80"),
        ("CPUQuotaPerSecUSec", "200ms"),
        ("AllowedCPUs", "0-1"),
    ] {
        assert_eq!(p.get(k).map(|s| s.as_str()), Some(v), "after update: {k}");
    }
    assert_eq!(p["CPUWeight"], read(&dir.join("cpu.weight")), "CPUWeight");
    let got = files(&dir);
    assert_eq!(
        got,
        files(&fdir),
        "after update: systemd driver vs cgroupfs driver"
    );
    assert!(
        got.iter().any(|(f, v)| f == "pids.max" && v == "80"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(f, v)| f == "cpu.max" && v == "20000 100000"),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(f, v)| f == "cpuset.cpus" && v == "0-1"),
        "{got:?}"
    );
    assert_eq!(device_programs(&dir), 1, "update left one device program");

    // exec joins the scope; exec --cgroup a sub-cgroup of it. The container has a cgroup
    // namespace rooted at the scope: a process outside it would see a "/../" path.
    let (code, out, err) = sd.exec(&[&id, "cat", "/proc/self/cgroup"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "0::/");
    std::fs::create_dir(dir.join("sub")).unwrap();
    let (code, out, err) = sd.exec(&["--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "0::/sub");

    // pause/resume of the running container: the cgroup freezes and systemd sees it.
    sd.ok(&["start", &id]);
    assert_eq!(sd.status(&id), "running");
    sd.ok(&["pause", &id]);
    assert_eq!(sd.status(&id), "paused");
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    wait_for("systemd to see the freeze", || {
        show(&unit)["FreezerState"] == "frozen"
    });
    sd.ok(&["resume", &id]);
    assert_eq!(sd.status(&id), "running");
    wait_for("systemd to see the thaw", || {
        show(&unit)["FreezerState"] == "running"
    });

    // ps and kill --all read the scope.
    let pids: Vec<i64> = serde_json::from_str(&sd.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids, vec![pid]);
    let st: Value = serde_json::from_str(&sd.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(st["data"]["pids"]["current"], 1, "{st}");
    assert_eq!(st["data"]["memory"]["usage"]["limit"], 134217728, "{st}");
    sd.ok(&["kill", "--all", &id, "KILL"]);
    wait_for("the container to stop", || sd.status(&id) == "stopped");
    sd.ok(&["delete", &id]);
    nothing_left(&sd, &id);
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn unit_names_slices_and_lifecycle() {
    let env = Env::with_driver("sdnames", true);
    // No cgroupsPath: berth-<id>.scope in system.slice.
    let id = env.id("default");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    env.create(&id, &b);
    let unit = format!("berth-{id}.scope");
    let p = show(&unit);
    assert_eq!(p["ActiveState"], "active");
    assert_eq!(p["Slice"], "system.slice");
    assert_eq!(p["ControlGroup"], format!("/system.slice/{unit}"));
    env.ok(&["start", &id]);
    env.ok(&["kill", &id, "KILL"]);
    wait_for("stopped", || env.status(&id) == "stopped");
    env.ok(&["delete", &id]);
    wait_for("the unit to go", || units_matching(&unit).is_empty());
    assert!(
        !Path::new("/sys/fs/cgroup/system.slice")
            .join(&unit)
            .exists()
    );

    // A kubelet-style pod slice: the parents are made as systemd names them.
    let pod = format!("berthtestkp{}", std::process::id());
    let slice = format!("{pod}-besteffort-poduid_1.slice");
    let id = env.id("pod");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("{slice}:cri-containerd:{id}"));
    env.create(&id, &b);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let path = format!("/{pod}.slice/{pod}-besteffort.slice/{slice}/cri-containerd-{id}.scope");
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/cgroup"))),
        format!("0::{path}")
    );
    assert_eq!(show(&format!("cri-containerd-{id}.scope"))["Slice"], slice);
    env.ok(&["delete", "--force", &id]);
    assert!(!Path::new("/sys/fs/cgroup").join(&path[1..]).exists());
    let _ = Command::new("systemctl")
        .args(["stop", &format!("{pod}.slice")])
        .status();
    wait_for("the pod slices to go", || units_matching(&pod).is_empty());

    // A name ending in .slice: the container gets a slice unit of its own.
    let id = env.id("slice");
    let own = format!("berthtestown{}.slice", std::process::id());
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["cgroupsPath"] = json!(format!(":x:{own}"));
    env.create(&id, &b);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/cgroup"))),
        format!("0::/{own}")
    );
    assert_eq!(show(&own)["ActiveState"], "active");
    env.ok(&["delete", "--force", &id]);
    wait_for("the slice unit to go", || units_matching(&own).is_empty());
    assert!(!Path::new("/sys/fs/cgroup").join(&own).exists());
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn annotations_set_unit_properties() {
    let env = Env::with_driver("sdanno", true);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "uint64 7",
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.CPUWeight": "uint64 42"
    });
    env.create(&id, &b);
    let p = show(&unit_of(&id));
    assert_eq!(p["TimeoutStopUSec"], "7s");
    assert_eq!(p["CollectMode"], "inactive-or-failed");
    // Annotations come last: they win over berth's own properties.
    assert_eq!(p["CPUWeight"], "42");
    // delete --force of a paused container: thawed, killed, the unit stopped.
    env.ok(&["start", &id]);
    env.ok(&["pause", &id]);
    assert_eq!(show(&unit_of(&id))["FreezerState"], "frozen");
    env.ok(&["delete", "--force", &id]);
    nothing_left(&env, &id);
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn bad_input_and_refusals_leave_nothing() {
    let env = Env::with_driver("sdbad", true);
    let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        (
            "path",
            json!("/not/systemd/form"),
            json!({}),
            vec!["linux.cgroupsPath", "slice:prefix:name"],
        ),
        (
            "slice",
            json!("notaslice:x:y"),
            json!({}),
            vec!["linux.cgroupsPath", "slice part"],
        ),
        (
            "value",
            Value::Null,
            json!({"org.systemd.property.CollectMode": "'unterminated"}),
            vec![
                "annotations[\"org.systemd.property.CollectMode\"]",
                "GVariant",
            ],
        ),
        (
            "unknown",
            Value::Null,
            json!({"org.systemd.property.NoSuchPropertyX": "true"}),
            vec![
                "systemd refused to start unit",
                "NoSuchPropertyX",
                "annotations[\"org.systemd.property.NoSuchPropertyX\"]",
            ],
        ),
        (
            "refused",
            Value::Null,
            json!({"org.systemd.property.CollectMode": "'sometimes'"}),
            vec!["systemd refused to start unit", "CollectMode"],
        ),
    ];
    for (tag, path, annotations, want) in cases {
        let id = env.id(tag);
        let mut b = env.bundle(&id, &["sleep", "1000"]);
        if !path.is_null() {
            b.config["linux"]["cgroupsPath"] = path;
        }
        b.config["annotations"] = annotations;
        let out = env.try_create(&id, &b);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tag}: create succeeded");
        for w in want {
            assert!(err.contains(w), "{tag}: {w:?} not in: {err}");
        }
        nothing_left(&env, &id);
    }
}

#[test]
fn without_systemd_or_its_bus_create_fails_cleanly() {
    let env = Env::with_driver("sdnobus", true);
    let id = env.id("a");
    let b = env.bundle(&id, &["true"]);
    b.save();
    let dir = b.dir.to_str().unwrap();
    let root = env.root.to_str().unwrap();
    let bin = env.bin.to_str().unwrap();
    let (out, want): (_, &[&str]) = if systemd_running() {
        // systemd runs, but neither the system bus nor its private socket answers (both
        // hidden in a mount namespace of the command's own).
        let script = format!(
            "mount --bind /dev/null /run/systemd/private && \
             DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/berth-test-bus \
             exec {bin} --root {root} --systemd-cgroup create --bundle {dir} {id}"
        );
        (
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .stdin(Stdio::null())
                .output()
                .unwrap(),
            &[
                "--systemd-cgroup: cannot reach systemd over D-Bus",
                "/nonexistent/berth-test-bus: no such file or directory",
                "/run/systemd/private: connection refused",
                "run without --systemd-cgroup",
            ],
        )
    } else {
        (
            env.berth(&["create", "--bundle", dir, &id]),
            &[
                "--systemd-cgroup: systemd is not running on this host",
                "run without --systemd-cgroup",
            ],
        )
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "created without a bus");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(!env.root.join(&id).exists());
    if systemd_running() {
        nothing_left(&env, &id);
    }
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn killed_create_is_cleaned_by_delete_force() {
    let env = Env::with_driver("sdkill", true);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    let marker = env.tmp.join("in-hook");
    // The createRuntime hook runs once the unit holds the container's process: berth is
    // killed there.
    b.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("touch {}; sleep 3", marker.display())]
    }]});
    b.save();
    let so = std::fs::File::create(env.tmp.join("create.out")).unwrap();
    let mut child = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(so.try_clone().unwrap())
        .stderr(so)
        .spawn()
        .unwrap();
    wait_for("the hook", || marker.exists());
    assert_eq!(show(&unit_of(&id))["ActiveState"], "active");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(env.status(&id), "stopped");
    env.ok(&["delete", "--force", &id]);
    nothing_left(&env, &id);
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn a_failed_unit_is_reset_at_delete() {
    let env = Env::with_driver("sdfail", true);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    // systemd stops the scope after a second, with result "timeout": a failed unit (SIGKILL
    // 0.3 s after the SIGTERM that sleep, pid 1 of its namespace, does not die of).
    b.config["annotations"] = json!({
        "org.systemd.property.RuntimeMaxUSec": "uint64 1000000",
        "org.systemd.property.TimeoutStopUSec": "uint64 300000"
    });
    env.create(&id, &b);
    env.ok(&["start", &id]);
    wait_for("the unit to fail", || {
        show(&unit_of(&id))["ActiveState"] == "failed"
    });
    assert_eq!(env.status(&id), "stopped");
    env.ok(&["delete", &id]);
    nothing_left(&env, &id);
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn racing_creates_make_one_unit() {
    let env = Env::with_driver("sdrace", true);
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    b.save();
    // Same id, same root: one wins at the state directory, before systemd.
    let spawn = |env: &Env, root: &Path, n: u32| {
        let f = std::fs::File::create(env.tmp.join(format!("race-{n}"))).unwrap();
        let mut c = Command::new(&env.bin);
        c.arg("--root").arg(root).arg("--systemd-cgroup");
        c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
        c.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap()
    };
    let kids: Vec<_> = (0..2).map(|n| spawn(&env, &env.root, n)).collect();
    let ok: Vec<bool> = kids
        .into_iter()
        .map(|mut k| k.wait().unwrap().success())
        .collect();
    assert_eq!(ok.iter().filter(|&&o| o).count(), 1, "{ok:?}");
    let lost = if ok[0] { 1 } else { 0 };
    let err = std::fs::read_to_string(env.tmp.join(format!("race-{lost}"))).unwrap();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(units_matching(&unit_of(&id)), vec![unit_of(&id)]);
    // Another root, the same cgroupsPath: systemd has the unit; the loser leaves it alone.
    let other = env.tmp.join("other-root");
    let out = spawn(&env, &other, 9).wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = std::fs::read_to_string(env.tmp.join("race-9")).unwrap();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(show(&unit_of(&id))["ActiveState"], "active");
    assert_eq!(env.status(&id), "created");
    assert!(!other.join(&id).exists());
    env.ok(&["delete", &id]);
    nothing_left(&env, &id);
}

#[test]
#[ignore = "needs systemd as PID 1 (runs in the systemd guest: make sysvm-test)"]
fn debug_shows_the_dbus_cost() {
    let env = Env::with_driver("sddebug", true);
    let id = env.id("a");
    let b = env.bundle(&id, &["true"]);
    b.save();
    // The container's stdio in files (it holds them until it runs), --debug lines in the log.
    let log = b.dir.join("debug.log");
    let status = env
        .cmd()
        .arg("--debug")
        .arg("--log")
        .arg(&log)
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(b.dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(b.dir.join("stderr")).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{err}");
    assert!(err.contains("create phase D-Bus connect"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("create phase systemd unit (D-Bus: "))
        .unwrap_or_else(|| panic!("no D-Bus phase: {err}"));
    // Hello, AddMatch, the version, StartTransientUnit; waits (round trips) for the reply to
    // StartTransientUnit and for its job (and for the version when systemd had not answered by
    // then).
    assert!(
        line.contains("D-Bus: 4 messages, 2 round trips")
            || line.contains("D-Bus: 4 messages, 3 round trips"),
        "{line}"
    );
    // delete: Hello, AddMatch, StopUnit (and, when the unit was still there, ResetFailedUnit
    // after the stop job: waits for StopUnit's reply, its job unless it came with the reply,
    // and ResetFailedUnit's reply).
    let (code, _, err) = env.call(&["--debug", "delete", "--force", &id]);
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("delete: cgroup removal (D-Bus: "))
        .unwrap_or_else(|| panic!("no D-Bus cost of delete: {err}"));
    // Usually systemd has stopped the emptied scope by itself: StopUnit's NoSuchUnit answer is
    // the one round trip.
    assert!(
        line.contains("D-Bus: 3 messages, 1 round trip)")
            || line.contains("D-Bus: 4 messages, 2 round trips")
            || line.contains("D-Bus: 4 messages, 3 round trips"),
        "{line}"
    );
    nothing_left(&env, &id);
}
