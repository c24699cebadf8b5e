//! The suite's harness: named checks (PASS/FAIL lines), groups of checks that share pods,
//! pods registered for cleanup whatever a group did, helpers that wait on CRI states.

use crate::cri::{self, ContainerState, Cri, PodSandboxConfig, R};
use crate::daemon::Daemon;
use crate::host;
use crate::kube::{self, Driver, Pod, PodOpts};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub type GroupFn = for<'a> fn(&'a mut T) -> Pin<Box<dyn Future<Output = R<()>> + 'a>>;

pub struct Group {
    pub name: &'static str,
    /// Every check the group records; those not reached are reported as failed.
    pub checks: &'static [&'static str],
    pub run: GroupFn,
}

pub struct T {
    pub cri: Cri,
    pub d: Daemon,
    pub run: String,
    pub busybox: String,
    pub driver: Driver,
    pub verbose: bool,
    pub results: Vec<(String, bool, String)>,
    pub passed: usize,
    pub failed: usize,
    /// Pods still alive (removed by the harness after each group).
    pub pods: Vec<(String, String)>,
    /// Every pod uid this run used (their cgroups are removed at the end).
    pub uids: Vec<String>,
    /// Every container and sandbox id this run made.
    pub ids: Vec<String>,
    current: Vec<&'static str>,
    /// When the suite started (verbose lines carry the time since).
    start: Instant,
}

impl T {
    pub fn new(
        cri: Cri,
        d: Daemon,
        run: String,
        busybox: String,
        driver: Driver,
        verbose: bool,
    ) -> T {
        T {
            cri,
            d,
            run,
            busybox,
            driver,
            verbose,
            results: vec![],
            passed: 0,
            failed: 0,
            pods: vec![],
            uids: vec![],
            ids: vec![],
            current: vec![],
            start: Instant::now(),
        }
    }

    pub fn log(&self, m: &str) {
        if self.verbose {
            eprintln!("  .. {:6.1}s {m}", self.start.elapsed().as_secs_f64());
        }
    }

    /// Record a check's result (one line on stdout).
    pub fn check(&mut self, name: &str, r: R<()>) {
        let (ok, why) = match r {
            Ok(()) => (true, String::new()),
            Err(e) => (false, e.replace(['\n', '\t'], " ")),
        };
        if ok {
            self.passed += 1;
            println!("PASS {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {why}");
        }
        let _ = std::io::stdout().flush();
        self.log(&format!("{name} done"));
        self.current.retain(|c| *c != name);
        self.results.push((name.to_string(), ok, why));
    }

    pub async fn run_group(&mut self, g: &Group) {
        self.current = g.checks.to_vec();
        let t0 = Instant::now();
        let r = (g.run)(self).await;
        let missing = std::mem::take(&mut self.current);
        let cause = match &r {
            Err(e) => format!("not reached: {e}"),
            Ok(()) => "not reached (the group did not record it)".into(),
        };
        for c in missing {
            self.check(c, Err(cause.clone()));
        }
        if let Err(e) = &r
            && g.checks.is_empty()
        {
            self.check(g.name, Err(e.clone()));
        }
        self.cleanup_pods().await;
        self.log(&format!(
            "group {} took {:.1}s",
            g.name,
            t0.elapsed().as_secs_f64()
        ));
    }

    /// Stop and remove every pod a group left.
    pub async fn cleanup_pods(&mut self) {
        for (id, _) in std::mem::take(&mut self.pods) {
            if let Err(e) = self.cri.stop_pod(&id).await {
                eprintln!("warning: cleanup: {e}");
            }
            if let Err(e) = self.cri.remove_pod(&id).await {
                eprintln!("warning: cleanup: {e}");
            }
        }
    }

    pub fn log_dir(&self, name: &str, uid: &str) -> PathBuf {
        self.d
            .work
            .join("logs")
            .join(format!("berth-cri_{name}_{uid}"))
    }

    /// With BCRI_SPEC_DIR set, keep the config.json containerd wrote for each container.
    pub fn save_spec(&self, id: &str, name: &str) {
        if let Some(dir) = std::env::var_os("BCRI_SPEC_DIR") {
            let b = self
                .d
                .work
                .join("state/io.containerd.runtime.v2.task/k8s.io")
                .join(id)
                .join("config.json");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(
                b,
                PathBuf::from(dir).join(format!("{name}-{}.json", &id[..12.min(id.len())])),
            );
        }
    }

    /// RunPodSandbox; registered for cleanup.
    pub async fn pod(&mut self, name: &str, o: PodOpts) -> R<Pod> {
        let uid = host::uuid();
        let ld = self.log_dir(name, &uid);
        std::fs::create_dir_all(&ld).map_err(|e| e.to_string())?;
        let cfg = kube::pod_config(name, &uid, &self.run, &ld.to_string_lossy(), self.driver, o);
        self.uids.push(uid.clone());
        let dir = self.driver.pod_dir(&uid);
        self.d.add_cg_dir(dir);
        let id = self.cri.run_pod(&cfg).await?;
        self.pods.push((id.clone(), uid.clone()));
        self.ids.push(id.clone());
        self.save_spec(&id, &format!("sandbox-{name}"));
        let pid = self.pod_pid(&id).await?;
        self.wait_exec(pid, "/pause").await?;
        Ok(Pod {
            id,
            uid,
            cfg,
            opts: o,
        })
    }

    /// The pod was removed by the group itself.
    pub fn forget_pod(&mut self, id: &str) {
        self.pods.retain(|(p, _)| p != id);
    }

    /// CreateContainer + StartContainer.
    pub async fn start(&mut self, pod: &Pod, c: &cri::ContainerConfig) -> R<String> {
        let id = self.create(pod, c).await?;
        self.cri.start(&id).await?;
        self.save_spec(
            &id,
            c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
        );
        match self.pid(&id).await {
            Ok(pid) => self.wait_exec(pid, "/busybox").await?,
            Err(e) => {
                // a short-lived container may have exited already: no pid in its info then
                let st = self.cri.container_status(&id).await?.status;
                if st.map(|s| s.state) != Some(ContainerState::ContainerExited as i32) {
                    return Err(e);
                }
            }
        }
        let name = c
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let pod_name = pod
            .cfg
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        self.fingerprint(&id, &format!("{pod_name}-{name}")).await;
        Ok(id)
    }

    /// With BCRI_FP_DIR set: what the container looks like from inside (an exec and its init:
    /// status fields, mounts, /dev, limits, cgroups, env...), normalized, one file per
    /// container, so that two runs (berth, runc) can be compared with `diff -r`.
    pub async fn fingerprint(&self, id: &str, name: &str) {
        let Some(dir) = std::env::var_os("BCRI_FP_DIR") else {
            return;
        };
        let script = "for p in self 1; do echo \"== $p\"; \
            grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp|Cpus_allowed_list|Mems_allowed_list)' /proc/$p/status; \
            cat /proc/$p/limits; cat /proc/$p/oom_score_adj; tr '\\0' '\\n' < /proc/$p/environ | sort; \
            readlink /proc/$p/cwd; cat /proc/$p/cgroup; done 2>&1; \
            echo '== mounts'; awk '{ s=\"\"; for (i=7;i<=NF;i++) if ($i==\"-\") s=i; print $5, $4, $6, $(s+1), $(s+2), $(s+3) }' /proc/self/mountinfo | sort; \
            echo '== dev'; ls -lan /dev /dev/pts /dev/shm /dev/mqueue 2>&1 | awk '{print $1, $3, $4, $5, $6, $NF}'; \
            echo '== cgroupfs'; ls /sys/fs/cgroup; echo '== misc'; umask; hostname; id; cat /etc/resolv.conf /etc/hosts; \
            stat -c '%A %U %G %n' / /tmp /proc /sys /etc/hostname /etc/hosts /etc/resolv.conf /dev/shm /dev/termination-log 2>&1";
        let out = match self.cri.exec(id, &["/bin/sh", "-c", script], 30).await {
            Ok((o, e, c)) => format!("{o}{e}exit {c}\n"),
            Err(e) => format!("exec failed: {e}\n"),
        };
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            PathBuf::from(dir).join(format!("{name}.txt")),
            normalize(&out, &self.d.work),
        );
    }

    /// StartContainer returns once the runtime let the container's process go, which may be
    /// before that process exec'd the program (runc's init and berth's child are still the
    /// runtime's binary, non-dumpable, maybe without the final seccomp filter): wait until
    /// /proc/<pid>/exe is the image's program, so that checks see the container as it runs.
    pub async fn wait_exec(&self, pid: i32, suffix: &str) -> R<()> {
        let t0 = Instant::now();
        loop {
            let exe = host::exe(pid);
            if exe.ends_with(suffix) || !host::alive(pid) {
                // (a short-lived container may be gone already)
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(20) {
                return Err(format!("process {pid} still runs {exe:?} 20 s after start"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn create(&mut self, pod: &Pod, c: &cri::ContainerConfig) -> R<String> {
        let id = self.cri.create(&pod.id, c, &pod.cfg).await?;
        self.ids.push(id.clone());
        Ok(id)
    }

    /// A plain busybox container config running `script`.
    pub fn ctr(&self, name: &str, script: &str, pod: &Pod) -> cri::ContainerConfig {
        kube::container(name, &self.busybox, script, pod)
    }

    /// Host PID of a running container (or sandbox when `sandbox`).
    pub async fn pid(&self, id: &str) -> R<i32> {
        let st = self.cri.container_status(id).await?;
        cri::info_pid(&st.info).ok_or(format!("no pid for container {id} in its verbose status"))
    }
    pub async fn pod_pid(&self, id: &str) -> R<i32> {
        let st = self.cri.pod_status(id).await?;
        cri::info_pid(&st.info).ok_or(format!("no pid for sandbox {id} in its verbose status"))
    }

    /// Poll ContainerStatus until `state` (100 ms steps).
    pub async fn wait_state(
        &self,
        id: &str,
        state: ContainerState,
        secs: u64,
    ) -> R<cri::ContainerStatus> {
        let t0 = Instant::now();
        loop {
            let st = self
                .cri
                .container_status(id)
                .await?
                .status
                .ok_or("no status")?;
            if st.state == state as i32 {
                return Ok(st);
            }
            if t0.elapsed() > Duration::from_secs(secs) {
                return Err(format!(
                    "container {id} not {state:?} after {secs} s (state {:?}, reason {:?})",
                    ContainerState::try_from(st.state),
                    st.reason
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll a host file until it contains `needle`.
    pub async fn wait_file(&self, p: &std::path::Path, needle: &str, secs: u64) -> R<String> {
        let t0 = Instant::now();
        loop {
            let s = host::read(p).unwrap_or_default();
            if s.contains(needle) {
                return Ok(s);
            }
            if t0.elapsed() > Duration::from_secs(secs) {
                return Err(format!(
                    "{} has no {needle:?} after {secs} s: {:?}",
                    p.display(),
                    tail(&s, 200)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pod_cfg_log(&self, cfg: &PodSandboxConfig, c: &cri::ContainerConfig) -> PathBuf {
        PathBuf::from(&cfg.log_directory).join(&c.log_path)
    }

    /// Wait until the CRI plugin answers and says runtime and network are ready.
    pub async fn wait_ready(&mut self, secs: u64) -> R<()> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            match Cri::connect(&self.d.sock()).await {
                Ok(c) => match c.status().await {
                    Ok(s) => {
                        let conds = s.status.map(|s| s.conditions).unwrap_or_default();
                        if conds.len() >= 2 && conds.iter().all(|c| c.status) {
                            self.cri = c;
                            return Ok(());
                        }
                        last = format!("{conds:?}");
                    }
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!(
            "CRI not ready after {secs} s: {last}; log: {}",
            self.d.log_tail(3)
        ))
    }

    /// What is left on the host of these container/sandbox ids: processes (shims naming
    /// them), mounts naming them, cgroups, runtime state, shim sockets; with `whole_pod`, any
    /// cgroup under the pod's.
    pub fn leftovers_of(&self, uid: &str, ids: &[String], whole_pod: bool) -> Vec<String> {
        let mut v = vec![];
        for (p, c) in self.d.own_processes() {
            if ids.iter().any(|i| c.contains(i.as_str())) {
                v.push(format!("process {p}: {}", tail(&c, 120)));
            }
        }
        for m in host::mounts_under(&self.d.work) {
            if ids.iter().any(|i| m.contains(i.as_str())) {
                v.push(format!("mount {m}"));
            }
        }
        for h in host::hierarchies() {
            for i in ids {
                let d = h
                    .mountpoint
                    .join(self.driver.container_cgroup(uid, i).trim_start_matches('/'));
                if d.exists() {
                    v.push(format!("cgroup {}", d.display()));
                }
            }
            if whole_pod {
                let pd = h.mountpoint.join(self.driver.pod_dir(uid));
                if let Ok(rd) = std::fs::read_dir(&pd) {
                    for e in rd.flatten() {
                        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            v.push(format!("cgroup {}", e.path().display()));
                        }
                    }
                }
            }
        }
        let root = self.d.rt_root().join("k8s.io");
        for i in ids {
            if root.join(i).exists() {
                v.push(format!("runtime state {}", root.join(i).display()));
            }
            let s = self.d.shim_socket(i);
            if s.exists() {
                v.push(format!("shim socket {} (of {i})", s.display()));
            }
        }
        if self.driver == Driver::Systemd && !ids.is_empty() {
            // one systemctl for all the units (a fork per id costs seconds under TCG)
            let units: Vec<String> = ids
                .iter()
                .map(|i| format!("cri-containerd-{i}.scope"))
                .collect();
            let mut args = vec!["show", "-p", "Id", "-p", "ActiveState"];
            args.extend(units.iter().map(String::as_str));
            match host::sh("systemctl", &args) {
                Err(e) => v.push(e),
                Ok(o) => {
                    let mut seen = 0;
                    for block in o.split("\n\n").filter(|b| !b.trim().is_empty()) {
                        seen += 1;
                        let prop = |k: &str| {
                            block
                                .lines()
                                .find_map(|l| l.strip_prefix(k))
                                .unwrap_or("")
                                .to_string()
                        };
                        if prop("ActiveState=") != "inactive" {
                            v.push(format!(
                                "unit {}: {}",
                                prop("Id="),
                                block.replace('\n', " ")
                            ));
                        }
                    }
                    if seen != units.len() {
                        v.push(format!(
                            "systemctl show of {} units answered for {seen}: {o:?}",
                            units.len()
                        ));
                    }
                }
            }
        }
        v
    }

    /// The pod's cgroup (kubelet's to remove): gone after this.
    pub fn remove_pod_cgroup(&self, uid: &str) -> R<()> {
        let mut left = vec![];
        if self.driver == Driver::Systemd {
            let unit = format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"));
            let _ = host::sh("systemctl", &["stop", &unit]);
        }
        crate::daemon::remove_cgroups(&[self.driver.pod_dir(uid)], &self.d.cg_existed, &mut left);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join(", "))
        }
    }
}

/// Replace what differs between any two runs (ids, uids, paths of the work dir, mount and
/// device numbers, memory/time figures) by placeholders.
pub fn normalize(s: &str, work: &std::path::Path) -> String {
    let w = work.to_string_lossy().into_owned();
    let mut out = String::new();
    for l in s.lines() {
        let l = l.replace(&w, "W");
        let mut t = String::new();
        // 64-hex ids -> ID, uuids -> UID, long digit runs -> N
        let mut word = String::new();
        let flush = |word: &mut String, t: &mut String| {
            let is_hex = word.len() >= 32 && word.chars().all(|c| c.is_ascii_hexdigit());
            let w = word.strip_prefix("pod").unwrap_or(word);
            let is_uuid = w.len() == 36 && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            let is_num = (word.len() >= 4 || t.ends_with("snapshots/"))
                && !word.is_empty()
                && word.chars().all(|c| c.is_ascii_digit());
            if is_hex {
                t.push_str("ID");
            } else if is_uuid {
                t.push_str("UID");
            } else if is_num {
                t.push('N');
            } else {
                t.push_str(word);
            }
            word.clear();
        };
        for c in l.chars() {
            if c.is_ascii_alphanumeric() || c == '-' {
                word.push(c);
            } else {
                flush(&mut word, &mut t);
                t.push(c);
            }
        }
        flush(&mut word, &mut t);
        out.push_str(&t);
        out.push('\n');
    }
    out
}

pub fn tail(s: &str, n: usize) -> String {
    let c: Vec<char> = s.chars().collect();
    c[c.len().saturating_sub(n)..].iter().collect()
}

/// Err(msg) unless cond.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R<()> {
    if cond { Ok(()) } else { Err(msg()) }
}

#[macro_export]
macro_rules! group {
    ($name:expr, [$($c:expr),* $(,)?], $f:path) => {
        $crate::harness::Group {
            name: $name,
            checks: &[$($c),*],
            run: |t| Box::pin($f(t)),
        }
    };
}
