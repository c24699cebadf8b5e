//! cgroups: resources at create and update (checked in the host's cgroup files and by their
//! effect inside the container), devices, pause/resume, ps, events. Runs on this hybrid host
//! and on a pure cgroup v2 guest (hack/vm).
mod common;
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's directory for a controller (v1 hierarchy, or cgroup2 — the unified mount
/// on a hybrid host for controllers that live only there).
fn cgdir(env: &Env, id: &str, ctrl: &str) -> PathBuf {
    let rel = env.cg_rel(id).trim_start_matches('/').to_string();
    let root = Path::new("/sys/fs/cgroup");
    if v2() {
        root.join(rel)
    } else if root.join(ctrl).exists() {
        root.join(ctrl).join(rel)
    } else {
        root.join("unified").join(rel)
    }
}

fn cgread(env: &Env, id: &str, ctrl: &str, file: &str) -> String {
    let p = cgdir(env, id, ctrl).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every directory of the container's cgroup, in every hierarchy.
fn all_cg_dirs(env: &Env, id: &str) -> Vec<PathBuf> {
    let rel = env.cg_rel(id).trim_start_matches('/').to_string();
    let mut v = vec![Path::new("/sys/fs/cgroup").join(&rel)];
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        v.push(e.path().join(&rel));
    }
    v.into_iter().filter(|p| p.exists()).collect()
}

/// cpu.weight for cpu.shares as runc ≥ 1.3.2 writes it (opencontainers/cgroups
/// ConvertCPUSharesToCgroupV2Value), for the values these tests use.
fn runc_weight(shares: u64) -> u64 {
    match shares {
        2 => 1,
        100 => 17,
        256 => 35,
        512 => 59,
        1024 => 100,
        2048 => 174,
        22000 => 1204,
        262_144 => 10000,
        _ => panic!("no known weight for {shares} shares"),
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn resources_are_applied_at_create() {
    let env = Env::new("cgres");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "kernel": 1234},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "devices": [{"allow": false, "access": "rwm"}]
    });
    let out = env.try_create(&id, &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("linux.resources.memory.kernel is deprecated"),
        "{}",
        stderr(&out)
    );
    if v2() {
        assert_eq!(cgread(&env, &id, "memory", "memory.max"), "67108864");
        assert_eq!(cgread(&env, &id, "memory", "memory.low"), "33554432");
        assert_eq!(cgread(&env, &id, "memory", "memory.swap.max"), "67108864");
        assert_eq!(cgread(&env, &id, "cpu", "cpu.weight"), "59"); // runc ≥ 1.3.2: 512 → 59
        assert_eq!(cgread(&env, &id, "cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(
            cgread(&env, &id, "memory", "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(
            cgread(&env, &id, "memory", "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(
            cgread(&env, &id, "memory", "memory.memsw.limit_in_bytes"),
            "134217728"
        );
        assert_eq!(cgread(&env, &id, "cpu", "cpu.shares"), "512");
        assert_eq!(cgread(&env, &id, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgread(&env, &id, "cpu", "cpu.cfs_period_us"), "100000");
        assert!(cgread(&env, &id, "devices", "devices.list").contains("c 1:3 rwm"));
        assert!(!cgread(&env, &id, "devices", "devices.list").contains("a *:* rwm"));
    }
    assert_eq!(cgread(&env, &id, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cgread(&env, &id, "pids", "pids.max"), "50");
    // hugetlb: a v1 controller on v1, on the cgroup2 mount on this hybrid host, v2 in the VM.
    let hf = if Path::new("/sys/fs/cgroup/hugetlb").exists() {
        "hugetlb.2MB.limit_in_bytes"
    } else {
        "hugetlb.2MB.max"
    };
    assert_eq!(cgread(&env, &id, "hugetlb", hf), "4194304");

    env.ok(&["delete", "--force", &id]);
    assert!(
        all_cg_dirs(&env, &id).is_empty(),
        "left behind: {:?}",
        all_cg_dirs(&env, &id)
    );
}

#[test]
fn memory_limit_oom_kills_and_events_report_it() {
    let env = Env::new("cgoom");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "sleep 0.3; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    // memory+swap = memory: no swap to escape to.
    b.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    env.create(&id, &b);
    let ev = env
        .cmd()
        .args(["events", "--interval", "10s", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.ok(&["start", &id]);
    // events exits when the container stops.
    let out = ev.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "events: {}", stderr(&out));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "stats", "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "oom" && l["id"] == id.as_str()),
        "no oom event: {text}"
    );
    assert_eq!(env.status(&id), "stopped");
    let so = std::fs::read_to_string(b.dir.join("stdout")).unwrap();
    assert!(!so.contains("survived"), "{so}");
}

#[test]
fn pids_limit_makes_fork_fail() {
    let env = Env::new("cgpids");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
        ],
    );
    b.config["linux"]["resources"] = json!({"pids": {"limit": 4}});
    let (_, _, err) = env.run(&id, &b);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
}

#[test]
fn pause_resume_ps_and_stats() {
    let env = Env::new("cgpause");
    let id = env.id("a");
    let b = env.bundle(&id, &["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    let pid = env.state(&id)["pid"].as_i64().unwrap();

    // Both sleeps run: the init has exec'd `sleep 1001` (the shell before it had forked the
    // other; two processes and a command line containing "sleep 100" come before that).
    wait_exec(pid as i32, &["sleep", "1001"]);
    // ps: json is the host pids.
    let pids: Vec<i64> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid), "{pids:?}");
    let table = env.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"), "{table}");
    let cmds: Vec<&str> = lines.map(|l| l.trim_end()).collect();
    for want in ["sleep 1000", "sleep 1001"] {
        assert_eq!(
            cmds.iter().filter(|l| l.ends_with(want)).count(),
            1,
            "{table}"
        );
    }

    // events --stats: runc's shape.
    let st: Value = serde_json::from_str(&env.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(st["type"], "stats");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["data"]["pids"]["current"], 2, "{st}");
    assert!(
        st["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{st}"
    );
    assert!(st["data"]["cpu"]["usage"]["kernel"].is_u64(), "{st}");
    assert!(
        st["data"]["hugetlb"].is_object() && st["data"]["blkio"].is_object(),
        "{st}"
    );

    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    if v2() {
        assert_eq!(cgread(&env, &id, "freezer", "cgroup.freeze"), "1");
    } else {
        assert_eq!(cgread(&env, &id, "freezer", "freezer.state"), "FROZEN");
    }
    let out = env.berth(&["pause", &id]);
    assert!(!out.status.success() && stderr(&out).contains("already paused"));
    if v2() {
        assert!(cgread(&env, &id, "freezer", "cgroup.events").contains("frozen 1"));
        // (v2 lets fatal signals through to frozen tasks: nothing to see with SIGKILL.)
        env.ok(&["resume", &id]);
        assert_eq!(env.status(&id), "running");
        env.ok(&["kill", &id, "KILL"]);
    } else {
        // A frozen v1 process does not run: a signal it would die of waits.
        env.ok(&["kill", &id, "KILL"]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            alive(pid as i32),
            "a frozen process must not run (even to die)"
        );
        env.ok(&["resume", &id]);
    }
    wait_for("the container to die after resume", || {
        env.status(&id) == "stopped"
    });
    let out = env.berth(&["resume", &id]);
    assert!(!out.status.success());
    env.ok(&["delete", &id]);
    assert!(all_cg_dirs(&env, &id).is_empty());
}

#[test]
fn update_changes_files_and_the_saved_config() {
    let env = Env::new("cgupd");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "swap": 134217728},
        "cpu": {"quota": 20000, "period": 100000},
        "pids": {"limit": 30}
    });
    env.create(&id, &b);
    env.ok(&["start", &id]);

    // docker's way: JSON on stdin, zeros for what does not change.
    let mut child = env
        .cmd()
        .args(["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory":{"limit":104857600,"reservation":0,"swap":209715200,"kernel":0},"cpu":{"shares":0,"quota":50000,"period":100000},"blockIO":{"weight":0}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (mem, cpuq) = if v2() {
        ("memory.max", "cpu.max")
    } else {
        ("memory.limit_in_bytes", "cpu.cfs_quota_us")
    };
    assert_eq!(cgread(&env, &id, "memory", mem), "104857600");
    if v2() {
        assert_eq!(cgread(&env, &id, "memory", "memory.swap.max"), "104857600");
        assert_eq!(cgread(&env, &id, "cpu", cpuq), "50000 100000");
    } else {
        assert_eq!(
            cgread(&env, &id, "memory", "memory.memsw.limit_in_bytes"),
            "209715200"
        );
        assert_eq!(cgread(&env, &id, "cpu", cpuq), "50000");
    }
    assert_eq!(
        cgread(&env, &id, "pids", "pids.max"),
        "30",
        "pids untouched"
    );

    // runc's flags.
    env.ok(&[
        "update",
        &id,
        "--memory",
        "80m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
    ]);
    assert_eq!(cgread(&env, &id, "memory", mem), "83886080");
    assert_eq!(cgread(&env, &id, "pids", "pids.max"), "20");
    if v2() {
        assert_eq!(cgread(&env, &id, "cpu", cpuq), "30000 100000");
    } else {
        assert_eq!(cgread(&env, &id, "cpu", cpuq), "30000");
    }
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(env.root.join(&id).join("config.json")).unwrap())
            .unwrap();
    let r = &cfg["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 83886080, "{r}");
    assert_eq!(r["memory"]["swap"], 209715200, "{r}");
    assert_eq!(r["cpu"]["quota"], 30000, "{r}");
    assert_eq!(r["cpu"]["period"], 100000, "{r}");
    assert_eq!(r["pids"]["limit"], 20, "{r}");

    // A value the kernel refuses names the field and the file.
    let out = env.berth(&["update", &id, "--cpuset-cpus", "99"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("linux.resources.cpu.cpus") && e.contains("cpuset.cpus"),
        "{e}"
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn devices_denied_and_allowed() {
    let env = Env::new("cgdev");
    let id = env.id("a");
    let check = "for d in fuse loop-control; do if ( : < /dev/$d ) 2>/tmp/e; then echo $d=ok; else echo $d=$(cat /tmp/e); fi; done";
    let script = format!(
        "mount -t tmpfs t /tmp; {check} > /out1; while [ ! -e /go ]; do sleep 0.05; done; {check} > /out2; echo done > /out3; sleep 1000"
    );
    let mut b = env.bundle(&id, &["sh", "-c", &script]);
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    b.config["process"]["capabilities"]["effective"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    b.config["process"]["capabilities"]["permitted"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 438}
    ]);
    b.config["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]});
    env.create(&id, &b);
    env.ok(&["start", &id]);
    let out1 = b.rootfs().join("out1");
    wait_for("the first check", || {
        std::fs::read_to_string(&out1).is_ok_and(|s| s.lines().count() == 2)
    });
    let s = std::fs::read_to_string(&out1).unwrap();
    // Allowed: opens (or fails in the driver, never with EPERM); denied: EPERM.
    let fuse = s.lines().find(|l| l.starts_with("fuse=")).unwrap();
    assert!(!fuse.contains("not permitted"), "{s}");
    let lc = s.lines().find(|l| l.starts_with("loop-control=")).unwrap();
    assert!(lc.contains("Operation not permitted"), "{s}");
    if !v2() {
        assert!(cgread(&env, &id, "devices", "devices.list").contains("c 10:229 rw"));
    }

    // An update replaces the rules (on v2: the eBPF program).
    let rfile = env.tmp.join("dev.json");
    std::fs::write(
        &rfile,
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":237,"access":"rwm"}]}"#,
    )
    .unwrap();
    env.ok(&["update", "-r", rfile.to_str().unwrap(), &id]);
    std::fs::write(b.rootfs().join("go"), "").unwrap();
    wait_for("the second check", || b.rootfs().join("out3").exists());
    let s = std::fs::read_to_string(b.rootfs().join("out2")).unwrap();
    let fuse = s.lines().find(|l| l.starts_with("fuse=")).unwrap();
    assert!(fuse.contains("Operation not permitted"), "{s}");
    let lc = s.lines().find(|l| l.starts_with("loop-control=")).unwrap();
    assert!(!lc.contains("not permitted"), "{s}");
    env.ok(&["delete", "--force", &id]);
}

/// create with one bad resource: fails, says which field (and file), leaves nothing behind.
fn create_fails(env: &Env, tag: &str, res: Value, want: &[&str]) {
    let id = env.id(tag);
    let mut b = env.bundle(&id, &["true"]);
    b.config["linux"]["resources"] = res;
    let out = env.try_create(&id, &b);
    let e = stderr(&out);
    assert!(!out.status.success(), "{tag}: create must fail");
    for w in want {
        assert!(e.contains(w), "{tag}: {w:?} not in: {e}");
    }
    assert!(!env.root.join(&id).exists(), "{tag}: state left behind");
    assert!(
        all_cg_dirs(env, &id).is_empty(),
        "{tag}: cgroup left behind"
    );
}

#[test]
fn errors_name_the_field() {
    let env = Env::new("cgerr");
    create_fails(
        &env,
        "classid",
        json!({"network": {"classID": 1048577}}),
        &["linux.resources.network.classID", "net_cls"],
    );
    create_fails(
        &env,
        "prio",
        json!({"network": {"priorities": [{"name": "lo", "priority": 2}]}}),
        &["linux.resources.network.priorities[0]", "net_prio"],
    );
    create_fails(
        &env,
        "rdma",
        json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}),
        &["linux.resources.rdma[\"mlx5_0\"]"],
    );
    create_fails(
        &env,
        "hugesize",
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}),
        &["linux.resources.hugepageLimits[0].pageSize", "3MB"],
    );
    create_fails(
        &env,
        "swap",
        json!({"memory": {"limit": 67108864, "swap": 1048576}}),
        &["linux.resources.memory.swap"],
    );
    create_fails(
        &env,
        "cpus",
        json!({"cpu": {"cpus": "0-999"}}),
        &["linux.resources.cpu.cpus", "cpuset.cpus"],
    );
    if v2() {
        // unified keys are written verbatim; a bad key names itself.
        let id = env.id("unified");
        let mut b = env.bundle(&id, &["true"]);
        b.config["linux"]["resources"] =
            json!({"unified": {"memory.high": "50000000", "pids.max": "7"}});
        env.create(&id, &b);
        assert_eq!(cgread(&env, &id, "memory", "memory.high"), "49999872");
        assert_eq!(cgread(&env, &id, "pids", "pids.max"), "7");
        env.ok(&["delete", "--force", &id]);
        create_fails(
            &env,
            "unifiedbad",
            json!({"unified": {"memory.nonexistent": "1"}}),
            &["linux.resources.unified[\"memory.nonexistent\"]"],
        );
        create_fails(
            &env,
            "rt",
            json!({"cpu": {"realtimeRuntime": 1000}}),
            &["linux.resources.cpu.realtimeRuntime", "cgroup v2"],
        );
    } else {
        // RT group scheduling: the test parent has no RT budget to hand out.
        create_fails(
            &env,
            "rt",
            json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 1000}}),
            &["linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us"],
        );
        // This hybrid host: v1 keys cannot go through unified; the disk's scheduler has no
        // per-device BFQ weights.
        create_fails(
            &env,
            "unified",
            json!({"unified": {"memory.max": "1000000"}}),
            &["linux.resources.unified[\"memory.max\"]", "v1 controller"],
        );
        create_fails(
            &env,
            "weightdev",
            json!({"blockIO": {"weightDevice": [{"major": 254, "minor": 0, "weight": 300}]}}),
            &[
                "linux.resources.blockIO.weightDevice[0].weight",
                "blkio.bfq.weight_device",
            ],
        );
    }
}

#[test]
fn blkio_and_rt_and_misc_cpu_fields() {
    let env = Env::new("cgblk");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    let mut res = json!({
        "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                     "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]},
        "cpu": {"burst": 1000, "idle": 0},
        "memory": {"swappiness": 10, "disableOOMKiller": false}
    });
    let have_disk = Path::new("/sys/dev/block/254:0").exists();
    if !have_disk {
        res.as_object_mut().unwrap().remove("blockIO");
    }
    if !v2() {
        res["blockIO"]["weight"] = json!(300);
        res["memory"]["kernelTCP"] = json!(16777216);
    }
    b.config["linux"]["resources"] = res;
    env.create(&id, &b);
    if v2() {
        if have_disk {
            let m = cgread(&env, &id, "io", "io.max");
            assert!(
                m.contains("254:0 rbps=1048576") && m.contains("wiops=100"),
                "{m}"
            );
        }
        assert_eq!(cgread(&env, &id, "cpu", "cpu.max.burst"), "1000");
    } else {
        assert_eq!(
            cgread(&env, &id, "blkio", "blkio.throttle.read_bps_device"),
            "254:0 1048576"
        );
        assert_eq!(
            cgread(&env, &id, "blkio", "blkio.throttle.write_iops_device"),
            "254:0 100"
        );
        assert!(cgread(&env, &id, "blkio", "blkio.bfq.weight").contains("300"));
        assert_eq!(cgread(&env, &id, "cpu", "cpu.cfs_burst_us"), "1000");
        assert_eq!(cgread(&env, &id, "memory", "memory.swappiness"), "10");
        assert_eq!(
            cgread(&env, &id, "memory", "memory.kmem.tcp.limit_in_bytes"),
            "16777216"
        );
    }
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn run_without_resources_still_gets_default_devices() {
    let env = Env::new("cgdefdev");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "echo x > /dev/null && head -c 4 /dev/urandom | wc -c",
        ],
    );
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "4");
}

/// Every resource this host can set, checked in the cgroup files after create, after an
/// update with a LinuxResources file (podman's way) and after an update with runc's flags.
#[test]
fn update_every_resource_and_every_flag() {
    let env = Env::new("cgupdall");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    let disk = Path::new("/sys/dev/block/254:0").exists();
    let two_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let cpus = if two_cpus { "0-1" } else { "0" };
    let hf = if Path::new("/sys/fs/cgroup/hugetlb").exists() {
        "hugetlb.2MB.limit_in_bytes"
    } else {
        "hugetlb.2MB.max"
    };
    let mib = |n: i64| n << 20;
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": mib(64), "reservation": mib(32), "swap": mib(128)},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 0, "cpus": "0",
                "mems": "0", "idle": 0},
        "pids": {"limit": 30},
        "hugepageLimits": [{"pageSize": "2MB", "limit": mib(4)}]
    });
    if !v2() {
        b.config["linux"]["resources"]["memory"]["swappiness"] = json!(10);
    }
    env.create(&id, &b);
    env.ok(&["start", &id]);
    let rd = |ctrl: &str, file: &str| cgread(&env, &id, ctrl, file);
    // The weight files: v1 CFQ/BFQ, v2 BFQ or io.weight — whichever this kernel has.
    let weight_file = || {
        let d = cgdir(&env, &id, if v2() { "io" } else { "blkio" });
        [
            "blkio.weight",
            "blkio.bfq.weight",
            "io.bfq.weight",
            "io.weight",
        ]
        .into_iter()
        .find(|f| d.join(f).exists())
    };
    let check = |mem: i64, res: i64, swap: i64, shares: u64, quota: i64, period: u64| {
        if v2() {
            assert_eq!(rd("memory", "memory.max"), mem.to_string());
            assert_eq!(rd("memory", "memory.low"), res.to_string());
            assert_eq!(rd("memory", "memory.swap.max"), (swap - mem).to_string());
            assert_eq!(rd("cpu", "cpu.weight"), runc_weight(shares).to_string());
            assert_eq!(rd("cpu", "cpu.max"), format!("{quota} {period}"));
        } else {
            assert_eq!(rd("memory", "memory.limit_in_bytes"), mem.to_string());
            assert_eq!(rd("memory", "memory.soft_limit_in_bytes"), res.to_string());
            assert_eq!(
                rd("memory", "memory.memsw.limit_in_bytes"),
                swap.to_string()
            );
            assert_eq!(rd("cpu", "cpu.shares"), shares.to_string());
            assert_eq!(rd("cpu", "cpu.cfs_quota_us"), quota.to_string());
            assert_eq!(rd("cpu", "cpu.cfs_period_us"), period.to_string());
        }
    };
    check(mib(64), mib(32), mib(128), 512, 20000, 100000);
    assert_eq!(rd("pids", "pids.max"), "30");
    assert_eq!(rd("cpuset", "cpuset.cpus"), "0");
    assert_eq!(rd("hugetlb", hf), mib(4).to_string());
    if !v2() {
        assert_eq!(rd("memory", "memory.swappiness"), "10");
    }

    // podman's way: a LinuxResources file with everything.
    let mut res = json!({
        "memory": {"limit": mib(96), "reservation": mib(48), "swap": mib(192)},
        "cpu": {"shares": 1024, "quota": 30000, "period": 200000, "burst": 500, "cpus": cpus,
                "mems": "0"},
        "pids": {"limit": 40},
        "hugepageLimits": [{"pageSize": "2MB", "limit": mib(8)}]
    });
    if weight_file().is_some() {
        res["blockIO"] = json!({"weight": 400});
    }
    if disk {
        res["blockIO"]["throttleReadBpsDevice"] =
            json!([{"major": 254, "minor": 0, "rate": 2097152}]);
        res["blockIO"]["throttleWriteIOPSDevice"] =
            json!([{"major": 254, "minor": 0, "rate": 200}]);
    }
    if v2() {
        res["unified"] = json!({"memory.high": mib(90).to_string()});
    } else {
        res["memory"]["swappiness"] = json!(20);
        res["memory"]["kernelTCP"] = json!(mib(32));
    }
    let rfile = env.tmp.join("res.json");
    std::fs::write(&rfile, res.to_string()).unwrap();
    env.ok(&["update", "--resources", rfile.to_str().unwrap(), &id]);
    check(mib(96), mib(48), mib(192), 1024, 30000, 200000);
    assert_eq!(rd("pids", "pids.max"), "40");
    assert_eq!(rd("cpuset", "cpuset.cpus"), cpus);
    assert_eq!(rd("cpuset", "cpuset.mems"), "0");
    assert_eq!(
        rd(
            "cpu",
            if v2() {
                "cpu.max.burst"
            } else {
                "cpu.cfs_burst_us"
            }
        ),
        "500"
    );
    assert_eq!(rd("hugetlb", hf), mib(8).to_string());
    let ioctl = if v2() { "io" } else { "blkio" };
    if let Some(wf) = weight_file() {
        let want = if wf == "io.weight" {
            (1 + (400 - 10) * 9999 / 990).to_string()
        } else {
            "400".to_string()
        };
        let got = rd(ioctl, wf);
        assert!(
            got.split_whitespace().any(|w| w == want),
            "{wf}: {got}, want {want}"
        );
    }
    if disk {
        if v2() {
            let m = rd("io", "io.max");
            assert!(
                m.contains("254:0 rbps=2097152") && m.contains("wiops=200"),
                "{m}"
            );
        } else {
            assert_eq!(
                rd("blkio", "blkio.throttle.read_bps_device"),
                "254:0 2097152"
            );
            assert_eq!(rd("blkio", "blkio.throttle.write_iops_device"), "254:0 200");
        }
    }
    if v2() {
        assert_eq!(rd("memory", "memory.high"), mib(90).to_string());
    } else {
        assert_eq!(rd("memory", "memory.swappiness"), "20");
        assert_eq!(
            rd("memory", "memory.kmem.tcp.limit_in_bytes"),
            mib(32).to_string()
        );
    }

    // runc's flags, each one.
    let mut flags = vec![
        "update",
        "--memory",
        "100m",
        "--memory-reservation",
        "40m",
        "--memory-swap",
        "256m",
        "--cpu-shares",
        "256",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "150000",
        "--cpu-burst",
        "1000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--pids-limit",
        "50",
    ];
    if weight_file().is_some() {
        flags.extend(["--blkio-weight", "500"]);
    }
    if !v2() {
        flags.extend(["--kernel-memory-tcp", "16m"]);
    }
    flags.push(&id);
    env.ok(&flags);
    check(mib(100), mib(40), mib(256), 256, 25000, 150000);
    assert_eq!(rd("pids", "pids.max"), "50");
    assert_eq!(rd("cpuset", "cpuset.cpus"), "0");
    assert_eq!(
        rd(
            "cpu",
            if v2() {
                "cpu.max.burst"
            } else {
                "cpu.cfs_burst_us"
            }
        ),
        "1000"
    );
    if let Some(wf) = weight_file() {
        let want = if wf == "io.weight" {
            (1 + (500 - 10) * 9999 / 990).to_string()
        } else {
            "500".to_string()
        };
        let got = rd(ioctl, wf);
        assert!(got.split_whitespace().any(|w| w == want), "{wf}: {got}");
    }
    if !v2() {
        assert_eq!(
            rd("memory", "memory.kmem.tcp.limit_in_bytes"),
            mib(16).to_string()
        );
    }
    // What was not named stays: hugetlb from the file update.
    assert_eq!(rd("hugetlb", hf), mib(8).to_string());
    // cpu.idle last: an idle group's shares read back as the minimum weight.
    std::fs::write(&rfile, r#"{"cpu":{"idle":1}}"#).unwrap();
    env.ok(&["update", "--resources", rfile.to_str().unwrap(), &id]);
    assert_eq!(rd("cpu", "cpu.idle"), "1");
    env.ok(&["delete", "--force", &id]);
    assert!(
        all_cg_dirs(&env, &id).is_empty(),
        "{:?}",
        all_cg_dirs(&env, &id)
    );
}

/// Every hierarchy berth uses lists `want` for `pid` in /proc/<pid>/cgroup (the host's view).
fn assert_in_every_hierarchy(pid: i32, want: &str) {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let uses_cgroup2 = v2() || Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    let mut checked = 0;
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if ctrls.is_empty() && !uses_cgroup2 {
            continue;
        }
        assert_eq!(path, want, "pid {pid}, hierarchy {ctrls:?}: {cg}");
        checked += 1;
    }
    assert!(checked > 0, "{cg}");
}

#[test]
fn placed_in_every_hierarchy_before_second_fork_cgroupns_and_exec() {
    let env = Env::new("cgplace");
    let want = |id: &str| env.cg_rel(id);
    // A time namespace makes the container process the child of a second fork, and a cgroup
    // namespace is unshared during setup: both must happen after the placement.
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["root"]["readonly"] = json!(false);
    let nss = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.push(json!({"type": "time"}));
    if !nss.iter().any(|n| n["type"] == "cgroup") {
        nss.push(json!({"type": "cgroup"}));
    }
    env.create(&id, &b);
    let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_in_every_hierarchy(pid, &want(&id));
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");

    // An exec'd process (second fork into the container's pid namespace) goes there too.
    let pf = env.tmp.join("exec.pid");
    let errf = env.tmp.join("exec.err");
    let st = env
        .cmd()
        .args(["exec", "--detach", "--pid-file", pf.to_str().unwrap(), &id])
        .args(["sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&errf).unwrap());
    let epid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_in_every_hierarchy(epid, &want(&id));

    // `exec --cgroup SUB` goes to the existing sub-cgroup, in every hierarchy.
    for d in all_cg_dirs(&env, &id) {
        std::fs::create_dir(d.join("sub")).unwrap();
        // A new v1 cpuset group starts empty; on v2 `sub` has no controller files at all.
        if !v2() && d.join("cpuset.cpus").exists() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(d.join(f)).unwrap();
                std::fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let pf2 = env.tmp.join("exec2.pid");
    let st = env
        .cmd()
        .args(["exec", "--detach", "--cgroup", "sub", "--pid-file"])
        .args([pf2.to_str().unwrap(), &id, "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&errf).unwrap());
    let epid2: i32 = std::fs::read_to_string(&pf2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_in_every_hierarchy(epid2, &format!("{}/sub", want(&id)));
    // ps sees processes in sub-cgroups (as runc's), and delete --force kills them and removes
    // the sub-cgroups with the container's own.
    let ps: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.contains(&epid2) && ps.contains(&epid), "{ps:?}");
    env.ok(&["delete", "--force", &id]);
    wait_for("the exec'd processes to die", || {
        !alive(epid) && !alive(epid2)
    });
    assert!(
        all_cg_dirs(&env, &id).is_empty(),
        "{:?}",
        all_cg_dirs(&env, &id)
    );

    // Inside, the cgroup namespace is rooted at the container's cgroup.
    let id2 = env.id("b");
    let mut b2 = env.bundle(&id2, &["cat", "/proc/self/cgroup"]);
    let nss = b2.config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.push(json!({"type": "time"}));
    if !nss.iter().any(|n| n["type"] == "cgroup") {
        nss.push(json!({"type": "cgroup"}));
    }
    let (code, out, err) = env.run(&id2, &b2);
    assert_eq!(code, 0, "{err}");
    let uses_cgroup2 = v2() || Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    for line in out.lines() {
        let (pre, path) = line.rsplit_once(':').unwrap();
        if pre.ends_with(':') && !uses_cgroup2 {
            continue;
        }
        assert_eq!(path, "/", "{out}");
    }
}

/// A process standing for a service in a test-owned cgroup (killed by pid on drop).
struct Service {
    child: std::process::Child,
    dir: PathBuf,
}

impl Service {
    /// `dir` is created; a `sleep` moves itself into it and stays.
    fn start(dir: &Path) -> Service {
        std::fs::create_dir_all(dir).unwrap();
        let child = std::process::Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec sleep 1000"])
            .arg(dir)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let s = Service {
            child,
            dir: dir.to_path_buf(),
        };
        let pid = s.child.id().to_string();
        wait_for("the service process to enter its cgroup", || {
            std::fs::read_to_string(dir.join("cgroup.procs"))
                .is_ok_and(|t| t.lines().any(|l| l == pid))
        });
        s
    }

    /// Run berth from inside the service's cgroup (as a unit's ExecStart would); the
    /// container's stdio go to files in `tmp`.
    fn berth(&self, env: &Env, args: &[&str]) -> (bool, String) {
        let err = env.tmp.join("svc-berth.err");
        let st = std::process::Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(&self.dir)
            .arg(&env.bin)
            .arg("--root")
            .arg(&env.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(env.tmp.join("svc-berth.out")).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(&err).unwrap())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 19 item 0. Pure cgroup v2, berth called from a service's cgroup that holds processes
/// (any systemd service): without cgroupsPath, or with a relative one, the container's cgroup
/// goes beside the caller's (under its parent, as runc's fs2 driver does), never inside it;
/// an absolute cgroupsPath is taken as it is; one whose parent holds processes is refused up
/// front, leaving nothing behind. The caller's cgroup is never written (subtree_control,
/// cgroup.type).
#[test]
fn v2_caller_in_a_service_cgroup_with_processes() {
    if !v2() {
        eprintln!("skipped: needs a pure cgroup v2 host (runs in hack/vm)");
        return;
    }
    let env = Env::new("cgsvc");
    let root = Path::new("/sys/fs/cgroup");
    let parent_rel = env.cg_parent.trim_start_matches('/').to_string();
    let svc_dir = root.join(&parent_rel).join("svc.service");
    let svc = Service::start(&svc_dir);
    let caller_state = || {
        (
            std::fs::read_to_string(svc_dir.join("cgroup.subtree_control")).unwrap(),
            std::fs::read_to_string(svc_dir.join("cgroup.type")).unwrap(),
            std::fs::read_dir(&svc_dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_type().unwrap().is_dir())
                .count(),
        )
    };
    let before = caller_state();
    assert_eq!(before.0.trim(), "", "a fresh cgroup delegates nothing");

    let cases: [(&str, Option<String>, String); 3] = [
        (
            "none",
            None,
            format!("{}/{}", env.cg_parent, env.id("none")),
        ),
        (
            "rel",
            Some(format!("rel/{}", env.id("rel"))),
            format!("{}/rel/{}", env.cg_parent, env.id("rel")),
        ),
        (
            "abs",
            Some(format!("{}/abs/{}", env.cg_parent, env.id("abs"))),
            format!("{}/abs/{}", env.cg_parent, env.id("abs")),
        ),
    ];
    // One bundle (a rootfs copy is slow under emulation), one container id per case.
    let mut b = env.bundle("svc", &["sleep", "1000"]);
    for (tag, path, want) in cases {
        let id = env.id(tag);
        match &path {
            None => {
                b.config["linux"]
                    .as_object_mut()
                    .unwrap()
                    .remove("cgroupsPath");
            }
            Some(p) => b.config["linux"]["cgroupsPath"] = json!(p),
        }
        b.config["linux"]["resources"] =
            json!({"memory": {"limit": 33554432}, "pids": {"limit": 40}});
        b.save();
        let (ok, err) = svc.berth(&env, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(ok, "{tag}: create from the service's cgroup failed: {err}");
        let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(cg.trim(), format!("0::{want}"), "{tag}");
        let d = root.join(want.trim_start_matches('/'));
        assert_eq!(
            std::fs::read_to_string(d.join("memory.max"))
                .unwrap()
                .trim(),
            "33554432",
            "{tag}"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("pids.max")).unwrap().trim(),
            "40",
            "{tag}"
        );
        assert_eq!(
            caller_state(),
            before,
            "{tag}: the caller's cgroup was changed"
        );
        let (ok, err) = svc.berth(&env, &["delete", "--force", &id]);
        assert!(ok, "{tag}: delete: {err}");
        assert!(!d.exists(), "{tag}: {} left after delete", d.display());
    }

    // Absolute, below the caller's own cgroup (which holds processes): refused before any
    // side effect, with the reason.
    let id = env.id("inside");
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/svc.service/{id}", env.cg_parent));
    b.save();
    let (ok, err) = svc.berth(&env, &["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(!ok, "a container under a cgroup with processes was created");
    assert!(
        err.contains("linux.cgroupsPath") && err.contains("holds processes"),
        "{err}"
    );
    assert!(err.contains("berth's own cgroup"), "{err}");
    assert_eq!(caller_state(), before, "the caller's cgroup was changed");
    assert!(!svc_dir.join(&id).exists());
    assert!(
        !env.root.join(&id).exists(),
        "state left behind by a refused create"
    );
}

/// Issue 19 item 13. Pure cgroup v2: cpu.shares becomes cpu.weight by runc ≥ 1.3.2's conversion
/// (1024, docker's default, → 100, the weight of every uncontained process), at create and at
/// update (`--cpu-shares`, `--resources`). On v1, shares are written as they are.
#[test]
fn cpu_shares_to_weight_as_runc() {
    let env = Env::new("cgweight");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["resources"] = json!({"cpu": {"shares": 1024}});
    env.create(&id, &b);
    let (file, conv): (&str, fn(u64) -> u64) = if v2() {
        ("cpu.weight", runc_weight)
    } else {
        ("cpu.shares", |s| s)
    };
    assert_eq!(cgread(&env, &id, "cpu", file), conv(1024).to_string());
    let rfile = env.tmp.join("res.json");
    std::fs::write(&rfile, r#"{"cpu":{"shares":22000}}"#).unwrap();
    env.ok(&["update", "--resources", rfile.to_str().unwrap(), &id]);
    assert_eq!(cgread(&env, &id, "cpu", file), conv(22000).to_string());
    env.ok(&["update", "--cpu-shares", "2", &id]);
    assert_eq!(cgread(&env, &id, "cpu", file), conv(2).to_string());
    env.ok(&["update", "--cpu-shares", "262144", &id]);
    assert_eq!(cgread(&env, &id, "cpu", file), conv(262_144).to_string());
    env.ok(&["delete", "--force", &id]);
}

/// Issue 19 item 14: runc's update flags one at a time on a running container created with
/// memory.limit 32 MiB and memory.reservation 24 MiB (no swap), as an engine sends them, each
/// read back from the cgroup files. The values are runc's (1.1.5 in the pure v2 VM, the same
/// for every step but the cpu.weight conversion, where berth follows runc ≥ 1.3.2).
#[test]
fn update_runc_flags_one_at_a_time() {
    let env = Env::new("cgupdseq");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    let mib = |n: i64| n << 20;
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": mib(32), "reservation": mib(24)},
        "cpu": {"shares": 100, "quota": 500000, "period": 1000000},
        "pids": {"limit": 20}
    });
    env.create(&id, &b);
    env.ok(&["start", &id]);
    let rd = |ctrl: &str, file: &str| cgread(&env, &id, ctrl, file);
    let cpu = (std::thread::available_parallelism().map_or(1, |n| n.get()) - 1).to_string();
    // v1 writes "unlimited" as the page-rounded i64::MAX.
    let unlimited = |v: &str| {
        if v2() || v != "max" {
            v.to_string()
        } else {
            "9223372036854771712".to_string()
        }
    };
    let mem = |max: &str, low: &str, swap: Option<&str>| {
        if v2() {
            assert_eq!(rd("memory", "memory.max"), max, "memory.max");
            assert_eq!(rd("memory", "memory.low"), low, "memory.low");
            if let Some(s) = swap {
                assert_eq!(rd("memory", "memory.swap.max"), s, "memory.swap.max");
            }
        } else {
            assert_eq!(rd("memory", "memory.limit_in_bytes"), unlimited(max));
            assert_eq!(rd("memory", "memory.soft_limit_in_bytes"), low);
        }
    };
    let cpu_max = |quota: &str, period: &str| {
        if v2() && systemd_driver() && quota == "max" {
            // systemd (252) writes its default period whenever the quota is unlimited, racing
            // berth's own write of the period asked for; unthrottled, the period has no effect.
            let v = rd("cpu", "cpu.max");
            assert!(
                v == format!("max {period}") || v == "max 100000",
                "cpu.max {v}"
            );
        } else if v2() {
            assert_eq!(rd("cpu", "cpu.max"), format!("{quota} {period}"));
        } else {
            let q = if quota == "max" { "-1" } else { quota };
            assert_eq!(rd("cpu", "cpu.cfs_quota_us"), q);
            assert_eq!(rd("cpu", "cpu.cfs_period_us"), period);
        }
    };
    let up = |flags: &[&str]| {
        let mut args = vec!["update"];
        args.extend(flags);
        args.push(&id);
        env.ok(&args);
    };
    mem(&mib(32).to_string(), &mib(24).to_string(), Some("max"));
    up(&["--memory", "67108864"]);
    mem("67108864", &mib(24).to_string(), Some("max"));
    up(&["--memory", "50M"]);
    mem(&mib(50).to_string(), &mib(24).to_string(), Some("max"));
    up(&["--memory-reservation", "20M"]);
    mem(&mib(50).to_string(), &mib(20).to_string(), Some("max"));
    let swap = v2()
        || cgdir(&env, &id, "memory")
            .join("memory.memsw.limit_in_bytes")
            .exists();
    if swap {
        up(&["--memory-swap", "-1"]);
        mem(&mib(50).to_string(), &mib(20).to_string(), Some("max"));
        up(&["--memory", "60M", "--memory-swap", "100M"]);
        mem(
            &mib(60).to_string(),
            &mib(20).to_string(),
            Some(&mib(40).to_string()),
        );
        if !v2() {
            assert_eq!(
                rd("memory", "memory.memsw.limit_in_bytes"),
                mib(100).to_string()
            );
        }
    }
    // Unlimited memory is unlimited memory+swap too (runc).
    up(&["--memory", "-1"]);
    mem("max", &mib(20).to_string(), Some("max"));
    up(&["--pids-limit", "10"]);
    assert_eq!(rd("pids", "pids.max"), "10");
    up(&["--pids-limit", "-1"]);
    assert_eq!(rd("pids", "pids.max"), "max");
    up(&["--cpu-period", "50000", "--cpu-quota", "20000"]);
    cpu_max("20000", "50000");
    up(&["--cpu-quota", "-1"]);
    cpu_max("max", "50000");
    up(&["--cpu-period", "80000"]);
    cpu_max("max", "80000");
    up(&["--cpu-share", "2048"]);
    if v2() {
        assert_eq!(rd("cpu", "cpu.weight"), runc_weight(2048).to_string());
    } else {
        assert_eq!(rd("cpu", "cpu.shares"), "2048");
    }
    up(&["--cpuset-cpus", &cpu]);
    assert_eq!(rd("cpuset", "cpuset.cpus"), cpu);
    // Nothing else moved.
    mem("max", &mib(20).to_string(), Some("max"));
    cpu_max("max", "80000");
    env.ok(&["delete", "--force", &id]);
    assert!(
        all_cg_dirs(&env, &id).is_empty(),
        "{:?}",
        all_cg_dirs(&env, &id)
    );
}

/// The cgroup of `pid` in the hierarchy whose controller list contains `ctrl` (the cgroup2 line
/// on a pure v2 host).
fn cgroup_of(pid: i32, ctrl: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cg.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let hit = if v2() {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == ctrl)
            };
            hit.then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {ctrl} hierarchy for {pid}: {cg}"))
}

/// `exec --cgroup` takes runc's forms: `/` is the container's own cgroup, a path is joined
/// below it (leading `/`, `.` and `..` inside allowed, leaving it is not), `CONTROLLER:PATH`
/// per v1 controller (several, comma-separated); malformed combinations are refused with the
/// flag named, and start nothing.
#[test]
fn exec_cgroup_forms_as_runc() {
    let env = Env::new("execcg");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["root"]["readonly"] = json!(false);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    // The container's cgroup for this run's driver (a scope with the systemd driver).
    let own = env.cg_rel(&id);
    for d in all_cg_dirs(&env, &id) {
        std::fs::create_dir(d.join("sub")).unwrap();
        if !v2() && d.join("cpuset.cpus").exists() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(d.join(f)).unwrap();
                std::fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let exec = |n: usize, cg: &[&str]| -> (bool, i32, String) {
        let pf = env.tmp.join(format!("exec{n}.pid"));
        let mut args = vec!["exec", "--detach", "--pid-file", pf.to_str().unwrap()];
        for c in cg {
            args.extend(["--cgroup", c]);
        }
        args.extend([id.as_str(), "sleep", "1000"]);
        // Not env.call: the detached process would hold its output pipes open.
        let errf = env.tmp.join(format!("exec{n}.err"));
        let st = env
            .cmd()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errf).unwrap())
            .status()
            .unwrap();
        let (code, err) = (
            st.code().unwrap_or(-1),
            std::fs::read_to_string(&errf).unwrap_or_default(),
        );
        let pid = std::fs::read_to_string(&pf)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        (code == 0, pid, err)
    };
    let mut n = 0;
    let mut ok = |cg: &[&str]| {
        n += 1;
        let (ok, pid, err) = exec(n, cg);
        assert!(ok && pid > 0, "exec --cgroup {cg:?}: {err}");
        pid
    };
    let p = ok(&["/"]);
    assert_in_every_hierarchy(p, &own);
    let p = ok(&["/sub"]);
    assert_in_every_hierarchy(p, &format!("{own}/sub"));
    let p = ok(&["sub/../sub/."]);
    assert_in_every_hierarchy(p, &format!("{own}/sub"));
    if !v2() {
        let p = ok(&["memory:sub", "pids,freezer:/"]);
        assert_eq!(cgroup_of(p, "memory"), format!("{own}/sub"));
        assert_eq!(cgroup_of(p, "pids"), own);
        assert_eq!(cgroup_of(p, "freezer"), own);
        assert_eq!(cgroup_of(p, "devices"), own);
        let p = ok(&["name=systemd:sub"]);
        assert_eq!(cgroup_of(p, "name=systemd"), format!("{own}/sub"));
        assert_eq!(cgroup_of(p, "memory"), own);
    }
    let before = env.ok(&["ps", "--format", "json", &id]);
    let mut bad = |cg: &[&str], want: &str| {
        n += 1;
        let (ok, _, err) = exec(n, cg);
        assert!(!ok, "exec --cgroup {cg:?} succeeded");
        assert!(
            err.contains("--cgroup") && err.contains(want),
            "{cg:?}: {err}"
        );
    };
    bad(&[".."], "leads out of the container's cgroup");
    bad(&["sub/../.."], "leads out of the container's cgroup");
    bad(&["sub", "memory:sub"], "must be the only --cgroup");
    bad(&[":sub"], "empty controller");
    if v2() {
        bad(&["memory:sub"], "cgroup v2 only");
    } else {
        bad(&["memory:sub", "memory:/"], "more than once");
        bad(&["nosuchctl:sub"], "no such cgroup v1 controller");
    }
    assert_eq!(env.ok(&["ps", "--format", "json", &id]), before);
    env.ok(&["delete", "--force", &id]);
}

/// A user namespace without a network namespace (`runc spec --rootless` style, root.readonly
/// included): sysfs is then the host's, bound, and on pure cgroup v2 it brings the host's
/// cgroup2 mount at /sys/fs/cgroup along, so a new cgroup2 mount there (with a cgroup
/// namespace) is refused with EBUSY — the same filesystem on the same mount point. The
/// container's own cgroup is bound there instead (runc falls back to a bind too): the
/// container sees its own limits at /sys/fs/cgroup, with and without a cgroup namespace
/// (issue 19 item 15).
#[test]
fn userns_without_netns_gets_its_own_cgroup_mounted() {
    let env = Env::new("usernsnonet");
    // One bundle (copying the rootfs is slow in the VM), one config per case.
    let mut b = env.bundle(
        &env.id("bundle"),
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["root"]["readonly"] = json!(true);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 42}});
    let sysfs = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["destination"] == "/sys")
        .unwrap();
    // /sys as a sysfs mount (berth binds the host's when it cannot mount one) or as the rbind
    // of /sys that `runc spec --rootless` writes.
    let sys_mount = b.config["mounts"][sysfs].clone();
    let sys_rbind = json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    for (cgroup_ns, rbind) in [(true, false), (true, true), (false, false)] {
        let what = format!("cgroup namespace {cgroup_ns}, /sys rbind {rbind}");
        let id = env.id(&format!("c{}{}", cgroup_ns as u8, rbind as u8));
        let mut ns = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
            json!({"type": "user"}),
        ];
        if cgroup_ns {
            ns.push(json!({"type": "cgroup"}));
        }
        b.config["linux"]["namespaces"] = json!(ns);
        b.config["linux"]["cgroupsPath"] = json!(env.cgroups_path(&id));
        b.config["mounts"][sysfs] = if rbind {
            sys_rbind.clone()
        } else {
            sys_mount.clone()
        };
        b.save();
        let (code, out, err) = env.run(&id, &b);
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(out.trim(), "42", "{what}: {err}");
    }
}
