//! The newer process/linux fields of the runtime-spec: personality, ioPriority, scheduler,
//! execCPUAffinity, memoryPolicy — each checked from inside the container; bad values are
//! refused before anything is left behind.
mod common;
use common::*;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

fn run_ok(env: &Env, b: &Bundle, id: &str) -> String {
    let (code, out, err) = env.run(id, b);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

/// `berth run` must fail, name `field` in its error, and leave no state behind.
fn run_fails(env: &Env, b: &Bundle, id: &str, field: &str) -> String {
    let (code, out, err) = env.run(id, b);
    assert_ne!(code, 0, "run succeeded: {out}");
    assert!(err.contains(field), "error does not name {field}: {err}");
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
    err
}

/// (nice, policy) of a /proc/<pid>/stat line.
fn nice_policy(stat: &str) -> (i64, i64) {
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    (f[16].parse().unwrap(), f[38].parse().unwrap())
}

#[test]
fn personality_linux32_and_bad_flags() {
    let env = Env::new("pers");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "uname -m; cat /proc/self/personality"]);
    let out = run_ok(&env, &b, &id);
    assert!(out.starts_with("x86_64\n00000000"), "baseline: {out}");
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    let id = env.id("b");
    let out = run_ok(&env, &b, &id);
    assert!(out.starts_with("i686\n00000008"), "{out}");
    b.config["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["UNAME26"]});
    run_fails(&env, &b, &env.id("c"), "linux.personality.flags");
    b.config["linux"]["personality"] = json!({"domain": "LINUX64"});
    run_fails(&env, &b, &env.id("d"), "linux.personality.domain");
}

#[test]
fn io_priority_and_its_validation() {
    let env = Env::new("ioprio");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["ionice"]);
    assert_eq!(run_ok(&env, &b, &id).trim(), "none: prio 0", "baseline");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    let id = env.id("b");
    assert_eq!(run_ok(&env, &b, &id).trim(), "idle");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 4});
    let id = env.id("c");
    assert_eq!(run_ok(&env, &b, &id).trim(), "realtime: prio 4");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
    run_fails(&env, &b, &env.id("d"), "process.ioPriority.priority");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_FAST", "priority": 1});
    run_fails(&env, &b, &env.id("e"), "process.ioPriority.class");
}

#[test]
fn scheduler_policy_nice_and_spec_flag_names() {
    let env = Env::new("sched");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["cat", "/proc/self/stat"]);
    assert_eq!(nice_policy(&run_ok(&env, &b, &id)), (0, 0), "baseline");
    // The flag under its runtime-spec name (oci-spec 0.10 spells it differently).
    b.config["process"]["scheduler"] =
        json!({"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    let id = env.id("b");
    assert_eq!(nice_policy(&run_ok(&env, &b, &id)), (7, 3));
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"});
    let id = env.id("c");
    assert_eq!(nice_policy(&run_ok(&env, &b, &id)).1, 5);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 0});
    run_fails(&env, &b, &env.id("d"), "process.scheduler.priority");
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": -21});
    run_fails(&env, &b, &env.id("e"), "process.scheduler.nice");
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "runtime": 1000});
    run_fails(&env, &b, &env.id("f"), "process.scheduler.runtime");
}

#[test]
fn memory_policy_from_inside() {
    let env = Env::new("mempol");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["head", "-n1", "/proc/self/numa_maps"]);
    let out = run_ok(&env, &b, &id);
    assert!(out.contains(" default "), "baseline: {out}");
    // This host has one NUMA node (0): every mode that takes nodes can still be shown.
    for (pol, want) in [
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            " bind=static:0 ",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            " interleave:0 ",
        ),
        (
            json!({"mode": "MPOL_PREFERRED", "nodes": "0"}),
            " prefer:0 ",
        ),
        (json!({"mode": "MPOL_LOCAL"}), " local "),
    ] {
        b.config["linux"]["memoryPolicy"] = pol.clone();
        let id = env.id(&format!("m{}", want.len()));
        let out = run_ok(&env, &b, &id);
        assert!(out.contains(want), "{pol}: {out}");
    }
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"});
    run_fails(&env, &b, &env.id("e"), "linux.memoryPolicy.nodes");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1-0"});
    run_fails(&env, &b, &env.id("f"), "linux.memoryPolicy.nodes");
    // A node the host does not have: the kernel refuses, the error names the field.
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1000"});
    run_fails(&env, &b, &env.id("g"), "linux.memoryPolicy");
}

/// A running container whose process sleeps.
fn running(env: &Env, b: &mut Bundle, id: &str) {
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    env.create(id, b);
    env.ok(&["start", id]);
    env.wait_status(id, "running");
}

fn online_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn exec_process_json_ioprio_scheduler_affinity() {
    let env = Env::new("execattr");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    running(&env, &mut b, &id);
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let proc_file = env.tmp.join("process.json");
    let write = |extra: Value| {
        let mut p = json!({"args": ["sh", "-c", "cat /proc/self/stat; ionice; grep Cpus_allowed_list /proc/self/status"],
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin:/usr/bin"]});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        std::fs::write(&proc_file, serde_json::to_vec(&p).unwrap()).unwrap();
    };
    let pf = proc_file.to_str().unwrap();

    write(json!({
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
        "scheduler": {"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        "execCPUAffinity": {"final": "0"}
    }));
    let (code, out, err) = env.exec(&["--process", pf, &id]);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(nice_policy(l[0]), (3, 3), "{out}");
    assert_eq!(l[1], "best-effort: prio 6", "{out}");
    assert_eq!(l[2], "Cpus_allowed_list:\t0", "{out}");
    // The container's own process was not touched.
    let st = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    assert_eq!(nice_policy(&st), (0, 0));

    // execCPUAffinity.initial: the joining process's CPUs before the cgroup placement, read
    // back from the kernel in the debug log (placement into the v1 cpuset resets them, so
    // without `final` the process ends on the cgroup's CPUs).
    if online_cpus() != "0" {
        write(json!({"execCPUAffinity": {"initial": "1"}}));
        // --debug is a global option: before the subcommand.
        let (code, out, err) = env.call(&["--debug", "exec", "--process", pf, &id]);
        assert_eq!(code, 0, "{err}");
        let key = "CPU affinity before joining the cgroup: ";
        let at = err
            .find(key)
            .unwrap_or_else(|| panic!("no affinity in the log: {err}"));
        let list: String = err[at + key.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '-')
            .collect();
        assert_eq!(list, "1", "{err}");
        assert!(out.contains("Cpus_allowed_list:"), "{out}");
    }
    // A CPU the host does not have: refused, naming the field, and nothing runs.
    write(json!({"execCPUAffinity": {"initial": "1000"}}));
    let (code, _, err) = env.exec(&["--process", pf, &id]);
    assert_ne!(code, 0);
    assert!(err.contains("process.execCPUAffinity.initial"), "{err}");
    write(json!({"execCPUAffinity": {"final": "0-x"}}));
    let (code, _, err) = env.exec(&["--process", pf, &id]);
    assert_ne!(code, 0);
    assert!(err.contains("execCPUAffinity"), "{err}");
    write(json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": -1}}));
    let (code, _, err) = env.exec(&["--process", pf, &id]);
    assert_ne!(code, 0);
    assert!(err.contains("process.ioPriority.priority"), "{err}");
    // Only the container's process is left in its cgroup.
    std::thread::sleep(Duration::from_millis(50));
    let (_, out, _) = env.exec(&[&id, "ps", "-o", "pid,comm"]);
    assert_eq!(
        out.lines().count(),
        3,
        "init, ps and the header only: {out}"
    );
}

#[test]
fn exec_inherits_the_containers_fields() {
    let env = Env::new("execinh");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    b.config["process"]["execCPUAffinity"] = json!({"final": "0"});
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    running(&env, &mut b, &id);
    let (code, out, err) = env.exec(&[
        &id,
        "sh",
        "-c",
        "uname -m; ionice; grep Cpus_allowed_list /proc/self/status",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "i686\nidle\nCpus_allowed_list:\t0\n");
    // The init process: personality and ioPriority yes, execCPUAffinity no (runtime-spec:
    // "not applicable to the container's init process").
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let cpus = st
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .unwrap();
    if online_cpus() != "0" {
        assert_ne!(cpus, "Cpus_allowed_list:\t0", "init got execCPUAffinity");
    }
    let pers = std::fs::read_to_string(format!("/proc/{init}/personality")).unwrap();
    assert_eq!(pers.trim(), "00000008");
}

#[test]
fn intel_rdt_is_a_clear_error() {
    let env = Env::new("rdt");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    b.config["linux"]["intelRdt"] = json!({"closID": "berth-test", "l3CacheSchema": "L3:0=f"});
    let err = run_fails(&env, &b, &id, "linux.intelRdt");
    assert!(err.contains("resctrl"), "{err}");
    // Nothing was made in the test's cgroup parent either.
    assert!(
        env.cgroup_parent_dirs().iter().all(|d| std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .all(|e| !e.path().is_dir())),
        "a cgroup was left behind"
    );
}

/// A veth interface on the host (this kernel has no dummy driver), deleted with its peer on
/// drop if it is still there.
struct Dummy(String);

impl Dummy {
    fn new(tag: u32) -> Dummy {
        let name = format!("bt{}x{tag}", std::process::id() % 100000);
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&[
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{name}p"),
        ]);
        let d = Dummy(name);
        ip(&["addr", "add", "10.213.7.5/24", "dev", &d.0]);
        ip(&["addr", "add", "fd00:be27::5/64", "dev", &d.0]);
        d
    }
    fn on_host(&self) -> bool {
        std::path::Path::new("/sys/class/net")
            .join(&self.0)
            .exists()
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn net_devices_moved_renamed_with_addresses() {
    let env = Env::new("netdev");
    let dev = Dummy::new(1);
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &["sh", "-c", "ip -o link show ctr0; ip -o addr show dev ctr0"],
    );
    assert!(
        b.config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"),
        "the test bundle has a network namespace"
    );
    b.config["linux"]["netDevices"] = json!({ dev.0.clone(): {"name": "ctr0"} });
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "ip -o link show ctr0; ip -o addr show dev ctr0; sleep 1000"
    ]);
    env.create(&id, &b);
    assert!(!dev.on_host(), "{} is still on the host", dev.0);
    env.ok(&["start", &id]);
    let mut out = String::new();
    for _ in 0..400 {
        out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
        if out.contains("fd00:be27::5") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(out.contains(": ctr0") && out.contains(",UP"), "{out}");
    assert!(out.contains("inet 10.213.7.5/24"), "{out}");
    assert!(out.contains("inet6 fd00:be27::5/64"), "{out}");
    // Not moved back on delete (runtime-spec): a virtual device goes with its namespace
    // (and a veth takes its peer along).
    env.ok(&["delete", "--force", &id]);
    let peer = std::path::Path::new("/sys/class/net").join(format!("{}p", dev.0));
    for _ in 0..300 {
        if !peer.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !peer.exists() && !dev.on_host(),
        "the veth outlived the container's namespace"
    );

    // Errors name the field, nothing is left behind, the host device stays where it was.
    let dev2 = Dummy::new(2);
    let mut b = env.bundle(&env.id("b"), &["true"]);
    b.config["linux"]["netDevices"] = json!({ "berth-nonexist": {} });
    run_fails(
        &env,
        &b,
        &env.id("b"),
        "linux.netDevices[\"berth-nonexist\"]",
    );
    b.config["linux"]["netDevices"] = json!({ dev2.0.clone(): {"name": "bad/name"} });
    run_fails(&env, &b, &env.id("c"), "linux.netDevices");
    b.config["linux"]["netDevices"] = json!({ dev2.0.clone(): {"name": "lo"} });
    let err = run_fails(&env, &b, &env.id("d"), "linux.netDevices");
    assert!(err.contains("already exists"), "{err}");
    b.config["linux"]["netDevices"] = json!({ dev2.0.clone(): {} });
    let v: Vec<Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    b.config["linux"]["namespaces"] = json!(v);
    run_fails(&env, &b, &env.id("e"), "linux.netDevices");
    assert!(dev2.on_host(), "the device was lost by a failed create");
}

/// `linux.netDevices` with the container's network namespace joined by path: the device goes
/// into that namespace (and stays there after delete, with the namespace).
#[test]
fn net_devices_moved_into_a_joined_network_namespace() {
    let env = Env::new("netdevjoin");
    // A persistent namespace bound on a file of the test, unmounted on drop (before `env`
    // removes the directory): the namespace, and the device moved into it, go with it.
    struct NsFile(std::path::PathBuf);
    impl Drop for NsFile {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let nsfile = env.tmp.join("netns");
    std::fs::write(&nsfile, "").unwrap();
    let st = std::process::Command::new("unshare")
        .arg(format!("--net={}", nsfile.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success(), "unshare --net=FILE");
    let _bound = NsFile(nsfile.clone());
    let in_ns = |args: &[&str]| {
        std::process::Command::new("nsenter")
            .arg(format!("--net={}", nsfile.display()))
            .args(args)
            .output()
            .unwrap()
    };
    let dev = Dummy::new(3);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    let mut nss: Vec<Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    nss.push(json!({"type": "network", "path": nsfile}));
    b.config["linux"]["namespaces"] = json!(nss);
    b.config["linux"]["netDevices"] = json!({ dev.0.clone(): {"name": "ctr1"} });
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ip -o addr show dev ctr1; sleep 1000"
    ]);
    env.create(&id, &b);
    assert!(!dev.on_host(), "{} is still on the host", dev.0);
    env.ok(&["start", &id]);
    let mut out = String::new();
    for _ in 0..400 {
        out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
        if out.contains("fd00:be27::5") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let joined = in_ns(&["readlink", "/proc/self/ns/net"]);
    let joined = String::from_utf8_lossy(&joined.stdout).trim().to_string();
    assert!(
        out.lines().next() == Some(joined.as_str()),
        "the container is not in the joined namespace {joined}: {out}"
    );
    assert!(out.contains("inet 10.213.7.5/24"), "{out}");
    assert!(out.contains("inet6 fd00:be27::5/64"), "{out}");
    let seen = in_ns(&["ip", "-o", "link", "show", "ctr1"]);
    assert!(
        seen.status.success() && String::from_utf8_lossy(&seen.stdout).contains(",UP"),
        "ctr1 not up in the joined namespace: {}",
        String::from_utf8_lossy(&seen.stderr)
    );
    // The joined namespace outlives the container: the device stays in it.
    env.ok(&["delete", "--force", &id]);
    assert!(
        in_ns(&["ip", "link", "show", "ctr1"]).status.success(),
        "ctr1 left the joined namespace on delete"
    );
    assert!(!dev.on_host());
}

/// berth processes in a user namespace of their own: the idmap helpers (no other test of
/// this file uses a user namespace). They must all be gone once berth returns.
/// berth processes of this test's `--root` (`env`) in another user namespace, new since
/// `since`: idmap helpers left behind. (Other tests running at the same time have their own
/// roots: their containers' setup processes are not counted.)
fn idmap_helpers_left(env: &Env, since: &std::collections::HashSet<i32>) -> Vec<i32> {
    let init_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let root = env.root.to_string_lossy().into_owned();
    let mut v = vec![];
    for pid in pids_now() {
        if since.contains(&pid) {
            continue;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .any(|a| a == root);
        if exe == std::path::Path::new(berth_bin()) && ns != init_userns && ours {
            v.push(pid);
        }
    }
    v
}

fn pids_now() -> std::collections::HashSet<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

#[test]
fn idmapped_bind_mount() {
    let env = Env::new("idmap");
    let id = env.id("a");
    let host = env.tmp.join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "x").unwrap();
    std::os::unix::fs::chown(&host, Some(0), Some(0)).unwrap();
    // The container's root has no CAP_DAC_OVERRIDE (berth spec's default capabilities).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "stat -c '%u:%g' /mnt/d /mnt/d/f; touch /mnt/d/new; stat -c '%u:%g' /mnt/d/new; \
             stat -c '%u:%g' /",
        ],
    );
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({
        "destination": "/mnt/d", "type": "bind", "source": host, "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                        {"containerID": 5000, "hostID": 0, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                        {"containerID": 6000, "hostID": 0, "size": 1}]
    }));
    let before = pids_now();
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{out}\n{err}");
    let l: Vec<&str> = out.lines().collect();
    // As the kernel (and runc) read the maps: an id on disk is a containerID and is seen as
    // its hostID. Host root's files are seen as 1000 inside; a file made by the container's
    // root (hostID 0 = containerID 5000) is 0 inside and 5000:6000 on the host.
    assert_eq!(l, ["1000:1000", "1000:1000", "0:0", "0:0"], "{out}\n{err}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(host.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (5000, 6000));
    assert!(
        idmap_helpers_left(&env, &before).is_empty(),
        "helper processes left"
    );

    // Errors: a mapping without the option, the option on a non-bind mount, half the maps.
    let last = b.config["mounts"].as_array().unwrap().len() - 1;
    let mut bad = b.config["mounts"][last].clone();
    bad["options"] = json!(["rbind"]);
    b.config["mounts"][last] = bad.clone();
    run_fails(
        &env,
        &b,
        &env.id("b"),
        &format!("mounts[{last}].uidMappings"),
    );
    bad["options"] = json!(["rbind", "idmap"]);
    bad["gidMappings"] = Value::Null;
    b.config["mounts"][last] = bad.clone();
    run_fails(&env, &b, &env.id("c"), &format!("mounts[{last}]"));
    b.config["mounts"][last] = json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["idmap"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]});
    run_fails(&env, &b, &env.id("d"), &format!("mounts[{last}].options"));
    // The kernel refuses the map (overlapping ranges) after the helper exists.
    bad["gidMappings"] = bad["uidMappings"].clone();
    bad["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 10},
                                {"containerID": 5, "hostID": 3000, "size": 1}]);
    b.config["mounts"][last] = bad;
    let err = run_fails(
        &env,
        &b,
        &env.id("e"),
        &format!("mounts[{last}].uidMappings"),
    );
    assert!(err.contains("writing the map"), "{err}");
    assert!(
        idmap_helpers_left(&env, &before).is_empty(),
        "helper processes left"
    );
}

/// An idmapped mount in a container with its own user namespace (the common engine case):
/// without mount maps the container's are used, so host root's files are root's inside and
/// what the container's root writes is owned by host root on disk.
#[test]
fn idmapped_bind_mount_in_a_user_namespace() {
    let env = Env::new("idmap-userns");
    let id = env.id("a");
    let host = env.tmp.join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The mapped root must reach the bundle and rootfs.
    std::fs::set_permissions(&env.tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "stat -c '%u:%g' /tmp/f; touch /tmp/new; stat -c '%u:%g' /tmp/new",
        ],
    );
    std::fs::set_permissions(&b.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/tmp", "type": "bind", "source": host,
                     "options": ["bind", "idmap"]}),
    );
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "0:0"], "{err}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(host.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}
