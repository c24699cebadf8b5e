//! berth-cri: Kubernetes pods through containerd's CRI, as the kubelet drives them, against a
//! private containerd whose runc-shim runtime is the runtime under test.
//!
//!   berth-cri suite --runtime PATH --pause-image TAR --busybox-image TAR
//!                   [--cgroup-driver cgroupfs|systemd] [--filter SUB,..] [--results FILE] [-v]
//!   berth-cri bench --runtime NAME=PATH [--runtime NAME=PATH ..] --pause-image TAR
//!                   --busybox-image TAR [--pods 50] [--containers 2] [--parallel 8] [--rounds 5]
//!   berth-cri list                       (the suite's check names)
//!   berth-cri mutations | mutate NAME REAL ARGS..   (wrong runtimes: hack/cri/canfail.sh)
//!
//! The suite prints one `PASS name` / `FAIL name: why` line per check and ends with
//! `N passed, M failed`. hack/cri.sh builds the images and runs it per runtime.

mod bench;
mod cri;
mod daemon;
mod harness;
mod host;
mod kube;
mod mutate;
mod suite;

use std::path::PathBuf;

pub const PAUSE_REF: &str = "localhost/berth-cri/pause:latest";
pub const BUSYBOX_REF: &str = "localhost/berth-cri/busybox:latest";

fn usage() -> ! {
    eprintln!(
        "usage: berth-cri suite --runtime PATH --pause-image TAR --busybox-image TAR \
         [--cgroup-driver cgroupfs|systemd] [--filter SUB,..] [--results FILE] [-v]\n       \
         berth-cri bench --runtime NAME=PATH.. --pause-image TAR --busybox-image TAR \
         [--pods N] [--containers N] [--parallel N] [--rounds N]\n       berth-cri list"
    );
    std::process::exit(2)
}

#[derive(Clone)]
pub struct Opts {
    pub runtimes: Vec<(String, PathBuf)>,
    pub pause: PathBuf,
    pub busybox: PathBuf,
    pub driver: kube::Driver,
    pub filter: Vec<String>,
    pub results: Option<PathBuf>,
    pub verbose: bool,
    pub pods: usize,
    pub containers: usize,
    pub parallel: usize,
    pub rounds: usize,
    /// Work dir (default /tmp/bcri-<tag>); its name gives the netns name.
    pub work: Option<PathBuf>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    // a deliberately wrong runtime (hack/cri/canfail.sh): no tokio, exec's the real one
    if mode == "mutate" {
        mutate::run(args.collect());
    }
    if mode == "mutations" {
        mutate::list();
        return;
    }
    if mode == "cleanup" {
        args.next();
    }
    let mut o = Opts {
        runtimes: vec![],
        pause: PathBuf::new(),
        busybox: PathBuf::new(),
        driver: kube::Driver::Cgroupfs,
        filter: vec![],
        results: None,
        verbose: false,
        pods: 50,
        containers: 2,
        parallel: 8,
        rounds: 5,
        work: None,
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let num = |s: String| s.parse::<usize>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--runtime" => {
                let v = val();
                let (n, p) = match v.split_once('=') {
                    Some((n, p)) => (n.to_string(), PathBuf::from(p)),
                    None => (
                        PathBuf::from(&v)
                            .file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        PathBuf::from(&v),
                    ),
                };
                let p = std::fs::canonicalize(&p).unwrap_or_else(|e| {
                    eprintln!("runtime {}: {e}", p.display());
                    std::process::exit(2)
                });
                o.runtimes.push((n, p));
            }
            "--pause-image" => o.pause = PathBuf::from(val()),
            "--busybox-image" => o.busybox = PathBuf::from(val()),
            "--cgroup-driver" => {
                o.driver = match val().as_str() {
                    "cgroupfs" => kube::Driver::Cgroupfs,
                    "systemd" => kube::Driver::Systemd,
                    _ => usage(),
                }
            }
            "--filter" => {
                o.filter = val()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--results" => o.results = Some(PathBuf::from(val())),
            "--pods" => o.pods = num(val()),
            "--containers" => o.containers = num(val()),
            "--parallel" => o.parallel = num(val()).max(1),
            "--rounds" => o.rounds = num(val()),
            "--work" => o.work = Some(PathBuf::from(val())),
            "-v" | "--verbose" => o.verbose = true,
            _ => usage(),
        }
    }
    if mode == "cleanup" {
        // after a crash or a timeout: everything of the run whose work dir is given
        let Some(w) = std::env::args().nth(2) else {
            usage()
        };
        let mut d = daemon::Daemon::from_work(PathBuf::from(w));
        let left = d.teardown();
        for l in &left {
            eprintln!("berth-cri cleanup: left behind: {l}");
        }
        std::process::exit(if left.is_empty() { 0 } else { 1 });
    }
    if mode == "list" {
        for g in suite::groups() {
            for c in g.checks {
                println!("{c}");
            }
        }
        return;
    }
    if o.runtimes.is_empty() || !o.pause.is_file() || !o.busybox.is_file() {
        eprintln!(
            "berth-cri: --runtime, --pause-image and --busybox-image (OCI layout tars) are needed"
        );
        usage();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let code = match mode.as_str() {
        "suite" => rt.block_on(run_suite(o)),
        "bench" => rt.block_on(bench::run(o)),
        _ => usage(),
    };
    std::process::exit(code);
}

/// A short unique tag for names (netns, work dir): pid + a few random hex digits.
pub fn tag() -> String {
    let r = host::uuid();
    format!("{}{}", std::process::id(), &r[..4.min(r.len())])
}

async fn run_suite(o: Opts) -> i32 {
    let (name, runtime) = o.runtimes[0].clone();
    let work = o
        .work
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/bcri-{}", tag())));
    let tag = work
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("bcri-")
        .to_string();
    println!(
        "berth-cri: runtime {name} ({}), cgroup driver {:?}, work dir {}",
        runtime.display(),
        o.driver,
        work.display()
    );
    let mut d = daemon::Daemon::new(
        work.clone(),
        &tag,
        runtime,
        o.driver == kube::Driver::Systemd,
        PAUSE_REF,
    );
    let t0 = std::time::Instant::now();
    let setup = async {
        if o.driver == kube::Driver::Systemd
            && !std::path::Path::new("/run/systemd/system").exists()
        {
            return Err(
                "--cgroup-driver systemd needs systemd as PID 1 (the systemd guest): \
                        this host has none; use cgroupfs"
                    .to_string(),
            );
        }
        d.setup()?;
        d.start()?;
        // the socket exists a moment before containerd accepts on it
        let mut c = cri::Cri::connect(&d.sock()).await;
        for _ in 0..100 {
            if c.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            c = cri::Cri::connect(&d.sock()).await;
        }
        let c = c?;
        d.import(&o.pause)?;
        d.import(&o.busybox)?;
        Ok::<_, String>(c)
    }
    .await;
    let mut left = vec![];
    let (passed, failed);
    match setup {
        Err(e) => {
            println!("FAIL setup: {e}");
            left = d.teardown();
            passed = 0;
            failed = 1;
        }
        Ok(c) => {
            let mut t = harness::T::new(c, d, tag.clone(), BUSYBOX_REF.into(), o.driver, o.verbose);
            if let Err(e) = t.wait_ready(60).await {
                println!("FAIL setup: {e}");
                t.failed += 1;
            } else {
                for g in suite::groups() {
                    let sel = o.filter.is_empty()
                        || g.name == "nothing-left"
                        || o.filter.iter().any(|f| {
                            g.name.contains(f.as_str())
                                || g.checks.iter().any(|c| c.contains(f.as_str()))
                        });
                    if sel {
                        t.run_group(&g).await;
                    }
                }
            }
            t.cleanup_pods().await;
            let left_procs: Vec<(i32, String)> = {
                let _ = t.d.stop();
                t.d.own_processes()
            };
            left = t.d.teardown();
            for (p, c) in left_procs {
                left.push(format!(
                    "process {p} still running after containerd stopped: {}",
                    harness::tail(&c, 100)
                ));
            }
            left.extend(t.d.sys_leftovers(&t.ids));
            t.d.remove_sys_dirs();
            if work.exists() {
                left.push(format!("work dir {} still there", work.display()));
            }
            if let Some(p) = &o.results {
                let mut s = String::new();
                for (n, ok, why) in &t.results {
                    s += &format!("{n}\t{}\t{why}\n", if *ok { "PASS" } else { "FAIL" });
                }
                let _ = std::fs::write(p, s);
            }
            passed = t.passed;
            failed = t.failed;
        }
    }
    let (passed, failed) = if left.is_empty() {
        println!("PASS cleanup.nothing-left");
        (passed + 1, failed)
    } else {
        println!("FAIL cleanup.nothing-left: {}", left.join("; "));
        (passed, failed + 1)
    };
    if let Some(p) = &o.results {
        let tagline = if left.is_empty() {
            "PASS\t".to_string()
        } else {
            format!("FAIL\t{}", left.join("; "))
        };
        let mut s = std::fs::read_to_string(p).unwrap_or_default();
        s += &format!("cleanup.nothing-left\t{tagline}\n");
        let _ = std::fs::write(p, s);
    }
    println!("berth-cri: {name} in {:.0}s", t0.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    if failed > 0 { 1 } else { 0 }
}
