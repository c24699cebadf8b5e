//! Bad input and wrong states: a clear error naming the problem, and nothing left behind.
mod common;
use common::*;
use serde_json::json;

fn assert_clean(env: &Env, id: &str) {
    assert!(!env.root.join(id).exists(), "state dir left behind");
    for d in env.cgroup_parent_dirs() {
        assert!(
            !d.join(id).exists(),
            "cgroup {} left behind",
            d.join(id).display()
        );
    }
}

fn create_err(env: &Env, id: &str, b: &Bundle) -> String {
    let out = env.try_create(id, b);
    assert!(!out.status.success(), "create should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("berth: "), "one line `berth: ...`: {err}");
    assert_clean(env, id);
    err
}

#[test]
fn missing_bundle_and_config() {
    let env = Env::new("nobundle");
    let out = env.berth(&["create", "--bundle", "/nonexistent/bundle", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bundle"));
    std::fs::create_dir_all(env.tmp.join("empty")).unwrap();
    let out = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(env.tmp.join("empty"))
        .arg("x")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

#[test]
fn malformed_json_and_wrong_types_name_the_field() {
    let env = Env::new("badjson");
    let id = env.id("a");
    let b = env.bundle(&id, &["true"]);
    std::fs::write(b.dir.join("config.json"), "{\"ociVersion\": ").unwrap();
    let out = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid JSON"), "{err}");
    assert_clean(&env, &id);

    let mut b = env.bundle(&id, &["true"]);
    b.config["process"]["args"] = json!("not-a-list");
    let err = create_err(&env, &id, &b);
    assert!(err.contains("process.args"), "{err}");

    let mut b = env.bundle(&id, &["true"]);
    b.config["process"]["args"] = json!([]);
    let err = create_err(&env, &id, &b);
    assert!(err.contains("process.args: must not be empty"), "{err}");

    let mut b = env.bundle(&id, &["true"]);
    b.config["linux"]["uidMappings"] = json!([{"containerID": "zero", "hostID": 0, "size": 1}]);
    let err = create_err(&env, &id, &b);
    assert!(err.contains("linux.uidMappings[0].containerID"), "{err}");

    let mut b = env.bundle(&id, &["true"]);
    b.config["unknownField"] = json!({"ignored": true});
    b.config["process"]["args"] = json!(["true"]);
    env.create(&id, &b);
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn failures_in_the_child_report_the_reason_and_roll_back() {
    let env = Env::new("childerr");
    let id = env.id("a");
    let b = env.bundle(&id, &["/no/such/binary"]);
    let err = create_err(&env, &id, &b);
    // Go's errno text: docker and podman give exit status 127 for it.
    assert!(
        err.contains("process.args[0]: /no/such/binary: no such file or directory"),
        "{err}"
    );
    let b = env.bundle(&id, &["/etc/passwd"]);
    let err = create_err(&env, &id, &b);
    // ... and 126 for this one.
    assert!(
        err.contains("process.args[0]: /etc/passwd: not executable: permission denied"),
        "{err}"
    );

    let b = env.bundle(&id, &["nosuchcommand"]);
    let err = create_err(&env, &id, &b);
    assert!(err.contains("not found in $PATH"), "{err}");

    let mut b = env.bundle(&id, &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]}));
    let err = create_err(&env, &id, &b);
    assert!(
        err.contains("mounts[7]") && err.contains("/nonexistent/src"),
        "{err}"
    );

    let mut b = env.bundle(&id, &["true"]);
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 10000000, "hard": 10000000}]);
    let err = create_err(&env, &id, &b);
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
}

#[test]
fn bad_ids_are_refused() {
    let env = Env::new("badid");
    let b = env.bundle("x", &["true"]);
    for id in ["", "..", "a/b", "../x", &"x".repeat(1100)] {
        let out = env
            .cmd()
            .args(["create", "--bundle"])
            .arg(&b.dir)
            .arg(id)
            .output()
            .unwrap();
        assert!(!out.status.success(), "id {id:?} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("container id"),
            "{id:?}"
        );
    }
    assert!(!env.root.exists() || std::fs::read_dir(&env.root).unwrap().next().is_none());
}

#[test]
fn wrong_states() {
    let env = Env::new("states");
    let out = env.berth(&["start", "nonexistent"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = env.berth(&["kill", "nonexistent"]);
    assert!(!out.status.success());
    let out = env.berth(&["state", "nonexistent"]);
    assert!(!out.status.success());
    let id = env.id("a");
    let b = env.bundle(&id, &["true"]);
    env.create(&id, &b);
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    let out = env.berth(&["start", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
    let out = env.berth(&["kill", &id, "KILL"]);
    assert!(!out.status.success());
    env.ok(&["delete", &id]);
}

#[test]
fn json_log_gets_the_error() {
    let env = Env::new("jsonlog");
    let log = env.tmp.join("log.json");
    let out = env
        .cmd()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "start", "nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("does not exist"));
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn version_and_systemd_flag() {
    let env = Env::new("version");
    let v = env.ok(&["--version"]);
    assert!(v.starts_with("berth version "), "{v}");
    assert!(v.contains("\nspec: 1."), "{v}");
    // The flag is accepted (commands that need no unit need no systemd; a create without
    // systemd is refused in tests/systemd.rs).
    let out = env.berth(&["--systemd-cgroup", "list", "-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
