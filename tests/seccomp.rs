//! linux.seccomp, checked by its effect inside real containers: a denied syscall's errno, the
//! signal that kills, `Seccomp:` in /proc/self/status, a notify agent answering a syscall.
mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SIGSYS_EXIT: i32 = 128 + 31;

/// A bundle whose `linux.seccomp` is `sc`.
fn bundle_with(env: &Env, id: &str, args: &[&str], sc: Value) -> Bundle {
    let mut b = env.bundle(id, args);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["seccomp"] = sc;
    b.save();
    b
}

fn run_with(env: &Env, suffix: &str, args: &[&str], sc: Value) -> (i32, String, String) {
    let id = env.id(suffix);
    let b = bundle_with(env, &id, args, sc);
    env.run(&id, &b)
}

/// Allow everything except `names`, which get `rule` (an OCI syscall object without names).
fn allow_but(names: &[&str], mut rule: Value) -> Value {
    rule["names"] = json!(names);
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

/// Debian's containers-common profile (docker format) turned into an OCI LinuxSeccomp the way
/// podman does it, for x86_64 and the default capability set of `berth spec`.
fn containers_common_profile(caps: &[&str]) -> Value {
    let p: Value =
        serde_json::from_slice(&std::fs::read("/usr/share/containers/seccomp.json").unwrap())
            .unwrap();
    let mut arches = vec![];
    for m in p["archMap"].as_array().unwrap() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.push(m["architecture"].clone());
            arches.extend(m["subArchitectures"].as_array().unwrap().iter().cloned());
        }
    }
    let has = |v: &Value, what: &str| v.as_array().is_some_and(|a| a.iter().any(|x| x == what));
    let all_caps = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .all(|c| caps.contains(&c.as_str().unwrap()))
    };
    let mut syscalls = vec![];
    for s in p["syscalls"].as_array().unwrap() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if inc["arches"].is_array() && !has(&inc["arches"], "amd64") {
            continue;
        }
        if inc["caps"].is_array() && !all_caps(&inc["caps"]) {
            continue;
        }
        if exc["arches"].is_array() && has(&exc["arches"], "amd64") {
            continue;
        }
        if exc["caps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| caps.contains(&c.as_str().unwrap())))
        {
            continue;
        }
        let mut r = json!({"names": s["names"], "action": s["action"]});
        if !s["errnoRet"].is_null() {
            r["errnoRet"] = s["errnoRet"].clone();
        }
        if s["args"].as_array().is_some_and(|a| !a.is_empty()) {
            r["args"] = s["args"].clone();
        }
        syscalls.push(r);
    }
    json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": syscalls,
    })
}

const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Static helper programs built once with the host toolchain, or None (with a note) when it is
/// missing: `sys NR [A0 A1 A2]` prints "<ret> <errno>" of syscall(NR, ...), and `mkdir32`, an
/// i386 program (int 0x80) that does mkdir("/tmp/d32") and exits with the errno (0 on success).
fn helpers() -> Option<&'static (PathBuf, PathBuf)> {
    static H: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    H.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seccomp-helpers");
        std::fs::create_dir_all(&dir).unwrap();
        let c = dir.join("sys.c");
        std::fs::write(
            &c,
            r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
int main(int argc, char **argv) {
    long a[3] = {0, 0, 0};
    for (int i = 2; i < argc && i < 5; i++) a[i - 2] = strtol(argv[i], 0, 0);
    errno = 0;
    long r = syscall(strtol(argv[1], 0, 0), a[0], a[1], a[2]);
    printf("%ld %d\n", r, r < 0 ? errno : 0);
    return 0;
}
"#,
        )
        .unwrap();
        let sys = dir.join("sys");
        let ok = Command::new("gcc")
            .arg("-static")
            .arg("-O2")
            .arg("-o")
            .arg(&sys)
            .arg(&c)
            .status();
        if !ok.is_ok_and(|s| s.success()) {
            eprintln!("note: no static gcc: the syscall-number tests are skipped");
            return None;
        }
        let s = dir.join("mkdir32.s");
        std::fs::write(
            &s,
            r#".globl _start
.text
_start:
    movl $39, %eax          # mkdir (i386)
    movl $path, %ebx
    movl $0755, %ecx
    int $0x80
    negl %eax               # -errno -> errno, 0 stays 0
    movl %eax, %ebx
    movl $1, %eax           # exit (i386)
    int $0x80
.data
path: .asciz "/tmp/d32"
"#,
        )
        .unwrap();
        let o = dir.join("mkdir32.o");
        let m32 = dir.join("mkdir32");
        let ok = Command::new("as")
            .arg("--32")
            .arg("-o")
            .arg(&o)
            .arg(&s)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("ld")
                .args(["-m", "elf_i386", "-o"])
                .arg(&m32)
                .arg(&o)
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("note: no i386 binutils: the 32-bit test is skipped");
            return None;
        }
        Some((sys, m32))
    })
    .as_ref()
}

fn install(b: &Bundle, prog: &Path) {
    let dst = b.rootfs().join("bin").join(prog.file_name().unwrap());
    std::fs::copy(prog, dst).unwrap();
}

#[test]
fn errno_default_eperm_and_seccomp_mode_2() {
    let env = Env::new("sc-errno");
    let sc = allow_but(&["mkdir", "mkdirat"], json!({"action": "SCMP_ACT_ERRNO"}));
    let (code, out, err) = run_with(
        &env,
        "a",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?",
        ],
        sc,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn errno_ret_on_a_rule() {
    let env = Env::new("sc-errnoret");
    let sc = allow_but(
        &["mkdir", "mkdirat"],
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 18}),
    );
    let (code, _, err) = run_with(&env, "a", &["mkdir", "/tmp/x"], sc);
    assert_eq!(code, 1);
    assert!(err.contains("Invalid cross-device link"), "{err}");
}

#[test]
fn default_errno_ret() {
    let env = Env::new("sc-deferrno");
    // The profile's allow-list minus mkdir; everything else gets defaultErrnoRet (EXDEV).
    let mut p = containers_common_profile(DEFAULT_CAPS);
    for r in p["syscalls"].as_array_mut().unwrap() {
        if let Some(n) = r["names"].as_array_mut() {
            n.retain(|x| x != "mkdir" && x != "mkdirat");
        }
    }
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .retain(|r| !r["names"].as_array().unwrap().is_empty());
    p["defaultErrnoRet"] = json!(18);
    let (code, out, err) = run_with(
        &env,
        "a",
        &["sh", "-c", "ls / | grep -c '^bin$'; mkdir /tmp/x"],
        p,
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.trim(), "1");
    assert!(err.contains("Invalid cross-device link"), "{err}");
}

/// All seven operators on kill(2)'s signal argument (busybox sh's builtin `kill`), plus AND
/// (different arguments) and OR (same argument twice) of several conditions.
#[test]
fn args_all_operators() {
    let env = Env::new("sc-args");
    // Signals 17 (CHLD), 18 (CONT) and 23 (URG) are harmless to send to ourselves.
    let script =
        "for s in 17 18 23; do kill -$s $$ 2>/dev/null && echo -n ok, || echo -n no,; done";
    let cases: &[(Value, &str)] = &[
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}]),
            "ok,no,ok,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_NE"}]),
            "no,ok,no,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_LT"}]),
            "no,ok,ok,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_LE"}]),
            "no,no,ok,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_GT"}]),
            "ok,ok,no,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_GE"}]),
            "ok,no,no,",
        ),
        (
            json!([{"index": 1, "value": 3, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]),
            "ok,no,ok,",
        ),
        // OR: the same argument twice.
        (
            json!([{"index": 1, "value": 17, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 23, "op": "SCMP_CMP_EQ"}]),
            "no,ok,no,",
        ),
        // AND: signal >= 18 and pid > 0 -- then an impossible pid.
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 0, "op": "SCMP_CMP_GT"}]),
            "ok,no,no,",
        ),
        (
            json!([{"index": 1, "value": 18, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 99999, "op": "SCMP_CMP_EQ"}]),
            "ok,ok,ok,",
        ),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let sc = allow_but(&["kill"], json!({"action": "SCMP_ACT_ERRNO", "args": args}));
        let (code, out, err) = run_with(&env, &format!("c{i}"), &["sh", "-c", script], sc);
        assert_eq!(code, 0, "case {i}: {err}");
        assert_eq!(out, *want, "case {i}: args {args}");
    }
}

#[test]
fn kill_actions_kill_with_sigsys() {
    let env = Env::new("sc-kill");
    for (i, act) in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ]
    .iter()
    .enumerate()
    {
        let sc = allow_but(&["mkdir", "mkdirat"], json!({"action": act}));
        let (code, out, err) = run_with(&env, &format!("k{i}"), &["mkdir", "/tmp/x"], sc);
        assert_eq!(code, SIGSYS_EXIT, "{act}: out {out} err {err}");
    }
}

#[test]
fn log_allows_and_trace_without_tracer_is_enosys() {
    let env = Env::new("sc-logtrace");
    let sc = allow_but(&["mkdir", "mkdirat"], json!({"action": "SCMP_ACT_LOG"}));
    let (code, _, err) = run_with(
        &env,
        "l",
        &["sh", "-c", "mkdir /tmp/x && test -d /tmp/x"],
        sc,
    );
    assert_eq!(code, 0, "{err}");
    let sc = allow_but(
        &["mkdir", "mkdirat"],
        json!({"action": "SCMP_ACT_TRACE", "errnoRet": 1}),
    );
    let (code, _, err) = run_with(&env, "t", &["mkdir", "/tmp/x"], sc);
    assert_eq!(code, 1);
    assert!(err.contains("Function not implemented"), "{err}");
}

#[test]
fn flags_are_accepted() {
    let env = Env::new("sc-flags");
    let mut sc = allow_but(&["mkdir", "mkdirat"], json!({"action": "SCMP_ACT_ERRNO"}));
    sc["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ]);
    let (code, _, err) = run_with(&env, "a", &["mkdir", "/tmp/x"], sc);
    assert_eq!(code, 1);
    assert!(err.contains("Operation not permitted"), "{err}");
}

/// Debian's containers-common profile: busybox works, what the profile denies is denied, a
/// syscall it does not list gets its defaultErrnoRet (ENOSYS). (This profile allows mount and
/// unshare and leaves them to the capabilities; setns and chroot are denied for lack of
/// CAP_SYS_ADMIN / CAP_SYS_CHROOT.)
#[test]
fn real_profile_containers_common() {
    let env = Env::new("sc-real");
    let id = env.id("a");
    let p = containers_common_profile(DEFAULT_CAPS);
    let mut script = "grep Seccomp: /proc/self/status; ls /bin | grep -c '^sh$'; echo hi | cat; \
                      mkdir /tmp/d && echo mkdir-ok; \
                      nsenter -t 1 -u true; echo nsenter=$?; \
                      chroot / true; echo chroot=$?"
        .to_string();
    let b = bundle_with(&env, &id, &["sh", "-c", "true"], p);
    let helper = helpers();
    if let Some((sys, _)) = helper {
        install(&b, sys);
        // add_key (248) is not in the profile.
        script.push_str("; sys 248");
    }
    let mut b = b;
    b.config["process"]["args"] = json!(["sh", "-c", script]);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Seccomp:\t2\n1\nhi\nmkdir-ok\nnsenter=1\nchroot=1\n"),
        "{out} {err}"
    );
    assert!(
        err.contains("setns(): can't reassociate") && err.contains("Operation not permitted"),
        "{err}"
    );
    if helper.is_some() {
        assert!(out.ends_with("\n-1 38\n"), "{out}");
    }
}

/// The -ENOSYS stub: with a denying default, a syscall newer than every syscall the profile
/// names gets ENOSYS; an older unlisted one gets the default errno; clone3 (not in the profile)
/// gets ENOSYS so glibc falls back to clone.
#[test]
fn newer_syscalls_get_enosys() {
    let Some((sys, _)) = helpers() else { return };
    let env = Env::new("sc-enosys");
    let id = env.id("a");
    let mut p = containers_common_profile(DEFAULT_CAPS);
    p["defaultErrnoRet"] = json!(1);
    for r in p["syscalls"].as_array_mut().unwrap() {
        if let Some(n) = r["names"].as_array_mut() {
            n.retain(|x| x != "clone3");
        }
    }
    // 167 swapon (old, unlisted), 435 clone3, 460 and 1000 (newer than the profile).
    let b = bundle_with(
        &env,
        &id,
        &[
            "sh",
            "-c",
            "sys 167; sys 435; sys 460; sys 1000; sys 39 | cut -d' ' -f2",
        ],
        p,
    );
    install(&b, sys);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "-1 1\n-1 38\n-1 38\n-1 38\n0\n", "{err}");
}

/// A 32-bit (i386) program in the container is filtered by the profile when x86 is among the
/// architectures, and killed by the arch check when it is not.
#[test]
fn x86_32bit_program_is_filtered_not_killed() {
    let Some((_, m32)) = helpers() else { return };
    let env = Env::new("sc-x86");
    let mut sc = allow_but(
        &["mkdir", "mkdirat"],
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 13}),
    );
    sc["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let id = env.id("a");
    let b = bundle_with(&env, &id, &["/bin/mkdir32"], sc.clone());
    install(&b, m32);
    let (code, _, err) = env.run(&id, &b);
    assert_eq!(code, 13, "{err}");

    sc["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let id = env.id("b");
    let b = bundle_with(&env, &id, &["/bin/mkdir32"], sc);
    install(&b, m32);
    let (code, _, err) = env.run(&id, &b);
    assert_eq!(code, SIGSYS_EXIT, "{err}");

    // No seccomp at all: the program works (the kernel runs i386 binaries).
    let id = env.id("c");
    let mut b = env.bundle(&id, &["/bin/mkdir32"]);
    b.config["root"]["readonly"] = json!(false);
    install(&b, m32);
    let (code, _, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
}

/// With noNewPrivileges the filter goes in after berth's own setup: a profile that blocks the
/// user switch does not break it, and the container cannot switch users itself.
#[test]
fn nnp_profile_blocking_setuid_does_not_break_setup() {
    let env = Env::new("sc-nnp");
    let id = env.id("a");
    let names = [
        "setuid",
        "setgid",
        "setresuid",
        "setresgid",
        "setreuid",
        "setregid",
        "setgroups",
        "setfsuid",
        "setfsgid",
        "capset",
        "prctl",
        "chdir",
        "umask",
    ];
    let sc = allow_but(&names, json!({"action": "SCMP_ACT_ERRNO"}));
    let mut b = bundle_with(&env, &id, &["sh", "-c", "id -u; id -g"], sc);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    b.config["process"]["noNewPrivileges"] = json!(true);
    // The cached rootfs is 0700 at the top; uid 1000 must be able to reach /bin.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000\n1000\n");
}

/// Without noNewPrivileges the filter is loaded (with CAP_SYS_ADMIN kept until then) after
/// berth's own setup, right before the exec: the child must still report `ready` through calls
/// such profiles deny, the user switch is not subject to the profile (issue 19 item 11; runc
/// loads it before the switch and fails), the process is, and an exec the profile denies is
/// reported.
#[test]
fn without_nnp_setup_survives_the_profile_and_errors_are_reported() {
    let env = Env::new("sc-nonnp");
    // Socket messaging denied: berth's sync channel must not depend on sendmsg/recvmsg.
    let names = ["sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg"];
    let (code, out, err) = run_with(
        &env,
        "a",
        &["sh", "-c", "echo ok"],
        allow_but(&names, json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 55})),
    );
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");

    // A profile that denies the user switch: berth's switch is done before the load; the
    // process runs as the configured user, under the filter (mode 2).
    let id = env.id("b");
    let sc = allow_but(
        &["setresuid", "setuid"],
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 55}),
    );
    let mut b = bundle_with(
        &env,
        &id,
        &[
            "sh",
            "-c",
            "id -u; grep '^Seccomp:' /proc/self/status; grep '^CapEff:' /proc/self/status",
        ],
        sc,
    );
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["noNewPrivileges"] = json!(false);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.save();
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    let out: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // CAP_SYS_ADMIN, kept for the load, did not survive the exec.
    assert_eq!(
        out,
        ["1000", "Seccomp: 2", "CapEff: 0000000000000000"],
        "{err}"
    );

    // A profile that denies the exec itself: the process cannot start, and says why.
    let sc = allow_but(
        &["execve", "execveat"],
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 55}),
    );
    let (code, _, err) = run_with(&env, "c", &["true"], sc);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("exec") && err.contains("true"), "{err}");
    assert!(
        !env.root.join(env.id("c")).exists(),
        "state dir left behind"
    );
}

// ---- notify ----

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}
#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// A seccomp agent: accepts one connection on `path`, takes the state and the listener, and
/// answers every notification with -EXDEV until the container is gone. Returns the state and
/// the syscall numbers it saw.
fn agent(listener: std::os::unix::net::UnixListener) -> std::thread::JoinHandle<(Value, Vec<i32>)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = vec![0u8; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain recvmsg into our buffers.
        let (n, fd) = unsafe {
            let mut mh: libc::msghdr = std::mem::zeroed();
            mh.msg_iov = &mut iov;
            mh.msg_iovlen = 1;
            mh.msg_control = cmsg.as_mut_ptr().cast();
            mh.msg_controllen = cmsg.len() as _;
            let n = libc::recvmsg(conn.as_raw_fd(), &mut mh, 0);
            assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
            let c = libc::CMSG_FIRSTHDR(&mh);
            assert!(!c.is_null(), "no SCM_RIGHTS");
            assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
            (n as usize, OwnedFd::from_raw_fd(fd))
        };
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let mut seen = vec![];
        loop {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one fd we own.
            let r = unsafe { libc::poll(&mut pfd, 1, 20_000) };
            if r <= 0 || pfd.revents & libc::POLLIN == 0 {
                break;
            }
            let mut n = Notif::default();
            // SAFETY: the ioctl fills a struct of the kernel's layout.
            if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n) } < 0 {
                continue;
            }
            seen.push(n.data.nr);
            let mut resp = NotifResp {
                id: n.id,
                val: 0,
                error: -libc::EXDEV,
                flags: 0,
            };
            // SAFETY: as above.
            unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &mut resp) };
        }
        (state, seen)
    })
}

fn notify_case(nnp: bool, flags: Value) {
    let env = Env::new(if nnp { "sc-notify-nnp" } else { "sc-notify" });
    let sock = env.tmp.join("agent.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let h = agent(l);
    let id = env.id("a");
    let mut sc = allow_but(&["mkdir", "mkdirat"], json!({"action": "SCMP_ACT_NOTIFY"}));
    sc["listenerPath"] = json!(sock);
    sc["listenerMetadata"] = json!("meta-data!");
    sc["flags"] = flags;
    let mut b = bundle_with(&env, &id, &["sh", "-c", "mkdir /tmp/x; echo rc=$?"], sc);
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    let (code, out, err) = env.run(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=1\n", "{err}");
    assert!(
        err.contains("Invalid cross-device link"),
        "the agent's answer: {err}"
    );
    let (state, seen) = h.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "meta-data!", "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert_eq!(state["state"]["status"], "creating", "{state}");
    assert_eq!(state["state"]["pid"], state["pid"], "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
    assert_eq!(seen, vec![libc::SYS_mkdir as i32], "{state}");
}

#[test]
fn notify_sends_listener_and_state_to_agent() {
    notify_case(false, json!([]));
}

#[test]
fn notify_with_nnp_and_wait_killable_recv() {
    notify_case(true, json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]));
}

// ---- errors ----

fn create_error(sc: Value) -> String {
    let env = Env::new("sc-err");
    let id = env.id("a");
    let b = bundle_with(&env, &id, &["true"], sc);
    let out = env.try_create(&id, &b);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn errors_name_the_field() {
    let e = create_error(json!({"defaultAction": "SCMP_ACT_BOGUS"}));
    assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
    let e = create_error(allow_but(&["mkdir"], json!({"action": "SCMP_ACT_NOPE"})));
    assert!(e.contains("linux.seccomp.syscalls[0].action"), "{e}");
    let e = create_error(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
    );
    assert!(e.contains("linux.seccomp.architectures[0]"), "{e}");
    let e = create_error(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
    );
    assert!(e.contains("linux.seccomp.flags[0]"), "{e}");
    let e = create_error(allow_but(
        &["mkdir"],
        json!({"action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}),
    ));
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].op"), "{e}");
    let e = create_error(allow_but(
        &["mkdir"],
        json!({"action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
    ));
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
    let e = create_error(allow_but(
        &["mkdir"],
        json!({"action": "SCMP_ACT_KILL", "errnoRet": 1}),
    ));
    assert!(e.contains("linux.seccomp.syscalls[0].errnoRet"), "{e}");
    let e = create_error(allow_but(&["mkdir"], json!({"action": "SCMP_ACT_NOTIFY"})));
    assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
    let e = create_error(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}));
    assert!(e.contains("linux.seccomp.listenerMetadata"), "{e}");
    let e = create_error(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}));
    assert!(e.contains("linux.seccomp.defaultErrnoRet"), "{e}");
    let e = create_error(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
    assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let env = Env::new("sc-unknown");
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall_xyz", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        // arm-only and i386-only names in an x86_64 filter
        {"names": ["breakpoint", "socketcall", "chown32"], "action": "SCMP_ACT_ERRNO"}
    ]});
    let (code, _, err) = run_with(&env, "a", &["mkdir", "/tmp/x"], sc);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn notify_without_agent_fails_cleanly() {
    let env = Env::new("sc-noagent");
    let id = env.id("a");
    let mut sc = allow_but(&["mkdir", "mkdirat"], json!({"action": "SCMP_ACT_NOTIFY"}));
    sc["listenerPath"] = json!(env.tmp.join("nobody-listens.sock"));
    let b = bundle_with(&env, &id, &["sleep", "100"], sc);
    let out = env.try_create(&id, &b);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("linux.seccomp.listenerPath: connecting to"),
        "{e}"
    );
    let list = env.ok(&["list", "-q"]);
    assert!(!list.contains(&id), "{list}");
    assert!(!env.root.join(&id).exists());
}

// ---- berth's own syscalls after the filter (issue 19 item 11) ----

/// Two static x86_64 programs with no libc: `exit0` (execve, then exit(0)) and `pause0`
/// (pause(2) in a loop), so that a profile denying almost anything still lets them run. None
/// (with a note) without binutils.
fn tiny_programs() -> Option<&'static (PathBuf, PathBuf)> {
    static P: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seccomp-tiny");
        std::fs::create_dir_all(&dir).unwrap();
        let build = |name: &str, asm: &str| -> Option<PathBuf> {
            let s = dir.join(format!("{name}.s"));
            let o = dir.join(format!("{name}.o"));
            let out = dir.join(name);
            std::fs::write(&s, asm).unwrap();
            let ok = Command::new("as")
                .arg("-o")
                .arg(&o)
                .arg(&s)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new("ld")
                    .arg("-o")
                    .arg(&out)
                    .arg(&o)
                    .status()
                    .is_ok_and(|s| s.success());
            ok.then_some(out)
        };
        let exit0 = build(
            "exit0",
            ".globl _start\n.text\n_start:\n    movl $60, %eax\n    xorl %edi, %edi\n    syscall\n",
        );
        let pause0 = build(
            "pause0",
            ".globl _start\n.text\n_start:\n    movl $34, %eax\n    syscall\n    jmp _start\n",
        );
        match (exit0, pause0) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => {
                eprintln!("note: no binutils: the post-filter syscall tests are skipped");
                None
            }
        }
    })
    .as_ref()
}

/// The system calls each traced process made after loading a seccomp filter, up to and
/// including its first successful execve, from an `strace -f` log (one list per process
/// that loaded one).
fn post_load_syscalls(trace: &str) -> Vec<Vec<String>> {
    use std::collections::HashMap;
    // pid → (syscalls since the load, an execve is in progress)
    let mut open: HashMap<&str, (Vec<String>, bool)> = HashMap::new();
    let mut done = vec![];
    for line in trace.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            // The end of a call that was split: only an execve's result matters.
            if resumed.starts_with("execve resumed>")
                && let Some((_, pending)) = open.get_mut(pid)
                && *pending
            {
                *pending = false;
                if resumed.trim_end().ends_with("= 0") {
                    done.push(open.remove(pid).unwrap().0);
                }
            }
            continue;
        }
        let Some(name) = rest
            .split('(')
            .next()
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        else {
            continue;
        };
        if name == "seccomp"
            && rest.starts_with("seccomp(SECCOMP_SET_MODE_FILTER")
            && rest.contains("{len=")
            && !rest.contains("= -1")
        {
            open.insert(pid, (vec![], false));
            continue;
        }
        if let Some((calls, pending)) = open.get_mut(pid) {
            calls.push(name.to_string());
            if name == "execve" {
                if rest.trim_end().ends_with("= 0") {
                    done.push(open.remove(pid).unwrap().0);
                } else if rest.contains("<unfinished ...>") {
                    *pending = true;
                }
            }
        }
    }
    done.extend(open.into_values().map(|(c, _)| c));
    done
}

/// A bundle for the post-filter tests: `prog` (a tiny program) as uid 1000 in /tmp, with the
/// profile `sc` and noNewPrivileges `nnp`.
fn tiny_bundle(env: &Env, id: &str, prog: &Path, sc: Value, nnp: bool) -> Bundle {
    let mut b = bundle_with(env, id, &["/bin/prog"], sc);
    std::fs::copy(prog, b.rootfs().join("bin/prog")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    b.save();
    b
}

/// berth under `strace -f` (output to `log`), returning its status and the trace.
fn traced(env: &Env, log: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let st = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(log)
        .arg(&env.bin)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .status()
        .unwrap();
    (st, std::fs::read_to_string(log).unwrap())
}

/// After loading the container's seccomp filter berth makes no system call of its own but the
/// execve of the program (through the trampoline), in `run`, `create`+`start` and `exec`, with
/// and without noNewPrivileges: a profile cannot break the setup by denying one of berth's
/// calls. The expected list is kept here, so a new call after the load fails this test.
#[test]
fn after_the_filter_berth_only_execs() {
    const POST_LOAD: &[&str] = &["execve"];
    let Some((exit0, pause0)) = tiny_programs() else {
        return;
    };
    let env = Env::new("sc-postload");
    let sc = allow_but(&["acct"], json!({"action": "SCMP_ACT_ERRNO"}));
    for nnp in [false, true] {
        let what = format!("noNewPrivileges {nnp}");
        // run
        let id = env.id(&format!("run{nnp}"));
        let b = tiny_bundle(&env, &id, exit0, sc.clone(), nnp);
        let log = env.tmp.join(format!("run-{nnp}.trace"));
        let (st, t) = traced(
            &env,
            &log,
            &["run", "--bundle", b.dir.to_str().unwrap(), &id],
        );
        assert!(st.success(), "{what}: run: {st}");
        assert_eq!(
            post_load_syscalls(&t),
            vec![POST_LOAD.to_vec()],
            "{what}: run"
        );

        // create, then start from another berth: the trace follows the container's process.
        let id = env.id(&format!("cs{nnp}"));
        let b = tiny_bundle(&env, &id, exit0, sc.clone(), nnp);
        let log = env.tmp.join(format!("create-{nnp}.trace"));
        let mut strace = Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&log)
            .arg(&env.bin)
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle", b.dir.to_str().unwrap(), &id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        env.wait_status(&id, "created");
        env.ok(&["start", &id]);
        assert!(strace.wait().unwrap().success(), "{what}: create");
        let t = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            post_load_syscalls(&t),
            vec![POST_LOAD.to_vec()],
            "{what}: start"
        );
        env.ok(&["delete", &id]);

        // exec, in a container whose process only pauses.
        let id = env.id(&format!("ex{nnp}"));
        let b = tiny_bundle(&env, &id, pause0, sc.clone(), nnp);
        env.create(&id, &b);
        env.ok(&["start", &id]);
        let log = env.tmp.join(format!("exec-{nnp}.trace"));
        std::fs::copy(exit0, b.rootfs().join("bin/exit0")).unwrap();
        let (st, t) = traced(&env, &log, &["exec", &id, "/bin/exit0"]);
        assert!(st.success(), "{what}: exec: {st}");
        assert_eq!(
            post_load_syscalls(&t),
            vec![POST_LOAD.to_vec()],
            "{what}: exec"
        );
        env.ok(&["delete", "--force", &id]);
    }
}

/// Before berth loaded the filter last, these calls of its own came after it (the user switch,
/// capabilities, the cwd check, the executable lookup, `ready`, the wait for start, the signal
/// and descriptor reset...): a profile denying any one of them broke the container. Each one
/// denied in turn, with and without noNewPrivileges, in `run` and in `exec`: the container's
/// program (which needs none of them) runs.
#[test]
fn profiles_denying_berths_own_syscalls_do_not_break_the_setup() {
    const BERTHS: &[&str] = &[
        "setgroups",
        "setresgid",
        "setresuid",
        "prctl",
        "capget",
        "capset",
        "chdir",
        "getcwd",
        "umask",
        "openat",
        "read",
        "close",
        "newfstatat",
        "statx",
        "access",
        "faccessat2",
        "statfs",
        "fstatfs",
        "readlink",
        "write",
        "poll",
        "ppoll",
        "rt_sigprocmask",
        "rt_sigaction",
        "close_range",
        "fcntl",
        "sendmsg",
        "recvmsg",
        "getppid",
        "brk",
        "mmap",
        "munmap",
        "execveat",
    ];
    let Some((exit0, pause0)) = tiny_programs() else {
        return;
    };
    let env = Env::new("sc-ownsys");
    for nnp in [false, true] {
        // exec: a container whose process only pauses, under a profile that allows it all.
        let xid = env.id(&format!("x{nnp}"));
        let allow = allow_but(&["acct"], json!({"action": "SCMP_ACT_ERRNO"}));
        let xb = tiny_bundle(&env, &xid, pause0, allow, nnp);
        std::fs::copy(exit0, xb.rootfs().join("bin/exit0")).unwrap();
        for name in BERTHS {
            let sc = allow_but(&[name], json!({"action": "SCMP_ACT_ERRNO"}));
            let id = env.id(&format!("{name}-{nnp}"));
            let b = tiny_bundle(&env, &id, exit0, sc.clone(), nnp);
            let (code, _, err) = env.run(&id, &b);
            assert_eq!(code, 0, "{name} denied, noNewPrivileges {nnp}: run: {err}");

            // The exec'd process gets the container's profile: the one denying `name`.
            let mut xb2 = tiny_bundle(&env, &xid, pause0, sc, nnp);
            xb2.config["process"]["args"] = json!(["/bin/prog"]);
            xb2.save();
            std::fs::copy(exit0, xb2.rootfs().join("bin/exit0")).unwrap();
            env.create(&xid, &xb2);
            env.ok(&["start", &xid]);
            let (code, _, err) = env.exec(&[&xid, "/bin/exit0"]);
            assert_eq!(code, 0, "{name} denied, noNewPrivileges {nnp}: exec: {err}");
            env.ok(&["delete", "--force", &xid]);
        }
        let _ = xb;
    }
}
