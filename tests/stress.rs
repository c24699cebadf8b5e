//! Heavy scenarios, ignored by default (`hack/stress.sh` runs them with counts from the
//! environment): many containers created in parallel, commands racing on one container, and a
//! soak of lifecycles with leak accounting. Every command has a deadline; every scenario ends
//! with the host checked.
mod common;
#[path = "common/leaks.rs"]
mod leaks;

use common::*;
use leaks::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bundles that share one read-only rootfs: only config.json differs (its own cgroup).
struct Shared {
    rootfs: PathBuf,
    base: serde_json::Value,
}

impl Shared {
    fn new(env: &Env) -> Shared {
        let b = env.bundle("shared", &["true"]);
        let mut base = b.config.clone();
        base["root"] = json!({"path": b.rootfs(), "readonly": true});
        Shared {
            rootfs: b.rootfs(),
            base,
        }
    }

    fn bundle(&self, env: &Env, id: &str, args: &[&str]) -> PathBuf {
        let dir = env.tmp.join(format!("b-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = self.base.clone();
        c["process"]["args"] = json!(args);
        c["linux"]["cgroupsPath"] = json!(format!("{}/{id}", env.cg_parent));
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        dir
    }
}

/// Run `f(i)` for i in 0..n on `par` threads.
fn parallel(n: usize, par: usize, f: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..par {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    f(i);
                }
            });
        }
    });
}

fn list_json(env: &Env) -> Vec<serde_json::Value> {
    serde_json::from_str(&must(env, &["list", "--format", "json"])).unwrap()
}

#[test]
#[ignore = "heavy: run by hack/stress.sh"]
fn stress_many_containers_created_in_parallel() {
    let n = count("BERTH_STRESS_CONTAINERS", 200);
    let par = count("BERTH_STRESS_PARALLEL", 8);
    let env = Env::new("many");
    let shared = Shared::new(&env);
    let ids: Vec<String> = (0..n).map(|i| env.id(&format!("c{i}"))).collect();
    let bundles: Vec<PathBuf> = ids
        .iter()
        .map(|id| shared.bundle(&env, id, &["sleep", "1000"]))
        .collect();
    let t0 = Instant::now();
    parallel(n, par, |i| {
        must(
            &env,
            &["create", "--bundle", bundles[i].to_str().unwrap(), &ids[i]],
        );
    });
    let t_create = t0.elapsed();
    let l = list_json(&env);
    assert_eq!(l.len(), n, "list shows every container");
    assert!(l.iter().all(|c| c["status"] == "created"), "all created");
    let pid_of = |id: &str| {
        l.iter().find(|c| c["id"] == id).unwrap()["pid"]
            .as_i64()
            .unwrap()
    };
    let pids: Vec<i32> = ids.iter().map(|id| pid_of(id) as i32).collect();
    let mut uniq = pids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), n, "distinct pids");
    let t1 = Instant::now();
    parallel(n, par, |i| {
        must(&env, &["start", &ids[i]]);
    });
    let t_start = t1.elapsed();
    let l = list_json(&env);
    assert!(
        l.iter().all(|c| c["status"] == "running"),
        "all running: {:?}",
        l.iter()
            .filter(|c| c["status"] != "running")
            .collect::<Vec<_>>()
    );
    // Each container is in its own cgroup, alone.
    for (i, id) in ids.iter().enumerate().step_by((n / 10).max(1)) {
        let ps: Vec<i32> =
            serde_json::from_str(&must(&env, &["ps", "--format", "json", id])).unwrap();
        assert_eq!(ps, vec![pids[i]], "{id}");
    }
    let t2 = Instant::now();
    parallel(n, par, |i| {
        must(&env, &["kill", &ids[i], "KILL"]);
        let t = Instant::now();
        loop {
            let st: serde_json::Value =
                serde_json::from_str(&must(&env, &["state", &ids[i]])).unwrap();
            if st["status"] == "stopped" {
                break;
            }
            assert!(t.elapsed() < T, "{} never stopped", ids[i]);
            std::thread::sleep(Duration::from_millis(5));
        }
        must(&env, &["delete", &ids[i]]);
    });
    let t_delete = t2.elapsed();
    eprintln!(
        "many: {n} containers, {par} at a time: create {:.1} s, start {:.1} s, kill+delete {:.1} s",
        t_create.as_secs_f64(),
        t_start.as_secs_f64(),
        t_delete.as_secs_f64()
    );
    assert_host_clean(&env, &pids, "many containers");
    assert!(shared.rootfs.join("bin/busybox").exists());
}

/// kill, delete, state, list, pause/resume, update and exec racing on one container: every
/// command returns within its deadline with success or a one-line error, state.json is always
/// whole, the container survives everything but the delete; then execs race `delete --force`,
/// which must win and leave nothing.
#[test]
#[ignore = "heavy: run by hack/stress.sh"]
fn stress_commands_racing_on_one_container() {
    let rounds = count("BERTH_STRESS_RACE_ROUNDS", 20);
    let env = Env::new("racecmd");
    let shared = Shared::new(&env);
    let mut outcomes: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut errors: std::collections::BTreeSet<String> = Default::default();
    let mut all_pids = vec![];
    for round in 0..rounds {
        let id = env.id(&format!("r{round}"));
        let bundle = shared.bundle(&env, &id, &["sleep", "1000"]);
        must(&env, &["create", "--bundle", bundle.to_str().unwrap(), &id]);
        must(&env, &["start", &id]);
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        let pid = st["pid"].as_i64().unwrap() as i32;
        all_pids.push(pid);
        let statef = env.root.join(&id).join("state.json");
        let stop = AtomicBool::new(false);
        let torn = AtomicUsize::new(0);
        // Phase 1: each sequence runs in its own thread, all at once, 3 times over.
        let seqs: Vec<Vec<Vec<&str>>> = vec![
            vec![vec!["state", &id], vec!["list"]],
            vec![
                vec!["kill", &id, "CONT"],
                vec!["kill", "--all", &id, "CONT"],
            ],
            vec![vec!["pause", &id], vec!["resume", &id]],
            vec![vec!["exec", &id, "true"]],
            vec![vec!["exec", "--detach", &id, "sleep", "1000"]],
            vec![vec!["exec", &id, "sh", "-c", "echo x > /dev/null"]],
            vec![vec!["update", "--pids-limit", "100", &id], vec!["ps", &id]],
            vec![vec!["delete", &id], vec!["list", "--format", "json"]],
        ];
        // Phase 2: execs racing the forced delete.
        let phase2: Vec<Vec<Vec<&str>>> = vec![
            vec![vec!["delete", "--force", &id]],
            vec![vec!["exec", &id, "true"]],
            vec![vec!["exec", "--detach", &id, "sleep", "1000"]],
            vec![vec!["kill", &id, "KILL"]],
            vec![vec!["state", &id]],
        ];
        let run_phase = |seqs: &Vec<Vec<Vec<&str>>>, times: usize| -> Vec<(String, Ran)> {
            std::thread::scope(|s| {
                let hs: Vec<_> = seqs
                    .iter()
                    .enumerate()
                    .map(|(k, seq)| {
                        let (env, id) = (&env, &id);
                        s.spawn(move || {
                            // Staggered a little so that the orders differ between rounds.
                            std::thread::sleep(Duration::from_micros(
                                ((k * 7919 + round * 104_729) % 5_000) as u64,
                            ));
                            let mut out = vec![];
                            for _ in 0..times {
                                for args in seq {
                                    let what = args.join(" ").replace(id.as_str(), "ID");
                                    out.push((what, berth_limited(env, args, T)));
                                }
                            }
                            out
                        })
                    })
                    .collect();
                hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
            })
        };
        let (r1, r2) = std::thread::scope(|s| {
            // A reader that parses state.json as fast as it can: never torn.
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(t) = std::fs::read(&statef)
                        && serde_json::from_slice::<serde_json::Value>(&t).is_err()
                    {
                        torn.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            let r1 = run_phase(&seqs, 3);
            let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
            assert_eq!(st["status"], "running", "round {round}: after phase 1");
            assert_eq!(st["pid"], pid, "round {round}: after phase 1");
            let r2 = run_phase(&phase2, 1);
            stop.store(true, Ordering::SeqCst);
            (r1, r2)
        });
        assert_eq!(
            torn.load(Ordering::SeqCst),
            0,
            "round {round}: torn state.json"
        );
        for (phase, results) in [(1, &r1), (2, &r2)] {
            for (what, r) in results {
                let e = outcomes.entry(format!("{phase}: {what}")).or_default();
                if r.ok() {
                    e.0 += 1;
                    continue;
                }
                e.1 += 1;
                // An exec whose process the forced delete killed reports it as 128 + 9, as
                // `run` does, and says nothing more.
                if phase == 2 && what.starts_with("exec") && r.status.code() == Some(137) {
                    errors.insert(format!("{phase}: {what}: exit status 137 (killed)"));
                    continue;
                }
                let msg = r.stderr.trim().replace(id.as_str(), "ID");
                errors.insert(format!("{phase}: {what}: {msg}"));
                let lines: Vec<&str> = r.stderr.lines().collect();
                assert!(
                    lines.last().is_some_and(|l| l.starts_with("berth: "))
                        && !r.stderr.contains("internal error")
                        && !r.stderr.contains("panicked"),
                    "round {round}: {what}: {}",
                    r.stderr
                );
                // In phase 1 only the plain delete of a running container and an exec that
                // finds it paused may fail.
                assert!(
                    phase == 2
                        || what == "delete ID"
                        || (what.starts_with("exec") && r.stderr.contains("paused")),
                    "round {round}: {what} failed: {}",
                    r.stderr
                );
            }
        }
        let forced = &r2.iter().find(|(w, _)| w == "delete --force ID").unwrap().1;
        assert!(
            forced.ok(),
            "round {round}: delete --force: {}",
            forced.stderr
        );
        // Whatever an exec started died with the container (it is in its cgroup).
        let l = wait_dead(&[pid], Duration::from_secs(5));
        assert!(l.is_empty(), "round {round}: container process alive");
        let left = state_entries(&env.root);
        assert!(left.is_empty(), "round {round}: state left {left:?}");
        let cg = cgroups_under_parent(&env);
        assert!(cg.is_empty(), "round {round}: cgroups left {cg:?}");
    }
    for (what, (ok, failed)) in &outcomes {
        eprintln!("race: {what:<42} ok {ok:>4}  failed {failed:>4}");
    }
    for e in &errors {
        eprintln!("race: error seen: {e}");
    }
    assert_host_clean(&env, &all_pids, "racing commands");
}

struct Sample {
    fds: usize,
    mountinfo: usize,
    cgroups: usize,
    state_dirs: usize,
    children: usize,
}

fn sample(env: &Env) -> Sample {
    Sample {
        fds: open_fds(),
        mountinfo: mountinfo_lines(),
        cgroups: cgroups_under_parent(env).len(),
        state_dirs: state_entries(&env.root).len(),
        children: children_of_self().len(),
    }
}

fn median(v: &mut [i64]) -> i64 {
    v.sort();
    v[v.len() / 2]
}

/// One lifecycle of /bin/true: create (returns its ru_maxrss), start, wait, delete.
fn lifecycle(env: &Env, id: &str, bundle: &Path) -> i64 {
    let r = berth_limited(
        env,
        &["create", "--bundle", bundle.to_str().unwrap(), id],
        T,
    );
    assert!(r.ok(), "create {id}: {}", r.stderr);
    must(env, &["start", id]);
    let t = Instant::now();
    loop {
        let st: serde_json::Value = serde_json::from_str(&must(env, &["state", id])).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        assert!(t.elapsed() < T, "{id} never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    must(env, &["delete", id]);
    r.maxrss_kb
}

#[test]
#[ignore = "heavy: run by hack/stress.sh"]
fn stress_soak_lifecycles_leak_nothing() {
    let n = count("BERTH_STRESS_SOAK", 2000).max(40);
    let env = Env::new("soak");
    let shared = Shared::new(&env);
    let id = env.id("s");
    let bundle = shared.bundle(&env, &id, &["/bin/true"]);
    // One warm-up, so that the test parent cgroup and the state root exist in both samples.
    lifecycle(&env, &id, &bundle);
    let a = sample(&env);
    let t0 = Instant::now();
    let (mut first, mut last) = (vec![], vec![]);
    for i in 0..n {
        let rss = lifecycle(&env, &format!("{id}{i}"), &bundle);
        if i < 20 {
            first.push(rss);
        } else if i >= n - 20 {
            last.push(rss);
        }
    }
    let took = t0.elapsed();
    let b = sample(&env);
    let (r0, r1) = (median(&mut first), median(&mut last));
    eprintln!(
        "soak: {n} lifecycles in {:.1} s ({:.1} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n as f64
    );
    eprintln!("soak: open fds of the test     {} -> {}", a.fds, b.fds);
    eprintln!(
        "soak: mountinfo lines          {} -> {}",
        a.mountinfo, b.mountinfo
    );
    eprintln!(
        "soak: cgroups under the parent {} -> {}",
        a.cgroups, b.cgroups
    );
    eprintln!(
        "soak: state dirs               {} -> {}",
        a.state_dirs, b.state_dirs
    );
    eprintln!(
        "soak: children of the test     {} -> {}",
        a.children, b.children
    );
    eprintln!("soak: create ru_maxrss (median of 20) {r0} KiB -> {r1} KiB");
    assert_eq!(a.fds, b.fds, "fd leak");
    assert_eq!(a.mountinfo, b.mountinfo, "mount leak");
    assert_eq!(a.cgroups, b.cgroups, "cgroup leak");
    assert_eq!(a.state_dirs, b.state_dirs, "state dir leak");
    assert_eq!(a.children, b.children, "child/zombie leak");
    assert!(
        (r1 - r0).abs() <= r0 / 10 + 512,
        "create RSS grew from {r0} KiB to {r1} KiB"
    );
    assert_host_clean(&env, &[], "soak");
}
