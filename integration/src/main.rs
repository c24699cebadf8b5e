//! berth-integration: a runtime-agnostic OCI runtime-spec conformance suite.
//!
//! Usage: berth-integration --runtime PATH [--filter SUB[,SUB..]] [--rootfs DIR]
//!        [--probe PATH] [--results FILE] [--list] [-v]
//!
//! Each scenario builds its own bundle from a private copy of the busybox rootfs, runs it
//! with the runtime under test (private `--root`, test-only cgroup parent), and checks the
//! result from the host and, through the static probe, from inside the container.

mod harness;
mod scenarios;

use harness::{Ctx, Outcome, Runner};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: berth-integration --runtime PATH [--filter SUB[,SUB..]] [--rootfs DIR] \
         [--probe PATH] [--results FILE] [--list] [-v]"
    );
    std::process::exit(2)
}

fn main() {
    let mut runtime = None;
    let mut filter: Vec<String> = vec![];
    let mut rootfs = PathBuf::from("hack/.cache/rootfs");
    let mut probe = PathBuf::from("target/release/berth-probe");
    let mut results = None;
    let mut list = false;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(val())),
            "--filter" => {
                filter = val()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "--rootfs" => rootfs = PathBuf::from(val()),
            "--probe" => probe = PathBuf::from(val()),
            "--results" => results = Some(PathBuf::from(val())),
            "--list" => list = true,
            "-v" | "--verbose" => verbose = true,
            _ => usage(),
        }
    }
    let all = scenarios::all();
    let selected: Vec<_> = all
        .iter()
        .filter(|s| filter.is_empty() || filter.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    if list {
        for s in &selected {
            println!("{}\t{}", s.name, s.covers);
        }
        return;
    }
    let Some(runtime) = runtime else { usage() };
    let runtime = std::fs::canonicalize(&runtime).unwrap_or_else(|e| {
        eprintln!("runtime {}: {e}", runtime.display());
        std::process::exit(2)
    });
    let abs = |p: PathBuf| {
        std::fs::canonicalize(&p).unwrap_or_else(|e| {
            eprintln!("{}: {e}", p.display());
            std::process::exit(2)
        })
    };
    let rootfs = abs(rootfs);
    let probe = abs(probe);
    if !rootfs.join("bin/busybox").exists() {
        eprintln!("{} is not the busybox rootfs", rootfs.display());
        std::process::exit(2);
    }

    // A variable that must not leak from the runtime's environment into containers.
    // SAFETY: set before any thread exists.
    unsafe { std::env::set_var(scenarios::HOST_ENV_CANARY, "1") };

    // Container processes are reparented to us once the runtime's create exits, so we
    // can reap them and see their exit status.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let pid = std::process::id();
    let tmp = std::env::temp_dir().join(format!("berth-integration-{pid}"));
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).expect("mkdir temp root");
    let runner = Runner {
        runtime: runtime.clone(),
        root,
        tmp: tmp.clone(),
        rootfs,
        probe,
        cg_parent: format!("/berth-integration-{pid}"),
        seq: AtomicU32::new(0),
        verbose,
    };

    // Quiet the default panic printout; the failure reason is reported per scenario.
    std::panic::set_hook(Box::new(|_| {}));

    let t0 = Instant::now();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut lines = vec![];
    for s in &selected {
        let t = Instant::now();
        let mut ctx = Ctx::new(&runner, s.name, Duration::from_secs(60));
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| (s.run)(&mut ctx)));
        // Cleanup runs whatever happened above.
        let cleanup = std::panic::catch_unwind(AssertUnwindSafe(|| ctx.cleanup()));
        let (tag, why) = match r {
            Ok(Ok(())) => ("PASS", String::new()),
            Ok(Err(Outcome::Fail(m))) => ("FAIL", m),
            Ok(Err(Outcome::Skip(m))) => ("SKIP", m),
            Err(p) => {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                ("FAIL", format!("panic: {m}"))
            }
        };
        if cleanup.is_err() {
            eprintln!("warning: cleanup of {} panicked", s.name);
        }
        match tag {
            "PASS" => passed += 1,
            "FAIL" => failed += 1,
            _ => skipped += 1,
        }
        let why1 = why.replace(['\n', '\t'], " ");
        println!(
            "{tag} {} ({:.1}s){}{}",
            s.name,
            t.elapsed().as_secs_f64(),
            if why1.is_empty() { "" } else { ": " },
            why1
        );
        let _ = std::io::stdout().flush();
        lines.push(format!("{}\t{tag}\t{why1}", s.name));
    }

    let left = harness::remove_cgroup_tree(&runner.cg_parent);
    for l in &left {
        eprintln!("warning: could not remove cgroup {l}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    harness::reap_orphans();
    if let Some(p) = results {
        let _ = std::fs::write(p, lines.join("\n") + "\n");
    }
    println!(
        "{}: {passed} passed, {failed} failed, {skipped} skipped in {:.0}s",
        runtime.display(),
        t0.elapsed().as_secs_f64()
    );
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
