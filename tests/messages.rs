//! berth's messages, as engines read them: one stderr format with the level in it
//! (`berth: error: ...`, `berth: warning: ...`), warnings of one kind on one line, the `--log`
//! file as runc writes it (JSON lines with "level"/"msg"/"time", or logrus text), and every
//! errno text the way Go prints it ("no such file or directory", never Rust's "No such file or
//! directory (os error 2)" nor nix's "ENOENT: No such file or directory"): docker maps runtime
//! errors to exit codes by these texts.
mod common;
use common::*;
use serde_json::{Value, json};
use std::process::Stdio;

/// Rust's or nix's errno text anywhere in `s`.
fn rust_errno_text(s: &str) -> Option<String> {
    if let Some(i) = s.find("(os error ") {
        return Some(s[i.saturating_sub(40)..].chars().take(80).collect());
    }
    // nix: "EFOO: Capitalised description".
    let b = s.as_bytes();
    for (i, _) in s.match_indices(": ") {
        let start = s[..i]
            .rfind(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
            .map_or(0, |j| j + 1);
        let name = &s[start..i];
        if name.len() > 2
            && name.starts_with('E')
            && b.get(i + 2).is_some_and(|c| c.is_ascii_uppercase())
        {
            return Some(s[start..].chars().take(80).collect());
        }
    }
    None
}

/// Every stderr line is `berth: <level>: ...`.
fn assert_format(what: &str, stderr: &str) {
    for l in stderr.lines() {
        assert!(
            l.starts_with("berth: error: ")
                || l.starts_with("berth: warning: ")
                || l.starts_with("berth: debug: "),
            "{what}: a stderr line without `berth: <level>: `: {l:?}\n{stderr}"
        );
    }
}

struct Failure {
    what: &'static str,
    args: Vec<String>,
    /// Go's text (or runc's wording) the error must contain.
    want: &'static str,
}

#[test]
fn errors_everywhere_use_gos_errno_texts_and_one_format() {
    let env = Env::new("msgs");
    let mut failures: Vec<Failure> = vec![];
    let bundle = |tag: &str, edit: &dyn Fn(&mut Value)| -> String {
        let id = env.id(tag);
        let mut b = env.bundle(&id, &["true"]);
        edit(&mut b.config);
        b.save();
        b.dir.to_string_lossy().into_owned()
    };
    let run = |what, dir: String, id: String, want| Failure {
        what,
        args: vec!["run".into(), "--bundle".into(), dir, id],
        want,
    };
    let d = bundle("noexe", &|c| {
        c["process"]["args"] = json!(["/no-such-command"])
    });
    failures.push(run(
        "program missing",
        d,
        env.id("noexe"),
        "process.args[0]: /no-such-command: no such file or directory",
    ));
    let d = bundle("notx", &|c| c["process"]["args"] = json!(["/etc/passwd"]));
    failures.push(run(
        "program not executable",
        d,
        env.id("notx"),
        "permission denied",
    ));
    let d = bundle("nopath", &|c| {
        c["process"]["args"] = json!(["no-such-command"])
    });
    failures.push(run(
        "program not in PATH",
        d,
        env.id("nopath"),
        "executable file not found in $PATH",
    ));
    let src = env.tmp.join("missing-source");
    let d = bundle("bind", &|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind", "source": src, "options": ["bind"]}))
    });
    failures.push(run(
        "bind source missing",
        d,
        env.id("bind"),
        "no such file or directory",
    ));
    let d = bundle("fstype", &|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "nosuchfs", "source": "x"}))
    });
    failures.push(run(
        "unknown fs type",
        d,
        env.id("fstype"),
        "no such device",
    ));
    let d = bundle("sysctl", &|c| {
        c["linux"]["sysctl"] = json!({"net.no.such.key": "1"})
    });
    failures.push(run(
        "sysctl missing",
        d,
        env.id("sysctl"),
        "no such file or directory",
    ));
    let d = bundle("hook", &|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/no/such/hook"}]})
    });
    failures.push(run(
        "hook missing",
        d,
        env.id("hook"),
        "no such file or directory",
    ));
    let d = bundle("cwd", &|c| c["process"]["cwd"] = json!("/etc/passwd"));
    failures.push(run("cwd a file", d, env.id("cwd"), "not a directory"));
    let d = bundle("pidfile", &|_| {});
    failures.push(Failure {
        what: "pid file in a missing directory",
        args: vec![
            "run".into(),
            "--pid-file".into(),
            env.tmp
                .join("no/such/dir/pid")
                .to_string_lossy()
                .into_owned(),
            "--bundle".into(),
            d,
            env.id("pidfile"),
        ],
        want: "no such file or directory",
    });
    let d = bundle("console", &|_| {});
    failures.push(Failure {
        what: "console socket missing",
        args: vec![
            "run".into(),
            "--detach".into(),
            "--console-socket".into(),
            env.tmp.join("no.sock").to_string_lossy().into_owned(),
            "--bundle".into(),
            d,
            env.id("console"),
        ],
        want: "no such file or directory",
    });
    failures.push(Failure {
        what: "bundle missing",
        args: vec![
            "run".into(),
            "--bundle".into(),
            env.tmp.join("nobundle").to_string_lossy().into_owned(),
            env.id("nob"),
        ],
        want: "nobundle",
    });
    for cmd in ["state", "delete", "kill", "start", "pause", "ps", "events"] {
        failures.push(Failure {
            what: "unknown container",
            args: vec![cmd.into(), "no-such-container".into()],
            want: "does not exist",
        });
    }

    for f in &failures {
        // stderr alone, then with a JSON log, then with a text log.
        let out = env
            .cmd()
            .args(&f.args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: succeeded", f.what);
        assert!(
            err.contains(f.want),
            "{}: want {:?} in: {err}",
            f.what,
            f.want
        );
        assert!(
            err.lines()
                .last()
                .unwrap_or("")
                .starts_with("berth: error: "),
            "{}: {err}",
            f.what
        );
        assert_format(f.what, &err);
        assert_eq!(rust_errno_text(&err), None, "{}: {err}", f.what);
        for (fmt, ext) in [("json", "json"), ("text", "txt")] {
            let log = env.tmp.join(format!("log.{ext}"));
            let _ = std::fs::remove_file(&log);
            let out = env
                .cmd()
                .args(["--log", log.to_str().unwrap(), "--log-format", fmt])
                .args(&f.args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err2 = String::from_utf8_lossy(&out.stderr);
            assert_format(f.what, &err2);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert_eq!(
                rust_errno_text(&text),
                None,
                "{} ({fmt} log): {text}",
                f.what
            );
            let last = text.lines().last().unwrap_or("");
            if fmt == "json" {
                let v: Value = serde_json::from_str(last)
                    .unwrap_or_else(|e| panic!("{}: log line {last:?}: {e}", f.what));
                assert_eq!(v["level"], "error", "{}: {last}", f.what);
                let msg = v["msg"].as_str().unwrap();
                assert!(msg.contains(f.want), "{}: {msg}", f.what);
                // The same message as on stderr.
                assert_eq!(
                    err2.lines().last().unwrap().strip_prefix("berth: error: "),
                    Some(msg),
                    "{}",
                    f.what
                );
            } else {
                assert!(
                    last.starts_with("time=\"") && last.contains(" level=error msg="),
                    "{}: {last}",
                    f.what
                );
            }
        }
    }
}

/// A runc 1.1 `spec`-style process: ambient capabilities without inheritable ones, which the
/// kernel will not raise. One warning line for the three (not one each), in the stderr format
/// without --log; with --log only in the log (level "warning"), not on stderr.
#[test]
fn warnings_one_line_per_kind_with_their_level() {
    let env = Env::new("warns");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
    });
    b.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    let (code, _, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_format("run", &err);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("capabilities.ambient"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].starts_with("berth: warning: process.capabilities.ambient: "));
    for c in ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] {
        assert!(warnings[0].contains(c), "{err}");
    }
    assert_eq!(rust_errno_text(&err), None, "{err}");

    let log = env.tmp.join("log.json");
    let out = env
        .cmd()
        .args(["--log", log.to_str().unwrap(), "--log-format", "json"])
        .args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("capabilities.ambient"),
        "a warning on stderr although --log was given"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let w: Vec<&Value> = lines
        .iter()
        .filter(|v| v["msg"].as_str().unwrap().contains("capabilities.ambient"))
        .collect();
    assert_eq!(w.len(), 1, "{text}");
    assert_eq!(w[0]["level"], "warning");
    assert!(w[0]["time"].as_str().unwrap().ends_with('Z'));
}
