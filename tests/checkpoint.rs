//! `berth checkpoint` / `berth restore` with CRIU.
//!
//! CRIU only works where `criu check` passes: in the VM guest (`make vm-test`, Debian's 6.1
//! kernel), not on this 6.18 host. Tests that need a working CRIU skip (with a note) where it
//! does not work, except in the guest (BERTH_VM=1), where that is a failure. The tests of the
//! error path need the opposite and run where `criu check` fails, or use a criu that is not
//! there at all.
mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn criu_check() -> Result<(), String> {
    match Command::new("criu").arg("check").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("cannot run criu: {e}")),
    }
}

/// Can the test use CRIU? In the VM guest it must.
fn need_criu(test: &str) -> bool {
    match criu_check() {
        Ok(()) => true,
        Err(why) if std::env::var_os("BERTH_VM").is_some() => {
            panic!("{test}: CRIU must work in the VM guest, but `criu check` fails: {why}")
        }
        Err(_) => {
            eprintln!("{test}: skipped: `criu check` fails on this host (runs in the VM guest)");
            false
        }
    }
}

/// The counter: increments in memory and publishes each value atomically in /count of its
/// rootfs (so the host reads it while the container runs and after it is gone), and says
/// "tick N" on stdout.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; echo tick $i; sleep 0.1; done";

/// The counter's ticks in its stdout log, in order.
fn ticks(b: &Bundle) -> Vec<u64> {
    std::fs::read_to_string(b.dir.join("stdout"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("tick ").and_then(|n| n.parse().ok()))
        .collect()
}

/// 1, 2, 3, ... without a gap or a restart.
fn assert_consecutive(t: &[u64], what: &str) {
    let want: Vec<u64> = (1..=t.len() as u64).collect();
    assert_eq!(t, want, "{what}: the ticks are not one run");
}

fn read_num(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bundle whose process writes to its rootfs (read by the host).
fn bundle(env: &Env, id: &str, args: &[&str]) -> Bundle {
    let mut b = env.bundle(id, args);
    b.config["root"]["readonly"] = json!(false);
    b.save();
    b
}

/// A running container (create + start) whose stdout and stderr are log files of the host
/// (opened for appending, as log files are) and stdin the host's /dev/null.
fn start(env: &Env, id: &str, b: &Bundle) -> i32 {
    b.save();
    let log = |n: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(b.dir.join(n))
            .unwrap()
    };
    let out = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(log("stdout"))
        .stderr(log("stderr"))
        .status()
        .unwrap();
    assert!(
        out.success(),
        "create {id}: {}",
        std::fs::read_to_string(b.dir.join("stderr")).unwrap_or_default()
    );
    env.ok(&["start", id]);
    env.state(id)["pid"].as_i64().unwrap() as i32
}

/// `berth restore ARGS` with stdout/stderr going to `out`/`out.err` (never pipes: the restored
/// process keeps what it is given); returns (exit code, stderr).
fn restore(env: &Env, args: &[&str], out: &Path) -> (i32, String) {
    let err = out.with_extension("err");
    let st = env
        .cmd()
        .arg("restore")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    (
        st.code().unwrap_or(-1),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

fn cgroup_dir(env: &Env, id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(env.cg_parent.trim_start_matches('/'))
        .join(id)
}

fn frozen(env: &Env, id: &str) -> bool {
    std::fs::read_to_string(cgroup_dir(env, id).join("cgroup.freeze"))
        .is_ok_and(|s| s.trim() == "1")
}

fn procs(env: &Env, id: &str) -> Vec<i32> {
    std::fs::read_to_string(cgroup_dir(env, id).join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `berth checkpoint ARGS`, which must succeed (on failure: what berth and CRIU said).
fn checkpoint(env: &Env, args: &[&str], img: &Path) {
    let (rc, _, err) = env.call(&[&["checkpoint"], args].concat());
    if rc != 0 {
        // CRIU's log, its errors last (the guest's runner shows the end of the output).
        let log = std::fs::read_to_string(img.join("dump.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("Error")).collect();
        panic!(
            "... {}\nCRIU's errors:\n{}\ncheckpoint {args:?} failed: {err}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            errors.join("\n")
        );
    }
}

fn meta(img: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(img.join("berth-checkpoint.json")).unwrap()).unwrap()
}

fn gone(env: &Env, id: &str) {
    let (rc, _, err) = env.call(&["state", id]);
    assert_ne!(rc, 0, "{id} still exists");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!env.root.join(id).exists(), "state dir of {id} left");
    assert!(!cgroup_dir(env, id).exists(), "cgroup of {id} left");
}

#[test]
fn counter_checkpointed_and_restored_continues_where_it_was() {
    if !need_criu("counter") {
        return;
    }
    let env = Env::new("ckpt-counter");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    let pid = start(&env, &id, &b);
    let count = b.rootfs().join("count");
    wait_until("the counter to count", Duration::from_secs(30), || {
        read_num(&count).is_some_and(|n| n >= 3)
    });
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    checkpoint(&env, &["--image-path", img_s, &id], &img);
    // Without --leave-running the container is gone, and nothing counts any more.
    gone(&env, &id);
    assert!(!alive(pid), "the checkpointed process {pid} still runs");
    let before = ticks(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ticks(&b), before, "something still counts");
    let m = meta(&img);
    assert_eq!(m["complete"], true, "{m}");
    assert_eq!(m["kind"], "dump");
    let descriptors: Value =
        serde_json::from_slice(&std::fs::read(img.join("descriptors.json")).unwrap()).unwrap();
    assert_eq!(descriptors.as_array().unwrap().len(), 3, "{descriptors}");
    // Its stdio were files of the host (/dev/null, the bundle's logs), which CRIU cannot find
    // in the container: declared external, and opened again at restore.
    assert_eq!(m["external_stdio"].as_array().unwrap().len(), 3, "{m}");
    assert_eq!(m["external_stdio"][0]["null"], true, "{m}");

    // Restored under another id, with hooks that log what they see.
    let id2 = env.id("r");
    let log = env.tmp.join("hooks.log");
    let mut b2 = Bundle {
        dir: b.dir.clone(),
        config: b.config.clone(),
    };
    b2.config["linux"]["cgroupsPath"] = json!(format!("{}/{id2}", env.cg_parent));
    let hook = |n: &str| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n} $(cat) >> {}", log.display())]}]);
    for n in ["prestart", "createRuntime", "poststart", "poststop"] {
        b2.config["hooks"][n] = hook(n);
    }
    b2.save();
    let out = env.tmp.join("restored.out");
    let pidfile = env.tmp.join("restored.pid");
    let (rc, err) = restore(
        &env,
        &[
            "--detach",
            "--image-path",
            img_s,
            "--bundle",
            b.dir.to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id2,
        ],
        &out,
    );
    assert_eq!(rc, 0, "restore failed: {err}");
    let st = env.state(&id2);
    assert_eq!(st["status"], "running", "{st}");
    let rpid = st["pid"].as_i64().unwrap() as i32;
    assert!(alive(rpid));
    assert_eq!(read_num(&pidfile), Some(rpid as u64));
    // In the new container's cgroup (with its children).
    assert!(procs(&env, &id2).contains(&rpid), "{:?}", procs(&env, &id2));
    let cg = std::fs::read_to_string(format!("/proc/{rpid}/cgroup")).unwrap();
    assert!(
        cg.trim().ends_with(&format!("{}/{id2}", env.cg_parent)),
        "{cg}"
    );
    // It counts on from the value it had, in the same stdout log (opened again at restore):
    // the log is one run of ticks, with no restart from 1 and no gap.
    wait_until(
        "the restored counter to count",
        Duration::from_secs(30),
        || ticks(&b).len() >= before.len() + 3,
    );
    assert_consecutive(&ticks(&b), "checkpoint and restore");
    let _ = out;

    // The hooks the spec has berth run: prestart and createRuntime before the process runs
    // again (with its pid), poststart after.
    let lines: Vec<(String, Value)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, s) = l.split_once(' ').unwrap();
            (n.to_string(), serde_json::from_str(s).unwrap())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["prestart", "createRuntime", "poststart"]);
    assert_eq!(lines[0].1["pid"], rpid, "{:?}", lines[0]);
    assert_eq!(lines[0].1["id"], id2.as_str());

    // Every command works on the restored container.
    let (rc, o, e) = env.exec(&[&id2, "cat", "/proc/1/cmdline"]);
    assert_eq!(rc, 0, "{e}");
    assert!(o.contains("count.tmp"), "{o}");
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id2])).unwrap();
    assert!(ps.as_array().unwrap().contains(&json!(rpid)), "{ps}");
    env.ok(&["pause", &id2]);
    assert_eq!(env.status(&id2), "paused");
    env.ok(&["resume", &id2]);
    env.ok(&["kill", &id2, "KILL"]);
    env.wait_status(&id2, "stopped");
    env.ok(&["delete", &id2]);
    gone(&env, &id2);
    let names: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names.last().map(|s| s.as_str()), Some("poststop"));
}

#[test]
fn leave_running_keeps_the_container_and_the_image_holds_that_moment() {
    if !need_criu("leave-running") {
        return;
    }
    let env = Env::new("ckpt-leave");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    let pid = start(&env, &id, &b);
    let count = b.rootfs().join("count");
    wait_until("the counter to count", Duration::from_secs(30), || {
        read_num(&count).is_some_and(|n| n >= 3)
    });
    // Paused, so that the value at the checkpoint is known exactly.
    env.ok(&["pause", &id]);
    let k = *ticks(&b).last().unwrap();
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    checkpoint(&env, &["--leave-running", "--image-path", img_s, &id], &img);
    // Still there, same process, still paused as it was.
    assert_eq!(env.status(&id), "paused");
    assert_eq!(env.state(&id)["pid"], pid);
    assert!(alive(pid));
    env.ok(&["resume", &id]);
    assert!(!frozen(&env, &id));
    wait_until("the counter to go on", Duration::from_secs(30), || {
        ticks(&b).last().is_some_and(|&n| n >= k + 3)
    });
    env.ok(&["delete", "--force", &id]);
    gone(&env, &id);
    let seen = ticks(&b);
    assert_consecutive(&seen, "leave-running");

    // The image is the moment of the checkpoint: the restored counter writes k + 1 next.
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    assert_eq!(rc, 0, "restore failed: {err}");
    wait_until("the restored counter", Duration::from_secs(30), || {
        ticks(&b).len() >= seen.len() + 2
    });
    let after = &ticks(&b)[seen.len()..];
    assert_eq!(
        after[..2],
        [k + 1, k + 2],
        "the restored counter did not go on from the checkpoint's {k}"
    );
    env.ok(&["delete", "--force", &id]);
    gone(&env, &id);
}

/// A server and a client in the container, talking over an established TCP connection on
/// its loopback: the client sends 1, 2, 3, ..., the server appends what it gets to /got.
const TCP: &str = "ip link set lo up; sleep 100000 | nc -l -p 5000 > /got & sleep 0.5; \
    (i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done) | nc 127.0.0.1 5000; echo client-exited > /client";

fn received(p: &Path) -> Vec<u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn established_tcp_connection_is_restored_with_tcp_established() {
    if !need_criu("tcp") {
        return;
    }
    let env = Env::new("ckpt-tcp");
    let id = env.id("c");
    let mut b = bundle(&env, &id, &["sh", "-c", TCP]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
    let pid = start(&env, &id, &b);
    let got = b.rootfs().join("got");
    wait_until("data over the connection", Duration::from_secs(30), || {
        received(&got).len() >= 3
    });
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();

    // Without --tcp-established CRIU refuses, and says so; the container is left running.
    let (rc, _, err) = env.call(&["checkpoint", "--image-path", img_s, &id]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("tcp-established"),
        "CRIU's reason missing: {err}"
    );
    assert!(
        err.contains(&format!("CRIU log: {}", img.join("dump.log").display())),
        "{err}"
    );
    assert!(err.contains("keeps running"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert_eq!(env.status(&id), "running");
    assert_eq!(env.state(&id)["pid"], pid);
    assert!(!frozen(&env, &id));
    let n = received(&got).len();
    wait_until(
        "data after the failed checkpoint",
        Duration::from_secs(30),
        || received(&got).len() > n + 2,
    );
    assert_eq!(meta(&img)["complete"], false);
    // An incomplete image is refused, and the refusal makes nothing.
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            "x",
        ],
        &env.tmp.join("x.out"),
    );
    assert_ne!(rc, 0);
    assert!(err.contains("incomplete"), "{err}");
    assert!(!env.root.join("x").exists());

    checkpoint(
        &env,
        &["--tcp-established", "--image-path", img_s, &id],
        &img,
    );
    gone(&env, &id);
    let before = received(&got);
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--tcp-established",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    assert_eq!(rc, 0, "restore failed: {err}");
    wait_until(
        "data over the restored connection",
        Duration::from_secs(30),
        || received(&got).len() >= before.len() + 5,
    );
    // The same stream, without a gap or a repeat: the connection itself was restored.
    let all = received(&got);
    let want: Vec<u64> = (1..=all.len() as u64).collect();
    assert_eq!(all, want);
    assert!(
        !b.rootfs().join("client").exists(),
        "the client saw its connection end"
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn bind_mount_is_rebound_from_the_new_config_and_tmpfs_content_restored() {
    if !need_criu("mounts") {
        return;
    }
    let env = Env::new("ckpt-mounts");
    let id = env.id("c");
    let (d1, d2) = (env.tmp.join("data1"), env.tmp.join("data2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let script = "echo kept-in-tmpfs > /scratch/keep; \
        while :; do cat /scratch/keep >> /data/log; sleep 0.2; done";
    let mut b = bundle(&env, &id, &["sh", "-c", script]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": d1, "options": ["rbind", "rw"]}),
    );
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    start(&env, &id, &b);
    wait_until(
        "writes through the bind mount",
        Duration::from_secs(30),
        || std::fs::read_to_string(d1.join("log")).is_ok_and(|s| s.lines().count() >= 2),
    );
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    checkpoint(&env, &["--image-path", img_s, &id], &img);
    gone(&env, &id);
    let n1 = std::fs::read_to_string(d1.join("log"))
        .unwrap()
        .lines()
        .count();

    // The new config binds another directory at /data: the restored process writes there,
    // what it kept in its tmpfs (which only the image holds now).
    // (Its open log file must be there too: moved along.)
    std::fs::copy(d1.join("log"), d2.join("log")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/data")
        .unwrap()["source"] = json!(d2);
    b.save();
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    assert_eq!(rc, 0, "restore failed: {err}");
    wait_until(
        "writes to the new bind source",
        Duration::from_secs(30),
        || std::fs::read_to_string(d2.join("log")).is_ok_and(|s| s.lines().count() >= n1 + 2),
    );
    assert!(
        std::fs::read_to_string(d2.join("log"))
            .unwrap()
            .lines()
            .all(|l| l == "kept-in-tmpfs")
    );
    let n2 = std::fs::read_to_string(d2.join("log"))
        .unwrap()
        .lines()
        .count();
    assert!(
        n2 > n1 + 1,
        "nothing new in the new bind source ({n2} lines, {n1} copied)"
    );
    assert_eq!(
        std::fs::read_to_string(d1.join("log"))
            .unwrap()
            .lines()
            .count(),
        n1,
        "the old bind source is still written"
    );
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mi.lines()
            .any(|l| l.split(' ').nth(4) == Some("/scratch") && l.contains(" - tmpfs ")),
        "{mi}"
    );
    env.ok(&["delete", "--force", &id]);
    gone(&env, &id);
}

fn pages_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn pre_dump_then_dump_on_top_of_it_is_smaller_and_restores() {
    if !need_criu("pre-dump") {
        return;
    }
    let env = Env::new("ckpt-predump");
    let id = env.id("c");
    // ~1 MB of memory that does not change, and a counter that does.
    let script = format!("x=$(seq 1 150000); {COUNTER}");
    let b = bundle(&env, &id, &["sh", "-c", &script]);
    let pid = start(&env, &id, &b);
    let count = b.rootfs().join("count");
    wait_until("the counter to count", Duration::from_secs(60), || {
        read_num(&count).is_some_and(|n| n >= 3)
    });
    let base = env.tmp.join("ck");
    let pre = base.join("pre");
    let fin = base.join("final");
    checkpoint(
        &env,
        &["--pre-dump", "--image-path", pre.to_str().unwrap(), &id],
        &pre,
    );
    // A pre-dump leaves the container running.
    assert_eq!(env.status(&id), "running");
    assert_eq!(env.state(&id)["pid"], pid);
    assert_eq!(meta(&pre)["kind"], "pre-dump");
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            pre.to_str().unwrap(),
            "-b",
            b.dir.to_str().unwrap(),
            "x",
        ],
        &env.tmp.join("x.out"),
    );
    assert_ne!(rc, 0);
    assert!(err.contains("pre-dump"), "{err}");
    env.ok(&[
        "checkpoint",
        "--parent-path",
        "../pre",
        "--image-path",
        fin.to_str().unwrap(),
        &id,
    ]);
    gone(&env, &id);
    let (p, f) = (pages_size(&pre), pages_size(&fin));
    assert!(
        p > 0 && f < p,
        "the dump on top of the pre-dump is not smaller: {f} vs {p} bytes"
    );
    eprintln!("pre-dump pages: {p} bytes, dump with --parent-path: {f} bytes");
    let n = ticks(&b).len();
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            fin.to_str().unwrap(),
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    assert_eq!(rc, 0, "restore failed: {err}");
    wait_until("the restored counter", Duration::from_secs(30), || {
        ticks(&b).len() >= n + 2
    });
    assert_consecutive(&ticks(&b), "pre-dump, dump and restore");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn a_failed_restore_leaves_no_container_behind() {
    if !need_criu("failed-restore") {
        return;
    }
    let env = Env::new("ckpt-fail");
    let id = env.id("c");
    let mut b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    start(&env, &id, &b);
    wait_until("the counter", Duration::from_secs(30), || {
        read_num(&b.rootfs().join("count")).is_some_and(|n| n >= 2)
    });
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    checkpoint(&env, &["--image-path", img_s, &id], &img);
    // A createRuntime hook that fails: CRIU has made the namespaces and the process tree by
    // then, and must take it all down again, as must berth its state and cgroup.
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.save();
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    assert_ne!(rc, 0);
    assert!(err.contains("createRuntime"), "{err}");
    assert!(
        err.contains(&format!("CRIU log: {}", img.join("restore.log").display())),
        "{err}"
    );
    gone(&env, &id);
    assert!(!b.dir.join("criu-root").exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.root.to_str().unwrap()), "{mounts}");
    let list = env.ok(&["list", "-q"]);
    assert!(list.trim().is_empty(), "{list}");
    // The image is still good: without the failing hook the restore works.
    b.config.as_object_mut().unwrap().remove("hooks");
    b.save();
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r2.out"),
    );
    assert_eq!(rc, 0, "{err}");
    env.ok(&["delete", "--force", &id]);
}

/// Where CRIU cannot work (this 6.18 host: `criu check` fails), checkpoint and restore say so
/// in one line with CRIU's own reason and the log's path, and change nothing.
#[test]
fn where_criu_does_not_work_checkpoint_and_restore_say_so_and_change_nothing() {
    let Err(why) = criu_check() else {
        eprintln!("skipped: `criu check` passes here (this test is for hosts where it fails)");
        return;
    };
    if why.starts_with("cannot run criu") {
        eprintln!("skipped: criu is not installed ({why})");
        return;
    }
    let env = Env::new("ckpt-nocriu");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sleep", "1000"]);
    let pid = start(&env, &id, &b);
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    let (rc, _, err) = env.call(&["checkpoint", "--image-path", img_s, &id]);
    assert_eq!(rc, 1);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("CRIU does not work on this host"), "{err}");
    assert!(err.contains("check` (CRIU "), "{err}");
    // CRIU's own words, as `criu check` prints them.
    let first = why
        .lines()
        .find_map(|l| {
            l.split_once("): ")
                .map(|(_, m)| m.trim().trim_end_matches('.'))
        })
        .unwrap();
    assert!(
        err.contains(first),
        "CRIU's reason {first:?} missing: {err}"
    );
    assert!(
        err.contains(&format!("CRIU log: {}", img.join("dump.log").display())),
        "{err}"
    );
    // The container is untouched.
    assert_eq!(env.status(&id), "running");
    assert_eq!(env.state(&id)["pid"], pid);
    assert!(alive(pid));
    assert!(!frozen_any(&env, &id));
    assert_eq!(meta(&img)["complete"], false);

    // Restore: refused for that incomplete image; for a complete-looking one CRIU itself
    // fails, and no trace of the container is left.
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            "r1",
        ],
        &env.tmp.join("r1.out"),
    );
    assert_eq!(rc, 1);
    assert!(err.contains("incomplete"), "{err}");
    let img2 = env.tmp.join("img2");
    std::fs::create_dir(&img2).unwrap();
    std::fs::write(
        img2.join("descriptors.json"),
        r#"["/dev/null","/dev/null","/dev/null"]"#,
    )
    .unwrap();
    let mut b2 = Bundle {
        dir: b.dir.clone(),
        config: b.config.clone(),
    };
    b2.config["linux"]["cgroupsPath"] = json!(format!("{}/r2", env.cg_parent));
    b2.save();
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img2.to_str().unwrap(),
            "-b",
            b.dir.to_str().unwrap(),
            "r2",
        ],
        &env.tmp.join("r2.out"),
    );
    assert_eq!(rc, 1);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("restore: CRIU does not work on this host"),
        "{err}"
    );
    assert!(
        err.contains(&format!("CRIU log: {}", img2.join("restore.log").display())),
        "{err}"
    );
    assert!(!env.root.join("r2").exists());
    for d in env.cgroup_parent_dirs() {
        assert!(
            !d.join("r2").exists(),
            "cgroup {} left",
            d.join("r2").display()
        );
    }
    assert_eq!(env.ok(&["list", "-q"]).trim(), id);
    env.ok(&["delete", "--force", &id]);
}

/// Frozen in any hierarchy (the v1 freezer on this host).
fn frozen_any(env: &Env, id: &str) -> bool {
    env.cgroup_parent_dirs().iter().any(|d| {
        std::fs::read_to_string(d.join(id).join("freezer.state"))
            .is_ok_and(|s| s.trim() != "THAWED")
            || std::fs::read_to_string(d.join(id).join("cgroup.freeze"))
                .is_ok_and(|s| s.trim() == "1")
    })
}

#[test]
fn without_criu_checkpoint_and_restore_fail_before_touching_anything() {
    let env = Env::new("ckpt-missing");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sleep", "1000"]);
    let pid = start(&env, &id, &b);
    let img = env.tmp.join("img");
    let missing = env.tmp.join("no/criu");
    let (rc, _, err) = env.call(&[
        "--criu",
        missing.to_str().unwrap(),
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(rc, 1);
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(!img.exists(), "checkpoint made the image directory");
    assert_eq!(env.state(&id)["pid"], pid);
    assert_eq!(env.status(&id), "running");
    let (rc, _, err) = env.call(&["--criu", "no-such-criu", "checkpoint", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("no-such-criu not found in PATH"), "{err}");
    std::fs::create_dir(&img).unwrap();
    std::fs::write(img.join("descriptors.json"), "[]").unwrap();
    let (rc, _, err) = env.call(&[
        "--criu",
        missing.to_str().unwrap(),
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "-b",
        b.dir.to_str().unwrap(),
        "r",
    ]);
    assert_eq!(rc, 1);
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(!env.root.join("r").exists());
    // A flag given twice is taken (as runc takes it; podman passes --leave-running twice).
    let (rc, _, err) = env.call(&["checkpoint", "--leave-running", "--leave-running", "nope"]);
    assert_eq!(rc, 1);
    assert!(err.contains("does not exist"), "{err}");
    // Bad flags are named.
    let (rc, _, err) = env.call(&["checkpoint", "--manage-cgroups-mode", "hard", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("--manage-cgroups-mode"), "{err}");
    let (rc, _, err) = env.call(&["checkpoint", "--empty-ns", "pid", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("--empty-ns"), "{err}");
    let (rc, _, err) = env.call(&["checkpoint", "--page-server", "nowhere", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("ADDRESS:PORT"), "{err}");
    let (rc, _, err) = env.call(&["checkpoint", "--parent-path", "/abs", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("--parent-path"), "{err}");
    assert_eq!(env.status(&id), "running");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn checkpoint_of_a_container_that_is_not_running_is_refused() {
    let env = Env::new("ckpt-state");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sleep", "1000"]);
    env.create(&id, &b);
    let (rc, _, err) = env.call(&["checkpoint", &id]);
    assert_eq!(rc, 1);
    assert!(err.contains("created but not started"), "{err}");
    let (rc, _, err) = env.call(&["checkpoint", "nope"]);
    assert_eq!(rc, 1);
    assert!(err.contains("does not exist"), "{err}");
    env.ok(&["delete", "--force", &id]);
}

/// `systemctl show -p NAME --value UNIT` for each name.
fn unit_props(unit: &str, names: &[&str]) -> Vec<String> {
    let mut c = Command::new("systemctl");
    c.args(["show", unit]);
    for n in names {
        c.args(["-p", n]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "systemctl show {unit}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    names
        .iter()
        .map(|n| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{n}=")))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// No unit of that name, not even a failed or inactive one.
fn unit_gone(unit: &str) -> bool {
    unit_props(unit, &["LoadState"])[0] == "not-found"
}

fn cg_file(env: &Env, id: &str, f: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(env.cg_rel(id).trim_start_matches('/'))
        .join(f);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// With the systemd driver (--systemd-cgroup): checkpoint ends the container's scope; restore
/// makes it again (a transient scope around CRIU, as runc does) with the resources of
/// config.json — systemd's properties and the cgroup files — and the restored counter in it;
/// state.json records the unit, so exec/kill/delete work and delete leaves no unit. A restore
/// that fails (a failing hook) leaves no unit; one that collides with another container's
/// unit fails without touching it. Needs systemd as PID 1 and CRIU: the systemd guest
/// (`SYSVM_SUITES="checkpoint systemd" bash hack/sysvm/run-tests.sh`).
#[test]
fn systemd_driver_restores_into_a_new_scope_with_the_resources() {
    let in_sysvm = std::env::var_os("BERTH_SYSVM").is_some();
    if !Path::new("/run/systemd/system").is_dir() {
        assert!(!in_sysvm, "the systemd guest has no systemd?");
        eprintln!("systemd-restore: skipped: needs systemd as PID 1 (runs in hack/sysvm)");
        return;
    }
    if let Err(why) = criu_check() {
        assert!(!in_sysvm, "CRIU must work in the systemd guest: {why}");
        eprintln!("systemd-restore: skipped: `criu check` fails here");
        return;
    }
    let env = Env::with_driver("ckpt-sd", true);
    let id = env.id("c");
    let unit = format!("{SCOPE_PREFIX}-{id}.scope");
    let mut b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 40},
        "cpu": {"quota": 50000, "period": 100000}
    });
    let pid = start(&env, &id, &b);
    let count = b.rootfs().join("count");
    wait_until("the counter to count", Duration::from_secs(30), || {
        read_num(&count).is_some_and(|n| n >= 3)
    });
    assert_eq!(unit_props(&unit, &["ActiveState"]), ["active"]);
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap();
    checkpoint(&env, &["--image-path", img_s, &id], &img);
    assert!(!alive(pid), "the checkpointed process {pid} still runs");
    wait_until("the scope to go", Duration::from_secs(15), || {
        unit_gone(&unit)
    });
    assert!(!env.root.join(&id).exists());
    let before = ticks(&b);

    // A restore that fails late (CRIU made the tree, the unit exists): no unit afterwards.
    let mut bad = Bundle {
        dir: b.dir.clone(),
        config: b.config.clone(),
    };
    bad.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    bad.save();
    let bdir = b.dir.to_str().unwrap();
    let (rc, err) = restore(
        &env,
        &["-d", "--image-path", img_s, "-b", bdir, &id],
        &env.tmp.join("bad.out"),
    );
    assert_ne!(rc, 0, "a restore with a failing hook succeeded");
    assert!(err.contains("createRuntime"), "{err}");
    wait_until(
        "no unit after the failed restore",
        Duration::from_secs(15),
        || unit_gone(&unit),
    );
    assert!(
        !env.root.join(&id).exists(),
        "state left by a failed restore"
    );

    b.save();
    let (rc, err) = restore(
        &env,
        &["-d", "--image-path", img_s, "-b", bdir, &id],
        &env.tmp.join("r.out"),
    );
    assert_eq!(rc, 0, "restore --systemd-cgroup failed: {err}");
    let st = env.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    let rpid = st["pid"].as_i64().unwrap() as i32;
    // The scope, as systemd sees it, with config.json's resources.
    let p = unit_props(
        &unit,
        &[
            "ActiveState",
            "Slice",
            "Delegate",
            "MemoryMax",
            "TasksMax",
            "CPUQuotaPerSecUSec",
        ],
    );
    let slice = env.slice.clone().unwrap();
    assert_eq!(
        p,
        ["active", &slice, "yes", "67108864", "40", "500ms"],
        "{unit} after restore"
    );
    // The cgroup files agree, and the restored process is in the scope's cgroup.
    assert_eq!(cg_file(&env, &id, "memory.max"), "67108864");
    assert_eq!(cg_file(&env, &id, "pids.max"), "40");
    assert_eq!(cg_file(&env, &id, "cpu.max"), "50000 100000");
    let procs: Vec<i32> = cg_file(&env, &id, "cgroup.procs")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(procs.contains(&rpid), "{rpid} not in {procs:?}");
    let cg = std::fs::read_to_string(format!("/proc/{rpid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::{}", env.cg_rel(&id)));
    // state.json records the driver: later commands use it without the flag.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(env.root.join(&id).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["cgroup"]["systemd"]["unit"], unit.as_str(), "{saved}");
    // It counts on from where it was.
    wait_until(
        "the restored counter to count",
        Duration::from_secs(30),
        || ticks(&b).len() >= before.len() + 3,
    );
    assert_consecutive(&ticks(&b), "checkpoint and restore");

    // Another restore into the same scope name (another id, same cgroupsPath): systemd
    // refuses the unit, and the running container is not harmed.
    let (rc, err) = restore(
        &env,
        &["-d", "--image-path", img_s, "-b", bdir, &env.id("dup")],
        &env.tmp.join("dup.out"),
    );
    assert_ne!(rc, 0, "a second restore into {unit} succeeded");
    assert!(err.contains("already exists"), "{err}");
    assert!(alive(rpid), "the failed restore killed the container");
    assert_eq!(unit_props(&unit, &["ActiveState"]), ["active"]);
    assert!(!env.root.join(env.id("dup")).exists());

    // exec, kill and delete, through the recorded unit.
    let (rc, o, e) = env.exec(&[&id, "cat", "/proc/self/cgroup"]);
    assert_eq!(rc, 0, "{e}");
    // "0::/" inside a cgroup namespace, else the scope's path.
    let rel = format!("0::{}", env.cg_rel(&id));
    assert!(o.trim() == "0::/" || o.trim() == rel, "exec's cgroup: {o}");
    let (rc, o, e) = env.call(&["exec", &id, "cat", "/count"]);
    assert_eq!(rc, 0, "{e}");
    assert!(o.trim().parse::<u64>().is_ok(), "{o}");
    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
    wait_until(
        "the scope to go after delete",
        Duration::from_secs(15),
        || unit_gone(&unit),
    );
    assert!(!env.root.join(&id).exists());
    assert!(
        !Path::new("/sys/fs/cgroup")
            .join(env.cg_rel(&id).trim_start_matches('/'))
            .exists()
    );
}

/// `criu check --feature uffd-noncoop`: lazy pages (userfaultfd with fork/remap events).
fn criu_lazy_pages() -> bool {
    Command::new("criu")
        .args(["check", "--feature", "uffd-noncoop"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Post-copy migration as runc does it: `checkpoint --lazy-pages --page-server ADDR:PORT
/// --status-fd FD` dumps all but the memory pages and waits with a page server (the zero byte on
/// the status fd says it is ready, and the image is complete but lazy); `criu lazy-pages`
/// connects to it, and `restore --lazy-pages` (under another id: the first container is still
/// there until its last page is transferred) runs the process, whose pages arrive on demand.
/// The counter goes on from where it was; the checkpoint then ends and removes the first
/// container. A lazy image restored without --lazy-pages is a clear error.
#[test]
fn lazy_pages_restore_fetches_memory_from_the_checkpoint_page_server() {
    if !need_criu("lazy-pages") {
        return;
    }
    if !criu_lazy_pages() {
        // Debian 12's CRIU 3.17 on its 6.1 kernel has them: the VM guest must.
        assert!(
            std::env::var_os("BERTH_VM").is_none(),
            "CRIU in the VM guest has no lazy pages (criu check --feature uffd-noncoop)"
        );
        eprintln!(
            "lazy-pages: skipped: CRIU has no lazy pages here (criu check --feature uffd-noncoop)"
        );
        return;
    }
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let env = Env::new("ckpt-lazy");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    let pid = start(&env, &id, &b);
    wait_until("the counter to count", Duration::from_secs(30), || {
        read_num(&b.rootfs().join("count")).is_some_and(|n| n >= 3)
    });
    let img = env.tmp.join("img");
    let img_s = img.to_str().unwrap().to_string();
    let port = 20000 + std::process::id() % 20000;
    // The status fd: descriptor 3 of the checkpoint, a FIFO read here.
    let fifo = env.tmp.join("status");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut status = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut ck = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$@" 3>"$F""#)
        .arg("sh")
        .arg(&env.bin)
        .args([
            "--root",
            env.root.to_str().unwrap(),
            "checkpoint",
            "--lazy-pages",
        ])
        .args([
            "--page-server",
            &format!("127.0.0.1:{port}"),
            "--status-fd",
            "3",
        ])
        .args(["--image-path", &img_s, &id])
        .env("F", &fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.tmp.join("ck.err")).unwrap())
        .spawn()
        .unwrap();
    let ck_err = || std::fs::read_to_string(env.tmp.join("ck.err")).unwrap_or_default();
    let t = Instant::now();
    let mut byte = [1u8; 1];
    loop {
        match status.read(&mut byte) {
            Ok(1) => break,
            _ => {
                if let Ok(Some(st)) = ck.try_wait() {
                    panic!(
                        "checkpoint --lazy-pages ended ({st}) before its page server was ready: {}",
                        ck_err()
                    );
                }
                assert!(
                    t.elapsed() < Duration::from_secs(90),
                    "no status byte: {}",
                    ck_err()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert_eq!(byte, [0], "the status byte");
    let m = meta(&img);
    assert_eq!(
        (m["complete"].clone(), m["lazy"].clone()),
        (json!(true), json!(true)),
        "{m}"
    );
    assert!(
        alive(pid),
        "the container is gone before its pages were fetched"
    );

    // Without --lazy-pages: refused, nothing made.
    let id2 = env.id("r");
    let mut b2 = Bundle {
        dir: b.dir.clone(),
        config: b.config.clone(),
    };
    b2.config["linux"]["cgroupsPath"] = json!(env.cgroups_path(&id2));
    b2.save();
    let bdir = b.dir.to_str().unwrap();
    let (rc, err) = restore(
        &env,
        &["-d", "--image-path", &img_s, "-b", bdir, &id2],
        &env.tmp.join("nolazy.out"),
    );
    assert_ne!(rc, 0);
    assert!(err.contains("--lazy-pages"), "{err}");
    assert!(!env.root.join(&id2).exists());

    let mut lp = Command::new("criu")
        .args(["lazy-pages", "--page-server", "--address", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "-o",
            "lazy-pages.log",
            "-D",
            &img_s,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = ticks(&b);
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--lazy-pages",
            "--image-path",
            &img_s,
            "-b",
            bdir,
            &id2,
        ],
        &env.tmp.join("r.out"),
    );
    if rc != 0 {
        let _ = ck.kill();
        let _ = lp.kill();
        let _ = ck.wait();
        let _ = lp.wait();
        panic!("restore --lazy-pages failed: {err}");
    }
    // The pages all moved: the checkpoint and the lazy-pages daemon end.
    let ck_status = ck.wait().unwrap();
    assert!(ck_status.success(), "checkpoint --lazy-pages: {}", ck_err());
    let lp_status = lp.wait().unwrap();
    assert!(
        lp_status.success(),
        "criu lazy-pages failed: see {}/lazy-pages.log",
        img_s
    );
    gone(&env, &id);
    let st = env.state(&id2);
    assert_eq!(st["status"], "running", "{st}");
    wait_until(
        "the lazily restored counter to count",
        Duration::from_secs(30),
        || ticks(&b).len() >= before.len() + 3,
    );
    assert_consecutive(&ticks(&b), "lazy checkpoint and restore");
    env.ok(&["delete", "--force", &id2]);
    gone(&env, &id2);
}

/// `checkpoint --page-server ADDR:PORT` without --lazy-pages: the memory pages go to a `criu
/// page-server` (here on loopback, with a directory of its own) and the rest to --image-path;
/// the two together restore the counter, which goes on from where it was.
#[test]
fn page_server_receives_the_pages_and_the_whole_restores() {
    if !need_criu("page-server") {
        return;
    }
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let env = Env::new("ckpt-ps");
    let id = env.id("c");
    let b = bundle(&env, &id, &["sh", "-c", COUNTER]);
    start(&env, &id, &b);
    wait_until("the counter to count", Duration::from_secs(30), || {
        read_num(&b.rootfs().join("count")).is_some_and(|n| n >= 3)
    });
    let img = env.tmp.join("img");
    let remote = env.tmp.join("remote");
    std::fs::create_dir(&remote).unwrap();
    let port = 20000 + (std::process::id() + 7) % 20000;
    let ps_log = remote.join("page-server.log");
    // Ready once it wrote its status byte (--status-fd 3, a FIFO read here).
    let fifo = env.tmp.join("ps-status");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut status = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut ps = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$@" 3>"$F""#)
        .args(["sh", "criu", "page-server", "--address", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--status-fd", "3"])
        .args(["-o", "page-server.log", "-D", remote.to_str().unwrap()])
        .env("F", &fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut byte = [1u8; 1];
    while status.read(&mut byte).ok() != Some(1) {
        if let Ok(Some(st)) = ps.try_wait() {
            panic!(
                "criu page-server ended ({st}): {}",
                std::fs::read_to_string(&ps_log).unwrap_or_default()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "criu page-server is not ready: {}",
            std::fs::read_to_string(&ps_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let img_s = img.to_str().unwrap();
    let (rc, _, err) = env.call(&[
        "checkpoint",
        "--page-server",
        &format!("127.0.0.1:{port}"),
        "--image-path",
        img_s,
        &id,
    ]);
    if rc != 0 {
        let _ = ps.kill();
        let _ = ps.wait();
        panic!("checkpoint --page-server failed: {err}");
    }
    assert!(ps.wait().unwrap().success(), "criu page-server failed");
    gone(&env, &id);
    let images = |d: &Path, prefix: &str| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".img"))
            .collect()
    };
    assert!(
        images(&img, "pages-").is_empty(),
        "pages in the image dir: {:?}",
        images(&img, "pages-")
    );
    assert!(
        !images(&remote, "pages-").is_empty(),
        "no pages at the page server"
    );
    // The page server's images (pagemaps and pages) join the rest.
    for p in images(&remote, "") {
        std::fs::copy(remote.join(&p), img.join(&p)).unwrap();
    }
    let before = ticks(&b);
    let (rc, err) = restore(
        &env,
        &[
            "-d",
            "--image-path",
            img_s,
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        &env.tmp.join("r.out"),
    );
    if rc != 0 {
        let log = std::fs::read_to_string(img.join("restore.log")).unwrap_or_default();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("Error")).collect();
        panic!(
            "restore of the page server's pages failed: {err}\n{}",
            errors.join("\n")
        );
    }
    wait_until("the restored counter", Duration::from_secs(30), || {
        ticks(&b).len() >= before.len() + 3
    });
    assert_consecutive(&ticks(&b), "checkpoint to a page server and restore");
    env.ok(&["delete", "--force", &id]);
    gone(&env, &id);
}
