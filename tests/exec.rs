//! exec: a process joining a running container, checked by its effects.
mod common;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

/// A running container whose process sleeps (after leaving a marker in its /tmp).
fn running(env: &Env, suffix: &str) -> (String, Bundle, i32) {
    let id = env.id(suffix);
    let mut b = env.bundle(
        &id,
        &["sh", "-c", "echo from-init > /tmp/marker; exec sleep 1000"],
    );
    b.config["root"]["readonly"] = json!(false);
    // mkrootfs leaves the rootfs directory 0700: let non-root users inside traverse it.
    Command::new("chmod")
        .arg("755")
        .arg(b.rootfs())
        .status()
        .unwrap();
    env.create(&id, &b);
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    // Running is not enough: the marker is written, and the init is `sleep`, once it has exec'd.
    let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
    wait_exec(pid, &["sleep", "1000"]);
    (id, b, pid)
}

#[test]
fn exec_output_and_exit_code() {
    let env = Env::new("exec-out");
    let (id, _b, _) = running(&env, "a");
    let (code, out, err) = env.exec(&[&id, "sh", "-c", "echo hello; echo oops >&2; exit 5"]);
    assert_eq!(code, 5, "stderr: {err}");
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    // Options after the id, and the command's own options left alone.
    let (code, out, err) = env.exec(&[&id, "--env", "X=1", "sh", "-c", "echo $X"]);
    assert_eq!((code, out.as_str()), (0, "1\n"), "{err}");
}

#[test]
fn exec_joins_namespaces_mounts_and_cgroup() {
    let env = Env::new("exec-ns");
    let (id, _b, init) = running(&env, "a");
    let (code, out, err) = env.exec(&[
        &id,
        "sh",
        "-c",
        "echo pid=$$; hostname; cat /tmp/marker; cat /proc/1/cmdline; echo; \
             for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "pid=1");
    let inner_pid: i32 = lines[0].trim_start_matches("pid=").parse().unwrap();
    assert!(
        inner_pid > 1 && inner_pid < 100,
        "a pid of the container's namespace: {out}"
    );
    assert_eq!(lines[1], "berth");
    assert_eq!(lines[2], "from-init");
    assert!(lines[3].starts_with("sleep"), "{out}");
    for (i, ns) in ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
        .iter()
        .enumerate()
    {
        let theirs = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(lines[4 + i], theirs.to_string_lossy(), "{ns} namespace");
    }
    // The cgroup, seen from the host (a detached process stays to be looked at).
    let pf = env.tmp.join("exec.pid");
    // (The detached process keeps berth's stdio: give it files, not pipes to wait on.)
    let errf = env.tmp.join("exec.err");
    let st = env
        .cmd()
        .args([
            "exec",
            "--detach",
            "--pid-file",
            pf.to_str().unwrap(),
            &id,
            "sleep",
            "1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&errf).unwrap());
    let pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{}/{id}", env.cg_parent)), "{cg}");
    // Non-dumpable while berth set it up; exec made it dumpable again (its own binary).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("NoNewPrivs:\t1"),
        "the container's noNewPrivileges: {status}"
    );
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn exec_process_json_with_env_cwd_user() {
    let env = Env::new("exec-json");
    let (id, _b, _) = running(&env, "a");
    let p = env.tmp.join("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo $GREETING; pwd; id -u; id -g; id -G"],
            "env": ["PATH=/bin:/usr/bin", "GREETING=hi there"],
            "cwd": "/tmp",
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [3000]},
            "capabilities": {"bounding": ["CAP_KILL", "CAP_NOT_A_CAP"], "effective": [], "permitted": []},
            "noNewPrivileges": true
        }))
        .unwrap(),
    )
    .unwrap();
    let (code, out, err) = env.exec(&["--process", p.to_str().unwrap(), &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hi there\n/tmp\n1000\n1000\n1000 3000\n");
}

#[test]
fn exec_user_flag() {
    let env = Env::new("exec-user");
    let (id, _b, _) = running(&env, "a");
    let (code, out, err) = env.exec(&["--user", "1000:1000", "-g", "2000", &id, "id"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("uid=1000"), "{out}");
    assert!(out.contains("gid=1000"), "{out}");
    assert!(out.contains("groups=2000"), "{out}");
    let (code, _, err) = env.exec(&["--user", "nobody", &id, "id"]);
    assert_ne!(code, 0);
    assert!(err.contains("--user"), "{err}");
}

#[test]
fn exec_errors_are_clear() {
    let env = Env::new("exec-err");
    let (id, _b, _) = running(&env, "a");
    let (code, _, err) = env.exec(&[&id, "no-such-command"]);
    assert_ne!(code, 0);
    assert!(err.contains("executable file not found"), "{err}");
    assert!(err.contains("no-such-command"), "{err}");
    let (code, _, err) = env.exec(&["--cwd", "/no/such/dir", &id, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("/no/such/dir"), "{err}");
    let (code, _, err) = env.exec(&["nosuchcontainer", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
    // The container is untouched by all that.
    assert_eq!(env.status(&id), "running");

    // Stopped: a clear error.
    let id2 = env.id("b");
    let b2 = env.bundle(&id2, &["true"]);
    env.create(&id2, &b2);
    env.ok(&["start", &id2]);
    env.wait_status(&id2, "stopped");
    let (code, _, err) = env.exec(&[&id2, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot exec in a stopped container"), "{err}");
}

#[test]
fn exec_into_created_container() {
    // As runc: a created container's namespaces exist and can be joined.
    let env = Env::new("exec-created");
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    env.create(&id, &b);
    let (code, out, err) = env.exec(&[&id, "hostname"]);
    assert_eq!((code, out.as_str()), (0, "berth\n"), "{err}");
    assert_eq!(env.status(&id), "created");
}

#[test]
fn exec_signal_exit_and_forwarding() {
    let env = Env::new("exec-sig");
    let (id, _b, _) = running(&env, "a");
    let (code, _, err) = env.exec(&[&id, "sh", "-c", "kill -USR1 $$; sleep 5"]);
    assert_eq!(code, 128 + 10, "{err}");
    // A signal to `berth exec` reaches the process.
    let mut child = env
        .cmd()
        .args([
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; sleep 1000 & wait",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled once the trap is set (berth blocks the signals it forwards before its fork).
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) of the berth process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(42));
}

#[test]
fn features_document() {
    let env = Env::new("features");
    let out = env.ok(&["features"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(
        v["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "createRuntime")
    );
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    for n in ["mount", "pid", "user", "cgroup", "network"] {
        assert!(ns.iter().any(|x| x == n), "{n}");
    }
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert_eq!(v["linux"]["netDevices"]["enabled"], true);
    assert_eq!(v["linux"]["intelRdt"]["enabled"], false);
}

/// exec into a container with a user namespace: the process is the container's root (mapped),
/// and its oomScoreAdj is applied although the joining process is non-dumpable.
#[test]
fn exec_into_user_namespace_with_oom_score_adj() {
    let env = Env::new("exec-userns");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "1000"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    let p = env.tmp.join("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "cat /proc/self/oom_score_adj; id -u; cat /proc/self/uid_map"],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "oomScoreAdj": 500
        }))
        .unwrap(),
    )
    .unwrap();
    let (code, out, err) = env.exec(&["--process", p.to_str().unwrap(), &id]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "500", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    assert!(
        lines[2].split_whitespace().eq(["0", "100000", "65536"]),
        "{out}"
    );
    env.ok(&["delete", "--force", &id]);
}

/// The program is exec'd through a trampoline, which cannot report why its exec failed: a
/// missing `#!` or ELF interpreter is caught before, with the reason, by create and exec.
#[test]
fn missing_interpreters_are_reported() {
    let env = Env::new("exec-interp");
    let (id, b, _) = running(&env, "a");
    let script = b.rootfs().join("tmp/script");
    std::fs::write(&script, "#!/nope/sh\necho hi\n").unwrap();
    std::fs::copy("/usr/bin/true", b.rootfs().join("tmp/dyntrue")).unwrap();
    Command::new("chmod")
        .args(["755"])
        .arg(&script)
        .arg(b.rootfs().join("tmp/dyntrue"))
        .status()
        .unwrap();
    let (code, _, err) = env.exec(&[&id, "/tmp/script"]);
    assert_ne!(code, 0);
    assert!(err.contains("its interpreter /nope/sh: not found"), "{err}");
    let (code, _, err) = env.exec(&[&id, "/tmp/dyntrue"]);
    assert_ne!(code, 0);
    assert!(err.contains("its interpreter /lib"), "{err}");
    // The same at create.
    let id2 = env.id("b");
    let b2 = env.bundle(&id2, &["/tmp/script"]);
    std::fs::create_dir_all(b2.rootfs().join("tmp")).unwrap();
    std::fs::copy(&script, b2.rootfs().join("tmp/script")).unwrap();
    let out = env.try_create(&id2, &b2);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("process.args[0]") && err.contains("/nope/sh"),
        "{err}"
    );
    assert!(!env.root.join(&id2).exists());
    env.ok(&["delete", "--force", &id]);
}
