//! Hooks: all six points, in order, with the state on stdin; failure rules; timeouts.
mod common;
use common::*;
use serde_json::json;

fn hook(log: &std::path::Path, name: &str) -> serde_json::Value {
    // Each hook appends its name and the state it got on stdin.
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {}", log.display())]})
}

/// The hooks berth runs itself, in the order they must run.
const RUNTIME_HOOKS: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// Each of RUNTIME_HOOKS logging to `log`.
fn logging_hooks(log: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    RUNTIME_HOOKS
        .iter()
        .map(|n| (n.to_string(), json!([hook(log, n)])))
        .collect()
}

/// The log the hooks wrote: (hook name, the state it got), in order.
fn hook_log(log: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, st) = l.split_once(' ').unwrap();
            (n.to_string(), serde_json::from_str(st).unwrap())
        })
        .collect()
}

fn names(lines: &[(String, serde_json::Value)]) -> Vec<&str> {
    lines.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn all_hooks_run_in_order_with_state() {
    let env = Env::new("hooks");
    let id = env.id("a");
    let log = env.tmp.join("hooks.log");
    let mut b = env.bundle(&id, &["true"]);
    // startContainer runs inside the container: log to a file there, read it afterwards.
    let mut hooks = logging_hooks(&log);
    hooks.insert(
        "startContainer".into(),
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer > /tmp/started"]}]),
    );
    b.config["hooks"] = hooks.into();
    b.config["root"]["readonly"] = json!(false);
    env.create(&id, &b);
    let lines = hook_log(&log);
    assert_eq!(names(&lines), RUNTIME_HOOKS[..3]);
    let st = &lines[0].1;
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "creating");
    assert!(st["pid"].as_i64().unwrap() > 0);
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
    assert_eq!(names(&hook_log(&log)), RUNTIME_HOOKS);
    assert!(
        b.rootfs().join("tmp/started").exists(),
        "startContainer ran in the container"
    );
}

#[test]
fn run_runs_the_hooks_of_the_bundle_in_order() {
    // `run` starts and deletes the container itself, with the hooks of the config it created
    // it from (not re-read from the state directory).
    let env = Env::new("runhooks");
    let id = env.id("a");
    let log = env.tmp.join("hooks.log");
    let mut b = env.bundle(&id, &["true"]);
    b.config["hooks"] = logging_hooks(&log).into();
    let (code, _, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    let lines = hook_log(&log);
    assert_eq!(names(&lines), RUNTIME_HOOKS);
    let (_, post) = &lines[3];
    assert_eq!(post["id"], id.as_str());
    assert_eq!(post["status"], "running");
    assert!(post["pid"].as_i64().unwrap() > 0);
    assert_eq!(lines[4].1["status"], "stopped");
    assert!(
        !env.root.join(&id).exists(),
        "run must delete the container"
    );
}

#[test]
fn failing_create_hook_fails_create_and_poststop_failure_is_a_warning() {
    let env = Env::new("hookfail");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]});
    let out = env.try_create(&id, &b);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("createRuntime hook") && err.contains("boom"),
        "{err}"
    );
    assert!(!env.root.join(&id).exists());

    let mut b = env.bundle(&id, &["true"]);
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    env.create(&id, &b);
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
}

#[test]
fn hook_timeout() {
    let env = Env::new("hooktimeout");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let out = env.try_create(&id, &b);
    assert!(!out.status.success());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(!env.root.join(&id).exists());
}
