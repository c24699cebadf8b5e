//! create / start / state / kill / delete / list / run, checked by their effects.
mod common;
use common::*;
use serde_json::json;

#[test]
fn run_prints_output_and_returns_exit_code() {
    let env = Env::new("runexit");
    let id = env.id("a");
    let b = env.bundle(&id, &["sh", "-c", "echo hello; echo err >&2; exit 7"]);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "hello\n");
    assert_eq!(err, "err\n");
    assert!(
        !env.root.join(&id).exists(),
        "run must delete the container"
    );
}

fn spawn_run(env: &Env, id: &str, b: &Bundle) -> std::process::Child {
    b.save();
    env.cmd()
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(b.dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(b.dir.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn run_reports_signal_as_128_plus_n() {
    let env = Env::new("runsig");
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    let mut child = spawn_run(&env, &id, &b);
    env.wait_status(&id, "running");
    env.ok(&["kill", &id, "KILL"]);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 9));
    assert!(!env.root.join(&id).exists());
}

#[test]
fn run_forwards_signals_to_the_container() {
    let env = Env::new("runfwd");
    let id = env.id("a");
    let b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let mut child = spawn_run(&env, &id, &b);
    wait_output(&b.dir.join("stdout"), "ready\n");
    // SAFETY: kill(2) of the berth process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(
        st.code(),
        Some(42),
        "{}",
        std::fs::read_to_string(b.dir.join("stderr")).unwrap()
    );
    assert!(
        std::fs::read_to_string(b.dir.join("stdout"))
            .unwrap()
            .contains("got-term")
    );
}

#[test]
fn container_is_pid1_with_hostname_and_namespaces() {
    let env = Env::new("pid1");
    let id = env.id("a");
    let b = env.bundle(&id, &["sh", "-c", "echo pid=$$; hostname; for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done"]);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "berth");
    for (i, ns) in ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
        .iter()
        .enumerate()
    {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            lines[2 + i],
            host.to_string_lossy(),
            "{ns} namespace must be new"
        );
    }
}

#[test]
fn create_start_state_kill_delete() {
    let env = Env::new("lifecycle");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &["sh", "-c", "echo started > /tmp/marker; exec sleep 1000"],
    );
    // (The default root is read-only: the marker needs a writable one.)
    b.config["root"]["readonly"] = json!(false);
    env.create(&id, &b);
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.dir.to_string_lossy().as_ref());
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0 && alive(pid));
    // Created: the user process has not run yet.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));
    // The process sits in the container's cgroup already.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{}/{id}", env.cg_parent)), "{cg}");

    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    // The user's program ran: the marker it wrote before the exec, then the exec itself.
    wait_exec(pid, &["sleep", "1000"]);
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/marker")).unwrap(),
        "started\n"
    );

    // start twice is an error
    let out = env.berth(&["start", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    // delete of a running container without --force is an error
    let out = env.berth(&["delete", &id]);
    assert!(!out.status.success());

    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    // kill of a stopped container is an error
    assert!(!env.berth(&["kill", &id, "TERM"]).status.success());
    env.ok(&["delete", &id]);
    assert!(!env.root.join(&id).exists());
    assert!(
        env.cgroup_parent_dirs()
            .iter()
            .all(|d| !d.join(&id).exists()),
        "cgroup left behind"
    );
    assert!(!alive(pid));
}

#[test]
fn kill_accepts_names_and_numbers() {
    let env = Env::new("killsig");
    let id = env.id("a");
    let b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.05; done",
        ],
    );
    env.create(&id, &b);
    env.ok(&["start", &id]);
    // Signalled once the trap is set: without it the container's init ignores SIGUSR1.
    wait_output(&b.dir.join("stdout"), "ready\n");
    env.ok(&["kill", &id, "SIGUSR1"]);
    env.wait_status(&id, "stopped");
    let out = std::fs::read_to_string(b.dir.join("stdout")).unwrap();
    assert_eq!(out, "ready\ngot-usr1\n");
    let out = env.berth(&["kill", &id, "NOPE"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown signal"));
}

#[test]
fn kill_all_and_delete_force() {
    let env = Env::new("killall");
    let id = env.id("a");
    let b = env.bundle(&id, &["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    // The shell and both sleeps (a fixed pause would not know when they are there).
    let mut pids: Vec<i32> = vec![];
    for _ in 0..2000 {
        pids = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    env.ok(&["kill", "--all", &id, "9"]);
    env.wait_status(&id, "stopped");
    for _ in 0..2000 {
        if pids.iter().all(|&p| !alive(p)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "kill --all left some of {pids:?}"
    );
    env.ok(&["delete", "--force", &id]);
    // --force on a container that is gone exits 0
    env.ok(&["delete", "--force", &id]);
    assert!(!env.berth(&["delete", &id]).status.success());
}

#[test]
fn options_after_the_id_and_pid_file() {
    let env = Env::new("argorder");
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    b.save();
    let pidfile = env.tmp.join("pid");
    // Global options (--root) go before the subcommand, as runc and crun take them.
    let out = std::process::Command::new(berth_bin())
        .arg("--root")
        .arg(&env.root)
        .args(["create", &id, "--bundle"])
        .arg(&b.dir)
        .arg("--pid-file")
        .arg(&pidfile)
        .stdin(std::process::Stdio::null())
        // The container inherits berth's stdio: files, so nothing waits for its end.
        .stdout(std::fs::File::create(env.tmp.join("out")).unwrap())
        .stderr(std::fs::File::create(env.tmp.join("err")).unwrap())
        .status()
        .unwrap();
    assert!(
        out.success(),
        "{}",
        std::fs::read_to_string(env.tmp.join("err")).unwrap()
    );
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(env.state(&id)["pid"], pid);
    let list = env.ok(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    assert_eq!(v[0]["status"], "created");
    assert_eq!(env.ok(&["list", "-q"]).trim(), id);
    let table = env.ok(&["list"]);
    assert!(table.starts_with("ID"), "{table}");
    env.ok(&["delete", &id]);
    assert!(!alive(pid as i32));
}

#[test]
fn duplicate_id_is_refused_and_does_not_disturb_the_first() {
    let env = Env::new("dupid");
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    env.create(&id, &b);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let out = env.try_create(&id, &b);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(env.state(&id)["pid"].as_i64().unwrap(), pid);
    assert_eq!(env.status(&id), "created");
}

#[test]
fn stopped_container_is_not_confused_with_reused_pid() {
    let env = Env::new("pidreuse");
    let id = env.id("a");
    let b = env.bundle(&id, &["true"]);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    // Forge the pid of a live process with another start time: still stopped.
    let path = env.root.join(&id).join("state.json");
    let mut st: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    st["pid"] = json!(std::process::id());
    std::fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    assert_eq!(env.status(&id), "stopped");
}
