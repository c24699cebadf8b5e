//! Deliberately wrong runtimes, to show that the suite's checks can fail (`hack/cri/canfail.sh`).
//!
//!   berth-cri mutate NAME REAL-RUNTIME ARGS..   (what a generated wrapper script execs)
//!   berth-cri mutations                         (NAME, group filter, checks it must fail)
//!
//! A wrapper passes every runtime call through to the real runtime (exec, same fds), after
//! changing one thing: a field of the config.json containerd wrote (create), of an exec's
//! process.json, the signal of a kill, or by skipping an update/delete/kill --all. Each
//! mutation names the checks it must make fail; canfail.sh runs the suite's group with it and
//! reports a mutation whose checks all still pass as a check that cannot fail.

use serde_json::{Value, json};
use std::os::unix::process::CommandExt;

/// Which containers a config.json mutation applies to (by containerd's
/// `io.kubernetes.cri.container-type` annotation).
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Sandbox,
    Container,
    All,
}

enum Change {
    /// Change config.json in the bundle before `create`.
    Spec(Who, fn(&mut Value)),
    /// Change the process.json of `exec --process`.
    Exec(fn(&mut Value)),
    /// Replace the signal of `kill` (numeric, as the shim sends it): from, to; only for the
    /// container of that CRI name (containerd's annotation in its bundle), or for every one.
    Signal(&'static str, &'static str, Option<&'static str>),
    /// Exit 0 without calling the runtime.
    Skip(Skipped),
}

#[derive(Clone, Copy)]
enum Skipped {
    Update,
    Delete,
    KillAll,
}

pub struct Mutation {
    pub name: &'static str,
    /// The suite's --filter that runs the checks below.
    pub filter: &'static str,
    /// Checks that must FAIL with this mutation.
    pub expect: &'static [&'static str],
    /// What the wrong runtime does (for the report).
    pub what: &'static str,
    change: Change,
}

fn obj<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut serde_json::Map<String, Value>> {
    v.get_mut(k).and_then(Value::as_object_mut)
}

fn linux(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    if v.get("linux").is_none() {
        v["linux"] = json!({});
    }
    obj(v, "linux").unwrap()
}

/// Drop the `path` of the namespaces of `kind` (the container gets a new one).
fn ns_unshare(v: &mut Value, kind: &str) {
    if let Some(Value::Array(ns)) = linux(v).get_mut("namespaces") {
        for n in ns.iter_mut() {
            if n["type"] == kind
                && let Some(o) = n.as_object_mut()
            {
                o.remove("path");
            }
        }
    }
}

/// Run process.args under `/bin/sh -c SCRIPT sh ARGS..` (the spec's or process.json's).
fn wrap_args(v: &mut Value, script: &str) {
    let p = if v.get("process").is_some() {
        &mut v["process"]
    } else {
        v
    };
    if let Some(Value::Array(a)) = p.get_mut("args") {
        let mut n = vec![json!("/bin/sh"), json!("-c"), json!(script), json!("sh")];
        n.append(a);
        *a = n;
    }
}

fn caps_edit(v: &mut Value, f: &dyn Fn(&mut Vec<Value>)) {
    if let Some(c) = v.get_mut("capabilities").and_then(Value::as_object_mut) {
        for (_, set) in c.iter_mut() {
            if let Value::Array(a) = set {
                f(a);
            }
        }
    }
}

pub fn all() -> Vec<Mutation> {
    use Change::*;
    vec![
        Mutation {
            name: "create-fails",
            filter: "pod.hostname",
            expect: &["pod.run-ready"],
            what: "create of a sandbox exits 1",
            change: Spec(Who::Sandbox, |v| v["bcri-fail"] = json!(true)),
        },
        Mutation {
            name: "hostname",
            filter: "pod.hostname",
            expect: &["pod.hostname"],
            what: "sandbox hostname replaced",
            change: Spec(Who::Sandbox, |v| v["hostname"] = json!("bcri-wrong")),
        },
        Mutation {
            name: "own-netns",
            filter: "pod.hostname",
            expect: &["pod.ip", "pod.shared-namespaces"],
            what: "containers get their own network namespace instead of the pod's",
            change: Spec(Who::Container, |v| ns_unshare(v, "network")),
        },
        Mutation {
            name: "no-resolv-conf",
            filter: "pod.hostname",
            expect: &["pod.dns"],
            what: "the /etc/resolv.conf bind mount dropped",
            change: Spec(Who::Container, |v| {
                if let Some(Value::Array(m)) = v.get_mut("mounts") {
                    m.retain(|m| m["destination"] != "/etc/resolv.conf");
                }
            }),
        },
        Mutation {
            name: "no-sysctl",
            filter: "pod.hostname",
            expect: &["pod.sysctls"],
            what: "linux.sysctl of the sandbox ignored",
            change: Spec(Who::Sandbox, |v| {
                linux(v).remove("sysctl");
            }),
        },
        Mutation {
            name: "env",
            filter: "pod.hostname",
            expect: &["container.args-env-workdir"],
            what: "FOO dropped from process.env",
            change: Spec(Who::Container, |v| {
                if let Some(Value::Array(e)) = v.pointer_mut("/process/env") {
                    e.retain(|e| !e.as_str().unwrap_or("").starts_with("FOO="));
                }
            }),
        },
        Mutation {
            name: "mounts-rw",
            filter: "pod.hostname",
            expect: &["container.mounts"],
            what: "read-only bind mounts made read-write",
            change: Spec(Who::Container, |v| {
                if let Some(Value::Array(m)) = v.get_mut("mounts") {
                    for m in m.iter_mut() {
                        let bind = m["options"]
                            .as_array()
                            .is_some_and(|o| o.iter().any(|o| o == "rbind" || o == "bind"));
                        if bind && let Some(Value::Array(o)) = m.get_mut("options") {
                            o.retain(|o| o != "ro");
                        }
                    }
                }
            }),
        },
        Mutation {
            name: "no-cpu-quota",
            filter: "pod.hostname",
            expect: &["container.resources"],
            what: "linux.resources.cpu.quota ignored",
            change: Spec(Who::Container, |v| {
                if let Some(c) = v
                    .pointer_mut("/linux/resources/cpu")
                    .and_then(Value::as_object_mut)
                {
                    c.remove("quota");
                }
            }),
        },
        Mutation {
            name: "no-oom-score-adj",
            filter: "pod.hostname",
            expect: &["container.oom-score-adj"],
            what: "process.oomScoreAdj ignored",
            change: Spec(Who::Container, |v| {
                if let Some(p) = obj(v, "process") {
                    p.remove("oomScoreAdj");
                }
            }),
        },
        Mutation {
            name: "no-devices",
            filter: "pod.hostname",
            expect: &["container.devices"],
            what: "linux.devices not created",
            change: Spec(Who::Container, |v| {
                linux(v).remove("devices");
            }),
        },
        Mutation {
            name: "rlimit",
            filter: "pod.hostname",
            expect: &["container.rlimits-inherited"],
            what: "an RLIMIT_NOFILE of 1000 set though CRI sends none",
            change: Spec(Who::Container, |v| {
                v["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "hard": 1000, "soft": 1000}]);
            }),
        },
        Mutation {
            name: "own-pidns",
            filter: "target-pid,share-process",
            expect: &[
                "container.target-pid-namespace",
                "pod.share-process-namespace",
            ],
            what: "containers get a new PID namespace instead of joining one by path",
            change: Spec(Who::Container, |v| ns_unshare(v, "pid")),
        },
        Mutation {
            name: "exec-no-caps",
            filter: "pod.hostname",
            expect: &["exec.joins-container"],
            what: "exec'd processes get no capabilities",
            change: Exec(|v| caps_edit(v, &|a| a.clear())),
        },
        Mutation {
            name: "exec-stderr-to-stdout",
            filter: "pod.hostname",
            expect: &["exec.output-exit-code"],
            what: "exec'd processes get their stderr on stdout",
            change: Exec(|v| wrap_args(v, "exec 2>&1; exec \"$@\"")),
        },
        Mutation {
            name: "exec-orphan",
            filter: "pod.hostname",
            expect: &["exec.timeout"],
            what: "exec runs the command as a child of a shell (killing the exec'd process leaves it)",
            change: Exec(|v| wrap_args(v, "\"$@\" & wait $!")),
        },
        Mutation {
            name: "exit-zero",
            filter: "pod.hostname",
            expect: &["container.exit-status"],
            what: "the container's process exits 0 whatever its program returned",
            change: Spec(Who::Container, |v| wrap_args(v, "\"$@\"; exit 0")),
        },
        Mutation {
            name: "update-ignored",
            filter: "pod.hostname",
            expect: &["update.resources"],
            what: "update exits 0 and changes nothing",
            change: Skip(Skipped::Update),
        },
        Mutation {
            name: "term-is-kill",
            filter: "pod.hostname",
            expect: &["stop.graceful"],
            what: "kill SIGTERM sends SIGKILL",
            change: Signal("15", "9", None),
        },
        Mutation {
            name: "kill-is-int",
            filter: "pod.hostname",
            expect: &["stop.grace-period-kill"],
            what: "kill SIGKILL sends SIGINT (to the container that ignores SIGTERM)",
            change: Signal("9", "2", Some("stubborn")),
        },
        Mutation {
            name: "delete-ignored",
            filter: "pod.hostname",
            expect: &[
                "container.remove",
                "pod.remove-nothing-left",
                "nothing-left.host",
            ],
            what: "delete exits 0 and removes nothing (state, cgroups)",
            change: Skip(Skipped::Delete),
        },
        Mutation {
            name: "kill-all-ignored",
            filter: "share-process",
            expect: &["pod.kill-all-on-exit"],
            what: "kill --all and delete exit 0 and do nothing (delete of a container in a shared \
                   PID namespace kills what is left, as runc's does)",
            change: Skip(Skipped::KillAll),
        },
        Mutation {
            name: "cgroup-name",
            filter: "pod.hostname",
            expect: &["pod.cgroup-parent"],
            what: "linux.cgroupsPath's last part changed",
            change: Spec(Who::All, |v| {
                if let Some(Value::String(p)) = v.pointer_mut("/linux/cgroupsPath") {
                    p.push_str("-wrong");
                }
            }),
        },
        Mutation {
            name: "no-supplementary-groups",
            filter: "security",
            expect: &["security.run-as-user-group"],
            what: "process.user.additionalGids ignored",
            change: Spec(Who::Container, |v| {
                if let Some(u) = v
                    .pointer_mut("/process/user")
                    .and_then(Value::as_object_mut)
                {
                    u.remove("additionalGids");
                }
            }),
        },
        Mutation {
            name: "rootfs-rw",
            filter: "security",
            expect: &["security.readonly-rootfs"],
            what: "root.readonly ignored",
            change: Spec(Who::Container, |v| v["root"]["readonly"] = json!(false)),
        },
        Mutation {
            name: "cap-chown",
            filter: "security",
            expect: &[
                "security.capabilities-add-drop",
                "security.capabilities-drop-all",
            ],
            what: "CAP_CHOWN added to every capability set",
            change: Spec(Who::Container, |v| {
                if let Some(p) = v.get_mut("process") {
                    for set in ["bounding", "effective", "permitted"] {
                        if p.pointer(&format!("/capabilities/{set}")).is_none() {
                            p["capabilities"][set] = json!([]);
                        }
                    }
                    caps_edit(p, &|a| {
                        if !a.iter().any(|c| c == "CAP_CHOWN") {
                            a.push(json!("CAP_CHOWN"))
                        }
                    });
                }
            }),
        },
        Mutation {
            name: "nnp-off",
            filter: "security",
            expect: &["security.no-new-privs"],
            what: "process.noNewPrivileges ignored",
            change: Spec(Who::Container, |v| {
                v["process"]["noNewPrivileges"] = json!(false)
            }),
        },
        Mutation {
            name: "no-seccomp",
            filter: "security",
            expect: &[
                "security.seccomp-runtime-default",
                "security.seccomp-localhost",
            ],
            what: "linux.seccomp ignored",
            change: Spec(Who::Container, |v| {
                linux(v).remove("seccomp");
            }),
        },
        Mutation {
            name: "seccomp-always",
            filter: "security,privileged",
            expect: &["security.seccomp-unconfined", "security.privileged"],
            what: "a seccomp filter (denying only sethostname) loaded where none is asked",
            change: Spec(Who::Container, |v| {
                let l = linux(v);
                if !l.contains_key("seccomp") {
                    l.insert(
                        "seccomp".into(),
                        json!({"defaultAction": "SCMP_ACT_ALLOW",
                               "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}),
                    );
                }
            }),
        },
        Mutation {
            name: "no-masked-paths",
            filter: "security",
            expect: &["security.masked-readonly-paths"],
            what: "linux.maskedPaths ignored",
            change: Spec(Who::Container, |v| {
                linux(v).remove("maskedPaths");
            }),
        },
        Mutation {
            name: "no-sys-admin",
            filter: "privileged",
            expect: &["security.privileged"],
            what: "CAP_SYS_ADMIN removed from every capability set",
            change: Spec(Who::Container, |v| {
                if let Some(p) = v.get_mut("process") {
                    caps_edit(p, &|a| a.retain(|c| c != "CAP_SYS_ADMIN"));
                }
            }),
        },
        Mutation {
            name: "pidns-always",
            filter: "host-namespaces",
            expect: &["pod.host-network-pid-ipc"],
            what: "a new PID namespace where the spec has none (hostPID)",
            change: Spec(Who::All, |v| {
                let l = linux(v);
                let ns = l.entry("namespaces").or_insert_with(|| json!([]));
                if let Value::Array(a) = ns
                    && !a.iter().any(|n| n["type"] == "pid")
                {
                    a.push(json!({"type": "pid"}));
                }
            }),
        },
        Mutation {
            name: "memory-limit-as-rlimit",
            filter: "oom-killed",
            expect: &["container.oom-killed"],
            what: "the memory limit dropped, RLIMIT_AS 256 MiB instead (nothing for the OOM killer)",
            change: Spec(Who::Container, |v| {
                if let Some(m) = v
                    .pointer_mut("/linux/resources")
                    .and_then(Value::as_object_mut)
                {
                    m.remove("memory");
                }
                let lim = 256u64 << 20;
                v["process"]["rlimits"] = json!([{"type": "RLIMIT_AS", "hard": lim, "soft": lim}]);
            }),
        },
    ]
}

const SUBCOMMANDS: &[&str] = &[
    "create",
    "start",
    "state",
    "kill",
    "delete",
    "exec",
    "update",
    "ps",
    "pause",
    "resume",
    "run",
    "events",
    "features",
    "checkpoint",
    "restore",
    "spec",
    "list",
];

/// The value of `--flag V`, `--flag=V` or `-f V` in args.
fn flag(args: &[String], long: &str, short: &str) -> Option<(usize, String)> {
    for (i, a) in args.iter().enumerate() {
        if (a == long || a == short) && i + 1 < args.len() {
            return Some((i + 1, args[i + 1].clone()));
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some((i, v.to_string()));
        }
    }
    None
}

fn edit_json(path: &str, f: &dyn Fn(&mut Value)) -> Result<(), String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut v: Value = serde_json::from_str(&s).map_err(|e| format!("{path}: {e}"))?;
    f(&mut v);
    std::fs::write(path, v.to_string()).map_err(|e| format!("{path}: {e}"))
}

/// `berth-cri mutate NAME REAL ARGS..`: apply the mutation, then exec REAL ARGS.
pub fn run(args: Vec<String>) -> ! {
    let die = |m: String| -> ! {
        eprintln!("berth-cri mutate: {m}");
        std::process::exit(1)
    };
    if args.len() < 2 {
        die("usage: berth-cri mutate NAME REAL-RUNTIME ARGS..".into());
    }
    let (name, real, rest) = (&args[0], &args[1], args[2..].to_vec());
    let m = all()
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| die(format!("unknown mutation {name}")));
    let sub = rest.iter().position(|a| SUBCOMMANDS.contains(&a.as_str()));
    let (cmd, after) = match sub {
        Some(i) => (rest[i].as_str(), &rest[i + 1..]),
        None => ("", &rest[..0]),
    };
    // BCRI_MUT_LOG (set by canfail.sh's wrapper): every call, with its cwd
    if let Some(log) = std::env::var_os("BCRI_MUT_LOG") {
        let cwd = std::env::current_dir().unwrap_or_default();
        let line = format!("{} {}\n", cwd.display(), rest.join(" "));
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
    let mut out = rest.clone();
    match (&m.change, cmd) {
        (Change::Spec(who, f), "create") => {
            let bundle = flag(after, "--bundle", "-b")
                .map(|(_, b)| b)
                .unwrap_or_else(|| ".".into());
            let cfg = format!("{bundle}/config.json");
            let s = std::fs::read_to_string(&cfg).unwrap_or_else(|e| die(format!("{cfg}: {e}")));
            let mut v: Value =
                serde_json::from_str(&s).unwrap_or_else(|e| die(format!("{cfg}: {e}")));
            let kind = v
                .pointer("/annotations/io.kubernetes.cri.container-type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let applies = match who {
                Who::All => true,
                Who::Sandbox => kind == "sandbox",
                Who::Container => kind == "container",
            };
            if applies {
                f(&mut v);
                if v.get("bcri-fail").is_some() {
                    die("create refused (mutation create-fails)".into());
                }
                std::fs::write(&cfg, v.to_string()).unwrap_or_else(|e| die(format!("{cfg}: {e}")));
            }
        }
        (Change::Exec(f), "exec") => {
            if let Some((_, p)) = flag(after, "--process", "-p") {
                edit_json(&p, f).unwrap_or_else(|e| die(e));
            }
        }
        (Change::Signal(from, to, only), "kill") => {
            // kill [--all] ID SIGNAL: the last argument. The pod's shim runs in the sandbox's
            // bundle; the container's is its sibling, named by the id.
            let id = after
                .len()
                .checked_sub(2)
                .map(|i| after[i].as_str())
                .unwrap_or("");
            let name = std::fs::read_to_string(format!("../{id}/config.json"))
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| {
                    v.pointer("/annotations/io.kubernetes.cri.container-name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
            if after.len() >= 2
                && only.is_none_or(|o| name.as_deref() == Some(o))
                && let Some(last) = out.last_mut()
                && (last == from || last.trim_start_matches("SIG") == sig_name(from))
            {
                *last = to.to_string();
            }
        }
        (Change::Skip(Skipped::Update), "update") => {
            // swallow the resources on stdin (`--resources -`), as the real runtime would
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0)
        }
        (Change::Skip(Skipped::Delete | Skipped::KillAll), "delete") => std::process::exit(0),
        (Change::Skip(Skipped::KillAll), "kill")
            if after.iter().any(|a| a == "--all" || a == "-a") =>
        {
            std::process::exit(0)
        }
        _ => {}
    }
    out.insert(0, real.clone());
    let e = std::process::Command::new(&out[0]).args(&out[1..]).exec();
    die(format!("exec {real}: {e}"))
}

fn sig_name(n: &str) -> &str {
    match n {
        "9" => "KILL",
        "15" => "TERM",
        "2" => "INT",
        _ => n,
    }
}

/// `berth-cri mutations`: one line per mutation: name, filter, expected failing checks, what.
pub fn list() {
    for m in all() {
        println!(
            "{}\t{}\t{}\t{}",
            m.name,
            m.filter,
            m.expect.join(","),
            m.what
        );
    }
}
