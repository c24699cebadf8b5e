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

/// `process` is optional for create (config.md) and required by start (runtime.md): create
/// sets the container up (namespaces, cgroup, mounts, hooks) and reports `created`; start fails
/// naming `process` and leaves it as it was; delete removes everything; `run` fails the same way
/// and leaves nothing.
#[test]
fn create_without_process_then_start_fails_naming_process() {
    let env = Env::new("noproc");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    b.config.as_object_mut().unwrap().remove("process");
    let marker = env.tmp.join("createRuntime-ran");
    b.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", marker.display())]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("rm {}", marker.display())]}]
    });
    env.create(&id, &b);
    let st = env.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));
    // Set up: its own mount and pid namespaces, with the config's mounts (proc at /proc).
    let ns = |p: &str, n: &str| std::fs::read_link(format!("/proc/{p}/ns/{n}")).unwrap();
    assert_ne!(ns(&pid.to_string(), "mnt"), ns("self", "mnt"));
    assert_ne!(ns(&pid.to_string(), "pid"), ns("self", "pid"));
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mi.lines()
            .any(|l| l.contains(" /proc ") && l.contains(" - proc ")),
        "{mi}"
    );
    // The hook got the state, on create.
    let hs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&marker).unwrap()).unwrap();
    assert_eq!(hs["id"], id.as_str());
    assert!(
        env.cgroup_parent_dirs()
            .iter()
            .any(|d| d.join(&id).exists())
    );

    let (code, _, err) = env.call(&["start", &id]);
    assert_ne!(code, 0, "start succeeded without process");
    assert!(err.contains("no process"), "{err}");
    assert_eq!(env.status(&id), "created");
    assert!(alive(pid));

    env.ok(&["delete", &id]);
    for _ in 0..500 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(pid), "the container's process outlived delete");
    assert!(!env.root.join(&id).exists());
    assert!(
        env.cgroup_parent_dirs()
            .iter()
            .all(|d| !d.join(&id).exists())
    );
    assert!(!marker.exists(), "poststop did not run at delete");

    let id2 = env.id("b");
    let (code, _, err) = env.run(&id2, &b);
    assert_ne!(code, 0);
    assert!(err.contains("no process"), "{err}");
    assert!(!env.root.join(&id2).exists(), "run left its container");
}

/// No `mount` in linux.namespaces: the container shares the runtime's mount namespace (here a
/// private one the test makes with unshare, never the host's). The mounts berth makes there are
/// exactly those config.json lists (nothing over the rootfs itself, no propagation change of
/// the existing mounts), the process is chroot'ed into the rootfs, and delete unmounts none of
/// the caller's mounts. What would need more than the config's mounts is refused.
#[test]
fn no_mount_namespace_shares_the_callers_with_only_the_configs_mounts() {
    let env = Env::new("nomntns");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; test -x /bin/busybox && test ! -e /work && echo chrooted",
        ],
    );
    let nss: Vec<serde_json::Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "mount")
        .cloned()
        .collect();
    b.config["linux"]["namespaces"] = json!(nss);
    let linux = b.config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let out = env.tmp.join("out");
    std::fs::create_dir(&out).unwrap();
    let script = r#"
        set -e
        readlink /proc/self/ns/mnt > "$OUT/ns"
        cat /proc/self/mountinfo > "$OUT/before"
        "$BERTH" --root "$ROOT" create --bundle "$BUNDLE" "$ID" < /dev/null > "$OUT/stdout" 2> "$OUT/stderr"
        cat /proc/self/mountinfo > "$OUT/created"
        "$BERTH" --root "$ROOT" start "$ID"
        i=0
        until "$BERTH" --root "$ROOT" state "$ID" | grep -q '"stopped"'; do
            i=$((i+1)); [ $i -lt 1000 ] || exit 9; sleep 0.01
        done
        "$BERTH" --root "$ROOT" delete "$ID"
        cat /proc/self/mountinfo > "$OUT/deleted"
    "#;
    let st = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("OUT", &out)
        .env("BERTH", &env.bin)
        .env("ROOT", &env.root)
        .env("BUNDLE", &b.dir)
        .env("ID", &id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    assert!(
        st.status.success(),
        "{}: {}{}",
        st.status,
        String::from_utf8_lossy(&st.stderr),
        read("stderr")
    );
    // The process ran chroot'ed in the rootfs, in the caller's mount namespace.
    let ns = read("ns");
    assert_eq!(read("stdout"), format!("{ns}chrooted\n"));
    let lines = |f: &str| -> Vec<String> { read(f).lines().map(String::from).collect() };
    let (before, created, deleted) = (lines("before"), lines("created"), lines("deleted"));
    // Every mount that was there is there unchanged (propagation included).
    for l in &before {
        assert!(created.contains(l), "changed or gone after create: {l}");
    }
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    let new: Vec<String> = created
        .iter()
        .filter(|l| !before.contains(l))
        .map(|l| l.split(' ').nth(4).unwrap().to_string())
        .collect();
    let r = rootfs.to_str().unwrap();
    for mp in &new {
        assert!(
            mp.starts_with(&format!("{r}/")),
            "a mount outside the rootfs's config targets: {mp}"
        );
    }
    let mut want: Vec<String> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{r}{}", m["destination"].as_str().unwrap()))
        .collect();
    want.sort();
    let mut top: Vec<String> = new
        .iter()
        .filter(|mp| !mp.starts_with(&format!("{r}/sys/fs/cgroup/")))
        .cloned()
        .collect();
    top.sort();
    assert_eq!(top, want, "the mounts made are not those of config.json");
    // The cgroup mount's own entries (one bind per hierarchy) are below its destination.
    assert!(
        new.iter()
            .any(|mp| mp.starts_with(&format!("{r}/sys/fs/cgroup/")))
            || v2_host()
    );
    // delete unmounts nothing of the caller's (the container's mounts there included).
    assert_eq!(deleted, created, "delete changed the caller's mounts");
    assert!(!env.root.join(&id).exists());

    // Refused without a mount namespace, nothing left: masked/read-only paths, a read-only
    // root, rootfsPropagation.
    let cases: [(&str, serde_json::Value); 4] = [
        (
            "linux.maskedPaths",
            json!({"linux": {"maskedPaths": ["/proc/kcore"]}}),
        ),
        (
            "linux.readonlyPaths",
            json!({"linux": {"readonlyPaths": ["/proc/sys"]}}),
        ),
        ("root.readonly", json!({"root": {"readonly": true}})),
        (
            "linux.rootfsPropagation",
            json!({"linux": {"rootfsPropagation": "rslave"}}),
        ),
    ];
    for (field, patch) in cases {
        let mut b2 = env.bundle(&id, &["true"]);
        b2.config = b.config.clone();
        for (k, v) in patch.as_object().unwrap() {
            for (k2, v2) in v.as_object().unwrap() {
                b2.config[k][k2] = v2.clone();
            }
        }
        let o = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private"])
            .arg(&env.bin)
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle"])
            .arg({
                b2.save();
                &b2.dir
            })
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{field}: create succeeded");
        assert!(
            err.contains(field) && err.contains("needs a mount namespace"),
            "{field}: {err}"
        );
        assert!(!env.root.join(&id).exists(), "{field}: state left behind");
    }
}

fn v2_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
