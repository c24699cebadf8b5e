//! runc 1.5's command line beyond the flags' names (those are checked against runc's list by
//! the unit test cli::tests::accepts_every_runc_flag): `--pidfd-socket` on create, run and exec,
//! `run --no-subreaper`, `create/run --config`, and update's `--cpu-share`, `--cpu-idle`,
//! `--kernel-memory`, `--l3-cache-schema`, `--mem-bw-schema` — each checked by its effect.
mod common;
use common::*;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;

/// Receive one descriptor and the message it came with.
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (String, OwnedFd) {
    let mut buf = [0u8; 64];
    let mut cmsg = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr filled with valid buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len();
    // SAFETY: recvmsg into the buffers above; CMSG_DATA of the first header holds the fd.
    let (n, fd) = unsafe {
        let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
        let h = libc::CMSG_FIRSTHDR(&msg);
        assert!(!h.is_null(), "no descriptor came with the message");
        assert_eq!((*h).cmsg_type, libc::SCM_RIGHTS);
        (n as usize, *(libc::CMSG_DATA(h) as *const i32))
    };
    // SAFETY: a descriptor just received with SCM_RIGHTS, owned by nobody else.
    (String::from_utf8_lossy(&buf[..n]).into_owned(), unsafe {
        OwnedFd::from_raw_fd(fd)
    })
}

/// `berth ARGS` whose container keeps running (a detached run or exec): stdout to /dev/null, so
/// that no pipe waits for the container; returns (success, stderr).
fn detached(env: &Env, args: &[&str]) -> (bool, String) {
    let err = env.tmp.join("detached.err");
    let st = env
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    (st.success(), std::fs::read_to_string(&err).unwrap())
}

/// A socket in the env's directory and a thread that receives one descriptor on it.
fn pidfd_receiver(
    env: &Env,
    name: &str,
) -> (
    std::path::PathBuf,
    std::thread::JoinHandle<(String, OwnedFd)>,
) {
    let sock = env.tmp.join(name);
    let listener = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    (sock, t)
}

/// The received descriptor really is a pidfd of `pid`: its link says so, its fdinfo names the
/// pid, and the kernel accepts it for pidfd_send_signal (signal 0: a liveness check).
fn assert_pidfd_of(fd: &OwnedFd, pid: i32) {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    assert_eq!(link.to_string_lossy(), "anon_inode:[pidfd]");
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    assert!(
        info.lines().any(|l| l == format!("Pid:\t{pid}")),
        "fdinfo of the pidfd does not name pid {pid}:\n{info}"
    );
    assert_eq!(pidfd_send_signal(fd, 0), 0, "pidfd_send_signal(0)");
}

fn pidfd_send_signal(fd: &OwnedFd, sig: i32) -> i64 {
    // SAFETY: pidfd_send_signal with a pidfd we own, no siginfo, no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    }
}

#[test]
fn pidfd_socket_on_create_run_and_exec() {
    let env = Env::new("pidfd");

    // create: the container's process, named "standard" as runc names it; killing it through
    // the pidfd stops the container.
    let id = env.id("c");
    let b = env.bundle(&id, &["sleep", "1000"]);
    let (sock, t) = pidfd_receiver(&env, "create.sock");
    let st = env
        .cmd()
        .args(["create", "--pidfd-socket"])
        .arg(&sock)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let (name, fd) = t.join().unwrap();
    assert_eq!(name, "standard");
    let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_pidfd_of(&fd, pid);
    env.ok(&["start", &id]);

    // exec: the new process, named "setns".
    let (sock, t) = pidfd_receiver(&env, "exec.sock");
    let pf = env.tmp.join("exec.pid");
    let (ok, err) = detached(
        &env,
        &[
            "exec",
            "--detach",
            "--pidfd-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            pf.to_str().unwrap(),
            &id,
            "sleep",
            "1000",
        ],
    );
    assert!(ok, "{err}");
    let (name, efd) = t.join().unwrap();
    assert_eq!(name, "setns");
    let epid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_pidfd_of(&efd, epid);
    assert_ne!(epid, pid);

    assert_eq!(pidfd_send_signal(&fd, libc::SIGKILL), 0);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", "--force", &id]);

    // run --detach: the container's process again.
    let id2 = env.id("r");
    let b2 = env.bundle(&id2, &["sleep", "1000"]);
    let (sock, t) = pidfd_receiver(&env, "run.sock");
    let (ok, err) = detached(
        &env,
        &[
            "run",
            "--detach",
            "--pidfd-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b2.dir.to_str().unwrap(),
            &id2,
        ],
    );
    assert!(ok, "{err}");
    let (name, rfd) = t.join().unwrap();
    assert_eq!(name, "standard");
    assert_pidfd_of(&rfd, env.state(&id2)["pid"].as_i64().unwrap() as i32);
    env.ok(&["delete", "--force", &id2]);

    // A socket nobody listens on: a clear error before anything is made.
    let id3 = env.id("x");
    let b3 = env.bundle(&id3, &["true"]);
    let (code, _, err) = env.call(&[
        "run",
        "--pidfd-socket",
        env.tmp.join("nobody.sock").to_str().unwrap(),
        "--bundle",
        b3.dir.to_str().unwrap(),
        &id3,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--pidfd-socket") && err.contains("nobody.sock"),
        "{err}"
    );
    assert!(!env.root.join(&id3).exists());
}

/// `run` makes berth the child subreaper (a process orphaned in a container without its own pid
/// namespace comes to berth, not to the host's init); `run --no-subreaper` does not, as runc.
#[test]
fn run_no_subreaper() {
    let env = Env::new("subreaper");
    for (tag, flag) in [("with", None), ("without", Some("--no-subreaper"))] {
        let id = env.id(tag);
        // No pid namespace: the container sees host pids, and its orphan goes wherever the
        // host would put it. `(sleep &)` orphans the sleep at once; its parent is printed.
        let mut b = env.bundle(
            &id,
            &[
                "sh",
                "-c",
                "o=$(sh -c 'sleep 100 >/dev/null 2>&1 & echo $!'); sleep 0.3; \
                 echo berth=$PPID; grep PPid /proc/$o/status; kill $o",
            ],
        );
        let nss = b.config["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "pid");
        b.save();
        let mut args = vec!["run", "--bundle", b.dir.to_str().unwrap()];
        args.extend(flag);
        args.push(&id);
        let (code, out, err) = env.call(&args);
        assert_eq!(code, 0, "{tag}: {out} {err}");
        let berth: i32 = out
            .lines()
            .find_map(|l| l.strip_prefix("berth="))
            .unwrap_or_else(|| panic!("{out}"))
            .parse()
            .unwrap();
        let orphan_parent: i32 = out
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .unwrap_or_else(|| panic!("{out}"))
            .trim()
            .parse()
            .unwrap();
        if flag.is_none() {
            assert_eq!(orphan_parent, berth, "{tag}: {out}");
        } else {
            // It went to the host's reaper (init, or a subreaper above berth), not to berth.
            assert_ne!(orphan_parent, berth, "{tag}: {out}");
        }
    }
}

/// `--config FILE` (runc 1.5): the spec comes from FILE, relative to the bundle, not from
/// config.json.
#[test]
fn create_and_run_with_config() {
    let env = Env::new("cfgflag");
    let id = env.id("a");
    let b = env.bundle(&id, &["echo", "from-config.json"]);
    let mut other = b.config.clone();
    other["process"]["args"] = json!(["echo", "from-other.json"]);
    std::fs::write(
        b.dir.join("other.json"),
        serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    let dir = b.dir.to_str().unwrap();
    let (code, out, err) = env.call(&["run", "--config", "other.json", "--bundle", dir, &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "from-other.json");
    let (code, out, err) = env.call(&["run", "--bundle", dir, &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "from-config.json");
    // create too, and an absolute path; a missing file names itself.
    let abs = b.dir.join("other.json");
    let out = env
        .cmd()
        .args(["create", "--config"])
        .arg(&abs)
        .args(["--bundle", dir, &id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(env.tmp.join("c.out")).unwrap())
        .status()
        .unwrap();
    assert!(out.success());
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    assert_eq!(
        std::fs::read_to_string(env.tmp.join("c.out"))
            .unwrap()
            .trim(),
        "from-other.json"
    );
    env.ok(&["delete", &id]);
    let (code, _, err) = env.call(&["run", "--config", "nope.json", "--bundle", dir, &id]);
    assert_ne!(code, 0);
    assert!(err.contains("nope.json"), "{err}");
}

fn cpu_dir(env: &Env, id: &str) -> std::path::PathBuf {
    let rel = format!("{}/{id}", env.cg_parent.trim_start_matches('/'));
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join(rel)
    } else {
        root.join("cpu").join(rel)
    }
}

/// update: `--cpu-share` (runc's name; berth's `--cpu-shares` stays), `--cpu-idle`,
/// `--kernel-memory` (ignored with a warning, as runc), `--l3-cache-schema` and
/// `--mem-bw-schema` (no resctrl here: a clear error, nothing changed).
#[test]
fn update_runc_flags() {
    let env = Env::new("updflags");
    let id = env.id("a");
    let b = env.bundle(&id, &["sleep", "1000"]);
    env.create(&id, &b);
    let d = cpu_dir(&env, &id);
    let v2 = d.join("cpu.weight").exists();
    let read = |f: &str| {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    env.ok(&["update", "--cpu-share", "2048", &id]);
    assert_eq!(
        read(if v2 { "cpu.weight" } else { "cpu.shares" }),
        if v2 { "174" } else { "2048" }
    );
    env.ok(&["update", "--cpu-shares", "512", &id]);
    assert_eq!(
        read(if v2 { "cpu.weight" } else { "cpu.shares" }),
        if v2 { "59" } else { "512" }
    );
    if d.join("cpu.idle").exists() {
        env.ok(&["update", "--cpu-idle", "1", &id]);
        assert_eq!(read("cpu.idle"), "1");
        env.ok(&["update", "--cpu-idle", "0", &id]);
        assert_eq!(read("cpu.idle"), "0");
    }
    let (code, _, err) = env.call(&["update", "--kernel-memory", "10m", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--kernel-memory") && err.contains("ignored"),
        "{err}"
    );
    let weight_file = if v2 { "cpu.weight" } else { "cpu.shares" };
    let before = read(weight_file);
    let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    for flag in ["--l3-cache-schema", "--mem-bw-schema"] {
        let (code, _, err) = env.call(&["update", flag, "L3:0=f", &id]);
        assert_ne!(code, 0, "{flag} succeeded");
        assert!(err.contains(flag), "{err}");
        if !resctrl {
            assert!(err.contains("resctrl"), "{err}");
        }
    }
    // The failed updates changed nothing.
    assert_eq!(read(weight_file), before);
    env.ok(&["delete", "--force", &id]);
}
