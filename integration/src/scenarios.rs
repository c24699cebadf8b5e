//! The scenarios. Each checks one spec field or rule and can fail: it compares with the
//! same bundle without the field (the baseline) or with a known default that differs.

use crate::harness::{Bundle, Ctx, Exit, Obs, Outcome, Res};
use crate::{ensure, skip};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Scenario {
    pub name: &'static str,
    /// The spec field or rule covered (as written in COVERAGE.md).
    pub covers: &'static str,
    pub run: fn(&mut Ctx) -> Res,
}

macro_rules! sc {
    ($name:expr, $covers:expr, $f:expr) => {
        Scenario {
            name: $name,
            covers: $covers,
            run: $f,
        }
    };
}

pub fn all() -> Vec<Scenario> {
    let mut v = vec![];
    v.extend(config_scenarios());
    v.extend(process_scenarios());
    v.extend(hook_scenarios());
    v.extend(linux_scenarios());
    v.extend(cgroup_scenarios());
    v.extend(seccomp_scenarios());
    v.extend(lifecycle_scenarios());
    v
}

// ---------------------------------------------------------------- helpers

/// Set in the runner's own environment; must never show up inside a container or hook.
pub const HOST_ENV_CANARY: &str = "BERTH_INTEGRATION_HOST_CANARY";

const EROFS: i64 = 30;
const EPERM: i64 = 1;
const ENOSYS: i64 = 38;
const EACCES: i64 = 13;

fn cap_no(name: &str) -> u32 {
    const CAPS: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let n = name.trim_start_matches("CAP_");
    CAPS.iter().position(|c| *c == n).expect("cap name") as u32
}

fn cap_mask(names: &[&str]) -> String {
    let m: u64 = names.iter().map(|n| 1u64 << cap_no(n)).sum();
    format!("{m:016x}")
}

fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Add a bind mount of a new host dir at `dest`; returns the host dir.
fn bind_dir(b: &mut Bundle, name: &str, dest: &str, opts: &[&str]) -> PathBuf {
    let host = b.path(name);
    fs::create_dir_all(&host).unwrap();
    let mut o = vec!["rbind"];
    o.extend_from_slice(opts);
    b.add_mount(json!({"destination": dest, "type": "bind", "source": host, "options": o}));
    host
}

fn set_ns(b: &mut Bundle, nss: Value) {
    b.cfg["linux"]["namespaces"] = nss;
}

fn remove_ns(b: &mut Bundle, kind: &str) {
    let v: Vec<Value> = b.cfg["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != kind)
        .cloned()
        .collect();
    set_ns(b, json!(v));
}

fn add_ns(b: &mut Bundle, n: Value) {
    b.cfg["linux"]["namespaces"].as_array_mut().unwrap().push(n);
}

fn userns_map(b: &mut Bundle) {
    add_ns(b, json!({"type": "user"}));
    b.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // sysfs can't be mounted in a user namespace without a network namespace we own;
    // a netns is present, so keep it; but make the rootfs traversable by the mapped root.
}

fn read_file(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Wait until `p` exists (bounded).
fn wait_file(p: &Path, t: Duration) -> bool {
    let end = std::time::Instant::now() + t;
    while std::time::Instant::now() < end {
        if p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    p.exists()
}

fn sh(b: &mut Bundle, script: &str) {
    b.set_args(&["/bin/sh", "-c", script]);
}

/// Kill (KILL), wait and delete a container created by `create_ok`.
fn teardown(ctx: &mut Ctx, id: &str, pid: i32) -> Res {
    let o = ctx.rt(&["kill", id, "KILL"]);
    ensure!(o.ok, "kill KILL failed: {}", o.brief());
    ensure!(
        ctx.wait_exit(pid, Duration::from_secs(10)).is_some(),
        "process did not die after kill"
    );
    ctx.delete_ok(id)
}

// ---------------------------------------------------------------- config.md (generic)

fn config_scenarios() -> Vec<Scenario> {
    vec![
        sc!(
            "mounts.proc-sysfs-symlink",
            "proc/sysfs mount whose destination is a symlink is refused (CVE-2019-19921 family; runc/crun behaviour)",
            |ctx| {
                // /proc or /sys in the rootfs replaced by a symlink (to an existing directory,
                // and dangling): create must fail and leave nothing; nothing gets mounted on
                // the link's target.
                for (dir, target) in [
                    ("proc", "/tmp"),
                    ("proc", "/gone"),
                    ("sys", "/tmp"),
                    ("sys", "/gone"),
                ] {
                    let b = ctx.bundle();
                    let p = b.rootfs().join(dir);
                    fs::remove_dir(&p).unwrap();
                    std::os::unix::fs::symlink(target, &p).unwrap();
                    let o = ctx.create(&b);
                    if o.ok {
                        let mi = ctx.rt(&["exec", &b.id, "cat", "/proc/self/mountinfo"]);
                        crate::fail!(
                            "/{dir} -> {target}: create succeeded ({})",
                            mi.stdout
                                .lines()
                                .filter(|l| l.contains(" /tmp "))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        );
                    }
                    let st = ctx.state(&b.id);
                    ensure!(
                        st.is_err() || st.as_ref().unwrap()["status"] == "stopped",
                        "/{dir} -> {target}: container left after failed create: {:?}",
                        st.ok()
                    );
                    ensure!(
                        !b.rootfs().join("tmp/self").exists()
                            && !b.rootfs().join("tmp/kernel").exists(),
                        "/{dir} -> {target}: something was mounted on the link's target"
                    );
                }
                Ok(())
            }
        ),
        sc!("root.path", "root.path", |ctx| {
            // Relative path (to the bundle) and an absolute path elsewhere.
            let o = ctx.probe(&["read=/marker"], |_| {})?;
            ensure!(
                o.op_str(0).as_deref() == Ok("berth-integration-rootfs\n"),
                "relative root.path: /marker is {:?}",
                o.op(0)
            );
            let o = ctx.probe(&["read=/marker"], |b| {
                let alt = b.path("alt-root");
                fs::rename(b.rootfs(), &alt).unwrap();
                fs::write(alt.join("marker"), "alt\n").unwrap();
                b.cfg["root"]["path"] = json!(alt);
            })?;
            ensure!(
                o.op_str(0).as_deref() == Ok("alt\n"),
                "absolute root.path: /marker is {:?}",
                o.op(0)
            );
            Ok(())
        }),
        sc!("root.readonly", "root.readonly", |ctx| {
            let (base, o) = ctx.probe_pair(&["write=/newfile=x"], |b| {
                b.cfg["root"]["readonly"] = json!(true)
            })?;
            ensure!(
                base.op(0).is_ok(),
                "baseline write to / failed: {:?}",
                base.op(0)
            );
            ensure!(
                o.op(0) == Err(EROFS),
                "write to readonly / gave {:?}, want EROFS",
                o.op(0)
            );
            Ok(())
        }),
        sc!(
            "mounts.bind",
            "mounts (destination, source, type bind)",
            |ctx| {
                let o = ctx.probe(&["read=/mnt/in/f"], |b| {
                    let h = bind_dir(b, "hostdir", "/mnt/in", &[]);
                    fs::write(h.join("f"), "from-host").unwrap();
                })?;
                ensure!(
                    o.op_str(0).as_deref() == Ok("from-host"),
                    "bind mount content {:?}",
                    o.op(0)
                );
                Ok(())
            }
        ),
        sc!(
            "mounts.tmpfs-options",
            "mounts (type, options data)",
            |ctx| {
                let o = ctx.probe(&["stat=/mnt/t"], |b| {
                    b.add_mount(
                        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m", "mode=700", "nosuid"]}),
                    );
                })?;
                let m = o
                    .mount_at("/mnt/t")
                    .ok_or("no mount at /mnt/t".to_string())?;
                ensure!(m.fstype == "tmpfs", "fstype {}", m.fstype);
                ensure!(
                    m.super_opts.iter().any(|x| x == "size=1024k"),
                    "tmpfs size option not applied: {:?}",
                    m.super_opts
                );
                ensure!(m.has("nosuid"), "nosuid not applied: {:?}", m.opts);
                ensure!(
                    o.op(0).map(|v| v["mode"].clone()) == Ok(json!(0o700)),
                    "mode {:?}",
                    o.op(0)
                );
                Ok(())
            }
        ),
        sc!("mounts.order", "mounts (listed order)", |ctx| {
            let o = ctx.probe(&["read=/mnt/x/f"], |b| {
                let a = bind_dir(b, "first", "/mnt/x", &[]);
                fs::write(a.join("f"), "first").unwrap();
                let c = bind_dir(b, "second", "/mnt/x", &[]);
                fs::write(c.join("f"), "second").unwrap();
            })?;
            ensure!(
                o.op_str(0).as_deref() == Ok("second"),
                "later mount not on top: {:?}",
                o.op(0)
            );
            let o = ctx.probe(&["read=/mnt/x/f"], |b| {
                let c = bind_dir(b, "second", "/mnt/x", &[]);
                fs::write(c.join("f"), "second").unwrap();
                let a = bind_dir(b, "first", "/mnt/x", &[]);
                fs::write(a.join("f"), "first").unwrap();
            })?;
            ensure!(
                o.op_str(0).as_deref() == Ok("first"),
                "later mount not on top: {:?}",
                o.op(0)
            );
            Ok(())
        }),
        sc!("mounts.options.ro", "mounts.options ro/rw", |ctx| {
            let ops = ["write=/mnt/d/f=x"];
            let (base, o) = ctx.probe_pair(&ops, |b| {
                bind_dir(b, "d", "/mnt/d", &["ro"]);
            })?;
            let _ = base;
            ensure!(o.op(0) == Err(EROFS), "write to ro bind gave {:?}", o.op(0));
            let o = ctx.probe(&ops, |b| {
                bind_dir(b, "d", "/mnt/d", &["rw"]);
            })?;
            ensure!(o.op(0).is_ok(), "write to rw bind gave {:?}", o.op(0));
            Ok(())
        }),
        sc!(
            "mounts.options.nosuid-nodev-noexec",
            "mounts.options nosuid/nodev/noexec",
            |ctx| {
                let mk = |b: &mut Bundle, opts: &[&str]| {
                    let h = bind_dir(b, "d", "/mnt/d", opts);
                    fs::copy("/bin/true", h.join("prog")).ok();
                    // a static busybox copy so it can run inside
                    fs::copy(b.rootfs().join("bin/busybox"), h.join("prog")).unwrap();
                };
                let o = ctx.probe(&["exec=/mnt/d/prog"], |b| {
                    mk(b, &["nosuid", "nodev", "noexec"])
                })?;
                let m = o
                    .mount_at("/mnt/d")
                    .ok_or("no mount at /mnt/d".to_string())?;
                for f in ["nosuid", "nodev", "noexec"] {
                    ensure!(m.has(f), "{f} missing: {:?}", m.opts);
                }
                ensure!(
                    o.op(0) == Err(EACCES),
                    "exec on noexec mount gave {:?}",
                    o.op(0)
                );
                let o = ctx.probe(&["exec=/mnt/d/prog"], |b| mk(b, &[]))?;
                let m = o
                    .mount_at("/mnt/d")
                    .ok_or("no mount at /mnt/d".to_string())?;
                ensure!(
                    !m.has("noexec") && !m.has("nosuid"),
                    "flags set without options: {:?}",
                    m.opts
                );
                ensure!(o.op(0).is_ok(), "exec on plain bind gave {:?}", o.op(0));
                Ok(())
            }
        ),
        sc!(
            "mounts.options.bind-vs-rbind",
            "mounts.options bind/rbind",
            |ctx| {
                let ops = ["read=/mnt/d/sub/f"];
                let prep = |ctx: &mut Ctx, b: &mut Bundle, opt: &str| -> Res {
                    let h = b.path("d");
                    fs::create_dir_all(h.join("sub")).unwrap();
                    ctx.host_mount("tmpfs", &h.join("sub"), "tmpfs", 0)?;
                    fs::write(h.join("sub/f"), "submount").unwrap();
                    b.add_mount(json!({"destination": "/mnt/d", "type": "bind", "source": h, "options": [opt]}));
                    Ok(())
                };
                let mut b = ctx.bundle();
                b.set_args(&["/probe", ops[0]]);
                prep(ctx, &mut b, "rbind")?;
                let o = ctx.run(&b)?;
                ensure!(
                    o.op_str(0).as_deref() == Ok("submount"),
                    "rbind lost submount: {:?}",
                    o.op(0)
                );
                let mut b = ctx.bundle();
                b.set_args(&["/probe", ops[0]]);
                prep(ctx, &mut b, "bind")?;
                let o = ctx.run(&b)?;
                ensure!(o.op(0).is_err(), "bind (non-recursive) showed the submount");
                Ok(())
            }
        ),
        sc!(
            "mounts.options.rro",
            "mounts.options rro (recursive read-only)",
            |ctx| {
                let mut b = ctx.bundle();
                b.set_args(&["/probe", "write=/mnt/d/sub/f=x"]);
                let h = b.path("d");
                fs::create_dir_all(h.join("sub")).unwrap();
                ctx.host_mount("tmpfs", &h.join("sub"), "tmpfs", 0)?;
                b.add_mount(json!({"destination": "/mnt/d", "type": "bind", "source": h, "options": ["rbind", "rro"]}));
                let o = ctx.run(&b)?;
                ensure!(
                    o.op(0) == Err(EROFS),
                    "write below rro mount gave {:?}",
                    o.op(0)
                );
                Ok(())
            }
        ),
        sc!(
            "mounts.options.propagation",
            "mounts.options rshared/rslave/rprivate",
            |ctx| {
                // rshared: the mount is in a peer group of its own. Where the host's copy of the
                // source is shared (a systemd host's `/`), the container's copy is also a slave
                // of it (the rootfs is rslave by default): "master+shared" is right too. So the
                // check is "has a shared peer group", not the exact set, and it is the same on
                // hosts with a private or a shared `/`. rprivate: no propagation at all.
                for (opt, want) in [("rshared", "shared"), ("rprivate", "private")] {
                    let o = ctx.probe(&[], |b| {
                        bind_dir(b, "d", "/mnt/d", &[opt]);
                    })?;
                    let m = o
                        .mount_at("/mnt/d")
                        .ok_or("no mount at /mnt/d".to_string())?;
                    let p = m.propagation();
                    let ok = match want {
                        "shared" => p == "shared" || p == "master+shared",
                        _ => p == want,
                    };
                    ensure!(ok, "{opt}: propagation is {p} ({:?})", m.optional);
                }
                Ok(())
            }
        ),
        sc!(
            "mounts.idmap",
            "mounts.uidMappings/gidMappings (idmapped mounts)",
            |ctx| {
                let o = ctx.probe(&["stat=/mnt/d/f"], |b| {
                    let h = bind_dir(b, "d", "/mnt/d", &[]);
                    fs::write(h.join("f"), "x").unwrap();
                    let m = b.cfg["mounts"].as_array_mut().unwrap().last_mut().unwrap();
                    m["options"] = json!(["rbind", "idmap"]);
                    // Read as the kernel (and runc) do: an id on disk is a containerID
                    // and is seen as its hostID; the harness's file is root's (0).
                    m["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                    m["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                })?;
                let st = o.op(0).map_err(|e| format!("stat failed: {e}"))?;
                ensure!(
                    st["uid"] == 1000 && st["gid"] == 1000,
                    "idmapped file owner {st}"
                );
                Ok(())
            }
        ),
        sc!("annotations", "annotations (state.annotations)", |ctx| {
            let mut b = ctx.bundle();
            b.cfg["annotations"] = json!({"org.berth.test": "hello", "x.y": "z"});
            let pid = ctx.create_ok(&b)?;
            let st = ctx.state_ok(&b.id)?;
            ensure!(
                st["annotations"] == b.cfg["annotations"],
                "state annotations {} want {}",
                st["annotations"],
                b.cfg["annotations"]
            );
            teardown(ctx, &b.id, pid)
        }),
        sc!("hostname", "hostname", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| b.cfg["hostname"] = json!("berth-box"))?;
            ensure!(
                o.str("hostname") == "berth-box",
                "hostname {:?}",
                o.str("hostname")
            );
            ensure!(
                base.str("hostname") != "berth-box",
                "baseline hostname same"
            );
            Ok(())
        }),
        sc!("domainname", "domainname", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| b.cfg["domainname"] = json!("berth.test"))?;
            ensure!(
                o.str("domainname") == "berth.test",
                "domainname {:?}",
                o.str("domainname")
            );
            ensure!(
                base.str("domainname") != "berth.test",
                "baseline domainname same"
            );
            Ok(())
        }),
    ]
}

// ---------------------------------------------------------------- process

fn process_scenarios() -> Vec<Scenario> {
    vec![
        sc!("process.args", "process.args", |ctx| {
            let o = ctx.probe(&["a b", "", "c"], |_| {})?;
            ensure!(
                o.j["args"] == json!(["/probe", "a b", "", "c"]),
                "argv {}",
                o.j["args"]
            );
            Ok(())
        }),
        sc!(
            "process.args.exit-code",
            "process.args (program runs; exit status)",
            |ctx| {
                let o = ctx.probe(&["exit=7"], |_| {})?;
                ensure!(
                    matches!(o.exit, Some(Exit::Code(7)) | Some(Exit::Unknown)),
                    "exit {:?}",
                    o.exit
                );
                Ok(())
            }
        ),
        sc!("process.cwd", "process.cwd", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| b.cfg["process"]["cwd"] = json!("/tmp"))?;
            ensure!(o.str("cwd") == "/tmp", "cwd {}", o.str("cwd"));
            ensure!(base.str("cwd") == "/", "baseline cwd {}", base.str("cwd"));
            Ok(())
        }),
        sc!(
            "process.cwd.created",
            "process.cwd (created if missing)",
            |ctx| {
                let o = ctx.probe(&[], |b| b.cfg["process"]["cwd"] = json!("/new/dir"))?;
                ensure!(o.str("cwd") == "/new/dir", "cwd {}", o.str("cwd"));
                Ok(())
            }
        ),
        sc!("process.env", "process.env", |ctx| {
            let o = ctx.probe(&[], |b| {
                b.cfg["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="])
            })?;
            let env = o.j["env"].as_object().cloned().unwrap_or_default();
            ensure!(
                env.get("FOO") == Some(&json!("bar baz")),
                "FOO {:?}",
                env.get("FOO")
            );
            ensure!(
                env.get("EMPTY") == Some(&json!("")),
                "EMPTY {:?}",
                env.get("EMPTY")
            );
            ensure!(
                !env.contains_key(HOST_ENV_CANARY),
                "the runtime's environment leaked into the container"
            );
            // HOME may be added from /etc/passwd (runc does; the spec is silent), nothing else.
            let extra: Vec<_> = env
                .keys()
                .filter(|k| !["PATH", "FOO", "EMPTY", "HOME"].contains(&k.as_str()))
                .collect();
            ensure!(extra.is_empty(), "unexpected env vars: {extra:?}");
            Ok(())
        }),
        sc!("process.rlimits", "process.rlimits", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| {
                b.cfg["process"]["rlimits"] = json!([
                    {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                    {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
                    {"type": "RLIMIT_NPROC", "soft": 77, "hard": 88}
                ])
            })?;
            let want = |s: &str, h: &str| Some((s.to_string(), h.to_string()));
            ensure!(
                o.limit("Max open files") == want("123", "456"),
                "nofile {:?}",
                o.limit("Max open files")
            );
            ensure!(
                o.limit("Max core file size") == want("4096", "8192"),
                "core {:?}",
                o.limit("Max core file size")
            );
            ensure!(
                o.limit("Max processes") == want("77", "88"),
                "nproc {:?}",
                o.limit("Max processes")
            );
            ensure!(
                base.limit("Max open files") == want("1024", "1024"),
                "baseline nofile {:?}",
                base.limit("Max open files")
            );
            Ok(())
        }),
        sc!(
            "process.user.uid-gid",
            "process.user.uid, process.user.gid",
            |ctx| {
                let (base, o) = ctx.probe_pair(&[], |b| {
                    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 100})
                })?;
                ensure!(
                    o.status("Uid") == "1000\t1000\t1000\t1000",
                    "Uid {:?}",
                    o.status("Uid")
                );
                ensure!(
                    o.status("Gid") == "100\t100\t100\t100",
                    "Gid {:?}",
                    o.status("Gid")
                );
                ensure!(
                    base.status("Uid").starts_with("0\t"),
                    "baseline Uid {:?}",
                    base.status("Uid")
                );
                Ok(())
            }
        ),
        sc!(
            "process.user.additionalGids",
            "process.user.additionalGids",
            |ctx| {
                let (base, o) = ctx.probe_pair(&[], |b| {
                    b.cfg["process"]["user"] =
                        json!({"uid": 0, "gid": 0, "additionalGids": [5, 77]})
                })?;
                let g: Vec<String> = o
                    .status("Groups")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                ensure!(
                    g.contains(&"5".into()) && g.contains(&"77".into()),
                    "Groups {g:?}"
                );
                ensure!(
                    !base.status("Groups").contains("77"),
                    "baseline Groups {}",
                    base.status("Groups")
                );
                Ok(())
            }
        ),
        sc!("process.user.umask", "process.user.umask", |ctx| {
            let (base, o) =
                ctx.probe_pair(&[], |b| b.cfg["process"]["user"]["umask"] = json!(0o077))?;
            ensure!(o.status("Umask") == "0077", "Umask {:?}", o.status("Umask"));
            ensure!(
                base.status("Umask") != "0077",
                "baseline Umask {:?}",
                base.status("Umask")
            );
            Ok(())
        }),
        sc!(
            "process.capabilities.bounding",
            "process.capabilities.bounding",
            |ctx| {
                cap_set_scenario(
                    ctx,
                    "bounding",
                    "CapBnd",
                    &[
                        "CAP_AUDIT_WRITE",
                        "CAP_KILL",
                        "CAP_NET_BIND_SERVICE",
                        "CAP_SYS_TIME",
                    ],
                )
            }
        ),
        sc!(
            "process.capabilities.inheritable",
            "process.capabilities.inheritable",
            |ctx| { cap_set_scenario(ctx, "inheritable", "CapInh", &["CAP_KILL"]) }
        ),
        sc!(
            "process.capabilities.ambient",
            "process.capabilities.ambient",
            |ctx| {
                cap_set_scenario(
                    ctx,
                    "ambient",
                    "CapAmb",
                    &["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                )
            }
        ),
        sc!(
            "process.capabilities.ambient-nonroot",
            "process.capabilities.ambient (+effective/permitted) for a non-root user",
            |ctx| {
                let (base, o) = ctx.probe_pair(&[], |b| {
                    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
                    b.cfg["process"]["capabilities"]["ambient"] =
                        json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
                })?;
                let _ = base;
                let want = cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
                for k in ["CapAmb", "CapEff", "CapPrm"] {
                    ensure!(o.status(k) == want, "{k} {} want {want}", o.status(k));
                }
                let o = ctx.probe(&[], |b| {
                    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000})
                })?;
                ensure!(
                    o.status("CapEff") == "0000000000000000",
                    "non-root without ambient has CapEff {}",
                    o.status("CapEff")
                );
                Ok(())
            }
        ),
        sc!(
            "process.noNewPrivileges",
            "process.noNewPrivileges",
            |ctx| {
                let (base, o) =
                    ctx.probe_pair(&[], |b| b.cfg["process"]["noNewPrivileges"] = json!(true))?;
                ensure!(
                    o.status("NoNewPrivs") == "1",
                    "NoNewPrivs {:?}",
                    o.status("NoNewPrivs")
                );
                ensure!(
                    base.status("NoNewPrivs") == "0",
                    "baseline NoNewPrivs {:?}",
                    base.status("NoNewPrivs")
                );
                Ok(())
            }
        ),
        sc!("process.oomScoreAdj", "process.oomScoreAdj", |ctx| {
            let (base, o) =
                ctx.probe_pair(&[], |b| b.cfg["process"]["oomScoreAdj"] = json!(123))?;
            ensure!(
                o.str("oom_score_adj") == "123",
                "oom_score_adj {:?}",
                o.str("oom_score_adj")
            );
            ensure!(base.str("oom_score_adj") != "123", "baseline is 123 too");
            Ok(())
        }),
        sc!("process.ioPriority", "process.ioPriority", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| {
                b.cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 3})
            })?;
            let want = (2 << 13) | 3;
            ensure!(
                o.j["ioprio"] == want,
                "ioprio {} want {want}",
                o.j["ioprio"]
            );
            ensure!(base.j["ioprio"] != want, "baseline ioprio equal");
            Ok(())
        }),
        sc!("process.scheduler", "process.scheduler", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| {
                b.cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5})
            })?;
            ensure!(
                o.j["sched_policy"] == 3,
                "policy {} want 3 (SCHED_BATCH)",
                o.j["sched_policy"]
            );
            ensure!(o.j["nice"] == 5, "nice {} want 5", o.j["nice"]);
            ensure!(
                base.j["sched_policy"] == 0,
                "baseline policy {}",
                base.j["sched_policy"]
            );
            Ok(())
        }),
        sc!(
            "process.execCPUAffinity",
            "process.execCPUAffinity.final (an exec'd process; not the init process)",
            |ctx| {
                // The runtime-spec: "not applicable to the container's init process"; it is
                // for processes that join the container (runc's `exec`).
                let mut b = ctx.bundle();
                b.set_args(&["/probe", "sleep=30"]);
                b.cfg["process"]["execCPUAffinity"] = json!({"final": "0"});
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let o = ctx.rt(&["exec", &b.id, "/probe"]);
                ensure!(o.ok, "exec failed: {}", o.brief());
                let j: Value = serde_json::from_str(o.stdout.trim())
                    .map_err(|e| Outcome::Fail(format!("no probe report from exec: {e}")))?;
                let init: Value = serde_json::from_str(b.stdout().trim()).unwrap_or_default();
                teardown(ctx, &b.id, pid)?;
                let init_cpus = init["status"]["Cpus_allowed_list"].as_str().unwrap_or("");
                if init_cpus == "0" {
                    skip!("host has a single CPU");
                }
                ensure!(
                    j["status"]["Cpus_allowed_list"] == "0",
                    "exec'd Cpus_allowed_list {}",
                    j["status"]["Cpus_allowed_list"]
                );
                Ok(())
            }
        ),
        sc!(
            "process.terminal",
            "process.terminal (pty via --console-socket as stdio; /dev/console)",
            |ctx| {
                let (j, _) = terminal_run(ctx, None)?;
                for fd in ["0", "1", "2"] {
                    let t = j["fds"][fd].as_str().unwrap_or("");
                    ensure!(t.starts_with("/dev/pts/"), "fd {fd} is {t:?}, not a pty");
                }
                let c = &j["ops"][0]["r"]["ok"];
                ensure!(
                    c["kind"] == "char" && c["major"] == 136,
                    "/dev/console is {} (want the pty, char 136:N)",
                    j["ops"][0]["r"]
                );
                Ok(())
            }
        ),
        sc!("process.consoleSize", "process.consoleSize", |ctx| {
            let (_, ws) = terminal_run(ctx, Some((33, 111)))?;
            ensure!(ws == (33, 111), "pty window size {ws:?}, want (33, 111)");
            Ok(())
        }),
        sc!(
            "process.terminal.false-stdio",
            "process.terminal=false (stdio passed through)",
            |ctx| {
                let o = ctx.probe(&[], |_| {})?;
                let fd1 = o.j["fds"]["1"].as_str().unwrap_or("");
                ensure!(
                    fd1.ends_with("/stdout"),
                    "fd 1 is {fd1:?}, not the stdout file given to create"
                );
                let fd0 = o.j["fds"]["0"].as_str().unwrap_or("");
                ensure!(
                    fd0 == "/dev/null",
                    "fd 0 is {fd0:?}, not /dev/null given to create"
                );
                Ok(())
            }
        ),
    ]
}

/// Run the probe with `process.terminal: true` through `--console-socket`; returns the
/// report and the window size the host sees on the pty master.
fn terminal_run(ctx: &mut Ctx, size: Option<(u16, u16)>) -> Res<(Value, (u16, u16))> {
    use std::os::fd::AsRawFd;
    let mut b = ctx.bundle();
    let dir = bind_dir(&mut b, "out", "/out", &[]);
    b.set_args(&["/probe", "out=/out/r.json", "stat=/dev/console"]);
    b.cfg["process"]["terminal"] = json!(true);
    if let Some((h, w)) = size {
        b.cfg["process"]["consoleSize"] = json!({"height": h, "width": w});
    }
    let (o, master) = ctx.create_with_console(&b);
    ensure!(o.ok, "create with a terminal failed: {}", o.brief());
    let master = master.ok_or("no pty master received on the console socket".to_string())?;
    let st = ctx.state_ok(&b.id)?;
    let pid = st["pid"].as_i64().unwrap_or(0) as i32;
    // SAFETY: TIOCGWINSZ into a local winsize on the received master fd.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    ctx.start_ok(&b.id)?;
    ensure!(
        wait_file(&dir.join("r.json"), Duration::from_secs(10)),
        "probe wrote no report"
    );
    ctx.wait_exit(pid, Duration::from_secs(10));
    ctx.delete_ok(&b.id)?;
    let j: Value = serde_json::from_str(&read_file(&dir.join("r.json")))
        .map_err(|e| format!("report: {e}"))?;
    drop(master);
    Ok((j, (ws.ws_row, ws.ws_col)))
}

fn cap_set_scenario(ctx: &mut Ctx, set: &str, key: &str, caps: &[&str]) -> Res {
    let (base, o) = ctx.probe_pair(&[], |b| {
        b.cfg["process"]["capabilities"][set] = json!(caps);
        if set == "ambient" {
            // ambient ⊆ permitted ∩ inheritable (already the base set)
        }
    })?;
    let want = cap_mask(caps);
    ensure!(o.status(key) == want, "{key} {} want {want}", o.status(key));
    ensure!(base.status(key) != want, "baseline {key} already {want}");
    Ok(())
}

// ---------------------------------------------------------------- hooks

const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook writing its name, state and mount namespace into `dir` (same path inside).
fn hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "echo {name} >> {d}/order; cat > {d}/{name}.state; readlink /proc/self/ns/mnt > {d}/{name}.mnt; \
         cat /marker > {d}/{name}.marker 2>/dev/null; true")]})
}

/// Bundle with all hooks writing to a dir mounted at the same path in the container.
fn hooked_bundle(ctx: &mut Ctx) -> (Bundle, PathBuf) {
    let mut b = ctx.bundle();
    let dir = b.path("hooks");
    fs::create_dir_all(&dir).unwrap();
    b.add_mount(json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind"]}));
    let mut hooks = serde_json::Map::new();
    for h in HOOKS {
        hooks.insert(h.into(), json!([hook(&dir, h)]));
    }
    b.cfg["hooks"] = Value::Object(hooks);
    (b, dir)
}

fn order(dir: &Path) -> Vec<String> {
    read_file(&dir.join("order"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Run a hooked bundle through create/start/exit/delete, recording `order` after each.
fn hooked_lifecycle(ctx: &mut Ctx) -> Res<(PathBuf, Vec<Vec<String>>, Bundle)> {
    let (mut b, dir) = hooked_bundle(ctx);
    sh(&mut b, "echo main >> $HOOKDIR/order");
    let env = format!("HOOKDIR={}", dir.display());
    b.cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(env));
    let mut seen = vec![];
    let pid = ctx.create_ok(&b)?;
    seen.push(order(&dir));
    ctx.start_ok(&b.id)?;
    ctx.wait_exit(pid, Duration::from_secs(10));
    seen.push(order(&dir));
    ctx.delete_ok(&b.id)?;
    seen.push(order(&dir));
    Ok((dir, seen, b))
}

fn hook_scenarios() -> Vec<Scenario> {
    vec![
        sc!(
            "hooks.order",
            "hooks (all: order of prestart, createRuntime, createContainer, startContainer, poststart, poststop); runtime.md lifecycle steps",
            |ctx| {
                let (_, seen, _) = hooked_lifecycle(ctx)?;
                let after_create = &seen[0];
                ensure!(
                    after_create == &["prestart", "createRuntime", "createContainer"]
                        || after_create == &["createRuntime", "prestart", "createContainer"],
                    "hooks run by create: {after_create:?}"
                );
                let all = &seen[2];
                let pos = |n: &str| all.iter().position(|x| x == n);
                for n in HOOKS.iter().chain(["main"].iter()) {
                    ensure!(pos(n).is_some(), "{n} never ran: {all:?}");
                }
                ensure!(
                    pos("startContainer") < pos("main"),
                    "startContainer after the program: {all:?}"
                );
                ensure!(
                    pos("poststop") == Some(all.len() - 1),
                    "poststop not last: {all:?}"
                );
                ensure!(
                    !seen[1].contains(&"poststop".to_string()),
                    "poststop before delete: {:?}",
                    seen[1]
                );
                Ok(())
            }
        ),
        sc!(
            "hooks.state-stdin",
            "hooks: state on stdin (runtime.md hooks; config.md posix hooks)",
            |ctx| {
                let (dir, _, b) = hooked_lifecycle(ctx)?;
                for h in HOOKS {
                    let s = read_file(&dir.join(format!("{h}.state")));
                    let st: Value = serde_json::from_str(&s)
                        .map_err(|e| format!("{h}: stdin is not state JSON ({e}): {s:?}"))?;
                    ensure!(st["id"] == b.id.as_str(), "{h}: state id {}", st["id"]);
                    ensure!(st["ociVersion"].is_string(), "{h}: no ociVersion");
                    ensure!(
                        Path::new(st["bundle"].as_str().unwrap_or("")) == b.dir,
                        "{h}: bundle {}",
                        st["bundle"]
                    );
                    let want = match h {
                        "prestart" | "createRuntime" | "createContainer" => "creating",
                        "startContainer" => "created",
                        "poststart" => "running",
                        _ => "stopped",
                    };
                    ensure!(st["status"].is_string(), "{h}: no status");
                    if h != "poststart" && h != "poststop" && h != "prestart" {
                        ensure!(
                            st["status"] == want,
                            "{h}: status {} want {want}",
                            st["status"]
                        );
                    }
                    if h != "poststop" {
                        ensure!(st["pid"].as_i64().unwrap_or(0) > 0, "{h}: no pid");
                    }
                }
                Ok(())
            }
        ),
        sc!(
            "hooks.namespaces",
            "hooks: createRuntime/poststart/poststop in runtime namespace, createContainer/startContainer in container namespace",
            |ctx| {
                let (dir, _, _) = hooked_lifecycle(ctx)?;
                let host = host_ns("mnt");
                let mnt = |h: &str| read_file(&dir.join(format!("{h}.mnt"))).trim().to_string();
                for h in ["createRuntime", "poststart", "poststop", "prestart"] {
                    ensure!(
                        mnt(h) == host,
                        "{h} ran in mount ns {} not the runtime's {host}",
                        mnt(h)
                    );
                }
                for h in ["createContainer", "startContainer"] {
                    ensure!(
                        !mnt(h).is_empty() && mnt(h) != host,
                        "{h} ran in mount ns {} (host {host})",
                        mnt(h)
                    );
                }
                let m = read_file(&dir.join("startContainer.marker"));
                ensure!(
                    m.contains("berth-integration-rootfs"),
                    "startContainer did not see the container root: {m:?}"
                );
                Ok(())
            }
        ),
        sc!("hooks.args-env", "hooks[].path, args, env", |ctx| {
            let mut b = ctx.bundle();
            let out = b.path("hookout");
            b.cfg["hooks"] = json!({"createRuntime": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("echo \"$0 $1 $HOOKVAR\" > {}; env >> {}", out.display(), out.display()), "myname", "arg1"],
                "env": ["HOOKVAR=hv"]
            }]});
            let pid = ctx.create_ok(&b)?;
            let s = read_file(&out);
            ensure!(s.lines().next() == Some("myname arg1 hv"), "hook saw {s:?}");
            ensure!(
                !s.contains(HOST_ENV_CANARY),
                "the runtime's environment leaked into the hook (env given: only HOOKVAR)"
            );
            teardown(ctx, &b.id, pid)
        }),
        sc!(
            "hooks.container-env",
            "hooks[].env absent: createContainer/startContainer get the process's environment (runc behaviour)",
            |ctx| {
                // Hooks without `env` that run in the container's setup see the container
                // process's environment (runc); the runtime's own environment never leaks.
                let mut b = ctx.bundle();
                let dir = b.path("hookenv");
                fs::create_dir_all(&dir).unwrap();
                b.add_mount(json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind"]}));
                b.cfg["process"]["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("HOOKPROC=from-process"));
                sh(&mut b, "true");
                let d = dir.display();
                b.cfg["hooks"] = json!({
                    "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("env > {d}/createContainer")]}],
                    "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("env > {d}/startContainer")]}]
                });
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ensure!(
                    ctx.wait_exit(pid, Duration::from_secs(10)).is_some(),
                    "container did not exit"
                );
                ctx.delete_ok(&b.id)?;
                for h in ["createContainer", "startContainer"] {
                    let env = read_file(&dir.join(h));
                    ensure!(
                        env.lines().any(|l| l == "HOOKPROC=from-process"),
                        "{h} hook without env did not get the process's environment: {env:?}"
                    );
                    ensure!(
                        !env.contains(HOST_ENV_CANARY),
                        "{h}: the runtime's environment leaked into the hook"
                    );
                }
                Ok(())
            }
        ),
        sc!(
            "hooks.timeout",
            "hooks[].timeout; runtime.md: createRuntime hook failure is an error",
            |ctx| {
                let mut b = ctx.bundle();
                b.cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
                let t = std::time::Instant::now();
                let o = ctx.create(&b);
                ensure!(!o.ok, "create succeeded although the hook timed out");
                ensure!(
                    t.elapsed() < Duration::from_secs(15),
                    "hook timeout not enforced ({:?})",
                    t.elapsed()
                );
                let st = ctx.state(&b.id);
                ensure!(
                    st.is_err() || st.as_ref().unwrap()["status"] == "stopped",
                    "container left after failed create: {:?}",
                    st.ok()
                );
                Ok(())
            }
        ),
        sc!(
            "hooks.createRuntime-failure",
            "runtime.md: createRuntime/prestart hook error stops the lifecycle; no program run",
            |ctx| {
                let mut b = ctx.bundle();
                let out = b.path("ran");
                sh(&mut b, "true");
                b.cfg["hooks"] =
                    json!({"createRuntime": [{"path": "/bin/false", "args": ["false"]}]});
                let o = ctx.create(&b);
                ensure!(
                    !o.ok,
                    "create succeeded although a createRuntime hook failed"
                );
                ensure!(!out.exists(), "program ran");
                let st = ctx.state(&b.id);
                ensure!(
                    st.is_err() || st.as_ref().unwrap()["status"] == "stopped",
                    "container not stopped/absent after failed hook: {:?}",
                    st.ok()
                );
                Ok(())
            }
        ),
        sc!(
            "hooks.poststart-failure",
            "runtime.md: poststart hook failure is logged, lifecycle continues",
            |ctx| {
                let mut b = ctx.bundle();
                let dir = bind_dir(&mut b, "out", "/out", &[]);
                sh(&mut b, "echo ran > /out/ran; sleep 2");
                b.cfg["hooks"] = json!({"poststart": [{"path": "/bin/false", "args": ["false"]}]});
                let pid = ctx.create_ok(&b)?;
                let _ = ctx.rt(&["start", &b.id]);
                ensure!(
                    wait_file(&dir.join("ran"), Duration::from_secs(5)),
                    "program did not run after failing poststart"
                );
                let _ = pid;
                Ok(())
            }
        ),
        sc!(
            "hooks.poststop-failure",
            "runtime.md: poststop hook failure is logged, delete still succeeds",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "true");
                b.cfg["hooks"] = json!({"poststop": [{"path": "/bin/false", "args": ["false"]}]});
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                let _ = ctx.rt(&["delete", &b.id]);
                ensure!(
                    ctx.state(&b.id).is_err(),
                    "container still exists after delete with failing poststop"
                );
                Ok(())
            }
        ),
    ]
}

// ---------------------------------------------------------------- config-linux.md

fn ns_scenario(ctx: &mut Ctx, kind: &str, nsname: &str) -> Res {
    let o = ctx.probe(&[], |_| {})?;
    let host = host_ns(nsname);
    ensure!(
        o.j["ns"][nsname] != host.as_str(),
        "{kind} namespace is the host's ({host})"
    );
    let o = ctx.probe(&[], |b| remove_ns(b, kind))?;
    ensure!(
        o.j["ns"][nsname] == host.as_str(),
        "without {kind} in namespaces: {} != host {host}",
        o.j["ns"][nsname]
    );
    Ok(())
}

fn linux_scenarios() -> Vec<Scenario> {
    vec![
        sc!("linux.namespaces.pid", "linux.namespaces type pid", |ctx| {
            ns_scenario(ctx, "pid", "pid")?;
            let o = ctx.probe(&[], |_| {})?;
            ensure!(
                o.j["pid"] == 1,
                "process is pid {} in its pid namespace, want 1",
                o.j["pid"]
            );
            Ok(())
        }),
        sc!(
            "linux.namespaces.network",
            "linux.namespaces type network",
            |ctx| {
                ns_scenario(ctx, "network", "net")?;
                // A new network namespace gets its loopback device up (runc, crun).
                let o = ctx.probe(&["read=/sys/class/net/lo/flags"], |_| {})?;
                let flags = o.op_str(0).unwrap_or_default();
                let bits = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16);
                ensure!(
                    bits.is_ok_and(|b| b & libc::IFF_UP as u32 != 0),
                    "lo is not up in the new network namespace: flags {flags:?}"
                );
                Ok(())
            }
        ),
        sc!("linux.namespaces.ipc", "linux.namespaces type ipc", |ctx| {
            ns_scenario(ctx, "ipc", "ipc")
        }),
        sc!("linux.namespaces.uts", "linux.namespaces type uts", |ctx| {
            ns_scenario(ctx, "uts", "uts")
        }),
        sc!(
            "linux.namespaces.mount",
            "linux.namespaces type mount",
            |ctx| {
                let o = ctx.probe(&[], |_| {})?;
                ensure!(
                    o.j["ns"]["mnt"] != host_ns("mnt").as_str(),
                    "mount namespace is the host's"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.namespaces.cgroup",
            "linux.namespaces type cgroup",
            |ctx| {
                let (base, o) = ctx.probe_pair(&[], |b| add_ns(b, json!({"type": "cgroup"})))?;
                ensure!(
                    base.j["ns"]["cgroup"] == host_ns("cgroup").as_str(),
                    "baseline cgroup ns not the host's"
                );
                ensure!(
                    o.j["ns"]["cgroup"] != host_ns("cgroup").as_str(),
                    "cgroup namespace is the host's"
                );
                let cg = o.str("cgroup");
                ensure!(
                    !cg.contains("berth-integration"),
                    "cgroup path visible inside the cgroup namespace: {cg}"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.namespaces.user.bundle-0700",
            "a user namespace with the bundle in a 0700 root-owned directory the container's mapped root cannot search (rootless-style storage): the runtime reaches the rootfs before the user namespace takes effect",
            |ctx| {
                let mut b = ctx.bundle();
                b.set_args(&["/probe", "read=/proc/self/uid_map"]);
                userns_map(&mut b);
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&b.dir, fs::Permissions::from_mode(0o700)).unwrap();
                let o = ctx.run(&b)?;
                ensure!(
                    o.j["ns"]["user"] != host_ns("user").as_str(),
                    "user namespace is the host's"
                );
                let norm = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
                ensure!(
                    norm(o.op_str(0).unwrap_or_default()) == "0 100000 65536",
                    "uid_map {:?}",
                    o.op_str(0)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.namespaces.user",
            "linux.namespaces type user; linux.uidMappings; linux.gidMappings",
            |ctx| {
                let (base, o) = ctx.probe_pair(
                    &["read=/proc/self/uid_map", "read=/proc/self/gid_map"],
                    userns_map,
                )?;
                ensure!(
                    base.j["ns"]["user"] == host_ns("user").as_str(),
                    "baseline user ns not the host's"
                );
                ensure!(
                    o.j["ns"]["user"] != host_ns("user").as_str(),
                    "user namespace is the host's"
                );
                let norm = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
                ensure!(
                    norm(o.op_str(0).unwrap_or_default()) == "0 100000 65536",
                    "uid_map {:?}",
                    o.op_str(0)
                );
                ensure!(
                    norm(o.op_str(1).unwrap_or_default()) == "0 200000 65536",
                    "gid_map {:?}",
                    o.op_str(1)
                );
                ensure!(
                    o.status("Uid").starts_with("0\t"),
                    "uid inside {}",
                    o.status("Uid")
                );
                Ok(())
            }
        ),
        sc!(
            "linux.namespaces.time",
            "linux.namespaces type time; linux.timeOffsets",
            |ctx| {
                let (base, o) = ctx.probe_pair(&["read=/proc/uptime"], |b| {
                    add_ns(b, json!({"type": "time"}));
                    b.cfg["linux"]["timeOffsets"] =
                        json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
                })?;
                ensure!(
                    o.j["ns"]["time"] != host_ns("time").as_str(),
                    "time namespace is the host's"
                );
                let up = |x: &Obs| -> f64 {
                    x.op_str(0)
                        .unwrap_or_default()
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0)
                };
                ensure!(
                    up(&o) - up(&base) > 900000.0,
                    "boottime offset not applied: uptime {} vs baseline {}",
                    up(&o),
                    up(&base)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.timeOffsets.userns",
            "linux.timeOffsets with a user namespace (the time namespace then belongs to the container's user namespace)",
            |ctx| {
                let (base, o) = ctx.probe_pair(
                    &["read=/proc/uptime", "read=/proc/self/timens_offsets"],
                    |b| {
                        userns_map(b);
                        add_ns(b, json!({"type": "time"}));
                        b.cfg["linux"]["timeOffsets"] = json!({
                            "boottime": {"secs": 1000000, "nanosecs": 0},
                            "monotonic": {"secs": 5000, "nanosecs": 0}
                        });
                    },
                )?;
                ensure!(
                    o.j["ns"]["user"] != host_ns("user").as_str()
                        && o.j["ns"]["time"] != host_ns("time").as_str(),
                    "not in its own user and time namespaces"
                );
                let offs = o.op_str(1).unwrap_or_default();
                let norm: Vec<String> = offs
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect();
                ensure!(
                    norm.contains(&"boottime 1000000 0".to_string())
                        && norm.contains(&"monotonic 5000 0".to_string()),
                    "timens_offsets {offs:?}"
                );
                let up = |x: &Obs| -> f64 {
                    x.op_str(0)
                        .unwrap_or_default()
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0)
                };
                ensure!(
                    up(&o) - up(&base) > 900000.0,
                    "boottime offset not applied: uptime {} vs baseline {}",
                    up(&o),
                    up(&base)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.namespaces.path",
            "linux.namespaces[].path (join existing namespace)",
            |ctx| {
                if !Path::new("/usr/bin/unshare").exists() {
                    skip!("util-linux unshare missing on host");
                }
                let hp = ctx.helper(&["/usr/bin/unshare", "--net", "--uts", "/bin/sleep", "60"]);
                // Wait until the helper has its own namespaces.
                let end = std::time::Instant::now() + Duration::from_secs(5);
                let p = format!("/proc/{hp}/ns/net");
                while fs::read_link(&p)
                    .map(|l| l.to_string_lossy() == host_ns("net"))
                    .unwrap_or(true)
                {
                    ensure!(std::time::Instant::now() < end, "helper never unshared");
                    std::thread::sleep(Duration::from_millis(10));
                }
                let want_net = fs::read_link(&p).unwrap().to_string_lossy().into_owned();
                let want_uts = fs::read_link(format!("/proc/{hp}/ns/uts"))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let o = ctx.probe(&[], |b| {
                    remove_ns(b, "network");
                    remove_ns(b, "uts");
                    add_ns(
                        b,
                        json!({"type": "network", "path": format!("/proc/{hp}/ns/net")}),
                    );
                    add_ns(
                        b,
                        json!({"type": "uts", "path": format!("/proc/{hp}/ns/uts")}),
                    );
                })?;
                ensure!(
                    o.j["ns"]["net"] == want_net.as_str(),
                    "net ns {} want {want_net}",
                    o.j["ns"]["net"]
                );
                ensure!(
                    o.j["ns"]["uts"] == want_uts.as_str(),
                    "uts ns {} want {want_uts}",
                    o.j["ns"]["uts"]
                );
                Ok(())
            }
        ),
        sc!(
            "linux.devices",
            "linux.devices (path, type, major, minor, fileMode, uid, gid)",
            |ctx| {
                let ops = ["stat=/dev/fuse", "stat=/dev/blk0"];
                let (base, o) = ctx.probe_pair(&ops, |b| {
                b.cfg["linux"]["devices"] = json!([
                    {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1, "gid": 2},
                    {"path": "/dev/blk0", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0}
                ]);
            })?;
                ensure!(base.op(0).is_err(), "baseline has /dev/fuse already");
                let f = o.op(0).map_err(|e| format!("/dev/fuse missing ({e})"))?;
                ensure!(
                    f["kind"] == "char" && f["major"] == 10 && f["minor"] == 229,
                    "/dev/fuse is {f}"
                );
                ensure!(
                    f["mode"] == 0o640 && f["uid"] == 1 && f["gid"] == 2,
                    "/dev/fuse mode/owner {f}"
                );
                let k = o.op(1).map_err(|e| format!("/dev/blk0 missing ({e})"))?;
                ensure!(
                    k["kind"] == "block" && k["major"] == 7 && k["minor"] == 0,
                    "/dev/blk0 is {k}"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.default-devices",
            "config-linux.md default devices (/dev/null, zero, full, random, urandom, tty, ptmx)",
            |ctx| {
                let devs = [
                    ("null", 1, 3),
                    ("zero", 1, 5),
                    ("full", 1, 7),
                    ("random", 1, 8),
                    ("urandom", 1, 9),
                    ("tty", 5, 0),
                ];
                let mut ops: Vec<String> =
                    devs.iter().map(|d| format!("stat=/dev/{}", d.0)).collect();
                ops.push("stat=/dev/ptmx".into());
                ops.push("write=/dev/null=x".into());
                let opr: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let o = ctx.probe(&opr, |_| {})?;
                for (i, (n, ma, mi)) in devs.iter().enumerate() {
                    let s = o.op(i).map_err(|e| format!("/dev/{n} missing ({e})"))?;
                    ensure!(
                        s["kind"] == "char" && s["major"] == *ma && s["minor"] == *mi,
                        "/dev/{n} is {s}"
                    );
                }
                let p = o
                    .op(devs.len())
                    .map_err(|e| format!("/dev/ptmx missing ({e})"))?;
                ensure!(
                    p["kind"] == "symlink"
                        || (p["kind"] == "char" && p["major"] == 5 && p["minor"] == 2),
                    "/dev/ptmx is {p}"
                );
                ensure!(
                    o.op(devs.len() + 1).is_ok(),
                    "cannot write /dev/null: {:?}",
                    o.op(devs.len() + 1)
                );
                Ok(())
            }
        ),
        sc!(
            "runtime-linux.dev-symlinks",
            "runtime-linux.md /dev symbolic links (fd, stdin, stdout, stderr)",
            |ctx| {
                let o = ctx.probe(
                    &[
                        "readlink=/dev/fd",
                        "readlink=/dev/stdin",
                        "readlink=/dev/stdout",
                        "readlink=/dev/stderr",
                    ],
                    |_| {},
                )?;
                let want = [
                    "/proc/self/fd",
                    "/proc/self/fd/0",
                    "/proc/self/fd/1",
                    "/proc/self/fd/2",
                ];
                for (i, w) in want.iter().enumerate() {
                    ensure!(
                        o.op_str(i).as_deref() == Ok(*w),
                        "symlink {i}: {:?} want {w}",
                        o.op_str(i)
                    );
                }
                Ok(())
            }
        ),
        sc!(
            "runtime-linux.fds",
            "runtime-linux.md file descriptors (only 0-2 kept by default)",
            |ctx| {
                let mut b = ctx.bundle();
                b.set_args(&["/probe"]);
                let pid = {
                    let o = ctx.create_with(&b, Some(7));
                    ensure!(o.ok, "create failed: {}", o.brief());
                    let st = ctx.state_ok(&b.id)?;
                    st["pid"].as_i64().unwrap_or(0) as i32
                };
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                let j: Value = serde_json::from_str(b.stdout().trim())
                    .map_err(|e| format!("no report: {e}"))?;
                ctx.delete_ok(&b.id)?;
                let fds: Vec<&String> = j["fds"]
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                ensure!(
                    fds == ["0", "1", "2"],
                    "open fds in the container: {}",
                    j["fds"]
                );
                Ok(())
            }
        ),
        sc!("linux.sysctl", "linux.sysctl", |ctx| {
            let (base, o) = ctx.probe_pair(&["read=/proc/sys/kernel/msgmax"], |b| {
                b.cfg["linux"]["sysctl"] = json!({"kernel.msgmax": "4096"})
            })?;
            ensure!(
                o.op_str(0).map(|s| s.trim().to_string()) == Ok("4096".into()),
                "msgmax {:?}",
                o.op_str(0)
            );
            ensure!(
                base.op_str(0).map(|s| s.trim().to_string()) != Ok("4096".into()),
                "baseline msgmax already 4096"
            );
            Ok(())
        }),
        sc!(
            "linux.maskedPaths",
            "linux.maskedPaths (file and directory)",
            |ctx| {
                let ops = ["read=/etc/hosts", "ls=/home"];
                let (base, o) = ctx.probe_pair(&ops, |b| {
                    b.cfg["linux"]["maskedPaths"] =
                        json!(["/etc/hosts", "/home", "/does/not/exist"])
                })?;
                ensure!(
                    base.op_str(0).map(|s| s.contains("localhost")) == Ok(true),
                    "baseline /etc/hosts {:?}",
                    base.op(0)
                );
                ensure!(
                    o.op_str(0).as_deref() == Ok(""),
                    "masked /etc/hosts reads {:?}",
                    o.op(0)
                );
                ensure!(
                    base.op(1) == Ok(json!(["user"])),
                    "baseline /home {:?}",
                    base.op(1)
                );
                ensure!(o.op(1) == Ok(json!([])), "masked /home lists {:?}", o.op(1));
                Ok(())
            }
        ),
        sc!("linux.readonlyPaths", "linux.readonlyPaths", |ctx| {
            let ops = ["write=/etc/new=x", "write=/tmp/new=x"];
            let (base, o) = ctx.probe_pair(&ops, |b| {
                b.cfg["linux"]["readonlyPaths"] = json!(["/etc", "/does/not/exist"])
            })?;
            ensure!(
                base.op(0).is_ok(),
                "baseline write /etc failed {:?}",
                base.op(0)
            );
            ensure!(
                o.op(0) == Err(EROFS),
                "write to readonly /etc gave {:?}",
                o.op(0)
            );
            ensure!(
                o.op(1).is_ok(),
                "write outside readonlyPaths failed {:?}",
                o.op(1)
            );
            Ok(())
        }),
        sc!(
            "linux.rootfsPropagation",
            "linux.rootfsPropagation",
            |ctx| {
                let (base, o) = ctx.probe_pair(&[], |b| {
                    b.cfg["linux"]["rootfsPropagation"] = json!("shared")
                })?;
                let root = o.mount_at("/").ok_or("no / in mountinfo".to_string())?;
                ensure!(
                    root.propagation().contains("shared"),
                    "/ propagation {} ({:?})",
                    root.propagation(),
                    root.optional
                );
                let broot = base.mount_at("/").ok_or("no / in baseline".to_string())?;
                ensure!(
                    !broot.propagation().contains("shared"),
                    "baseline / is shared already"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.rootfsPropagation.values",
            "linux.rootfsPropagation: each value (shared, slave, private, unbindable, r-prefixed), rootfs on a shared mount",
            |ctx| {
                // The rootfs sits on a shared mount of the host, so that slave (a master) and
                // private (none) differ; / inside must have the propagation asked for, and the
                // recursive values reach the container's own mounts (/proc) too.
                let mut bad = vec![];
                // Each value with the rootfs on a shared mount of its own, and the ones whose
                // result does not depend on the host's propagation with a plain directory.
                let on_shared = [
                    "shared",
                    "rshared",
                    "slave",
                    "rslave",
                    "private",
                    "rprivate",
                    "unbindable",
                    "runbindable",
                ];
                let plain = ["shared", "private", "unbindable", "runbindable"];
                let runs = on_shared.iter().map(|v| (*v, true));
                for (v, shared_mount) in runs.chain(plain.iter().map(|v| (*v, false))) {
                    let mut b = ctx.bundle();
                    if shared_mount {
                        let rootfs = b.rootfs();
                        let r = rootfs.to_string_lossy().into_owned();
                        ctx.host_mount(&r, &rootfs, "", libc::MS_BIND as u64)?;
                        ctx.host_mount("none", &rootfs, "", libc::MS_SHARED as u64)?;
                    }
                    let v_ = v;
                    let v = if shared_mount {
                        v.to_string()
                    } else {
                        format!("{v} (plain rootfs dir)")
                    };
                    let v = v.as_str();
                    b.cfg["linux"]["rootfsPropagation"] = json!(v_);
                    let o = match ctx.run(&b) {
                        Ok(o) => o,
                        Err(Outcome::Fail(m)) => {
                            bad.push(format!("{v}: {}", m.chars().take(150).collect::<String>()));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let (Some(root), Some(proc_)) = (o.mount_at("/"), o.mount_at("/proc")) else {
                        bad.push(format!("{v}: no / or /proc in mountinfo"));
                        continue;
                    };
                    let has = |m: &crate::harness::MountInfo, t: &str| {
                        m.optional.iter().any(|x| x.starts_with(t))
                    };
                    let kind = v_.trim_start_matches('r');
                    let ok = match kind {
                        "shared" => has(&root, "shared:"),
                        "slave" => has(&root, "master:") && !has(&root, "shared:"),
                        "private" => root.optional.is_empty(),
                        _ => has(&root, "unbindable"),
                    };
                    if !ok {
                        bad.push(format!("{v}: / has {:?}", root.optional));
                    }
                    if v_.starts_with('r') && matches!(kind, "shared" | "unbindable") {
                        let t = if kind == "shared" {
                            "shared:"
                        } else {
                            "unbindable"
                        };
                        if !has(&proc_, t) {
                            bad.push(format!("{v}: /proc has {:?}, not {kind}", proc_.optional));
                        }
                    }
                    if matches!(v_, "shared" | "unbindable") {
                        let t = if v_ == "shared" {
                            "shared:"
                        } else {
                            "unbindable"
                        };
                        if has(&proc_, t) {
                            bad.push(format!("{v} (not recursive): /proc is {v} too"));
                        }
                    }
                }
                ensure!(bad.is_empty(), "{}", bad.join("; "));
                Ok(())
            }
        ),
        sc!(
            "linux.memoryPolicy",
            "linux.memoryPolicy (mode, nodes, flags)",
            |ctx| {
                // The policy shows in numa_maps (single-node hosts have node 0 only).
                let ops = ["read=/proc/self/numa_maps"];
                let (base, o) = ctx.probe_pair(&ops, |b| {
                    b.cfg["linux"]["memoryPolicy"] =
                        json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]})
                })?;
                let first = |o: &Obs| {
                    o.op_str(0)
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                };
                ensure!(
                    first(&o).contains(" bind=static:0 "),
                    "numa_maps {:?}",
                    first(&o)
                );
                ensure!(
                    first(&base).contains(" default "),
                    "baseline numa_maps {:?}",
                    first(&base)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.netDevices",
            "linux.netDevices (moved, renamed, up; a veth the scenario makes and removes)",
            |ctx| {
                let name = format!("bi{}n", std::process::id() % 100000);
                let ip = |args: &[&str]| {
                    std::process::Command::new("ip")
                        .args(args)
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                };
                let peer = format!("{name}p");
                if !ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]) {
                    skip!("cannot create a veth pair on this host");
                }
                let res = (|| -> Res {
                    let o = ctx.probe(&["read=/sys/class/net/ctr0/flags"], |b| {
                        b.cfg["linux"]["netDevices"] = json!({ name.clone(): {"name": "ctr0"} });
                    })?;
                    let flags = o.op_str(0).map_err(|e| {
                        Outcome::Fail(format!("no ctr0 in the container (errno {e})"))
                    })?;
                    let v =
                        i64::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
                    ensure!(v & 1 == 1, "ctr0 is not up: flags {flags:?}");
                    Ok(())
                })();
                ip(&["link", "del", &name]);
                ip(&["link", "del", &peer]);
                res
            }
        ),
        sc!(
            "linux.namespaces.no-mount",
            "linux.namespaces without mount: the container shares the runtime's mount namespace; exactly the config's mounts are made there, none removed by delete",
            |ctx| {
                // The runtime runs in a private mount namespace held by a helper (never the
                // host's): its mountinfo before create, after create and after delete.
                let holder =
                    ctx.helper(&["unshare", "-m", "--propagation", "private", "sleep", "600"]);
                let mine = host_ns("mnt");
                let ns_of = |pid: u32| {
                    fs::read_link(format!("/proc/{pid}/ns/mnt"))
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                let end = std::time::Instant::now() + Duration::from_secs(5);
                while ns_of(holder) == mine && std::time::Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let holder_ns = ns_of(holder);
                ensure!(
                    !holder_ns.is_empty() && holder_ns != mine,
                    "no private mount namespace"
                );
                let mi = || -> Vec<String> {
                    read_file(Path::new(&format!("/proc/{holder}/mountinfo")))
                        .lines()
                        .map(String::from)
                        .collect()
                };
                let mut b = ctx.bundle();
                remove_ns(&mut b, "mount");
                sh(&mut b, "test -f /marker && test -d /proc/self");
                b.write_config();
                let before = mi();
                let pids = holder.to_string();
                let wrap = ["nsenter", "-t", pids.as_str(), "-m", "--"];
                let dir = b.dir.to_string_lossy().into_owned();
                let o = ctx.rt_via(&wrap, &["create", "--bundle", &dir, &b.id]);
                ensure!(o.ok, "create: {}", o.brief());
                let created = mi();
                let st = ctx.state_ok(&b.id)?;
                let pid = st["pid"].as_i64().unwrap_or(0) as i32;
                ensure!(pid > 0, "no pid: {st}");
                ensure!(
                    ns_of(pid as u32) == holder_ns,
                    "the container is not in the runtime's mount namespace"
                );
                for l in &before {
                    ensure!(created.contains(l), "changed or removed by create: {l}");
                }
                let rootfs = fs::canonicalize(b.rootfs()).unwrap();
                let r = rootfs.to_string_lossy().into_owned();
                let mut new: Vec<String> = created
                    .iter()
                    .filter(|l| !before.contains(l))
                    .filter_map(|l| l.split(' ').nth(4).map(String::from))
                    .collect();
                new.sort();
                let mut want: Vec<String> = b.cfg["mounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| format!("{r}{}", m["destination"].as_str().unwrap_or("")))
                    .collect();
                want.sort();
                ensure!(
                    new == want,
                    "mounts made in the runtime's namespace: {new:?}; config.json lists {want:?}"
                );
                ctx.start_ok(&b.id)?;
                let exit = ctx.wait_exit(pid, Duration::from_secs(10));
                ensure!(
                    exit == Some(Exit::Code(0)),
                    "the process did not see the rootfs as / (exit {exit:?})"
                );
                ctx.delete_ok(&b.id)?;
                ensure!(mi() == created, "delete changed the runtime's mounts");
                Ok(())
            }
        ),
        sc!(
            "linux.netDevices.joined-netns",
            "linux.netDevices with a network namespace joined by path (a netns and a veth the scenario makes and removes)",
            |ctx| {
                let name = format!("bi{}j", std::process::id() % 100000);
                let peer = format!("{name}p");
                let ip = |args: &[&str]| {
                    std::process::Command::new("ip")
                        .args(args)
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                };
                // A persistent network namespace bound on a file of this scenario (the
                // cleanup unmounts it; with it go the namespace and the moved device).
                let b0 = ctx.bundle();
                let nsfile = b0.path("netns");
                fs::write(&nsfile, "").unwrap();
                let made = std::process::Command::new("unshare")
                    .arg(format!("--net={}", nsfile.display()))
                    .arg("true")
                    .status()
                    .is_ok_and(|s| s.success());
                if !made {
                    skip!("cannot make a persistent network namespace (unshare --net=FILE)");
                }
                ctx.register_mount(&nsfile);
                if !ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]) {
                    skip!("cannot create a veth pair on this host");
                }
                let res = (|| -> Res {
                    let o = ctx.probe(&["read=/sys/class/net/ctr0/flags"], |b| {
                        remove_ns(b, "network");
                        add_ns(b, json!({"type": "network", "path": nsfile}));
                        b.cfg["linux"]["netDevices"] = json!({ name.clone(): {"name": "ctr0"} });
                    })?;
                    let flags = o.op_str(0).map_err(|e| {
                        Outcome::Fail(format!("no ctr0 in the container (errno {e})"))
                    })?;
                    let v =
                        i64::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
                    ensure!(v & 1 == 1, "ctr0 is not up: flags {flags:?}");
                    // It is in the joined namespace, seen from the host, after the container.
                    let out = std::process::Command::new("nsenter")
                        .arg(format!("--net={}", nsfile.display()))
                        .args(["ip", "-o", "link", "show", "ctr0"])
                        .output()
                        .map_err(|e| format!("nsenter: {e}"))?;
                    ensure!(
                        out.status.success(),
                        "ctr0 is not in the joined namespace: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    ensure!(
                        !Path::new("/sys/class/net").join(&name).exists(),
                        "{name} is still on the host"
                    );
                    Ok(())
                })();
                ip(&["link", "del", &name]);
                ip(&["link", "del", &peer]);
                res
            }
        ),
        sc!(
            "linux.intelRdt.no-resctrl",
            "linux.intelRdt without a resctrl filesystem: create must fail, nothing left",
            |ctx| {
                if Path::new("/sys/fs/resctrl/info").exists() {
                    skip!("this host has resctrl mounted");
                }
                let mut b = ctx.bundle();
                b.cfg["linux"]["intelRdt"] = json!({"closID": "bi-rdt", "l3CacheSchema": "L3:0=f"});
                let o = ctx.create(&b);
                ensure!(
                    !o.ok,
                    "create with linux.intelRdt succeeded without resctrl"
                );
                ensure!(
                    ctx.state(&b.id).is_err(),
                    "a container exists after the failed create"
                );
                Ok(())
            }
        ),
        sc!("linux.personality", "linux.personality", |ctx| {
            let (base, o) = ctx.probe_pair(&[], |b| {
                b.cfg["linux"]["personality"] = json!({"domain": "LINUX32"})
            })?;
            ensure!(
                o.str("personality") == "00000008",
                "personality {}",
                o.str("personality")
            );
            ensure!(
                base.str("personality") == "00000000",
                "baseline personality {}",
                base.str("personality")
            );
            Ok(())
        }),
        sc!(
            "linux.default-filesystems",
            "config-linux.md default filesystems (/proc, /sys, /dev/pts, /dev/shm)",
            |ctx| {
                let o = ctx.probe(&[], |_| {})?;
                for (d, t) in [
                    ("/proc", "proc"),
                    ("/sys", "sysfs"),
                    ("/dev/pts", "devpts"),
                    ("/dev/shm", "tmpfs"),
                ] {
                    let m = o.mount_at(d).ok_or(format!("{d} not mounted"))?;
                    ensure!(m.fstype == t, "{d} is {} want {t}", m.fstype);
                }
                Ok(())
            }
        ),
    ]
}

// ---------------------------------------------------------------- linux.resources (cgroup v1)

/// Create a container with `resources`, check host cgroup files, then tear down.
fn cg_check(ctx: &mut Ctx, resources: Value, checks: &[(&str, &str, &str)]) -> Res {
    for (ctrl, _, _) in checks {
        let p = format!("/sys/fs/cgroup/{ctrl}");
        if !Path::new(&p).exists() {
            skip!("host has no {p} (controller not mounted on cgroup v1)");
        }
    }
    let mut b = ctx.bundle();
    b.cfg["linux"]["resources"] = resources;
    let pid = ctx.create_ok(&b)?;
    let mut errs = vec![];
    for (ctrl, file, want) in checks {
        if !ctx.cg_path(ctrl, &b.id, file).exists() {
            teardown(ctx, &b.id, pid)?;
            skip!("host kernel has no {ctrl}/{file}");
        }
        let got = ctx.cg_read(ctrl, &b.id, file)?;
        // The default of the parent must differ, or the check could not fail.
        let dflt = fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/{file}")).unwrap_or_default();
        if dflt.trim() == *want {
            errs.push(format!(
                "{ctrl}/{file}: chosen value equals the host default (test bug)"
            ));
        }
        if !got.contains(want) {
            errs.push(format!("{ctrl}/{file} = {got:?}, want {want:?}"));
        }
    }
    teardown(ctx, &b.id, pid)?;
    ensure!(errs.is_empty(), "{}", errs.join("; "));
    Ok(())
}

fn cgroup_scenarios() -> Vec<Scenario> {
    vec![
        sc!("linux.cgroupsPath", "linux.cgroupsPath", |ctx| {
            let mut b = ctx.bundle();
            b.set_args(&["/probe"]);
            let pid = ctx.create_ok(&b)?;
            for ctrl in ["pids", "memory", "cpu", "devices"] {
                let procs = ctx.cg_read(ctrl, &b.id, "cgroup.procs")?;
                ensure!(
                    procs.lines().any(|l| l == pid.to_string()),
                    "{ctrl}: pid {pid} not in {}",
                    ctx.cg_path(ctrl, &b.id, "").display()
                );
            }
            teardown(ctx, &b.id, pid)?;
            Ok(())
        }),
        sc!(
            "linux.resources.memory.limit",
            "linux.resources.memory.limit",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"limit": 67108864}}),
                &[("memory", "memory.limit_in_bytes", "67108864")]
            )
        ),
        sc!(
            "linux.resources.memory.reservation",
            "linux.resources.memory.reservation",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"reservation": 33554432}}),
                &[("memory", "memory.soft_limit_in_bytes", "33554432")]
            )
        ),
        sc!(
            "linux.resources.memory.swap",
            "linux.resources.memory.swap",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"limit": 67108864, "swap": 134217728}}),
                &[("memory", "memory.memsw.limit_in_bytes", "134217728")]
            )
        ),
        sc!(
            "linux.resources.memory.kernelTCP",
            "linux.resources.memory.kernelTCP",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"kernelTCP": 16777216}}),
                &[("memory", "memory.kmem.tcp.limit_in_bytes", "16777216")]
            )
        ),
        sc!(
            "linux.resources.memory.swappiness",
            "linux.resources.memory.swappiness",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"swappiness": 10}}),
                &[("memory", "memory.swappiness", "10")]
            )
        ),
        sc!(
            "linux.resources.memory.disableOOMKiller",
            "linux.resources.memory.disableOOMKiller",
            |ctx| cg_check(
                ctx,
                json!({"memory": {"disableOOMKiller": true}}),
                &[("memory", "memory.oom_control", "oom_kill_disable 1")]
            )
        ),
        sc!(
            "linux.resources.cpu.shares",
            "linux.resources.cpu.shares",
            |ctx| cg_check(
                ctx,
                json!({"cpu": {"shares": 512}}),
                &[("cpu", "cpu.shares", "512")]
            )
        ),
        sc!(
            "linux.resources.cpu.quota-period",
            "linux.resources.cpu.quota, linux.resources.cpu.period",
            |ctx| cg_check(
                ctx,
                json!({"cpu": {"quota": 50000, "period": 200000}}),
                &[
                    ("cpu", "cpu.cfs_quota_us", "50000"),
                    ("cpu", "cpu.cfs_period_us", "200000")
                ]
            )
        ),
        sc!(
            "linux.resources.cpu.burst",
            "linux.resources.cpu.burst",
            |ctx| cg_check(
                ctx,
                json!({"cpu": {"quota": 50000, "period": 100000, "burst": 10000}}),
                &[("cpu", "cpu.cfs_burst_us", "10000")]
            )
        ),
        sc!(
            "linux.resources.cpu.realtime",
            "linux.resources.cpu.realtimeRuntime, realtimePeriod",
            |ctx| {
                // The kernel only grants a child RT time its parent has; give our test-only
                // parent some (the runtime creates only the leaf).
                let parent = format!("/sys/fs/cgroup/cpu{}", ctx.r.cg_parent);
                fs::create_dir_all(&parent).map_err(|e| format!("mkdir {parent}: {e}"))?;
                fs::write(format!("{parent}/cpu.rt_runtime_us"), "10000")
                    .map_err(|e| format!("parent rt_runtime_us: {e}"))?;
                cg_check(
                    ctx,
                    json!({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 500000}}),
                    &[
                        ("cpu", "cpu.rt_runtime_us", "1000"),
                        ("cpu", "cpu.rt_period_us", "500000"),
                    ],
                )
            }
        ),
        sc!(
            "linux.resources.cpu.cpus",
            "linux.resources.cpu.cpus",
            |ctx| {
                if fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus")
                    .unwrap_or_default()
                    .trim()
                    == "0"
                {
                    skip!("single CPU host");
                }
                cg_check(
                    ctx,
                    json!({"cpu": {"cpus": "1"}}),
                    &[("cpuset", "cpuset.cpus", "1")],
                )?;
                let o = ctx.probe(&[], |b| {
                    b.cfg["linux"]["resources"] = json!({"cpu": {"cpus": "1"}})
                })?;
                ensure!(
                    o.status("Cpus_allowed_list") == "1",
                    "Cpus_allowed_list inside {}",
                    o.status("Cpus_allowed_list")
                );
                Ok(())
            }
        ),
        sc!(
            "linux.resources.cpu.idle",
            "linux.resources.cpu.idle",
            |ctx| cg_check(
                ctx,
                json!({"cpu": {"idle": 1}}),
                &[("cpu", "cpu.idle", "1")]
            )
        ),
        sc!(
            "linux.resources.pids.limit",
            "linux.resources.pids.limit",
            |ctx| cg_check(
                ctx,
                json!({"pids": {"limit": 42}}),
                &[("pids", "pids.max", "42")]
            )
        ),
        sc!(
            "linux.resources.blockIO.throttle",
            "linux.resources.blockIO throttleReadBpsDevice, throttleWriteBpsDevice, throttleReadIOPSDevice, throttleWriteIOPSDevice",
            |ctx| {
                let (ma, mi) =
                    root_blockdev().ok_or(Outcome::Skip("no block device for /".into()))?;
                cg_check(
                    ctx,
                    json!({"blockIO": {
                        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                        "throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 2097152}],
                        "throttleReadIOPSDevice": [{"major": ma, "minor": mi, "rate": 1000}],
                        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 2000}]
                    }}),
                    &[
                        (
                            "blkio",
                            "blkio.throttle.read_bps_device",
                            &format!("{ma}:{mi} 1048576"),
                        ),
                        (
                            "blkio",
                            "blkio.throttle.write_bps_device",
                            &format!("{ma}:{mi} 2097152"),
                        ),
                        (
                            "blkio",
                            "blkio.throttle.read_iops_device",
                            &format!("{ma}:{mi} 1000"),
                        ),
                        (
                            "blkio",
                            "blkio.throttle.write_iops_device",
                            &format!("{ma}:{mi} 2000"),
                        ),
                    ],
                )
            }
        ),
        sc!(
            "linux.resources.blockIO.weight",
            "linux.resources.blockIO.weight, weightDevice",
            |ctx| cg_check(
                ctx,
                json!({"blockIO": {"weight": 300}}),
                &[("blkio", "blkio.weight", "300")]
            )
        ),
        sc!(
            "linux.resources.hugepageLimits",
            "linux.resources.hugepageLimits",
            |ctx| cg_check(
                ctx,
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
                &[("hugetlb", "hugetlb.2MB.limit_in_bytes", "2097152")]
            )
        ),
        sc!(
            "linux.resources.network",
            "linux.resources.network.classID, priorities",
            |ctx| cg_check(
                ctx,
                json!({"network": {"classID": 1048577}}),
                &[("net_cls", "net_cls.classid", "1048577")]
            )
        ),
        sc!("linux.resources.rdma", "linux.resources.rdma", |ctx| {
            cg_check(
                ctx,
                json!({"rdma": {"mlx5_1": {"hcaHandles": 3}}}),
                &[("rdma", "rdma.max", "mlx5_1 hca_handle=3")],
            )
        }),
        sc!(
            "linux.resources.devices",
            "linux.resources.devices (allow, type, major, minor, access)",
            |ctx| {
                let dev = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]);
                let ops = ["open=/dev/fuse"];
                let d2 = dev.clone();
                let deny = ctx.probe(&ops, |b| {
                    b.cfg["linux"]["devices"] = d2;
                    b.cfg["linux"]["resources"] =
                        json!({"devices": [{"allow": false, "access": "rwm"}]});
                })?;
                let allow = ctx.probe(&ops, |b| {
                    b.cfg["linux"]["devices"] = dev;
                    b.cfg["linux"]["resources"] = json!({"devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]});
                })?;
                ensure!(
                    deny.op(0) == Err(EPERM),
                    "open of denied device gave {:?}, want EPERM",
                    deny.op(0)
                );
                ensure!(
                    allow.op(0) != Err(EPERM),
                    "open of allowed device gave EPERM"
                );
                // And from the host: the devices cgroup lists the rule.
                let mut b = ctx.bundle();
                b.cfg["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]});
                let pid = ctx.create_ok(&b)?;
                let list = ctx.cg_read("devices", &b.id, "devices.list")?;
                teardown(ctx, &b.id, pid)?;
                ensure!(
                    list.lines().any(|l| l == "c 10:229 rw"),
                    "devices.list lacks c 10:229 rw: {list:?}"
                );
                ensure!(
                    !list.lines().any(|l| l == "a *:* rwm"),
                    "devices.list still allows everything"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.resources.unified",
            "linux.resources.unified",
            |ctx| {
                // On a cgroup v1 (hybrid) host the spec requires an error for unified keys the
                // runtime can't apply.
                if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                    return cg_check(
                        ctx,
                        json!({"unified": {"pids.max": "42"}}),
                        &[("", "pids.max", "42")],
                    );
                }
                let mut b = ctx.bundle();
                b.cfg["linux"]["resources"] = json!({"unified": {"pids.max": "42"}});
                let o = ctx.create(&b);
                ensure!(
                    !o.ok,
                    "create accepted linux.resources.unified on a cgroup v1 host"
                );
                Ok(())
            }
        ),
    ]
}

fn root_blockdev() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let d = fs::metadata("/").ok()?.dev();
    let (ma, mi) = (libc::major(d) as u64, libc::minor(d) as u64);
    // only a whole disk that blkio accepts
    if Path::new(&format!("/sys/dev/block/{ma}:{mi}/queue")).exists() {
        Some((ma, mi))
    } else {
        None
    }
}

// ---------------------------------------------------------------- seccomp

/// acct(2): never used by a runtime's init, and fails with EPERM without CAP_SYS_PACCT.
const SYS_ACCT: i64 = 163;
const SYS_GETPRIORITY: i64 = 140;

fn seccomp_scenarios() -> Vec<Scenario> {
    vec![
        sc!(
            "linux.seccomp.errno",
            "linux.seccomp (defaultAction, syscalls[].names, action SCMP_ACT_ERRNO, errnoRet)",
            |ctx| {
                let ops = [format!("sys={SYS_ACCT}")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let (base, o) = ctx.probe_pair(&ops, |b| {
                b.cfg["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
                });
            })?;
                ensure!(
                    base.op(0) == Err(EPERM),
                    "baseline acct(0) gave {:?}, want EPERM",
                    base.op(0)
                );
                ensure!(
                    base.status("Seccomp") == "0",
                    "baseline Seccomp mode {}",
                    base.status("Seccomp")
                );
                ensure!(
                    o.op(0) == Err(42),
                    "acct under filter gave {:?}, want errno 42",
                    o.op(0)
                );
                ensure!(
                    o.status("Seccomp") == "2",
                    "Seccomp mode {}",
                    o.status("Seccomp")
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.denies-runtime-syscalls",
            "linux.seccomp denying syscalls the runtime itself makes to set the process up (getcwd, chdir, the user switch, capset), noNewPrivileges false, user 1000: the profile is for the container's process, not for the runtime's setup",
            |ctx| {
                let o = ctx.probe(&[], |b| {
                    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
                    b.cfg["process"]["noNewPrivileges"] = json!(false);
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{
                            "names": ["getcwd", "chdir", "fchdir", "setresuid", "setresgid",
                                      "setuid", "setgid", "setgroups", "capset"],
                            "action": "SCMP_ACT_ERRNO"
                        }]
                    });
                })?;
                ensure!(
                    o.status("Seccomp") == "2",
                    "Seccomp mode {}",
                    o.status("Seccomp")
                );
                let uid = o.status("Uid");
                ensure!(
                    uid.split_whitespace().all(|u| u == "1000"),
                    "Uid {uid:?}, want 1000"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.defaultErrnoRet",
            "linux.seccomp.defaultAction SCMP_ACT_ERRNO + defaultErrnoRet",
            |ctx| {
                // Allow what a static binary needs; everything else fails with errno 55.
                let allow = [
                    "read",
                    "write",
                    "openat",
                    "open",
                    "close",
                    "fstat",
                    "newfstatat",
                    "statx",
                    "lseek",
                    "mmap",
                    "munmap",
                    "mprotect",
                    "brk",
                    "rt_sigaction",
                    "rt_sigprocmask",
                    "rt_sigreturn",
                    "ioctl",
                    "pread64",
                    "readv",
                    "writev",
                    "access",
                    "getdents64",
                    "getpid",
                    "exit",
                    "exit_group",
                    "arch_prctl",
                    "set_tid_address",
                    "set_robust_list",
                    "rseq",
                    "prlimit64",
                    "getrandom",
                    "readlink",
                    "readlinkat",
                    "getcwd",
                    "sigaltstack",
                    "poll",
                    "sched_getaffinity",
                    "futex",
                    "execve",
                    "fcntl",
                    "capget",
                    "capset",
                    "prctl",
                    "setgroups",
                    "setuid",
                    "setgid",
                    "setresuid",
                    "setresgid",
                    "getuid",
                    "geteuid",
                    "getgid",
                    "getegid",
                    "ioprio_get",
                    "uname",
                    "madvise",
                    "clone",
                    "clone3",
                    "wait4",
                    "nanosleep",
                    "clock_nanosleep",
                    "fchdir",
                    "chdir",
                    "dup2",
                    "dup3",
                    "pipe2",
                    "close_range",
                    "rename",
                    "renameat",
                    "mremap",
                    "gettid",
                    "tgkill",
                    "kill",
                    "epoll_pwait",
                    "faccessat2",
                    "faccessat",
                    "stat",
                    "lstat",
                    "sched_yield",
                    "personality",
                    "setsid",
                    "getppid",
                    "fchown",
                    "umask",
                    "mkdirat",
                    "mkdir",
                    "unlinkat",
                    "fstatfs",
                    "statfs",
                    "socket",
                    "connect",
                    "sendto",
                ];
                let ops = [format!("sys={SYS_GETPRIORITY},0,0")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let o = ctx.probe(&ops, |b| {
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 55,
                        "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": allow.to_vec(), "action": "SCMP_ACT_ALLOW"}]
                    });
                })?;
                ensure!(
                    o.op(0) == Err(55),
                    "getpriority (not allowed) gave {:?}, want errno 55",
                    o.op(0)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.args",
            "linux.seccomp.syscalls[].args (index, value, op)",
            |ctx| {
                let ops = [
                    format!("sys={SYS_GETPRIORITY},0,0"),
                    format!("sys={SYS_GETPRIORITY},1,0"),
                ];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let o = ctx.probe(&ops, |b| {
                b.cfg["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43,
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]
                });
            })?;
                ensure!(
                    o.op(0).is_ok(),
                    "getpriority(0,..) not matching the arg rule failed: {:?}",
                    o.op(0)
                );
                ensure!(
                    o.op(1) == Err(43),
                    "getpriority(1,..) gave {:?}, want errno 43",
                    o.op(1)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.kill",
            "linux.seccomp action SCMP_ACT_KILL",
            |ctx| {
                let ops = [format!("sys={SYS_ACCT}")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let mut b = ctx.bundle();
                let mut args = vec!["/probe"];
                args.extend_from_slice(&ops);
                b.set_args(&args);
                b.cfg["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL"}]
                });
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let e = ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.delete_ok(&b.id)?;
                ensure!(b.stdout().is_empty(), "probe survived the filtered syscall");
                ensure!(
                    matches!(e, Some(Exit::Signal(31)) | Some(Exit::Unknown)),
                    "exit {e:?}, want SIGSYS"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.trap",
            "linux.seccomp action SCMP_ACT_TRAP (SIGSYS)",
            |ctx| {
                let ops = [format!("sys={SYS_ACCT}")];
                let mut b = ctx.bundle();
                b.set_args(&["/probe", &ops[0]]);
                b.cfg["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_TRAP"}]
                });
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let e = ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.delete_ok(&b.id)?;
                ensure!(b.stdout().is_empty(), "probe survived the trapped syscall");
                ensure!(
                    matches!(e, Some(Exit::Signal(31)) | Some(Exit::Unknown)),
                    "exit {e:?}, want SIGSYS"
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.log",
            "linux.seccomp action SCMP_ACT_LOG (allowed, logged)",
            |ctx| {
                let ops = [format!("sys={SYS_ACCT}")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let with = |action: &str| {
                    let action = action.to_string();
                    move |b: &mut Bundle| {
                        // errnoRet only where the action takes one (config-linux.md: the
                        // runtime must fail otherwise).
                        let mut rule = json!({"names": ["acct"], "action": action});
                        if action == "SCMP_ACT_ERRNO" {
                            rule["errnoRet"] = json!(42);
                        }
                        b.cfg["linux"]["seccomp"] = json!({
                            "defaultAction": "SCMP_ACT_ALLOW",
                            "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": [rule]
                        });
                    }
                };
                let errno = ctx.probe(&ops, with("SCMP_ACT_ERRNO"))?;
                let log = ctx.probe(&ops, with("SCMP_ACT_LOG"))?;
                ensure!(
                    errno.op(0) == Err(42),
                    "with SCMP_ACT_ERRNO acct gave {:?}, want errno 42",
                    errno.op(0)
                );
                ensure!(
                    log.op(0) == Err(EPERM),
                    "with SCMP_ACT_LOG acct gave {:?}, want the kernel's own EPERM (allowed)",
                    log.op(0)
                );
                ensure!(
                    log.status("Seccomp") == "2",
                    "Seccomp mode {}",
                    log.status("Seccomp")
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.trace",
            "linux.seccomp action SCMP_ACT_TRACE (no tracer: ENOSYS)",
            |ctx| {
                let ops = [format!("sys={SYS_ACCT}")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let (base, o) = ctx.probe_pair(&ops, |b| {
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]
                    });
                })?;
                ensure!(
                    base.op(0) == Err(EPERM),
                    "baseline acct gave {:?}",
                    base.op(0)
                );
                ensure!(
                    o.op(0) == Err(ENOSYS),
                    "acct under SCMP_ACT_TRACE without a tracer gave {:?}, want ENOSYS",
                    o.op(0)
                );
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.notify",
            "linux.seccomp action SCMP_ACT_NOTIFY, listenerPath, listenerMetadata",
            |ctx| {
                let ops = [format!("sys={SYS_GETPRIORITY},0,0")];
                let ops: Vec<&str> = ops.iter().map(|s| s.as_str()).collect();
                let mut agent = None;
                let mut agent_err = None;
                let mut id = String::new();
                let o = ctx.probe(&ops, |b| {
                    let sock = b.dir.join("agent.sock");
                    match crate::harness::seccomp_agent(&sock, 18, Duration::from_secs(3)) {
                        Ok(h) => agent = Some(h),
                        Err(e) => agent_err = Some(e.to_string()),
                    }
                    id = b.id.clone();
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "listenerPath": sock, "listenerMetadata": "berth-integration",
                        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_NOTIFY"}]
                    });
                })?;
                ensure!(
                    agent_err.is_none(),
                    "agent: {}",
                    agent_err.unwrap_or_default()
                );
                let (state, seen) = agent
                    .expect("agent started")
                    .join()
                    .map_err(|_| Outcome::Fail("the agent panicked".into()))?
                    .map_err(Outcome::Fail)?;
                ensure!(
                    o.op(0) == Err(18),
                    "getpriority gave {:?}, want the agent's answer EXDEV (18)",
                    o.op(0)
                );
                ensure!(
                    seen.contains(&(SYS_GETPRIORITY as i32)),
                    "agent saw {seen:?}"
                );
                ensure!(state["fds"] == json!(["seccompFd"]), "state fds: {state}");
                ensure!(
                    state["metadata"] == "berth-integration",
                    "metadata: {state}"
                );
                ensure!(state["pid"].as_i64().unwrap_or(0) > 0, "pid: {state}");
                ensure!(state["state"]["id"] == id.as_str(), "state.id: {state}");
                ensure!(state["ociVersion"].is_string(), "ociVersion: {state}");
                Ok(())
            }
        ),
        sc!(
            "linux.seccomp.flags",
            "linux.seccomp.flags (SECCOMP_FILTER_FLAG_SPEC_ALLOW)",
            |ctx| {
                let o = ctx.probe(&[], |b| {
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]
                    });
                })?;
                let base = ctx.probe(&[], |b| {
                    b.cfg["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]
                    });
                })?;
                let (a, c) = (
                    o.status("Speculation_Store_Bypass"),
                    base.status("Speculation_Store_Bypass"),
                );
                if a == c {
                    skip!("host speculation mitigation ({c}) does not change with SPEC_ALLOW");
                }
                ensure!(!a.contains("force"), "SPEC_ALLOW ignored: {a}");
                Ok(())
            }
        ),
    ]
}

// ---------------------------------------------------------------- runtime.md lifecycle

fn lifecycle_scenarios() -> Vec<Scenario> {
    vec![
        sc!(
            "create.no-process",
            "config.md: process optional for create, required by start (runtime.md: start errors without it); delete cleans up",
            |ctx| {
                let mut b = ctx.bundle();
                b.cfg.as_object_mut().unwrap().remove("process");
                let pid = ctx.create_ok(&b)?;
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["status"] == "created",
                    "status {} after create",
                    st["status"]
                );
                let pidns = fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ensure!(
                    !pidns.is_empty() && pidns != host_ns("pid"),
                    "the container's process is not in its own pid namespace"
                );
                let o = ctx.rt(&["start", &b.id]);
                ensure!(!o.ok, "start succeeded without process");
                ensure!(
                    o.stderr.contains("process"),
                    "start's error does not name process: {}",
                    o.brief()
                );
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["status"] == "created",
                    "status {} after the failed start",
                    st["status"]
                );
                let o = ctx.rt(&["delete", "--force", &b.id]);
                ensure!(o.ok, "delete: {}", o.brief());
                ensure!(
                    ctx.wait_exit(pid, Duration::from_secs(10)).is_some(),
                    "the container's process outlived delete"
                );
                ensure!(
                    ctx.state(&b.id).is_err(),
                    "the container still exists after delete"
                );
                Ok(())
            }
        ),
        sc!(
            "exec.cgroup",
            "runc CLI: exec --cgroup / (the container's own cgroup) and, on cgroup v1, CONTROLLER[,CONTROLLER]:PATH",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "sleep 100");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let own = read_file(Path::new(&format!("/proc/{pid}/cgroup")));
                ensure!(!own.is_empty(), "cannot read the init's cgroups");
                let mut forms: Vec<Vec<&str>> = vec![vec!["/"]];
                if Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
                    forms.push(vec!["memory:/"]);
                    forms.push(vec!["memory,pids:/", "freezer:/"]);
                }
                for f in forms {
                    let mut args = vec!["exec"];
                    for c in &f {
                        args.extend(["--cgroup", c]);
                    }
                    args.extend([b.id.as_str(), "cat", "/proc/self/cgroup"]);
                    let o = ctx.rt(&args);
                    ensure!(o.ok, "exec --cgroup {f:?}: {}", o.brief());
                    ensure!(
                        o.stdout == own,
                        "exec --cgroup {f:?}: cgroups {:?}, the init's {own:?}",
                        o.stdout
                    );
                }
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "state.created",
            "runtime.md state: ociVersion, id, status=created, pid, bundle",
            |ctx| {
                let b = ctx.bundle();
                let pid = ctx.create_ok(&b)?;
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["ociVersion"].as_str().map(|v| !v.is_empty()) == Some(true),
                    "ociVersion {}",
                    st["ociVersion"]
                );
                ensure!(st["id"] == b.id.as_str(), "id {}", st["id"]);
                ensure!(st["status"] == "created", "status {}", st["status"]);
                ensure!(
                    Path::new(st["bundle"].as_str().unwrap_or("")) == b.dir,
                    "bundle {} want {}",
                    st["bundle"],
                    b.dir.display()
                );
                ensure!(
                    Path::new(&format!("/proc/{pid}")).exists(),
                    "pid {pid} not alive"
                );
                let pidns = fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ensure!(
                    pidns != host_ns("pid"),
                    "state pid {pid} is not in the container's pid namespace"
                );
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "lifecycle.create-does-not-run",
            "runtime.md create: MUST NOT run the user program until start; start runs it",
            |ctx| {
                let mut b = ctx.bundle();
                let dir = bind_dir(&mut b, "out", "/out", &[]);
                sh(&mut b, "echo ran > /out/ran");
                let pid = ctx.create_ok(&b)?;
                std::thread::sleep(Duration::from_millis(300));
                ensure!(!dir.join("ran").exists(), "program ran before start");
                ctx.start_ok(&b.id)?;
                ensure!(
                    wait_file(&dir.join("ran"), Duration::from_secs(5)),
                    "program did not run after start"
                );
                ctx.wait_exit(pid, Duration::from_secs(5));
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "lifecycle.status-transitions",
            "runtime.md state.status created -> running -> stopped",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "sleep 30");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let st = ctx.state_ok(&b.id)?;
                ensure!(st["status"] == "running", "after start: {}", st["status"]);
                ensure!(
                    st["pid"] == pid,
                    "pid changed after start: {} vs {pid}",
                    st["pid"]
                );
                // The exe is now the user program.
                let exe = fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ensure!(
                    exe.ends_with("busybox"),
                    "state pid runs {exe}, not the user program"
                );
                let o = ctx.rt(&["kill", &b.id, "KILL"]);
                ensure!(o.ok, "kill failed {}", o.brief());
                ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "lifecycle.stopped-after-exit",
            "runtime.md: process exit -> status stopped",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "exit 3");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                let st = ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                ensure!(st["id"] == b.id.as_str(), "stopped state id {}", st["id"]);
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "create.duplicate-id",
            "runtime.md create: error if id not unique; existing container unaffected",
            |ctx| {
                let b = ctx.bundle();
                let pid = ctx.create_ok(&b)?;
                let mut b2 = ctx.bundle();
                b2.id = b.id.clone();
                b2.write_config();
                let o = ctx.rt(&["create", "--bundle", b2.dir.to_str().unwrap(), &b.id]);
                ensure!(!o.ok, "second create with the same id succeeded");
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["status"] == "created" && st["pid"] == pid,
                    "first container changed: {st}"
                );
                ensure!(
                    Path::new(st["bundle"].as_str().unwrap_or("")) == b.dir,
                    "bundle changed: {}",
                    st["bundle"]
                );
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "create.invalid-config",
            "runtime.md create: error on invalid config, nothing created",
            |ctx| {
                let b = ctx.bundle();
                b.write_config();
                fs::write(
                    b.path("config.json"),
                    "{\"ociVersion\": \"1.0.2\", \"process\": ",
                )
                .unwrap();
                let o = ctx.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
                ensure!(!o.ok, "create with truncated config.json succeeded");
                ensure!(
                    ctx.state(&b.id).is_err(),
                    "a container exists after failed create"
                );
                Ok(())
            }
        ),
        sc!(
            "create.missing-program",
            "runtime.md: error if process.args[0] cannot be executed (create or start)",
            |ctx| {
                let mut b = ctx.bundle();
                b.set_args(&["/does-not-exist"]);
                let o = ctx.create(&b);
                if o.ok {
                    let o = ctx.rt(&["start", &b.id]);
                    ensure!(!o.ok, "start of a missing program succeeded");
                }
                Ok(())
            }
        ),
        sc!(
            "start.twice",
            "runtime.md start: error if not created (start twice)",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "sleep 30");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let o = ctx.rt(&["start", &b.id]);
                ensure!(!o.ok, "second start succeeded");
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["status"] == "running" && st["pid"] == pid,
                    "container changed by second start: {st}"
                );
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "start.stopped",
            "runtime.md start: error on a stopped container",
            |ctx| {
                let mut b = ctx.bundle();
                let dir = bind_dir(&mut b, "out", "/out", &[]);
                sh(&mut b, "echo x >> /out/runs");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                let o = ctx.rt(&["start", &b.id]);
                ensure!(!o.ok, "start of a stopped container succeeded");
                std::thread::sleep(Duration::from_millis(200));
                ensure!(
                    read_file(&dir.join("runs")).lines().count() == 1,
                    "program ran again"
                );
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "start.nonexistent",
            "runtime.md start/state/kill/delete: error for an unknown id",
            |ctx| {
                let id = ctx.new_id();
                for args in [
                    vec!["start", &id],
                    vec!["state", &id],
                    vec!["kill", &id, "KILL"],
                    vec!["delete", &id],
                ] {
                    let o = ctx.rt(&args);
                    ensure!(!o.ok, "{args:?} on an unknown id succeeded");
                }
                Ok(())
            }
        ),
        sc!(
            "delete.running",
            "runtime.md delete: error if not stopped (running); no effect",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "sleep 30");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let o = ctx.rt(&["delete", &b.id]);
                ensure!(!o.ok, "delete of a running container succeeded");
                let st = ctx.state_ok(&b.id)?;
                ensure!(
                    st["status"] == "running",
                    "container not running after refused delete: {}",
                    st["status"]
                );
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "delete.created",
            "runtime.md delete: error if not stopped (created)",
            |ctx| {
                let b = ctx.bundle();
                let pid = ctx.create_ok(&b)?;
                let o = ctx.rt(&["delete", &b.id]);
                let st = ctx.state(&b.id);
                ensure!(
                    !o.ok,
                    "delete of a created container succeeded (state now {:?})",
                    st.as_ref().ok().map(|s| s["status"].clone())
                );
                ensure!(
                    st.map(|s| s["status"] == "created").unwrap_or(false),
                    "container changed by refused delete"
                );
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "delete.stopped",
            "runtime.md delete: removes the container and its create-time resources; id reusable",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "true");
                let pid = ctx.create_ok(&b)?;
                ensure!(
                    ctx.cg_path("pids", &b.id, "").exists(),
                    "cgroup not created"
                );
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                ctx.delete_ok(&b.id)?;
                ensure!(ctx.state(&b.id).is_err(), "state succeeds after delete");
                for c in ["pids", "memory", "cpu"] {
                    ensure!(
                        !ctx.cg_path(c, &b.id, "").exists(),
                        "{c} cgroup left after delete"
                    );
                }
                // The id can be used again.
                let pid = ctx.create_ok(&b)?;
                teardown(ctx, &b.id, pid)
            }
        ),
        sc!(
            "kill.signal",
            "runtime.md kill: sends the signal to the container process",
            |ctx| {
                let mut b = ctx.bundle();
                let dir = bind_dir(&mut b, "out", "/out", &[]);
                sh(
                    &mut b,
                    "trap 'echo USR1 > /out/sig; exit 0' USR1; touch /out/ready; while :; do sleep 0.05; done",
                );
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ensure!(
                    wait_file(&dir.join("ready"), Duration::from_secs(5)),
                    "program not ready"
                );
                let o = ctx.rt(&["kill", &b.id, "USR1"]);
                ensure!(o.ok, "kill USR1 failed: {}", o.brief());
                ensure!(
                    wait_file(&dir.join("sig"), Duration::from_secs(5)),
                    "signal not delivered"
                );
                ctx.wait_exit(pid, Duration::from_secs(5));
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "kill.term-numeric",
            "runtime.md kill: signal by number (15)",
            |ctx| {
                let mut b = ctx.bundle();
                let dir = bind_dir(&mut b, "out", "/out", &[]);
                sh(
                    &mut b,
                    "trap 'echo TERM > /out/sig; exit 0' TERM; touch /out/ready; while :; do sleep 0.05; done",
                );
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ensure!(
                    wait_file(&dir.join("ready"), Duration::from_secs(5)),
                    "program not ready"
                );
                let o = ctx.rt(&["kill", &b.id, "15"]);
                ensure!(o.ok, "kill 15 failed: {}", o.brief());
                ensure!(
                    wait_file(&dir.join("sig"), Duration::from_secs(5)),
                    "signal not delivered"
                );
                ctx.wait_exit(pid, Duration::from_secs(5));
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "kill.created",
            "runtime.md kill: allowed on a created container",
            |ctx| {
                let b = ctx.bundle();
                let pid = ctx.create_ok(&b)?;
                let o = ctx.rt(&["kill", &b.id, "KILL"]);
                ensure!(o.ok, "kill of a created container failed: {}", o.brief());
                ensure!(
                    ctx.wait_exit(pid, Duration::from_secs(10)).is_some(),
                    "process survived KILL"
                );
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "kill.stopped",
            "runtime.md kill: error on a stopped container",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "true");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                ctx.wait_exit(pid, Duration::from_secs(10));
                ctx.wait_status(&b.id, "stopped", Duration::from_secs(5))?;
                let o = ctx.rt(&["kill", &b.id, "KILL"]);
                ensure!(!o.ok, "kill of a stopped container succeeded");
                ctx.delete_ok(&b.id)
            }
        ),
        sc!(
            "delete.force",
            "delete --force of a running container (runc CLI; cleanup path)",
            |ctx| {
                let mut b = ctx.bundle();
                sh(&mut b, "sleep 30");
                let pid = ctx.create_ok(&b)?;
                ctx.start_ok(&b.id)?;
                let o = ctx.rt(&["delete", "--force", &b.id]);
                ensure!(o.ok, "delete --force failed: {}", o.brief());
                ensure!(
                    ctx.wait_exit(pid, Duration::from_secs(10)).is_some(),
                    "process survived delete --force"
                );
                ensure!(ctx.state(&b.id).is_err(), "container still exists");
                Ok(())
            }
        ),
    ]
}
