//! The checks: what kubelet does through the CRI, with effects checked inside the containers
//! (ExecSync) and on the host (/proc/<pid>, cgroup files, mounts, processes).

use crate::cri::{self, ContainerState, KeyValue, LinuxContainerResources, Mount, PodSandboxState};
use crate::group;
use crate::harness::{Group, T, ensure, tail};
use crate::host;
use crate::kube::{self, Driver, PodOpts, res, sc};
use std::time::{Duration, Instant};

pub fn groups() -> Vec<Group> {
    vec![
        group!(
            "runtime",
            ["runtime.version", "runtime.status", "runtime.images"],
            g_runtime
        ),
        group!(
            "pod",
            [
                "pod.run-ready",
                "pod.ip",
                "pod.cgroup-parent",
                "pod.hostname",
                "pod.dns",
                "pod.shared-namespaces",
                "pod.sysctls",
                "pod.log-directory",
                "container.args-env-workdir",
                "container.mounts",
                "container.resources",
                "container.oom-score-adj",
                "container.devices",
                "container.rlimits-inherited",
                "container.tty",
                "container.target-pid-namespace",
                "exec.output-exit-code",
                "exec.joins-container",
                "exec.timeout",
                "stats.container",
                "stats.list",
                "update.resources",
                "log.reopen",
                "container.exit-status",
                "stop.grace-period-kill",
                "stop.graceful",
                "container.remove",
                "pod.stop",
                "pod.remove-nothing-left",
            ],
            g_pod
        ),
        group!(
            "pid-share",
            ["pod.share-process-namespace", "pod.kill-all-on-exit"],
            g_pid_share
        ),
        group!(
            "security",
            [
                "security.run-as-user-group",
                "security.readonly-rootfs",
                "security.capabilities-add-drop",
                "security.capabilities-drop-all",
                "security.no-new-privs",
                "security.seccomp-runtime-default",
                "security.seccomp-unconfined",
                "security.seccomp-localhost",
                "security.masked-readonly-paths",
            ],
            g_security
        ),
        group!("privileged", ["security.privileged"], g_privileged),
        group!("host-namespaces", ["pod.host-network-pid-ipc"], g_host_ns),
        group!("oom", ["container.oom-killed"], g_oom),
        group!(
            "restart",
            [
                "restart.pods-listed",
                "restart.exec",
                "restart.new-container",
                "restart.stop-remove",
            ],
            g_restart
        ),
        group!(
            "nothing-left",
            ["nothing-left.cri", "nothing-left.host"],
            g_nothing_left
        ),
    ]
}

fn state_name(s: i32) -> String {
    format!("{:?}", ContainerState::try_from(s))
}

async fn g_runtime(t: &mut T) -> cri::R<()> {
    let v = t.cri.version().await;
    t.check(
        "runtime.version",
        v.and_then(|v| {
            ensure(
                v.runtime_name == "containerd" && v.runtime_api_version == "v1",
                || format!("unexpected version answer {v:?}"),
            )
        }),
    );
    let s = t.cri.status().await;
    t.check(
        "runtime.status",
        s.and_then(|s| {
            let c = s.status.map(|s| s.conditions).unwrap_or_default();
            let ready = |n: &str| c.iter().any(|x| x.r#type == n && x.status);
            ensure(ready("RuntimeReady") && ready("NetworkReady"), || {
                format!("conditions {c:?}")
            })
        }),
    );
    let bb = t.busybox.clone();
    let img = t.cri.image_status(&bb).await;
    let pause = t.cri.image_status(&t.d.sandbox_image.clone()).await;
    t.check(
        "runtime.images",
        match (img, pause) {
            (Ok(Some(_)), Ok(Some(_))) => Ok(()),
            (a, b) => Err(format!("image status: busybox {a:?}, pause {b:?}")),
        },
    );
    Ok(())
}

/// Sorted `ns:[inode]` of the given kinds, as `readlink` prints them inside a container.
const NS_SCRIPT: &str =
    "for n in net ipc uts pid mnt; do echo $n=$(readlink /proc/self/ns/$n); done";

fn parse_kv(s: &str) -> std::collections::HashMap<String, String> {
    s.lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

async fn g_pod(t: &mut T) -> cri::R<()> {
    let pod = t.pod("web", PodOpts::default()).await?;
    let st = t.cri.pod_status(&pod.id).await?;
    let s = st.status.clone().ok_or("no pod status")?;
    let pause = cri::info_pid(&st.info).ok_or("no sandbox pid")?;
    t.check(
        "pod.run-ready",
        ensure(
            s.state == PodSandboxState::SandboxReady as i32
                && s.metadata.as_ref().map(|m| m.uid.as_str()) == Some(pod.uid.as_str())
                && host::alive(pause),
            || {
                format!(
                    "status {s:?}, pause pid {pause} alive {}",
                    host::alive(pause)
                )
            },
        ),
    );
    let ip = s.network.as_ref().map(|n| n.ip.clone()).unwrap_or_default();

    // Host paths for the mounts (kubelet's hostPath volumes, etc-hosts, termination-log).
    let hostdir = t.d.work.join("host").join(&pod.uid);
    for d in ["rw", "ro"] {
        std::fs::create_dir_all(hostdir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(hostdir.join("ro/ro-file"), "read only content\n").map_err(|e| e.to_string())?;
    std::fs::write(
        hostdir.join("etc-hosts"),
        "127.0.0.1 localhost\n10.0.0.7 web-host-entry\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(hostdir.join("termination-log"), "").map_err(|e| e.to_string())?;
    let hp = |p: &str| hostdir.join(p).to_string_lossy().into_owned();

    let mut app = t.ctr("app", "", &pod);
    app.command = vec!["/bin/sh".into(), "-c".into()];
    app.args = vec![
        "echo started $0 $FOO; echo err-line >&2; exec sleep 3600".into(),
        "zero".into(),
    ];
    // a device plugin's device: the host's /dev/fuse under another name
    app.devices = vec![cri::Device {
        container_path: "/dev/fuse-test".into(),
        host_path: "/dev/fuse".into(),
        permissions: "rw".into(),
    }];
    app.working_dir = "/work/dir".into();
    app.envs = vec![
        KeyValue {
            key: "FOO".into(),
            value: "bar".into(),
        },
        KeyValue {
            key: "KUBERNETES_SERVICE_HOST".into(),
            value: "10.96.0.1".into(),
        },
    ];
    app.mounts = vec![
        Mount {
            container_path: "/data/rw".into(),
            host_path: hp("rw"),
            ..Default::default()
        },
        Mount {
            container_path: "/data/ro".into(),
            host_path: hp("ro"),
            readonly: true,
            ..Default::default()
        },
        Mount {
            container_path: "/etc/hosts".into(),
            host_path: hp("etc-hosts"),
            ..Default::default()
        },
        Mount {
            container_path: "/dev/termination-log".into(),
            host_path: hp("termination-log"),
            ..Default::default()
        },
    ];
    {
        let r = res(&mut app);
        r.memory_limit_in_bytes = 64 << 20;
        r.cpu_quota = 50000;
        r.cpu_period = 100000;
        r.cpu_shares = 512;
        r.oom_score_adj = 700;
        // kubelet's static CPU manager pins containers with cpuset_cpus
        r.cpuset_cpus = "0".into();
        r.cpuset_mems = "0".into();
    }
    let app_id = t.start(&pod, &app).await?;
    let side = t.ctr("side", "exec sleep 3600", &pod);
    let side_id = t.start(&pod, &side).await?;
    let app_pid = t.pid(&app_id).await?;
    let side_pid = t.pid(&side_id).await?;
    let app_log = t.pod_cfg_log(&pod.cfg, &app);

    // pod.ip: CNI gave an address from the private range; the containers see it on eth0.
    let r = async {
        ensure(ip.starts_with("10.222."), || {
            format!("pod IP {ip:?} not from 10.222.0.0/16")
        })?;
        let o = t.cri.sh(&app_id, "ip -4 -o addr show dev eth0").await?;
        ensure(o.contains(&format!("inet {ip}/")), || {
            format!("eth0 inside: {o:?}, pod IP {ip}")
        })
    }
    .await;
    t.check("pod.ip", r);

    // pod.cgroup-parent: sandbox and containers in <parent>/<id> in every hierarchy.
    let r = async {
        let mut bad = vec![];
        let ctrls: Vec<&str> = if host::cgroup_v2() {
            vec![""]
        } else {
            vec![
                "memory", "cpu", "pids", "devices", "freezer", "blkio", "cpuset",
            ]
        };
        for (what, pid, id) in [
            ("sandbox", pause, &pod.id),
            ("app", app_pid, &app_id),
            ("side", side_pid, &side_id),
        ] {
            let want = t.driver.container_cgroup(&pod.uid, id);
            for c in &ctrls {
                let got = host::cgroup_of(pid, c).unwrap_or_default();
                if got != want {
                    bad.push(format!("{what} {c}: {got} (want {want})"));
                }
            }
        }
        if t.driver == Driver::Systemd {
            for id in [&pod.id, &app_id] {
                let u = format!("cri-containerd-{id}.scope");
                let o = host::sh(
                    "systemctl",
                    &["show", "-p", "ActiveState", "-p", "Slice", &u],
                )?;
                let slice = format!("Slice={}", t.driver.parent(&pod.uid));
                if !o.contains("ActiveState=active") || !o.contains(&slice) {
                    bad.push(format!("{u}: {}", o.replace('\n', " ")));
                }
            }
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("pod.cgroup-parent", r);

    let r = async {
        let h = t.cri.sh(&app_id, "hostname; cat /etc/hostname").await?;
        ensure(h == "web\nweb\n", || {
            format!("hostname, /etc/hostname inside: {h:?}")
        })?;
        ensure(
            host::ns(app_pid, "uts") != host::ns(std::process::id() as i32, "uts"),
            || "container shares the host's UTS namespace".into(),
        )
    }
    .await;
    t.check("pod.hostname", r);

    let r = async {
        let rc = t.cri.sh(&app_id, "cat /etc/resolv.conf").await?;
        let ok = rc.contains("nameserver 10.96.0.10")
            && rc.contains("search berth-cri.svc.cluster.local svc.cluster.local")
            && rc.contains("options ndots:5");
        ensure(ok, || format!("/etc/resolv.conf: {rc:?}"))
    }
    .await;
    t.check("pod.dns", r);

    // pod.shared-namespaces: net, ipc, uts shared with the sandbox (seen inside through
    // ExecSync and on the host), pid and mnt not; not the host's (containerd's) network.
    let r = async {
        let a = parse_kv(&t.cri.sh(&app_id, NS_SCRIPT).await?);
        let b = parse_kv(&t.cri.sh(&side_id, NS_SCRIPT).await?);
        let mut bad = vec![];
        for n in ["net", "ipc", "uts", "pid", "mnt"] {
            let p = host::ns(pause, n);
            let (ia, ib) = (
                a.get(n).cloned().unwrap_or_default(),
                b.get(n).cloned().unwrap_or_default(),
            );
            let (ha, hb) = (host::ns(app_pid, n), host::ns(side_pid, n));
            if ia != ha || ib != hb {
                bad.push(format!("{n}: inside {ia}/{ib} vs host {ha}/{hb}"));
            }
            let shared = matches!(n, "net" | "ipc" | "uts");
            if shared && (ha != p || hb != p) {
                bad.push(format!(
                    "{n} not shared with the sandbox: app {ha}, side {hb}, pause {p}"
                ));
            }
            if !shared && (ha == p || hb == p || ha == hb) {
                bad.push(format!(
                    "{n} shared but should not be: app {ha}, side {hb}, pause {p}"
                ));
            }
        }
        let cns = host::ns_of_file("net", &t.d.netns_path());
        if host::ns(pause, "net") == cns {
            bad.push("the pod is in containerd's own network namespace".into());
        }
        // the pod's /dev/shm is one tmpfs for all its containers
        t.cri.sh(&app_id, "echo shared > /dev/shm/from-app").await?;
        let o = t.cri.sh(&side_id, "cat /dev/shm/from-app").await?;
        if o != "shared\n" {
            bad.push(format!("/dev/shm not shared: side reads {o:?}"));
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("pod.shared-namespaces", r);

    let r = async {
        let o = t
            .cri
            .sh(
                &app_id,
                "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/kernel/shm_rmid_forced",
            )
            .await?;
        let o = o.split_whitespace().collect::<Vec<_>>().join(" ");
        ensure(o == "20000 30000 1", || format!("sysctls inside: {o:?}"))?;
        let h = host::read("/proc/sys/kernel/shm_rmid_forced").unwrap_or_default();
        let hp = host::read("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        ensure(h.trim() == "0" && !hp.starts_with("20000"), || {
            format!("host changed: shm_rmid_forced {h:?}, port range {hp:?}")
        })
    }
    .await;
    t.check("pod.sysctls", r);

    let r = async {
        let s = t.wait_file(&app_log, "started zero bar", 60).await?;
        // CRI log format: <RFC3339Nano> stdout F <line>
        let s = t.wait_file(&app_log, "err-line", 60).await.unwrap_or(s);
        ensure(
            s.lines().any(|l| l.contains(" stdout F started zero bar"))
                && s.lines().any(|l| l.contains(" stderr F err-line")),
            || format!("log {}: {:?}", app_log.display(), tail(&s, 200)),
        )
    }
    .await;
    t.check("pod.log-directory", r);

    let r = async {
        let o = t
            .cri
            .sh(
                &app_id,
                "tr '\\0' ' ' </proc/1/cmdline; echo; readlink /proc/1/cwd; pwd",
            )
            .await?;
        ensure(o == "sleep 3600 \n/work/dir\n/work/dir\n", || {
            format!("cmdline, cwd, exec pwd: {o:?}")
        })?;
        let env = String::from_utf8_lossy(
            &std::fs::read(format!("/proc/{app_pid}/environ")).unwrap_or_default(),
        )
        .replace('\0', "\n");
        for want in [
            "FOO=bar",
            "KUBERNETES_SERVICE_HOST=10.96.0.1",
            "HOSTNAME=web",
            "PATH=/usr/sbin:",
        ] {
            ensure(env.lines().any(|l| l.starts_with(want)), || {
                format!("/proc/{app_pid}/environ has no {want}: {env:?}")
            })?;
        }
        Ok(())
    }
    .await;
    t.check("container.args-env-workdir", r);

    let r = async {
        let o = t
            .cri
            .sh(
                &app_id,
                "cat /data/ro/ro-file; echo from-container > /data/rw/out; cat /etc/hosts",
            )
            .await?;
        ensure(
            o.contains("read only content") && o.contains("web-host-entry"),
            || format!("inside: {o:?}"),
        )?;
        let w = host::read(hostdir.join("rw/out")).unwrap_or_default();
        ensure(w == "from-container\n", || {
            format!("host sees rw/out = {w:?}")
        })?;
        let (_, e, c) = t
            .cri
            .exec(&app_id, &["/bin/sh", "-c", "echo x > /data/ro/new"], 30)
            .await?;
        ensure(c != 0 && e.contains("Read-only file system"), || {
            format!("write to the read-only mount: exit {c}, {e:?}")
        })?;
        ensure(!hostdir.join("ro/new").exists(), || {
            "ro/new exists on the host".into()
        })?;
        let mi = t.cri.sh(&app_id, "cat /proc/self/mountinfo").await?;
        let opts = |dest: &str| {
            mi.lines()
                .rev()
                .find(|l| l.split(' ').nth(4) == Some(dest))
                .and_then(|l| l.split(' ').nth(5).map(str::to_string))
                .unwrap_or_default()
        };
        let (ro, rw) = (opts("/data/ro"), opts("/data/rw"));
        ensure(
            ro.split(',').any(|o| o == "ro") && rw.split(',').any(|o| o == "rw"),
            || format!("mount options: /data/ro {ro:?}, /data/rw {rw:?}"),
        )
    }
    .await;
    t.check("container.mounts", r);

    let r = async {
        let want = host::Res {
            memory: Some(64 << 20),
            cpu_quota: Some(50000),
            cpu_period: Some(100000),
            cpu_shares: Some(512),
            cpu_weight: Some(host::shares_to_weight(512)),
        };
        check_res(t, &app_id, app_pid, &want).await?;
        check_cpuset(t, &app_id, app_pid, "0").await
    }
    .await;
    t.check("container.resources", r);

    let r = async {
        let h = host::read(format!("/proc/{app_pid}/oom_score_adj")).unwrap_or_default();
        let i = t.cri.sh(&app_id, "cat /proc/self/oom_score_adj").await?;
        ensure(h.trim() == "700" && i.trim() == "700", || {
            format!("oom_score_adj host {h:?}, exec {i:?}")
        })
    }
    .await;
    t.check("container.oom-score-adj", r);

    let r = async {
        let o = t
            .cri
            .sh(
                &app_id,
                "stat -c '%t:%T %F' /dev/fuse-test; : < /dev/fuse-test && echo opened",
            )
            .await?;
        ensure(o == "a:e5 character special file\nopened\n", || {
            format!("/dev/fuse-test inside: {o:?}")
        })?;
        if !host::cgroup_v2() {
            let dl = host::cgroup_file(app_pid, "devices", "devices.list").unwrap_or_default();
            ensure(
                dl.lines().any(|l| l.starts_with("c 10:229 rw")) && !dl.contains("a *:*"),
                || format!("devices.list: {:?}", dl.replace('\n', ", ")),
            )?;
        }
        // mknod is allowed for any device (c *:* m), opening one outside the list is not
        let (_, e, c) = t
            .cri
            .exec(
                &app_id,
                &["/bin/sh", "-c", "mknod /tmp/kmsg c 1 11 && : < /tmp/kmsg"],
                30,
            )
            .await?;
        ensure(c != 0 && e.contains("Operation not permitted"), || {
            format!("opening /dev/kmsg (1:11), not allowed: exit {c} {e:?}")
        })
    }
    .await;
    t.check("container.devices", r);

    // CRI sends no rlimits: the container keeps what the shim (its parent) has.
    let r = {
        let parent = host::ppid(app_pid);
        let a = host::read(format!("/proc/{app_pid}/limits")).unwrap_or_default();
        let b = host::read(format!("/proc/{parent}/limits")).unwrap_or_default();
        let comm = host::read(format!("/proc/{parent}/comm")).unwrap_or_default();
        ensure(
            !a.is_empty() && a == b && comm.starts_with("containerd-shim"),
            || {
                format!(
                    "limits of the container differ from its parent {parent} ({}): {a:?} vs {b:?}",
                    comm.trim()
                )
            },
        )
    };
    t.check("container.rlimits-inherited", r);

    // tty + stdin (kubectl run -it): the shim hands the runtime a console socket.
    let r = async {
        let mut c = t.ctr("ttyc", "echo tty-out; exec sleep 3600", &pod);
        c.tty = true;
        c.stdin = true;
        c.stdin_once = true;
        let id = t.start(&pod, &c).await?;
        // its output, once it runs the program (before, it may still be the runtime's
        // non-dumpable process, whose fds cannot be read from inside)
        t.wait_file(&t.pod_cfg_log(&pod.cfg, &c), "tty-out", 60)
            .await?;
        let pid = t.pid(&id).await?;
        let fd = std::fs::read_link(format!("/proc/{pid}/fd/1"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let o = t
            .cri
            .sh(&id, "for f in 0 1 2; do readlink /proc/1/fd/$f; done")
            .await?;
        ensure(
            fd.starts_with("/dev/pts/") && o.lines().count() == 3 && o.lines().all(|l| l == fd),
            || format!("init's stdio: host {fd:?}, inside {o:?}"),
        )
    }
    .await;
    t.check("container.tty", r);

    // kubectl debug --target: a container in another container's PID namespace.
    let r = async {
        let mut c = t.ctr("debug", "exec sleep 3602", &pod);
        let ns = sc(&mut c).namespace_options.as_mut().unwrap();
        ns.pid = cri::NamespaceMode::Target as i32;
        ns.target_id = app_id.clone();
        let id = t.start(&pod, &c).await?;
        let pid = t.pid(&id).await?;
        ensure(host::ns(pid, "pid") == host::ns(app_pid, "pid"), || {
            format!(
                "debug pid ns {} vs app {}",
                host::ns(pid, "pid"),
                host::ns(app_pid, "pid")
            )
        })?;
        // StartContainer returns once the runtime let the process go, maybe before its exec
        let t0 = Instant::now();
        loop {
            let o = t.cri.sh(&id, "ps -o args").await?;
            if o.contains("sleep 3600") && o.contains("sleep 3602") {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("ps in debug: {o:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    t.check("container.target-pid-namespace", r);

    let r = async {
        let (o, e, c) = t
            .cri
            .exec(
                &app_id,
                &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                30,
            )
            .await?;
        ensure(o == "out\n" && e == "err\n" && c == 3, || {
            format!("stdout {o:?} stderr {e:?} exit {c}")
        })?;
        let (o, _, c) = t
            .cri
            .exec(
                &app_id,
                &["/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a"],
                30,
            )
            .await?;
        ensure(
            c == 0 && o.len() == 1000000 && o.bytes().all(|b| b == b'a'),
            || format!("1 MB of output: exit {c}, {} bytes", o.len()),
        )
    }
    .await;
    t.check("exec.output-exit-code", r);

    // The exec'd process is in the container's namespaces and cgroup, with its user and caps.
    let r = async {
        let script = "for n in net ipc uts pid mnt cgroup; do echo $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n); done; \
                      diff /proc/self/cgroup /proc/1/cgroup && echo same-cgroup; \
                      grep -E '^(CapEff|NoNewPrivs|Uid)' /proc/self/status; grep -E '^(CapEff|NoNewPrivs|Uid)' /proc/1/status";
        let o = t.cri.sh(&app_id, script).await?;
        let mut bad = vec![];
        for l in o.lines().take(6) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 || f[1] != f[2] {
                bad.push(l.to_string());
            }
        }
        if !o.contains("same-cgroup") {
            bad.push("cgroup differs".into());
        }
        let st: Vec<&str> = o.lines().skip(7).collect();
        if st.len() != 6 || st[..3] != st[3..] {
            bad.push(format!("status {st:?}"));
        }
        ensure(bad.is_empty(), || format!("exec vs init: {}", bad.join("; ")))
    }
    .await;
    t.check("exec.joins-container", r);

    // ExecSync with a timeout: an error after ~2 s, the process killed.
    let r = async {
        let t0 = Instant::now();
        let e = t.cri.exec(&app_id, &["sleep", "60"], 2).await;
        let el = t0.elapsed();
        ensure(
            matches!(&e, Err(m) if m.contains("timeout"))
                && el >= Duration::from_millis(1900)
                && el < Duration::from_secs(60),
            || format!("ExecSync(sleep 60, timeout 2): {e:?} after {el:?}"),
        )?;
        let procs = host::cgroup_file(
            app_pid,
            if host::cgroup_v2() { "" } else { "pids" },
            "cgroup.procs",
        )
        .unwrap_or_default();
        ensure(
            procs.split_whitespace().collect::<Vec<_>>() == vec![app_pid.to_string().as_str()],
            || format!("processes left in the container's cgroup: {procs:?} (init {app_pid})"),
        )
    }
    .await;
    t.check("exec.timeout", r);

    let r = async {
        t.cri
            .sh(&app_id, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 4000000 /dev/zero > /tmp/blob")
            .await?;
        let s = t.cri.stats(&app_id).await?.ok_or("no stats")?;
        let id = s.attributes.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let cpu = s.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds.as_ref()).map(|v| v.value).unwrap_or(0);
        let ws = s.memory.as_ref().and_then(|m| m.working_set_bytes.as_ref()).map(|v| v.value).unwrap_or(0);
        let wl = s.writable_layer.as_ref().and_then(|w| w.used_bytes.as_ref()).map(|v| v.value);
        // the host's figure, read after the stats: at least as large (it only grows)
        let host_cpu: u64 = if host::cgroup_v2() {
            host::cgroup_file(app_pid, "", "cpu.stat")
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("usage_usec ").map(|v| v.trim().parse::<u64>().unwrap_or(0) * 1000)))
                .unwrap_or(0)
        } else {
            host::cgroup_file(app_pid, "cpuacct", "cpuacct.usage").and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        ensure(id == app_id && cpu > 0 && ws > 0 && wl.is_some() && host_cpu >= cpu, || {
            format!("stats: id {id}, cpu {cpu} ns (host {host_cpu}), working set {ws}, writable layer {wl:?}")
        })
    }
    .await;
    t.check("stats.container", r);

    let r = async {
        let l = t.cri.list_stats(&pod.id).await?;
        let ids: Vec<String> = l
            .iter()
            .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
            .collect();
        ensure(ids.contains(&app_id) && ids.contains(&side_id), || {
            format!("ListContainerStats ids {ids:?}")
        })?;
        ensure(
            l.iter().all(|s| {
                s.memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes.as_ref())
                    .is_some()
            }),
            || "a container without memory stats".into(),
        )
    }
    .await;
    t.check("stats.list", r);

    // UpdateContainerResources: raise (memory above the old swap limit) then lower.
    let r = async {
        for (mem, quota, shares, cpus) in [
            (128i64 << 20, 30000, 256, "0-1"),
            (48 << 20, 20000, 1024, "1"),
        ] {
            let new = LinuxContainerResources {
                cpu_period: 100000,
                cpu_quota: quota,
                cpu_shares: shares,
                memory_limit_in_bytes: mem,
                oom_score_adj: 700,
                cpuset_cpus: cpus.into(),
                cpuset_mems: "0".into(),
                ..Default::default()
            };
            t.cri.update(&app_id, new).await?;
            let want = host::Res {
                memory: Some(mem),
                cpu_quota: Some(quota),
                cpu_period: Some(100000),
                cpu_shares: Some(shares),
                cpu_weight: Some(host::shares_to_weight(shares)),
            };
            check_res(t, &app_id, app_pid, &want)
                .await
                .map_err(|e| format!("after update to {mem}/{quota}/{shares}: {e}"))?;
            check_cpuset(t, &app_id, app_pid, cpus)
                .await
                .map_err(|e| format!("after update to cpus {cpus}: {e}"))?;
        }
        Ok(())
    }
    .await;
    t.check("update.resources", r);

    // ReopenContainerLog: the log is rotated (renamed) and reopened; new lines go to the new file.
    let logger = t.ctr(
        "logger",
        "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done",
        &pod,
    );
    let logger_id = t.start(&pod, &logger).await?;
    let r = async {
        let lp = t.pod_cfg_log(&pod.cfg, &logger);
        t.wait_file(&lp, "tick 2\n", 60).await?;
        let rot = lp.with_extension("log.1");
        std::fs::rename(&lp, &rot).map_err(|e| e.to_string())?;
        t.cri.reopen_log(&logger_id).await?;
        let s = t.wait_file(&lp, "tick", 60).await?;
        let last_old = ticks(&host::read(&rot).unwrap_or_default())
            .into_iter()
            .max()
            .unwrap_or(0);
        let first_new = ticks(&s).into_iter().min().unwrap_or(0);
        ensure(first_new > last_old, || {
            format!("new log starts at tick {first_new}, old one ended at {last_old}")
        })
    }
    .await;
    t.check("log.reopen", r);

    let r = async {
        let mut bad = vec![];
        for (name, script, code, reason) in [
            ("exit7", "exit 7", 7, "Error"),
            ("exit0", "true", 0, "Completed"),
        ] {
            let c = t.ctr(name, script, &pod);
            let id = t.start(&pod, &c).await?;
            let s = t
                .wait_state(&id, ContainerState::ContainerExited, 60)
                .await?;
            // (containerd records started_at after StartContainer returned: a fast exit can
            // finish "before" it started)
            if s.exit_code != code || s.reason != reason || s.finished_at == 0 || s.started_at == 0
            {
                bad.push(format!(
                    "{name}: exit {} reason {:?} started {} finished {}",
                    s.exit_code, s.reason, s.started_at, s.finished_at
                ));
            }
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("container.exit-status", r);

    // StopContainer with a grace period, on a process that ignores SIGTERM: killed at the
    // deadline (137); and on one that exits on SIGTERM: stops at once with its own status.
    let r = async {
        let c = t.ctr(
            "stubborn",
            "trap '' TERM; echo ready; while :; do sleep 1; done",
            &pod,
        );
        let id = t.start(&pod, &c).await?;
        t.wait_file(&t.pod_cfg_log(&pod.cfg, &c), "ready", 60)
            .await?;
        let pid = t.pid(&id).await?;
        let t0 = Instant::now();
        t.cri.stop(&id, 2).await?;
        let el = t0.elapsed();
        let s = t
            .cri
            .container_status(&id)
            .await?
            .status
            .ok_or("no status")?;
        ensure(
            s.state == ContainerState::ContainerExited as i32
                && s.exit_code == 137
                && el >= Duration::from_millis(1900)
                && el < Duration::from_secs(60)
                && !host::alive(pid),
            || {
                format!(
                    "StopContainer(timeout 2) took {el:?}: state {} exit {} reason {:?}",
                    state_name(s.state),
                    s.exit_code,
                    s.reason
                )
            },
        )
    }
    .await;
    t.check("stop.grace-period-kill", r);

    let r = async {
        let c = t.ctr(
            "graceful",
            "trap 'exit 0' TERM; echo ready; while :; do sleep 0.2; done",
            &pod,
        );
        let id = t.start(&pod, &c).await?;
        t.wait_file(&t.pod_cfg_log(&pod.cfg, &c), "ready", 60)
            .await?;
        let t0 = Instant::now();
        t.cri.stop(&id, 30).await?;
        let el = t0.elapsed();
        let s = t
            .cri
            .container_status(&id)
            .await?
            .status
            .ok_or("no status")?;
        ensure(
            s.state == ContainerState::ContainerExited as i32
                && s.exit_code == 0
                && s.reason == "Completed"
                // well under the 30 s grace period: it did not wait for the deadline
                && el < Duration::from_secs(25),
            || {
                format!(
                    "StopContainer(timeout 30) took {el:?}: state {} exit {} reason {:?}",
                    state_name(s.state),
                    s.exit_code,
                    s.reason
                )
            },
        )
    }
    .await;
    t.check("stop.graceful", r);

    let r = async {
        let list = t.cri.list_containers(&pod.id).await?;
        let exited: Vec<String> = list
            .iter()
            .filter(|c| c.state == ContainerState::ContainerExited as i32)
            .map(|c| c.id.clone())
            .collect();
        ensure(exited.len() == 4, || {
            format!("expected 4 exited containers, found {}", exited.len())
        })?;
        for id in &exited {
            t.cri.remove(id).await?;
        }
        let after: Vec<String> = t
            .cri
            .list_containers(&pod.id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        ensure(exited.iter().all(|i| !after.contains(i)), || {
            format!("still listed: {after:?}")
        })?;
        let st = t.cri.container_status(&exited[0]).await;
        ensure(matches!(&st, Err(e) if e.contains("NotFound")), || {
            format!("status of a removed container: {st:?}")
        })?;
        let left = t.leftovers_of(&pod.uid, &exited, false);
        ensure(left.is_empty(), || left.join("; "))
    }
    .await;
    t.check("container.remove", r);

    // StopPodSandbox: every container stopped, the sandbox too, its network namespace gone.
    let spec = cri::info_spec(&st.info);
    let netns = spec["linux"]["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["type"] == "network"))
        .and_then(|n| n["path"].as_str())
        .unwrap_or("")
        .to_string();
    let live = [app_pid, side_pid, pause];
    let r = async {
        t.cri.stop_pod(&pod.id).await?;
        let s = t.cri.pod_status(&pod.id).await?.status.ok_or("no status")?;
        ensure(s.state == PodSandboxState::SandboxNotready as i32, || {
            format!("pod state {:?}", s.state)
        })?;
        for c in t.cri.list_containers(&pod.id).await? {
            ensure(c.state == ContainerState::ContainerExited as i32, || {
                format!(
                    "container {} is {} after StopPodSandbox",
                    c.id,
                    state_name(c.state)
                )
            })?;
        }
        let alive: Vec<i32> = live.iter().copied().filter(|p| host::alive(*p)).collect();
        ensure(alive.is_empty(), || format!("still running: {alive:?}"))?;
        ensure(
            !netns.is_empty() && !std::path::Path::new(&netns).exists(),
            || format!("pod netns {netns:?} still there"),
        )
    }
    .await;
    t.check("pod.stop", r);

    let r = async {
        t.cri.remove_pod(&pod.id).await?;
        t.forget_pod(&pod.id);
        let pods = t.cri.list_pods().await?;
        ensure(!pods.iter().any(|p| p.id == pod.id), || {
            "pod still listed".into()
        })?;
        // every id of the run so far: those of earlier pods must be gone too
        let ids = t.ids.clone();
        let mut left = t.leftovers_of(&pod.uid, &ids, true);
        if let Err(e) = t.remove_pod_cgroup(&pod.uid) {
            left.push(e);
        }
        ensure(left.is_empty(), || left.join("; "))
    }
    .await;
    t.check("pod.remove-nothing-left", r);
    Ok(())
}

fn ticks(s: &str) -> Vec<u64> {
    s.lines()
        .filter_map(|l| {
            l.rsplit_once("tick ")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .collect()
}

/// Resources read back on the host (cgroup files of the container's init) and inside.
async fn check_res(t: &T, id: &str, pid: i32, want: &host::Res) -> cri::R<()> {
    let h = host::res_of(pid);
    let i = host::parse_res(&t.cri.sh(id, host::RESOURCES_SCRIPT).await?);
    // cpu.weight: runc's old linear conversion of the shares (Debian's 1.1.5) or its curve
    // since 1.3.2 (berth's); any other value is wrong
    let shares = want.cpu_shares.unwrap_or(0);
    let pick = |r: &host::Res| {
        if host::cgroup_v2() {
            host::Res {
                cpu_shares: None,
                cpu_weight: match r.cpu_weight {
                    Some(w) if want.cpu_shares.is_some() && host::weight_of_shares(shares, w) => {
                        want.cpu_weight
                    }
                    w => w,
                },
                ..r.clone()
            }
        } else {
            host::Res {
                cpu_weight: None,
                ..r.clone()
            }
        }
    };
    let w = pick(want);
    ensure(pick(&h) == w && pick(&i) == w, || {
        format!("want {w:?}, host {h:?}, inside {i:?}")
    })
}

/// cpuset.cpus on the host and the CPUs the container's processes may run on.
async fn check_cpuset(t: &T, id: &str, pid: i32, want: &str) -> cri::R<()> {
    let h = host::cgroup_file(pid, "cpuset", "cpuset.cpus").unwrap_or_default();
    let st = host::status(pid);
    let i = t
        .cri
        .sh(id, "grep Cpus_allowed_list /proc/self/status")
        .await?;
    let init = st.get("Cpus_allowed_list").cloned().unwrap_or_default();
    ensure(
        h == want && init == want && i.trim().ends_with(want),
        || {
            format!(
                "cpuset.cpus {h:?}, init Cpus_allowed_list {init:?}, exec {:?} (want {want})",
                i.trim()
            )
        },
    )
}

async fn g_pid_share(t: &mut T) -> cri::R<()> {
    let pod = t
        .pod(
            "shared-pid",
            PodOpts {
                share_pid: true,
                ..Default::default()
            },
        )
        .await?;
    let pause = t.pod_pid(&pod.id).await?;
    let a = t.start(&pod, &t.ctr("a", "exec sleep 3600", &pod)).await?;
    let b = t.start(&pod, &t.ctr("b", "exec sleep 3601", &pod)).await?;
    let (pa, pb) = (t.pid(&a).await?, t.pid(&b).await?);
    let r = async {
        let p = host::ns(pause, "pid");
        ensure(host::ns(pa, "pid") == p && host::ns(pb, "pid") == p, || {
            format!(
                "pid ns: pause {p}, a {}, b {}",
                host::ns(pa, "pid"),
                host::ns(pb, "pid")
            )
        })?;
        let o = t
            .cri
            .sh(&a, "tr '\\0' ' ' </proc/1/cmdline; echo; ps -o args")
            .await?;
        ensure(o.starts_with("/pause") && o.contains("sleep 3601"), || {
            format!("inside a: {o:?}")
        })
    }
    .await;
    t.check("pod.share-process-namespace", r);

    // In a shared PID namespace the init's exit does not end its children: the shim kills
    // them all (`kill --all`) when the init exits.
    let r = async {
        let c = t.ctr(
            "forker",
            "sleep 1001 & sleep 1002 & echo ready; sleep 2",
            &pod,
        );
        let id = t.start(&pod, &c).await?;
        t.wait_file(&t.pod_cfg_log(&pod.cfg, &c), "ready", 60)
            .await?;
        let pid = t.pid(&id).await?;
        let procs: Vec<i32> = host::cgroup_file(
            pid,
            if host::cgroup_v2() { "" } else { "pids" },
            "cgroup.procs",
        )
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
        ensure(procs.len() >= 3, || {
            format!("expected the init and 2 children in the cgroup: {procs:?}")
        })?;
        let s = t
            .wait_state(&id, ContainerState::ContainerExited, 60)
            .await?;
        let t0 = Instant::now();
        let mut alive: Vec<i32> = procs.clone();
        while !alive.is_empty() && t0.elapsed() < Duration::from_secs(30) {
            alive.retain(|p| host::alive(*p));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(alive.is_empty() && s.exit_code == 0, || {
            format!(
                "exit {}; still alive 30 s after the init exited: {alive:?}",
                s.exit_code
            )
        })
    }
    .await;
    t.check("pod.kill-all-on-exit", r);
    Ok(())
}

async fn g_security(t: &mut T) -> cri::R<()> {
    let pod = t.pod("secure", PodOpts::default()).await?;
    let sleep = "exec sleep 3600";

    let mut c = t.ctr("user", sleep, &pod);
    sc(&mut c).run_as_user = Some(cri::Int64Value { value: 1000 });
    sc(&mut c).run_as_group = Some(cri::Int64Value { value: 3000 });
    sc(&mut c).supplemental_groups = vec![4000, 5000];
    let user = t.start(&pod, &c).await?;

    let mut c = t.ctr("rofs", sleep, &pod);
    sc(&mut c).readonly_rootfs = true;
    let rofs = t.start(&pod, &c).await?;

    let mut c = t.ctr("caps", sleep, &pod);
    sc(&mut c).capabilities = Some(cri::Capability {
        add_capabilities: vec!["NET_ADMIN".into(), "SYS_TIME".into()],
        drop_capabilities: vec!["CHOWN".into(), "NET_RAW".into()],
        ..Default::default()
    });
    let caps = t.start(&pod, &c).await?;

    let mut c = t.ctr("dropall", sleep, &pod);
    sc(&mut c).capabilities = Some(cri::Capability {
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    });
    let dropall = t.start(&pod, &c).await?;

    let mut c = t.ctr("nnp", sleep, &pod);
    sc(&mut c).no_new_privs = true;
    let nnp = t.start(&pod, &c).await?;

    let mut c = t.ctr("seccomp", sleep, &pod);
    sc(&mut c).seccomp = Some(cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    });
    let seccomp = t.start(&pod, &c).await?;

    let prof = t.d.work.join("host/seccomp-no-mkdir.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .map_err(|e| e.to_string())?;
    let mut c = t.ctr("seccomplocal", sleep, &pod);
    sc(&mut c).seccomp = Some(cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::Localhost as i32,
        localhost_ref: prof.to_string_lossy().into_owned(),
    });
    let seccomp_local = t.start(&pod, &c).await?;

    let r = async {
        let o = t.cri.sh(&user, "id -u; id -g; id -G").await?;
        let l: Vec<&str> = o.lines().collect();
        let groups: Vec<&str> = l
            .get(2)
            .map(|g| g.split_whitespace().collect())
            .unwrap_or_default();
        ensure(
            l.first() == Some(&"1000")
                && l.get(1) == Some(&"3000")
                && groups.contains(&"4000")
                && groups.contains(&"5000"),
            || format!("inside: {o:?}"),
        )?;
        let st = host::status(t.pid(&user).await?);
        let g = st.get("Groups").cloned().unwrap_or_default();
        ensure(
            st.get("Uid")
                .map(|s| s.split_whitespace().all(|u| u == "1000"))
                == Some(true)
                && st
                    .get("Gid")
                    .map(|s| s.split_whitespace().all(|u| u == "3000"))
                    == Some(true)
                && g.split_whitespace().any(|x| x == "4000")
                && g.split_whitespace().any(|x| x == "5000"),
            || {
                format!(
                    "host status: Uid {:?} Gid {:?} Groups {g:?}",
                    st.get("Uid"),
                    st.get("Gid")
                )
            },
        )
    }
    .await;
    t.check("security.run-as-user-group", r);

    let r = async {
        let (_, e, c) = t
            .cri
            .exec(&rofs, &["/bin/sh", "-c", "touch /newfile"], 30)
            .await?;
        ensure(c != 0 && e.contains("Read-only file system"), || {
            format!("touch /newfile: exit {c} {e:?}")
        })?;
        let mi = t.cri.sh(&rofs, "grep ' / / ' /proc/self/mountinfo").await?;
        ensure(
            mi.split(' ')
                .nth(5)
                .map(|o| o.split(',').any(|x| x == "ro"))
                == Some(true),
            || format!("root mount: {mi:?}"),
        )?;
        // the mounts CRI adds stay writable
        t.cri
            .sh(
                &rofs,
                "echo x > /dev/shm/x && echo x > /etc/hostname.probe 2>/dev/null; true",
            )
            .await?;
        t.cri.sh(&rofs, "echo x > /dev/shm/x").await.map(|_| ())
    }
    .await;
    t.check("security.readonly-rootfs", r);

    let r = async {
        let pid = t.pid(&caps).await?;
        let (eff, prm, bnd) = host::caps(&host::status(pid));
        let i = host::parse_status(&t.cri.sh(&caps, "cat /proc/self/status").await?);
        let (ieff, _, ibnd) = host::caps(&i);
        let has = |set: u64, c: &str| set & host::cap_bit(c) != 0;
        let mut bad = vec![];
        for (what, set) in [
            ("host CapEff", eff),
            ("host CapPrm", prm),
            ("host CapBnd", bnd),
            ("exec CapEff", ieff),
            ("exec CapBnd", ibnd),
        ] {
            for c in ["NET_ADMIN", "SYS_TIME", "KILL", "SETUID"] {
                if !has(set, c) {
                    bad.push(format!("{what} {set:x} lacks {c}"));
                }
            }
            for c in ["CHOWN", "NET_RAW", "SYS_ADMIN"] {
                if has(set, c) {
                    bad.push(format!("{what} {set:x} has {c}"));
                }
            }
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("security.capabilities-add-drop", r);

    let r = async {
        let pid = t.pid(&dropall).await?;
        let st = host::status(pid);
        let (eff, prm, bnd) = host::caps(&st);
        let i = host::parse_status(&t.cri.sh(&dropall, "cat /proc/self/status").await?);
        let (ieff, _, ibnd) = host::caps(&i);
        ensure(
            eff == 0 && prm == 0 && bnd == 0 && ieff == 0 && ibnd == 0,
            || format!("host eff {eff:x} prm {prm:x} bnd {bnd:x}; exec eff {ieff:x} bnd {ibnd:x}"),
        )?;
        let (_, e, c) = t
            .cri
            .exec(&dropall, &["/bin/sh", "-c", "chown 1 /tmp"], 30)
            .await?;
        ensure(c != 0, || {
            format!("chown without CAP_CHOWN succeeded: {e:?}")
        })
    }
    .await;
    t.check("security.capabilities-drop-all", r);

    let r = async {
        let on = host::status(t.pid(&nnp).await?);
        let off = host::status(t.pid(&caps).await?);
        let inside = t.cri.sh(&nnp, "grep NoNewPrivs /proc/self/status").await?;
        ensure(
            on.get("NoNewPrivs").map(String::as_str) == Some("1")
                && off.get("NoNewPrivs").map(String::as_str) == Some("0")
                && inside.contains('1'),
            || {
                format!(
                    "NoNewPrivs: nnp {:?} (exec {inside:?}), default {:?}",
                    on.get("NoNewPrivs"),
                    off.get("NoNewPrivs")
                )
            },
        )
    }
    .await;
    t.check("security.no-new-privs", r);

    let r = async {
        let st = host::status(t.pid(&seccomp).await?);
        let i = t
            .cri
            .sh(&seccomp, "grep -E '^Seccomp' /proc/self/status")
            .await?;
        let filters: u32 = st
            .get("Seccomp_filters")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        ensure(
            st.get("Seccomp").map(String::as_str) == Some("2")
                && filters >= 1
                && i.contains("Seccomp:\t2"),
            || {
                format!(
                    "RuntimeDefault: host Seccomp {:?} filters {filters}, exec {i:?}",
                    st.get("Seccomp")
                )
            },
        )?;
        // the default profile refuses what it does not list, e.g. add_key (busybox has no
        // keyctl; unshare of a user namespace is refused without CAP_SYS_ADMIN by the profile)
        let (_, e, c) = t.cri.exec(&seccomp, &["unshare", "-U", "true"], 30).await?;
        ensure(c != 0, || {
            format!("unshare -U under RuntimeDefault succeeded {e:?}")
        })
    }
    .await;
    t.check("security.seccomp-runtime-default", r);

    let r = async {
        let st = host::status(t.pid(&caps).await?);
        let i = t
            .cri
            .sh(&caps, "grep -E '^Seccomp:' /proc/self/status")
            .await?;
        ensure(
            st.get("Seccomp").map(String::as_str) == Some("0") && i.contains("Seccomp:\t0"),
            || {
                format!(
                    "Unconfined: host Seccomp {:?}, exec {i:?}",
                    st.get("Seccomp")
                )
            },
        )
    }
    .await;
    t.check("security.seccomp-unconfined", r);

    let r = async {
        let st = host::status(t.pid(&seccomp_local).await?);
        let (_, e, c) = t
            .cri
            .exec(&seccomp_local, &["mkdir", "/tmp/newdir"], 30)
            .await?;
        ensure(
            c != 0
                && e.contains("Operation not permitted")
                && st.get("Seccomp").map(String::as_str) == Some("2"),
            || {
                format!(
                    "mkdir under a Localhost profile: exit {c} {e:?}, Seccomp {:?}",
                    st.get("Seccomp")
                )
            },
        )?;
        t.cri
            .sh(&seccomp_local, "touch /tmp/file-ok")
            .await
            .map(|_| ())
    }
    .await;
    t.check("security.seccomp-localhost", r);

    // Masked paths: empty (a /dev/null bind or an empty read-only tmpfs); read-only paths: ro.
    let r = async {
        let mi = t.cri.sh(&caps, "cat /proc/self/mountinfo").await?;
        let mut bad = vec![];
        let mount = |dest: &str| mi.lines().rev().find(|l| l.split(' ').nth(4) == Some(dest)).map(str::to_string);
        for p in kube::MASKED {
            let exists = t.cri.exec(&caps, &["test", "-e", p], 30).await?.2 == 0;
            if !exists {
                continue;
            }
            match mount(p) {
                None => bad.push(format!("{p} not masked")),
                Some(l) => {
                    let content = t
                        .cri
                        .sh(&caps, &format!("if [ -d {p} ]; then ls -A {p}; else head -c 100 {p}; fi 2>&1 | head -3"))
                        .await?;
                    if !content.trim().is_empty() {
                        bad.push(format!("{p} masked ({l}) but shows {content:?}"));
                    }
                }
            }
        }
        for p in kube::READONLY {
            if t.cri.exec(&caps, &["test", "-e", p], 30).await?.2 != 0 {
                continue;
            }
            match mount(p) {
                Some(l) if l.split(' ').nth(5).map(|o| o.split(',').any(|x| x == "ro")) == Some(true) => {}
                other => bad.push(format!("{p} not read-only: {other:?}")),
            }
        }
        let (_, e, c) = t.cri.exec(&caps, &["/bin/sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"], 30).await?;
        if c == 0 {
            bad.push(format!("write to /proc/sys succeeded {e:?}"));
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("security.masked-readonly-paths", r);
    Ok(())
}

async fn g_privileged(t: &mut T) -> cri::R<()> {
    let pod = t
        .pod(
            "priv",
            PodOpts {
                privileged: true,
                ..Default::default()
            },
        )
        .await?;
    let mut c = t.ctr("priv", "exec sleep 3600", &pod);
    sc(&mut c).privileged = true;
    sc(&mut c).masked_paths = vec![];
    sc(&mut c).readonly_paths = vec![];
    let id = t.start(&pod, &c).await?;
    let r = async {
        let pid = t.pid(&id).await?;
        let st = host::status(pid);
        let (eff, prm, bnd) = host::caps(&st);
        let (_, _, my_bnd) = host::caps(&host::status(std::process::id() as i32));
        let mut bad = vec![];
        if eff != my_bnd || prm != my_bnd || bnd != my_bnd {
            bad.push(format!(
                "caps eff {eff:x} prm {prm:x} bnd {bnd:x}, host bounding {my_bnd:x}"
            ));
        }
        if st.get("Seccomp").map(String::as_str) != Some("0") {
            bad.push(format!("Seccomp {:?}", st.get("Seccomp")));
        }
        if !host::cgroup_v2() {
            let dl = host::cgroup_file(pid, "devices", "devices.list").unwrap_or_default();
            if dl.trim() != "a *:* rwm" {
                bad.push(format!("devices.list {dl:?}"));
            }
        }
        // the host's block devices are there inside
        let devs: Vec<String> = std::fs::read_dir("/dev")
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        use std::os::unix::fs::FileTypeExt;
                        e.file_type().map(|t| t.is_block_device()).unwrap_or(false)
                    })
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let inside = t.cri.sh(&id, "ls /dev").await?;
        for d in devs.iter().take(5) {
            if !inside.split_whitespace().any(|x| x == d) {
                bad.push(format!("/dev/{d} missing inside"));
            }
        }
        let mi = t.cri.sh(&id, "cat /proc/self/mountinfo").await?;
        let mount = |dest: &str| {
            mi.lines()
                .rev()
                .find(|l| l.split(' ').nth(4) == Some(dest))
                .map(str::to_string)
        };
        if let Some(l) = mount("/proc/keys") {
            bad.push(format!("/proc/keys masked: {l}"));
        }
        match mount("/sys") {
            Some(l)
                if l.split(' ').nth(5).map(|o| o.split(',').any(|x| x == "rw")) == Some(true) => {}
            other => bad.push(format!("/sys not rw: {other:?}")),
        }
        if let Some(l) = mount("/proc/sys") {
            bad.push(format!("/proc/sys read-only: {l}"));
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("security.privileged", r);
    Ok(())
}

async fn g_host_ns(t: &mut T) -> cri::R<()> {
    let pod = t
        .pod(
            "hostns",
            PodOpts {
                host_net: true,
                host_pid: true,
                host_ipc: true,
                ..Default::default()
            },
        )
        .await?;
    let id = t.start(&pod, &t.ctr("c", "exec sleep 3600", &pod)).await?;
    let r = async {
        let pid = t.pid(&id).await?;
        let me = std::process::id() as i32;
        let cnet = host::ns_of_file("net", &t.d.netns_path());
        let mut bad = vec![];
        if host::ns(pid, "net") != cnet {
            bad.push(format!(
                "net {} (containerd's: {cnet})",
                host::ns(pid, "net")
            ));
        }
        for n in ["pid", "ipc", "uts"] {
            if host::ns(pid, n) != host::ns(me, n) {
                bad.push(format!(
                    "{n} {} (host's: {})",
                    host::ns(pid, n),
                    host::ns(me, n)
                ));
            }
        }
        let hn = t.cri.sh(&id, "hostname").await?;
        let want = host::read("/proc/sys/kernel/hostname").unwrap_or_default();
        if hn.trim() != want.trim() {
            bad.push(format!("hostname {hn:?} (host's {want:?})"));
        }
        // host PID namespace: the container sees the host's PID 1 and our own process
        let o = t
            .cri
            .sh(&id, &format!("test -d /proc/{me} && echo sees-host"))
            .await?;
        if !o.contains("sees-host") {
            bad.push("host processes not visible".into());
        }
        ensure(bad.is_empty(), || bad.join("; "))
    }
    .await;
    t.check("pod.host-network-pid-ipc", r);
    Ok(())
}

async fn g_oom(t: &mut T) -> cri::R<()> {
    let pod = t.pod("oom", PodOpts::default()).await?;
    // the shim watches for OOM from StartContainer on; the allocation starts a second later
    let mut c = t.ctr("hog", "sleep 1; tail /dev/zero", &pod);
    res(&mut c).memory_limit_in_bytes = 16 << 20;
    let id = t.start(&pod, &c).await?;
    let r = async {
        let s = t
            .wait_state(&id, ContainerState::ContainerExited, 60)
            .await?;
        ensure(s.reason == "OOMKilled" && s.exit_code == 137, || {
            format!(
                "exit {} reason {:?} message {:?}",
                s.exit_code, s.reason, s.message
            )
        })
    }
    .await;
    t.check("container.oom-killed", r);
    Ok(())
}

async fn g_restart(t: &mut T) -> cri::R<()> {
    let p1 = t.pod("restart-a", PodOpts::default()).await?;
    let p2 = t
        .pod(
            "restart-b",
            PodOpts {
                share_pid: true,
                ..Default::default()
            },
        )
        .await?;
    let mut cs = vec![];
    for p in [&p1, &p2] {
        for n in ["one", "two"] {
            let id = t.start(p, &t.ctr(n, "exec sleep 3600", p)).await?;
            cs.push((id.clone(), t.pid(&id).await?));
        }
    }
    let pids: Vec<i32> = cs.iter().map(|c| c.1).collect();
    let old = t.d.pid().ok_or("containerd not running")?;
    t.d.stop()?;
    let alive_while_down = pids.iter().all(|p| host::alive(*p));
    t.d.start()?;
    t.wait_ready(60).await?;
    let r = async {
        ensure(alive_while_down, || {
            "containers died with containerd".into()
        })?;
        let pods = t.cri.list_pods().await?;
        for p in [&p1, &p2] {
            let found = pods.iter().find(|x| x.id == p.id);
            ensure(
                found.map(|x| x.state) == Some(PodSandboxState::SandboxReady as i32),
                || format!("pod {} after restart: {found:?}", p.id),
            )?;
        }
        for (id, pid) in &cs {
            let st = t.cri.container_status(id).await?;
            let s = st.status.ok_or("no status")?;
            ensure(
                s.state == ContainerState::ContainerRunning as i32
                    && cri::info_pid(&st.info) == Some(*pid),
                || {
                    format!(
                        "container {id}: {} pid {:?} (was {pid})",
                        state_name(s.state),
                        cri::info_pid(&st.info)
                    )
                },
            )?;
        }
        ensure(t.d.pid() != Some(old), || {
            "containerd did not restart".into()
        })
    }
    .await;
    t.check("restart.pods-listed", r);
    let r = async {
        for (id, _) in &cs {
            let o = t.cri.sh(id, "echo alive").await?;
            ensure(o == "alive\n", || format!("exec in {id}: {o:?}"))?;
        }
        Ok(())
    }
    .await;
    t.check("restart.exec", r);
    let r = async {
        let id = t
            .start(&p1, &t.ctr("three", "exec sleep 3600", &p1))
            .await?;
        let pid = t.pid(&id).await?;
        let pause = t.pod_pid(&p1.id).await?;
        ensure(host::ns(pid, "net") == host::ns(pause, "net"), || {
            "new container not in the pod's network".into()
        })?;
        cs.push((id, pid));
        Ok(())
    }
    .await;
    t.check("restart.new-container", r);
    let r = async {
        let mut left = vec![];
        for p in [&p1, &p2] {
            t.cri.stop_pod(&p.id).await?;
            t.cri.remove_pod(&p.id).await?;
            t.forget_pod(&p.id);
        }
        for p in [&p1, &p2] {
            let mut ids = vec![p.id.clone()];
            ids.extend(cs.iter().map(|c| c.0.clone()));
            left.extend(t.leftovers_of(&p.uid, &ids, true));
            if let Err(e) = t.remove_pod_cgroup(&p.uid) {
                left.push(e);
            }
        }
        let alive: Vec<i32> = cs.iter().map(|c| c.1).filter(|p| host::alive(*p)).collect();
        if !alive.is_empty() {
            left.push(format!("processes alive: {alive:?}"));
        }
        ensure(left.is_empty(), || left.join("; "))
    }
    .await;
    t.check("restart.stop-remove", r);
    Ok(())
}

async fn g_nothing_left(t: &mut T) -> cri::R<()> {
    let r = async {
        let pods = t.cri.list_pods().await?;
        let cs = t.cri.list_containers("").await?;
        ensure(pods.is_empty() && cs.is_empty(), || {
            format!("{} pods, {} containers listed", pods.len(), cs.len())
        })
    }
    .await;
    t.check("nothing-left.cri", r);
    let mut left = vec![];
    let uids = t.uids.clone();
    // the per-id leftovers (processes, mounts, state, sockets, units) once; per pod its cgroup
    let ids = t.ids.clone();
    for (n, u) in uids.iter().enumerate() {
        left.extend(t.leftovers_of(u, if n == 0 { &ids } else { &[] }, true));
        if let Err(e) = t.remove_pod_cgroup(u) {
            left.push(e);
        }
    }
    for (p, c) in t.d.own_processes() {
        left.push(format!("process {p}: {}", tail(&c, 100)));
    }
    let nsdir = t.d.work.join("state/io.containerd.grpc.v1.cri/netns");
    for m in host::mounts_under(&t.d.work) {
        left.push(format!("mount {m}"));
    }
    if let Ok(rd) = std::fs::read_dir(&nsdir) {
        for e in rd.flatten() {
            left.push(format!("pod netns {}", e.path().display()));
        }
    }
    if let Ok(rd) = std::fs::read_dir(t.d.rt_root().join("k8s.io")) {
        for e in rd.flatten() {
            left.push(format!("runtime state {}", e.path().display()));
        }
    }
    t.check(
        "nothing-left.host",
        ensure(left.is_empty(), || left.join("; ")),
    );
    Ok(())
}
