//! Reliability under faults, races and hostile input (fast, deterministic scenarios). Each one
//! makes a step fail for real and then checks the host: no state dir, no mount, no cgroup below
//! the test parent, no process it recorded, and `list` still works. Every command runs with a
//! deadline, so a hang is a failure with a message.
mod common;
#[path = "common/leaks.rs"]
mod leaks;

use common::*;
use leaks::*;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

// In a module so that `cargo test --workspace -- reliability::` selects this suite alone
// (hack/stress.sh), with the same build as the rest of the tests.
mod reliability {
    use super::*;

    fn create_fails(env: &Env, id: &str, b: &Bundle, what: &str) -> String {
        b.save();
        let r = berth_limited(env, &["create", "--bundle", b.dir.to_str().unwrap(), id], T);
        assert!(!r.ok(), "{what}: create should fail");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert!(
            lines.last().is_some_and(|l| l.starts_with("berth: ")),
            "{what}: the error is a `berth: ...` line: {}",
            r.stderr
        );
        r.stderr
    }

    fn create_ok(env: &Env, id: &str, b: &Bundle) -> i32 {
        b.save();
        must(env, &["create", "--bundle", b.dir.to_str().unwrap(), id]);
        let st: serde_json::Value = serde_json::from_str(&must(env, &["state", id])).unwrap();
        st["pid"].as_i64().unwrap() as i32
    }

    /// A hook that records the state it got on stdin (and its own pid) and then exits with `code`.
    fn recording_hook(dir: &Path, name: &str, code: i32) -> serde_json::Value {
        let f = dir.join(name);
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "echo $$ > {f}.pid; {{ cat; echo; }} > {f}.tmp && mv {f}.tmp {f}; exit {code}",
        f = f.display())]})
    }

    #[test]
    fn every_create_step_that_fails_rolls_back() {
        let env = Env::new("rbcreate");
        let id = env.id("a");
        type Setup = Box<dyn Fn(&mut Bundle)>;
        let cases: Vec<(&str, Setup, &[&str])> = vec![
            (
                "a mount that cannot be made",
                Box::new(|b| {
                    b.config["mounts"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}))
                }),
                &["mounts[7]", "/x"],
            ),
            (
                "a missing executable",
                Box::new(|b| b.config["process"]["args"] = json!(["/bin/no-such-exe"])),
                &["process.args[0]", "/bin/no-such-exe"],
            ),
            (
                "a cgroup value the kernel rejects",
                Box::new(|b| b.config["linux"]["resources"] = json!({"cpu": {"cpus": "1000"}})),
                &["linux.resources.cpu.cpus"],
            ),
            (
                "a NUL byte in an argument",
                Box::new(|b| b.config["process"]["args"] = json!(["sh", "a\u{0}b"])),
                &["process.args[1]", "NUL"],
            ),
        ];
        for (what, setup, want) in cases {
            let mut b = env.bundle(&id, &["true"]);
            setup(&mut b);
            let err = create_fails(&env, &id, &b, what);
            for w in want {
                assert!(err.contains(w), "{what}: {w:?} not in {err}");
            }
            assert_host_clean(&env, &[], what);
        }
    }

    #[test]
    fn failing_create_hooks_roll_back_and_kill_the_container_process() {
        let env = Env::new("rbhook");
        let id = env.id("a");
        for kind in ["createRuntime", "createContainer", "prestart"] {
            let mut b = env.bundle(&id, &["true"]);
            b.config["hooks"] = json!({ kind: [recording_hook(&env.tmp, kind, 3)] });
            let err = create_fails(&env, &id, &b, kind);
            assert!(
                err.contains(kind) && err.contains("exit status 3"),
                "{kind}: {err}"
            );
            let st = std::fs::read_to_string(env.tmp.join(kind)).unwrap();
            let pid = pid_of_state(&st);
            assert!(pid > 0, "{kind}: the hook saw the container pid");
            assert_host_clean(&env, &[pid], kind);
        }
    }

    #[test]
    fn container_process_dying_before_start() {
        let env = Env::new("diebefore");
        let id = env.id("a");
        let b = env.bundle(&id, &["true"]);
        let pid = create_ok(&env, &id, &b);
        // SAFETY: kill(2) of the container process this test created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(wait_dead(&[pid], Duration::from_secs(5)).is_empty());
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(st["status"], "stopped");
        let r = berth_limited(&env, &["start", &id], T);
        assert!(!r.ok());
        assert!(
            r.stderr.contains("stopped") || r.stderr.contains("died"),
            "{}",
            r.stderr
        );
        must(&env, &["delete", &id]);
        assert_host_clean(&env, &[pid], "died before start");
    }

    #[test]
    fn failing_exec_start_and_delete_leave_the_container_as_it_was() {
        let env = Env::new("rbother");
        let id = env.id("a");
        let b = env.bundle(&id, &["sleep", "1000"]);
        let pid = create_ok(&env, &id, &b);
        must(&env, &["start", &id]);
        let before = std::fs::read(env.root.join(&id).join("state.json")).unwrap();
        for (args, want) in [
            (vec!["exec", &id, "/no/such/exe"], "/no/such/exe"),
            (vec!["exec", "--cwd", "relative", &id, "true"], "--cwd"),
            (vec!["exec", "--user", "x:y", &id, "true"], "--user"),
            (vec!["start", &id], "already running"),
            (vec!["delete", &id], "running"),
            (vec!["pause", "no-such-container"], "does not exist"),
        ] {
            let r = berth_limited(&env, &args, T);
            assert!(!r.ok(), "{args:?} should fail");
            assert!(
                r.stderr.contains(want),
                "{args:?}: {want:?} not in {}",
                r.stderr
            );
            assert_eq!(
                std::fs::read(env.root.join(&id).join("state.json")).unwrap(),
                before,
                "{args:?} changed state.json"
            );
            let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
            assert_eq!(st["status"], "running", "{args:?}");
            assert_eq!(st["pid"], pid, "{args:?}");
        }
        // The failed exec left no process in the container's cgroup.
        let ps = must(&env, &["ps", "--format", "json", &id]);
        let pids: Vec<i32> = serde_json::from_str(&ps).unwrap();
        assert_eq!(
            pids,
            vec![pid],
            "processes in the container after failed execs"
        );
        must(&env, &["delete", "--force", &id]);
        assert_host_clean(&env, &[pid], "failed exec/start/delete");
    }

    /// `kill --all` freezes the cgroup while it signals (so that nothing forks away); it must not
    /// thaw a container the user had paused.
    #[test]
    fn kill_all_keeps_a_paused_container_paused() {
        let env = Env::new("killpaused");
        let id = env.id("a");
        let b = env.bundle(&id, &["sleep", "1000"]);
        let pid = create_ok(&env, &id, &b);
        must(&env, &["start", &id]);
        must(&env, &["pause", &id]);
        must(&env, &["kill", "--all", &id, "CONT"]);
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(
            st["status"], "paused",
            "kill --all thawed a paused container"
        );
        must(&env, &["resume", &id]);
        must(&env, &["kill", "--all", &id, "CONT"]);
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(st["status"], "running", "kill --all left its own freeze");
        must(&env, &["delete", "--force", &id]);
        assert_host_clean(&env, &[pid], "kill --all on a paused container");
    }

    /// The tiny tmpfs as `--root`: a create that runs out of space at any of its writes fails
    /// cleanly and leaves nothing, and `list` keeps working.
    #[test]
    fn full_tmpfs_root() {
        let env = Env::new("enospc");
        let small = env.tmp.join("small");
        std::fs::create_dir_all(&small).unwrap();
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "size=64k,mode=700",
                "berth-test-enospc",
            ])
            .arg(&small)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs");
        // (Env's drop unmounts everything under env.tmp, even if this test fails.)
        let root = small.join("root");
        let berth = |args: &[&str]| {
            let mut c = std::process::Command::new(berth_bin());
            c.arg("--root").arg(&root).args(args);
            run_limited(c, &env.tmp, T, &format!("berth {args:?}"))
        };
        let id = env.id("a");
        let b = env.bundle(&id, &["true"]);
        let filler = small.join("filler");
        let (mut failed, mut succeeded) = (vec![], vec![]);
        for free_pages in 0..8u64 {
            let _ = std::fs::remove_file(&filler);
            // Fill the tmpfs, then give back `free_pages` pages.
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 4096];
            let mut len = 0u64;
            while std::io::Write::write_all(&mut f, &chunk).is_ok() {
                len += 4096;
            }
            drop(f);
            let keep = len.saturating_sub(free_pages * 4096);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&filler)
                .unwrap()
                .set_len(keep)
                .unwrap();
            let r = berth(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
            if r.ok() {
                succeeded.push(free_pages);
                let r = berth(&["delete", "--force", &id]);
                assert!(r.ok(), "delete after create: {}", r.stderr);
            } else {
                failed.push(free_pages);
                assert!(
                    r.stderr.contains("no space left on device"),
                    "free pages {free_pages}: {}",
                    r.stderr
                );
                assert_eq!(r.stderr.lines().count(), 1, "one error line: {}", r.stderr);
            }
            let left = state_entries(&root);
            assert!(left.is_empty(), "free pages {free_pages}: left {left:?}");
            let cg = cgroups_under_parent(&env);
            assert!(
                cg.is_empty(),
                "free pages {free_pages}: cgroups left {cg:?}"
            );
            let r = berth(&["list"]);
            assert!(r.ok(), "list on a full root: {}", r.stderr);
        }
        eprintln!("ENOSPC: failed with {failed:?} free pages, succeeded with {succeeded:?}");
        assert!(failed.contains(&0), "a full root must fail the create");
        assert!(
            succeeded.contains(&7),
            "7 free pages are enough for a create"
        );
        let _ = std::fs::remove_file(&filler);
        let st = std::process::Command::new("umount")
            .arg(&small)
            .status()
            .unwrap();
        assert!(st.success());
        assert_host_clean(&env, &[], "ENOSPC");
    }

    /// berth SIGKILLed while a createRuntime hook sleeps: `list` and `state` of the busy container
    /// and of another one answer at once; after the kill the container process and the hook die
    /// with berth (PDEATHSIG), the dir is shown as stopped and `delete --force` removes it and its
    /// cgroup.
    #[test]
    fn create_killed_in_a_sleeping_hook() {
        let env = Env::new("killhook");
        let other = env.id("other");
        let ob = env.bundle(&other, &["sleep", "1000"]);
        let other_pid = create_ok(&env, &other, &ob);

        let id = env.id("a");
        let mut b = env.bundle(&id, &["true"]);
        let f = env.tmp.join("hookstate");
        b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!(
        "echo $$ > {f}.pid.tmp && mv {f}.pid.tmp {f}.pid; {{ cat; echo; }} > {f}.tmp && mv {f}.tmp {f}; exec sleep 60",
        f = f.display())]}]});
        b.save();
        let mut c = env.cmd();
        c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
        c.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(env.tmp.join("create.out")).unwrap())
            .stderr(std::fs::File::create(env.tmp.join("create.err")).unwrap());
        let mut creator = c.spawn().unwrap();
        let pid = pid_of_state(&wait_file(&f, Duration::from_secs(20)));
        let hook_pid: i32 = wait_file(&env.tmp.join("hookstate.pid"), T)
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid) && alive(hook_pid));

        // The container's lock is held by the create: readers do not wait for it.
        for args in [
            vec!["list"],
            vec!["state", &id],
            vec!["state", &other],
            vec!["list", "--format", "json"],
        ] {
            let r = berth_limited(&env, &args, T);
            assert!(r.ok(), "{args:?}: {}", r.stderr);
            assert!(
                r.took < Duration::from_secs(3),
                "{args:?} took {:?} while a create held a lock",
                r.took
            );
        }
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(st["status"], "creating");
        // kill/exec on the other container are not blocked either.
        must(&env, &["start", &other]);
        must(&env, &["exec", &other, "true"]);

        creator.kill().unwrap();
        creator.wait().unwrap();
        let l = wait_dead(&[pid, hook_pid], Duration::from_secs(5));
        assert!(l.is_empty(), "alive after the create was killed: {l:?}");
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(
            st["status"], "stopped",
            "a crashed create is shown as stopped"
        );
        let list: serde_json::Value =
            serde_json::from_str(&must(&env, &["list", "--format", "json"])).unwrap();
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == id.as_str() && c["status"] == "stopped"),
            "{list}"
        );
        assert!(
            env.cgroup_parent_dirs()
                .iter()
                .any(|d| d.join(&id).exists()),
            "the crashed create had made its cgroup"
        );
        must(&env, &["delete", "--force", &id]);
        must(&env, &["delete", "--force", &other]);
        assert_host_clean(&env, &[pid, hook_pid, other_pid], "create killed in a hook");
    }

    #[test]
    fn ten_creates_race_for_one_id() {
        let env = Env::new("raceid");
        let id = env.id("a");
        let b = env.bundle(&id, &["sleep", "1000"]);
        let dir = b.dir.to_str().unwrap().to_string();
        let results: Vec<Ran> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..10)
                .map(|_| s.spawn(|| berth_limited(&env, &["create", "--bundle", &dir, &id], T)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = results.iter().filter(|r| r.ok()).count();
        assert_eq!(winners, 1, "exactly one create wins");
        for r in results.iter().filter(|r| !r.ok()) {
            assert!(
                r.stderr.contains("already exists"),
                "a loser's error: {}",
                r.stderr
            );
        }
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(st["status"], "created");
        let pid = st["pid"].as_i64().unwrap() as i32;
        assert!(alive(pid));
        assert_eq!(
            state_entries(&env.root),
            vec![id.clone()],
            "no temporary dirs left"
        );
        must(&env, &["start", &id]);
        let st: serde_json::Value = serde_json::from_str(&must(&env, &["state", &id])).unwrap();
        assert_eq!(st["status"], "running");
        let ps: Vec<i32> =
            serde_json::from_str(&must(&env, &["ps", "--format", "json", &id])).unwrap();
        assert_eq!(ps, vec![pid], "the winner's cgroup holds its process");
        must(&env, &["kill", &id, "KILL"]);
        assert!(wait_dead(&[pid], Duration::from_secs(5)).is_empty());
        must(&env, &["delete", &id]);
        assert_host_clean(&env, &[pid], "race for one id");
    }

    /// A state.json that is unreadable (torn by a disk, or truncated by hand): `list` shows the
    /// container, `state` says what is wrong and what to do, `delete --force` removes the dir, and
    /// the container's process and cgroup too (found from the saved config.json).
    #[test]
    fn corrupt_state_is_listed_and_removed_with_its_cgroup() {
        let env = Env::new("corrupt");
        for (n, garbage) in [&b"{\"id\": \"tor"[..], b"", b"[1, 2]", b"\x00\xff"]
            .into_iter()
            .enumerate()
        {
            let id = env.id(&format!("c{n}"));
            let b = env.bundle(&id, &["sleep", "1000"]);
            let pid = create_ok(&env, &id, &b);
            must(&env, &["start", &id]);
            std::fs::write(env.root.join(&id).join("state.json"), garbage).unwrap();
            let r = berth_limited(&env, &["state", &id], T);
            assert!(!r.ok());
            assert!(
                r.stderr.contains("corrupt") && r.stderr.contains("delete --force"),
                "{}",
                r.stderr
            );
            let list = must(&env, &["list", "-q"]);
            assert!(list.lines().any(|l| l == id), "{list}");
            let r = berth_limited(&env, &["delete", &id], T);
            assert!(!r.ok(), "delete without --force of an unreadable state");
            must(&env, &["delete", "--force", &id]);
            assert_host_clean(&env, &[pid], &format!("corrupt state {garbage:?}"));
        }
    }

    #[test]
    fn hostile_ids_and_signals() {
        let env = Env::new("hostile");
        let long = "x".repeat(1000);
        let b = env.bundle("x", &["sleep", "1000"]);
        for id in [
            "a/b",
            "..",
            "../x",
            "a\nb",
            "a b",
            "",
            long.as_str(),
            ".hidden",
            "a\u{7f}",
        ] {
            for args in [
                vec!["create", "--bundle", b.dir.to_str().unwrap(), "--", id],
                vec!["state", "--", id],
                vec!["delete", "--force", "--", id],
                vec!["kill", "--", id, "KILL"],
                vec!["exec", "--", id, "true"],
            ] {
                let r = berth_limited(&env, &args, T);
                assert!(!r.ok(), "{args:?} accepted");
                assert!(
                    r.stderr.contains("container id") || r.stderr.contains("does not exist"),
                    "{args:?}: {}",
                    r.stderr
                );
                assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
            }
        }
        assert!(state_entries(&env.root).is_empty());
        // A NUL cannot reach berth through argv; Rust's Command refuses it before the exec.
        assert!(env.cmd().args(["state", "a\0b"]).output().is_err());

        let id = env.id("sig");
        let b = env.bundle(&id, &["sleep", "1000"]);
        let pid = create_ok(&env, &id, &b);
        must(&env, &["start", &id]);
        for sig in [
            "FOO",
            "99",
            "0",
            "-1",
            "SIG",
            "",
            "9x",
            "KILL KILL",
            "4294967305",
        ] {
            let r = berth_limited(&env, &["kill", "--", &id, sig], T);
            assert!(!r.ok(), "kill {sig:?} accepted");
            assert!(r.stderr.contains("signal"), "kill {sig:?}: {}", r.stderr);
            assert!(alive(pid), "kill {sig:?} hurt the container");
        }
        must(&env, &["delete", "--force", &id]);
        assert_host_clean(&env, &[pid], "hostile ids and signals");
    }

    #[test]
    fn symlinks_in_the_bundle_and_rootfs() {
        let env = Env::new("symlinks");
        // config.json and rootfs as symlinks are followed (as runc does).
        let id = env.id("a");
        let b = env.bundle(&id, &["sh", "-c", "test -d /escape-target && echo inside"]);
        let real = env.tmp.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::rename(b.dir.join("rootfs"), real.join("rootfs")).unwrap();
        std::os::unix::fs::symlink(real.join("rootfs"), b.dir.join("rootfs")).unwrap();
        // A rootfs symlink pointing out of it, absolute and relative: mount destinations through
        // them stay inside the rootfs.
        let tag = format!("berth-escape-{}", std::process::id());
        let rootfs = real.join("rootfs");
        std::os::unix::fs::symlink("/", rootfs.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../tmp", rootfs.join("rel")).unwrap();
        let mut b = b;
        b.config["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": format!("/abs/{tag}"), "type": "tmpfs", "source": "tmpfs"}),
            json!({"destination": format!("/rel/{tag}"), "type": "tmpfs", "source": "tmpfs"}),
        ]);
        b.config["process"]["args"] = json!([
            "sh",
            "-c",
            format!(
                "test -d /{tag} && test -d /tmp/{tag} && grep -q ' /{tag} ' /proc/self/mountinfo && echo inside"
            )
        ]);
        b.save();
        std::fs::rename(b.dir.join("config.json"), real.join("config.json")).unwrap();
        std::os::unix::fs::symlink(real.join("config.json"), b.dir.join("config.json")).unwrap();
        let r = berth_limited(&env, &["run", "--bundle", b.dir.to_str().unwrap(), &id], T);
        assert!(r.ok(), "run: {}", r.stderr);
        assert_eq!(r.stdout, "inside\n");
        assert!(
            !Path::new("/").join(&tag).exists(),
            "a mount escaped to /{tag}"
        );
        assert!(
            !Path::new("/tmp").join(&tag).exists(),
            "a mount escaped to /tmp/{tag}"
        );
        assert!(rootfs.join(&tag).is_dir() && rootfs.join("tmp").join(&tag).is_dir());

        // root.path as a symlink to a file, a dangling one, and a loop.
        for (n, target) in ["/etc/hostname", "/nonexistent-root", "loop"]
            .iter()
            .enumerate()
        {
            let id = env.id(&format!("r{n}"));
            let b = env.bundle(&id, &["true"]);
            std::fs::remove_dir_all(b.dir.join("rootfs")).unwrap();
            std::os::unix::fs::symlink(target, b.dir.join("rootfs")).unwrap();
            if *target == "loop" {
                std::fs::remove_file(b.dir.join("rootfs")).unwrap();
                std::os::unix::fs::symlink("rootfs", b.dir.join("rootfs")).unwrap();
            }
            let err = create_fails(&env, &id, &b, target);
            assert!(err.contains("root.path"), "{target}: {err}");
        }
        // config.json a dangling symlink.
        let id = env.id("c");
        let b = env.bundle(&id, &["true"]);
        std::fs::remove_file(b.dir.join("config.json")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/config.json", b.dir.join("config.json")).unwrap();
        let r = berth_limited(
            &env,
            &["create", "--bundle", b.dir.to_str().unwrap(), &id],
            T,
        );
        assert!(!r.ok() && r.stderr.contains("config.json"), "{}", r.stderr);
        assert_host_clean(&env, &[], "symlinks");
    }

    #[test]
    fn huge_deep_and_odd_json() {
        let env = Env::new("bigjson");
        let id = env.id("a");
        let b = env.bundle(&id, &["true"]);
        let cfg = b.dir.join("config.json");
        let write = |text: &[u8]| std::fs::write(&cfg, text).unwrap();
        let create = || {
            berth_limited(
                &env,
                &["create", "--bundle", b.dir.to_str().unwrap(), &id],
                T,
            )
        };
        // Deeply nested, at the top and inside a field: serde_json's recursion limit, no crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for text in [
            deep.clone(),
            format!("{{\"ociVersion\": \"1.0.2\", \"annotations\": {{\"a\": {deep}}}}}"),
            "{\"ociVersion\": \"1.0.2\", \"a\": 1, \"a\": 2".into(),
            "\u{feff}{}".into(),
            "null".into(),
            "{} {}".into(),
            "\"\\ud800\"".into(),
        ] {
            write(text.as_bytes());
            let r = create();
            assert!(!r.ok());
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
            assert!(r.stderr.contains("config.json"), "{}", r.stderr);
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
        // Unknown fields at every level are ignored (config.md: "MUST ignore unknown properties").
        let mut c = b.config.clone();
        c["x-unknown"] = json!({"deep": [1, 2, {"x": null}]});
        c["process"]["x-unknown"] = json!(1);
        c["linux"]["x-unknown"] = json!("y");
        c["root"]["x-unknown"] = json!([]);
        c["mounts"][0]["x-unknown"] = json!(true);
        write(&serde_json::to_vec(&c).unwrap());
        let r = create();
        assert!(r.ok(), "unknown fields: {}", r.stderr);
        must(&env, &["delete", "--force", &id]);
        // A huge annotation (8 MiB) is carried, not choked on.
        let mut c = b.config.clone();
        c["annotations"] = json!({"big": "x".repeat(8 << 20)});
        write(&serde_json::to_vec(&c).unwrap());
        let r = create();
        assert!(r.ok(), "huge config: {}", r.stderr);
        let r = berth_limited(&env, &["state", &id], T);
        assert!(r.ok() && r.stdout.len() > 8 << 20);
        must(&env, &["delete", "--force", &id]);
        assert_host_clean(&env, &[], "huge and deep JSON");
    }

    #[test]
    fn malformed_update_resources_and_exec_process() {
        let env = Env::new("badjsonarg");
        let id = env.id("a");
        let b = env.bundle(&id, &["sleep", "1000"]);
        let pid = create_ok(&env, &id, &b);
        must(&env, &["start", &id]);
        let statef = env.root.join(&id).join("state.json");
        let configf = env.root.join(&id).join("config.json");
        let (state0, config0) = (
            std::fs::read(&statef).unwrap(),
            std::fs::read(&configf).unwrap(),
        );
        let f = env.tmp.join("arg.json");
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(&str, &str, &str)> = vec![
            ("update", "{", "--resources"),
            ("update", "[]", "--resources"),
            ("update", &deep, "--resources"),
            ("update", r#"{"memory": {"limit": "lots"}}"#, "memory.limit"),
            ("update", r#"{"pids": {"limit": [1]}}"#, "pids.limit"),
            ("update", r#"{"cpu": {"shares": -5}}"#, "cpu.shares"),
            ("exec", "{", "--process"),
            ("exec", "", "--process"),
            ("exec", &deep, "--process"),
            ("exec", r#"{"args": "sh", "cwd": "/"}"#, "process.args"),
            (
                "exec",
                r#"{"args": ["true"], "cwd": 7, "user": {"uid": 0, "gid": 0}}"#,
                "process.cwd",
            ),
            (
                "exec",
                r#"{"args": ["true"], "cwd": "/"}"#,
                "process: missing field `user`",
            ),
            (
                "exec",
                r#"{"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#,
                "args",
            ),
            (
                "exec",
                r#"{"args": ["true"], "cwd": "relative", "user": {"uid": 0, "gid": 0}}"#,
                "cwd",
            ),
            (
                "exec",
                r#"{"args": ["true"], "cwd": "/", "user": {"uid": -1}}"#,
                "process.user.uid",
            ),
            (
                "exec",
                r#"{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "rlimits": [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]}"#,
                "process.rlimits[0].type",
            ),
        ];
        for (cmd, text, want) in cases {
            std::fs::write(&f, text).unwrap();
            let fs = f.to_str().unwrap();
            let args = match cmd {
                "update" => vec!["update", "--resources", fs, &id],
                _ => vec!["exec", "--process", fs, &id],
            };
            let r = berth_limited(&env, &args, T);
            let short: String = text.chars().take(40).collect();
            assert!(!r.ok(), "{cmd} {short:?} accepted");
            assert!(
                r.stderr.contains(want),
                "{cmd} {short:?}: {want:?} not in {}",
                r.stderr
            );
            assert_eq!(r.stderr.lines().count(), 1, "{cmd} {short:?}: {}", r.stderr);
            assert_eq!(
                std::fs::read(&statef).unwrap(),
                state0,
                "{cmd} {short:?}: state.json"
            );
            assert_eq!(
                std::fs::read(&configf).unwrap(),
                config0,
                "{cmd} {short:?}: config.json"
            );
            assert!(alive(pid));
        }
        let ps: Vec<i32> =
            serde_json::from_str(&must(&env, &["ps", "--format", "json", &id])).unwrap();
        assert_eq!(ps, vec![pid], "no process left from the failed execs");
        must(&env, &["delete", "--force", &id]);
        assert_host_clean(&env, &[pid], "malformed update/exec JSON");
    }

    /// A panic is reported as one `berth: internal error ...` line, never a raw panic message or a
    /// backtrace, even with RUST_BACKTRACE set. Writing to a full stdout is one real way to make
    /// Rust's print machinery panic.
    #[test]
    fn a_panic_is_one_error_line() {
        let env = Env::new("panic");
        for args in [
            vec!["list"],
            vec!["--version"],
            vec!["list", "--format", "json"],
        ] {
            let mut c = env.cmd();
            c.args(&args)
                .env("RUST_BACKTRACE", "full")
                .stdin(std::process::Stdio::null())
                .stdout(std::fs::File::create("/dev/full").unwrap());
            let t0 = Instant::now();
            let out = c.stderr(std::process::Stdio::piped()).output().unwrap();
            assert!(t0.elapsed() < T);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} on a full stdout must fail");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("berth: "), "{args:?}: {err}");
            assert!(
                !err.contains("panicked") && !err.contains("backtrace"),
                "{args:?}: {err}"
            );
        }
    }
}
