//! The container process: user, env, cwd, rlimits, capabilities, namespaces, mounts, terminal,
//! preserved fds — checked from inside the container and on the host.
mod common;
use common::*;
use serde_json::json;

fn run_ok(env: &Env, b: &Bundle, id: &str) -> String {
    let (code, out, err) = env.run(id, b);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

#[test]
fn user_env_cwd_umask_rlimits() {
    let env = Env::new("procattrs");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "id -u; id -g; id -G; echo $FOO; pwd; umask; ulimit -n; ulimit -Hn; echo $HOME",
        ],
    );
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [100, 65534], "umask": 63});
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/home/user");
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
    let out = run_ok(&env, &b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    let groups: Vec<&str> = l[2].split(' ').collect();
    assert!(
        groups.contains(&"100") && groups.contains(&"65534"),
        "{}",
        l[2]
    );
    assert_eq!(l[3], "bar baz");
    assert_eq!(l[4], "/home/user");
    assert_eq!(l[5], "0077");
    assert_eq!(l[6], "321");
    assert_eq!(l[7], "654");
    assert_eq!(l[8], "/home/user", "HOME from /etc/passwd");
}

#[test]
fn missing_cwd_is_created() {
    let env = Env::new("cwdmk");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["pwd"]);
    b.config["process"]["cwd"] = json!("/new/dir");
    assert_eq!(run_ok(&env, &b, &id).trim(), "/new/dir");
}

#[test]
fn capabilities_are_applied_for_root_and_non_root() {
    let env = Env::new("caps");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = run_ok(&env, &b, &id);
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10
    assert!(out.contains("CapBnd:\t0000000000000421"), "{out}");
    // Non-root after exec: only the ambient set survives into permitted/effective.
    assert!(out.contains("CapAmb:\t0000000000000400"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000400"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000400"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn unknown_and_unavailable_capabilities_are_warned_and_skipped() {
    let env = Env::new("capwarn");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "grep CapBnd /proc/self/status"]);
    b.config["process"]["capabilities"]["bounding"] =
        json!(["CAP_KILL", "CAP_TEST", "CAP_SYS_RESOURCE"]);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("CAP_TEST"),
        "warning names the unknown capability: {err}"
    );
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
}

#[test]
fn user_namespace_with_several_ranges() {
    let env = Env::new("userns");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; grep CapBnd /proc/self/status",
        ],
    );
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 200000, "size": 10}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // The rootfs must be readable by the mapped root; the root is read-only anyway.
    let out = run_ok(&env, &b, &id);
    let maps: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], ["0", "100000", "1000"]);
    assert_eq!(maps[1], ["1000", "200000", "10"]);
    assert_eq!(maps[2], ["0", "100000", "65536"]);
    assert_eq!(maps[3], ["0"]);
    // A new user namespace starts with a full bounding set: the container's must still be
    // exactly the listed capabilities, as without one (this host's root lacks some, e.g.
    // CAP_SYS_RESOURCE, which must not come back inside).
    let id2 = env.id("b");
    let b2 = env.bundle(&id2, &["grep", "CapBnd", "/proc/self/status"]);
    let plain = run_ok(&env, &b2, &id2);
    assert_eq!(
        maps[4],
        plain.split_whitespace().collect::<Vec<_>>(),
        "{out}"
    );
}

#[test]
fn mounts_options_readonly_root_masked_and_readonly_paths() {
    let env = Env::new("mounts");
    let id = env.id("a");
    let src = env.tmp.join("shared");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "from-host\n").unwrap();
    let mut b = env.bundle(&id, &["sh", "-c", "cat /data/f; touch /data/x 2>&1 | grep -o 'Read-only' ; touch /root/x 2>&1 | grep -o 'Read-only'; grep ' /scratch ' /proc/self/mountinfo; echo > /scratch/ok && echo scratch-rw; cat /proc/keys | wc -c; (echo x > /proc/sys/kernel/domainname) 2>&1 | grep -o 'Read-only'; true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid"]}));
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "noexec", "size=1m", "mode=700"]}));
    let out = run_ok(&env, &b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "from-host");
    assert_eq!(l[1], "Read-only", "ro bind");
    assert_eq!(l[2], "Read-only", "root.readonly");
    assert!(
        l[3].contains("nodev") && l[3].contains("noexec"),
        "{}",
        l[3]
    );
    assert_eq!(l[4], "scratch-rw");
    assert_eq!(l[5], "0", "/proc/keys masked by /dev/null");
    assert_eq!(l.get(6), Some(&"Read-only"), "/proc/sys read-only");
    assert!(!src.join("x").exists());
}

#[test]
fn no_pivot_and_sysctl_and_hostname() {
    let env = Env::new("nopivot");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname; hostname",
        ],
    );
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["hostname"] = json!("box1");
    b.config["domainname"] = json!("example.org");
    b.save();
    let out = env
        .cmd()
        .args(["run", "--no-pivot", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "1\nexample.org\nbox1\n");
    // The host's value is untouched (own network namespace).
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let _ = host;
}

#[test]
fn preserve_fds_and_listen_fds() {
    use std::os::unix::process::CommandExt;
    let env = Env::new("fds");
    let id = env.id("a");
    let b = env.bundle(
        &id,
        &[
            "sh",
            "-c",
            "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; echo $LISTEN_FDS $LISTEN_PID",
        ],
    );
    b.save();
    std::fs::write(env.tmp.join("in"), "fd3-content\n").unwrap();
    let f = std::fs::File::open(env.tmp.join("in")).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    let mut c = env.cmd();
    c.args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(&b.dir)
        .arg(&id);
    c.env("LISTEN_FDS", "0");
    c.stdin(std::process::Stdio::null());
    // SAFETY: only dup2 in the forked child before exec.
    unsafe {
        c.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it in that case.
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l: Vec<&str> = text.lines().collect();
    assert_eq!(l[0], "fd3-content");
    // 0,1,2, the preserved 3, and ls's own directory fd; nothing of berth's.
    let fds: Vec<&str> = l[1].split_whitespace().collect();
    assert_eq!(fds.len(), 5, "unexpected fds: {fds:?}");
    assert_eq!(l[2], "0 1");
}

#[test]
fn terminal_over_console_socket() {
    use std::os::unix::net::UnixListener;
    let env = Env::new("tty");
    let id = env.id("a");
    let mut b = env.bundle(
        &id,
        &["sh", "-c", "tty; stty size; ls -l /dev/console | cut -c1"],
    );
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    b.save();
    let sock = env.tmp.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let fd = recv_fd(&conn);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading from the received pty master.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let so = std::fs::File::create(b.dir.join("stdout")).unwrap();
    let st = env
        .cmd()
        .args(["create", "--console-socket"])
        .arg(&sock)
        .args(["--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(so)
        .status()
        .unwrap();
    assert!(st.success());
    env.ok(&["start", &id]);
    let out = t.join().unwrap();
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("33 111"), "{out:?}");
    assert!(out.contains('c'), "/dev/console is a char device: {out:?}");
}

fn recv_fd(conn: &std::os::unix::net::UnixStream) -> i32 {
    use std::os::fd::AsRawFd;
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
    unsafe {
        assert!(libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) > 0);
        let h = libc::CMSG_FIRSTHDR(&msg);
        assert!(!h.is_null());
        *(libc::CMSG_DATA(h) as *const i32)
    }
}
