//! Pod-scale benchmark: per round, P pods x C containers created K at a time through the CRI
//! (each pod worker: RunPodSandbox, then CreateContainer+StartContainer per container, as the
//! kubelet's pod workers do), then one ExecSync per container, then StopPodSandbox +
//! RemovePodSandbox. One private containerd per runtime, rounds alternated between runtimes
//! (A B, B A, ...). Reported: wall time, time to all-Running, p50/p99 per RunPodSandbox and per
//! CreateContainer+StartContainer, ExecSync p50, the memory of containerd + shims + runtime
//! processes (RSS summed over a 250 ms sampling, PSS at all-Running), and after every round
//! what is left (containerd's fds, mounts, cgroups, pod netns, shims, runtime state): the soak
//! fails if any of them grows.

use crate::cri::{ContainerState, Cri};
use crate::daemon::Daemon;
use crate::host;
use crate::kube::{self, Driver, PodOpts};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

struct Rt {
    name: String,
    path: PathBuf,
    d: Daemon,
    cri: Cri,
    rounds: Vec<Round>,
    soak: Vec<Left>,
}

#[derive(Default)]
struct Round {
    wall: f64,
    all_running: f64,
    exec_phase: f64,
    remove_phase: f64,
    run_pod: Vec<f64>,
    create_start: Vec<f64>,
    start: Vec<f64>,
    exec: Vec<f64>,
    rss_peak: u64,
    rss_mean: u64,
    pss_running: u64,
    /// CPU seconds of the create phase: containerd itself, its reaped children (CNI plugins,
    /// `containerd-shim start`), the shims themselves, the shims' reaped children (the runtime's
    /// create/start processes; the containers are still running).
    cpu: [f64; 4],
    errors: Vec<String>,
}

/// What is left after a round (compared across rounds).
#[derive(Debug, Clone, PartialEq)]
struct Left {
    fds: usize,
    mounts: usize,
    cgroups: usize,
    netns: usize,
    shims: usize,
    state: usize,
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i.min(s.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 50.0)
}

/// containerd + its shims + the runtime's processes: (pids).
fn overhead_pids(rt: &Rt) -> Vec<i32> {
    let w = rt.d.work.to_string_lossy().into_owned() + "/";
    let exe = rt.path.to_string_lossy().into_owned();
    let cd = rt.d.pid();
    let mut v = vec![];
    for (p, c) in host::processes() {
        if Some(p) == cd || (c.contains(&w) && c.contains("containerd-shim")) || host::exe(p) == exe
        {
            v.push(p);
        }
    }
    v
}

fn statm_rss_kib(pid: i32) -> u64 {
    host::read(format!("/proc/{pid}/statm"))
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

fn left(rt: &Rt, uids: &[String]) -> Left {
    let cgroups = host::hierarchies()
        .iter()
        .map(|h| {
            uids.iter()
                .filter(|u| h.mountpoint.join(Driver::Cgroupfs.pod_dir(u)).exists())
                .count()
        })
        .sum();
    let count = |p: PathBuf| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    Left {
        fds: rt.d.pid().map(host::fd_count).unwrap_or(0),
        mounts: host::mounts_under(&rt.d.work).len(),
        cgroups,
        netns: count(rt.d.work.join("state/io.containerd.grpc.v1.cri/netns")),
        shims: rt.d.own_processes().len(),
        state: count(rt.d.rt_root().join("k8s.io")),
    }
}

/// Run `n` jobs, `par` at a time.
async fn limited<F, Fut, T>(n: usize, par: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    let mut out = vec![];
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < par {
            set.spawn(f(next));
            next += 1;
        }
        if let Some(r) = set.join_next().await {
            out.push(r.expect("bench task panicked"));
        }
    }
    out
}

struct PodDone {
    pod: String,
    uid: String,
    containers: Vec<String>,
    run_pod: f64,
    create_start: Vec<f64>,
    start: Vec<f64>,
    err: Option<String>,
}

async fn one_round(rt: &mut Rt, o: &crate::Opts, round: usize) -> Round {
    let mut r = Round::default();
    let cri = rt.cri.clone();
    let run = format!("bench{round}");
    let logs = rt.d.work.join("logs");
    let image = crate::BUSYBOX_REF.to_string();
    let ncont = o.containers;

    // memory sampler: RSS of containerd, shims and runtime processes every 250 ms
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<std::sync::Mutex<Vec<u64>>> = Arc::default();
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        let w = rt.d.work.to_string_lossy().into_owned() + "/";
        let exe = rt.path.to_string_lossy().into_owned();
        let cd = rt.d.pid();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut sum = 0;
                for (p, c) in host::processes() {
                    if Some(p) == cd
                        || (c.contains(&w) && c.contains("containerd-shim"))
                        || host::exe(p) == exe
                    {
                        sum += statm_rss_kib(p);
                    }
                }
                samples.lock().unwrap().push(sum);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let cd0 = rt.d.pid().map(host::cpu_secs).unwrap_or_default();
    let t0 = Instant::now();
    let pods = limited(o.pods, o.parallel, |i| {
        let cri = cri.clone();
        let run = run.clone();
        let logs = logs.clone();
        let image = image.clone();
        async move {
            let uid = host::uuid();
            let name = format!("bench-{i}");
            let ld = logs.join(format!("berth-cri_{name}_{uid}"));
            let _ = std::fs::create_dir_all(&ld);
            let cfg = kube::pod_config(
                &name,
                &uid,
                &run,
                &ld.to_string_lossy(),
                Driver::Cgroupfs,
                PodOpts::default(),
            );
            let mut done = PodDone {
                pod: String::new(),
                uid: uid.clone(),
                containers: vec![],
                run_pod: 0.0,
                create_start: vec![],
                start: vec![],
                err: None,
            };
            let t = Instant::now();
            match cri.run_pod(&cfg).await {
                Ok(id) => done.pod = id,
                Err(e) => {
                    done.err = Some(e);
                    return done;
                }
            }
            done.run_pod = t.elapsed().as_secs_f64() * 1e3;
            let pod = kube::Pod {
                id: done.pod.clone(),
                uid,
                cfg: cfg.clone(),
                opts: PodOpts::default(),
            };
            for c in 0..ncont {
                let cc = kube::container(&format!("c{c}"), &image, "exec sleep 3600", &pod);
                let t = Instant::now();
                let r = async {
                    let id = cri.create(&pod.id, &cc, &cfg).await?;
                    let ts = Instant::now();
                    cri.start(&id).await?;
                    Ok::<_, String>((id, ts.elapsed().as_secs_f64() * 1e3))
                }
                .await;
                match r {
                    Ok((id, st)) => {
                        done.start.push(st);
                        done.create_start.push(t.elapsed().as_secs_f64() * 1e3);
                        done.containers.push(id);
                    }
                    Err(e) => {
                        done.err = Some(e);
                        break;
                    }
                }
            }
            done
        }
    })
    .await;
    r.all_running = t0.elapsed().as_secs_f64();
    let cd1 = rt.d.pid().map(host::cpu_secs).unwrap_or_default();
    let w = rt.d.work.to_string_lossy().into_owned() + "/";
    let (mut ss, mut sc) = (0.0, 0.0);
    for (p, c) in host::processes() {
        if c.contains(&w) && c.contains("containerd-shim") {
            let (a, b) = host::cpu_secs(p);
            ss += a;
            sc += b;
        }
    }
    r.cpu = [cd1.0 - cd0.0, cd1.1 - cd0.1, ss, sc];
    // PSS of the overhead processes with everything running
    r.pss_running = overhead_pids(rt)
        .into_iter()
        .map(|p| host::rss_pss(p).1)
        .sum();
    for p in &pods {
        if let Some(e) = &p.err {
            r.errors.push(e.clone());
        }
        if !p.pod.is_empty() {
            r.run_pod.push(p.run_pod);
        }
        r.create_start.extend(&p.create_start);
        r.start.extend(&p.start);
    }
    // every container must really be running
    if let Ok(all) = cri.list_containers("").await {
        let running = all
            .iter()
            .filter(|c| c.state == ContainerState::ContainerRunning as i32)
            .count();
        let want = pods.iter().map(|p| p.containers.len()).sum::<usize>();
        if running != want || want != o.pods * o.containers {
            r.errors.push(format!(
                "{running} containers running, {want} started, {} wanted",
                o.pods * o.containers
            ));
        }
    }

    let ids: Vec<String> = pods.iter().flat_map(|p| p.containers.clone()).collect();
    let t1 = Instant::now();
    let execs = limited(ids.len(), o.parallel, |i| {
        let cri = cri.clone();
        let id = ids[i].clone();
        async move {
            let t = Instant::now();
            let r = cri.exec(&id, &["/bin/true"], 30).await;
            (t.elapsed().as_secs_f64() * 1e3, r)
        }
    })
    .await;
    r.exec_phase = t1.elapsed().as_secs_f64();
    for (ms, res) in execs {
        match res {
            Ok((_, _, 0)) => r.exec.push(ms),
            Ok((_, e, c)) => r.errors.push(format!("ExecSync exit {c}: {e}")),
            Err(e) => r.errors.push(e),
        }
    }

    let t2 = Instant::now();
    let pod_ids: Vec<String> = pods
        .iter()
        .filter(|p| !p.pod.is_empty())
        .map(|p| p.pod.clone())
        .collect();
    let rem = limited(pod_ids.len(), o.parallel, |i| {
        let cri = cri.clone();
        let id = pod_ids[i].clone();
        async move {
            cri.stop_pod(&id).await?;
            cri.remove_pod(&id).await
        }
    })
    .await;
    r.remove_phase = t2.elapsed().as_secs_f64();
    r.wall = t0.elapsed().as_secs_f64();
    for e in rem.into_iter().filter_map(|x| x.err()) {
        r.errors.push(e);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let s = samples.lock().unwrap().clone();
    r.rss_peak = s.iter().copied().max().unwrap_or(0);
    r.rss_mean = if s.is_empty() {
        0
    } else {
        s.iter().sum::<u64>() / s.len() as u64
    };

    // kubelet removes the pod cgroups; what else is left is counted
    let uids: Vec<String> = pods.iter().map(|p| p.uid.clone()).collect();
    for u in &uids {
        rt.d.add_cg_dir(Driver::Cgroupfs.pod_dir(u));
    }
    let mut l = vec![];
    crate::daemon::remove_cgroups(
        &uids
            .iter()
            .map(|u| Driver::Cgroupfs.pod_dir(u))
            .collect::<Vec<_>>(),
        &rt.d.cg_existed,
        &mut l,
    );
    r.errors.extend(l);
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::create_dir_all(&logs);
    // containerd closes some descriptors (shim connections) a moment after the removals
    // returned: give what is left up to 10 s to settle back to the state before the rounds
    let t = Instant::now();
    let mut l = left(rt, &uids);
    while let Some(base) = rt.soak.first() {
        if l == *base || t.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        l = left(rt, &uids);
    }
    rt.soak.push(l);
    r
}

pub async fn run(o: crate::Opts) -> i32 {
    let tag = crate::tag();
    let mut rts: Vec<Rt> = vec![];
    let mut rc = 0;
    println!(
        "CRI pod-scale benchmark: {} pods x {} containers, {} at a time, {} rounds per runtime (alternated), host {} cpus, kernel {}",
        o.pods,
        o.containers,
        o.parallel,
        o.rounds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        host::read("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    for (name, path) in &o.runtimes {
        let work = PathBuf::from(format!("/tmp/bcri-{tag}{name}"));
        let mut d = Daemon::new(
            work.clone(),
            &format!("{tag}{name}"),
            path.clone(),
            false,
            crate::PAUSE_REF,
        );
        let setup = async {
            d.setup()?;
            d.start()?;
            let mut c = Cri::connect(&d.sock()).await;
            for _ in 0..100 {
                if c.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                c = Cri::connect(&d.sock()).await;
            }
            let c = c?;
            d.import(&o.pause)?;
            d.import(&o.busybox)?;
            Ok::<_, String>(c)
        }
        .await;
        match setup {
            Ok(cri) => rts.push(Rt {
                name: name.clone(),
                path: path.clone(),
                d,
                cri,
                rounds: vec![],
                soak: vec![],
            }),
            Err(e) => {
                println!("{name}: NOT MEASURED: {e}");
                for l in d.teardown() {
                    println!("{name}: left behind: {l}");
                }
                rc = 1;
            }
        }
    }
    // a warm-up pod per runtime (first-use costs: image snapshot, CNI, shim binary in cache)
    for rt in rts.iter_mut() {
        let w = crate::Opts {
            pods: 2,
            rounds: 1,
            runtimes: vec![],
            ..o.clone()
        };
        let r = one_round(rt, &w, 99).await;
        rt.soak.clear();
        if !r.errors.is_empty() {
            println!("{}: warm-up errors: {}", rt.name, r.errors.join("; "));
        }
        // the baseline, once containerd has closed what the warm-up left open
        tokio::time::sleep(Duration::from_secs(3)).await;
        rt.soak.push(left(rt, &[]));
    }
    for round in 0..o.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..rts.len()).collect()
        } else {
            (0..rts.len()).rev().collect()
        };
        for i in order {
            let r = one_round(&mut rts[i], &o, round).await;
            let rt = &rts[i];
            println!(
                "  round {} {:<6} wall {:6.2} s  all-Running {:6.2} s  RunPodSandbox p50 {:6.0} ms  create+start p50 {:6.0} ms  exec p50 {:5.0} ms  RSS peak {:5.0} MiB{}",
                round + 1,
                rt.name,
                r.wall,
                r.all_running,
                median(&r.run_pod),
                median(&r.create_start),
                median(&r.exec),
                r.rss_peak as f64 / 1024.0,
                if r.errors.is_empty() {
                    String::new()
                } else {
                    format!("  ERRORS: {}", r.errors.len())
                }
            );
            for e in r.errors.iter().take(3) {
                println!("    error: {e}");
            }
            if !r.errors.is_empty() {
                rc = 1;
            }
            rts[i].rounds.push(r);
        }
    }
    report(&rts, &o);
    for rt in &rts {
        let base = &rt.soak[0];
        let grew: Vec<String> = rt
            .soak
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| *l != base)
            .map(|(i, l)| format!("after round {i}: {l:?}"))
            .collect();
        if grew.is_empty() {
            println!(
                "soak {}: flat over {} rounds: {:?}",
                rt.name,
                rt.soak.len() - 1,
                base
            );
        } else {
            println!(
                "soak {}: FAIL: before {base:?}; {}",
                rt.name,
                grew.join("; ")
            );
            rc = 1;
        }
    }
    for mut rt in rts {
        for l in rt.d.teardown() {
            println!("{}: left behind: {l}", rt.name);
            rc = 1;
        }
    }
    rc
}

fn report(rts: &[Rt], o: &crate::Opts) {
    if rts.is_empty() {
        return;
    }
    let base = &rts[0];
    println!();
    println!(
        "medians over {} rounds (p50/p99 over all operations of all rounds); ratio = {} / other",
        o.rounds, base.name
    );
    print!("  {:<44}", "figure");
    for rt in rts {
        print!(" {:>10}", rt.name);
    }
    if rts.len() > 1 {
        print!("   {}/{}", base.name, rts[1].name);
    }
    println!();
    type Fig = (&'static str, fn(&Rt) -> f64);
    let figs: Vec<Fig> = vec![
        ("wall time per round [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.wall).collect::<Vec<_>>())
        }),
        ("time to all-Running [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.all_running).collect::<Vec<_>>())
        }),
        ("exec phase (one ExecSync each) [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.exec_phase).collect::<Vec<_>>())
        }),
        ("remove phase (StopPodSandbox+Remove) [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.remove_phase).collect::<Vec<_>>())
        }),
        ("RunPodSandbox p50 [ms]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.run_pod.clone())
                    .collect::<Vec<_>>(),
            )
        }),
        ("RunPodSandbox p99 [ms]", |rt| {
            pct(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.run_pod.clone())
                    .collect::<Vec<_>>(),
                99.0,
            )
        }),
        ("CreateContainer+StartContainer p50 [ms]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.create_start.clone())
                    .collect::<Vec<_>>(),
            )
        }),
        ("CreateContainer+StartContainer p99 [ms]", |rt| {
            pct(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.create_start.clone())
                    .collect::<Vec<_>>(),
                99.0,
            )
        }),
        ("  of which StartContainer p50 [ms]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.start.clone())
                    .collect::<Vec<_>>(),
            )
        }),
        ("ExecSync p50 [ms]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.exec.clone())
                    .collect::<Vec<_>>(),
            )
        }),
        ("ExecSync p99 [ms]", |rt| {
            pct(
                &rt.rounds
                    .iter()
                    .flat_map(|r| r.exec.clone())
                    .collect::<Vec<_>>(),
                99.0,
            )
        }),
        ("CPU to all-Running: containerd [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.cpu[0]).collect::<Vec<_>>())
        }),
        ("  containerd's children: CNI, shim start [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.cpu[1]).collect::<Vec<_>>())
        }),
        ("  shims [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.cpu[2]).collect::<Vec<_>>())
        }),
        ("  shims' children: the runtime [s]", |rt| {
            median(&rt.rounds.iter().map(|r| r.cpu[3]).collect::<Vec<_>>())
        }),
        ("RSS containerd+shims+runtime, peak [MiB]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .map(|r| r.rss_peak as f64 / 1024.0)
                    .collect::<Vec<_>>(),
            )
        }),
        ("RSS containerd+shims+runtime, mean [MiB]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .map(|r| r.rss_mean as f64 / 1024.0)
                    .collect::<Vec<_>>(),
            )
        }),
        ("PSS containerd+shims+runtime, all Running [MiB]", |rt| {
            median(
                &rt.rounds
                    .iter()
                    .map(|r| r.pss_running as f64 / 1024.0)
                    .collect::<Vec<_>>(),
            )
        }),
    ];
    for (name, f) in &figs {
        print!("  {name:<44}");
        for rt in rts {
            print!(" {:>10.2}", f(rt));
        }
        if rts.len() > 1 {
            print!("   {:.2}x", f(base) / f(&rts[1]));
        }
        println!();
    }
    if rts.len() > 1 {
        let ratio = figs[1].1(base) / figs[1].1(&rts[1]);
        println!(
            "target: time to all-Running <= 0.5x {}: {:.2}x -> {}",
            rts[1].name,
            ratio,
            if ratio <= 0.5 { "met" } else { "NOT met" }
        );
    }
}
