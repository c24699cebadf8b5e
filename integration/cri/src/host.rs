//! What the host sees: /proc/<pid>/status and ns links, cgroup files (v1, hybrid or v2),
//! mountinfo, processes by command line. The suite checks effects here, not only through CRI.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

pub fn read(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p).ok()
}

/// `/proc/<pid>/status` as a map (`Uid` -> "1000\t1000\t1000\t1000", ...).
pub fn status(pid: i32) -> HashMap<String, String> {
    parse_status(&read(format!("/proc/{pid}/status")).unwrap_or_default())
}

pub fn parse_status(s: &str) -> HashMap<String, String> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The namespace link of a process (`net:[4026532000]`), or "" if gone.
pub fn ns(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `net:[<inode>]` of a bind-mounted namespace file (e.g. /run/netns/NAME).
pub fn ns_of_file(kind: &str, path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .map(|m| format!("{kind}:[{}]", m.ino()))
        .unwrap_or_default()
}

pub fn alive(pid: i32) -> bool {
    match read(format!("/proc/{pid}/stat")) {
        None => false,
        Some(s) => !matches!(
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next()),
            Some("Z") | Some("X") | None
        ),
    }
}

/// All processes: (pid, argv joined by spaces). Kernel threads have an empty command line.
pub fn processes() -> Vec<(i32, String)> {
    let mut v = vec![];
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(c) = fs::read(format!("/proc/{pid}/cmdline")) {
                let s = String::from_utf8_lossy(&c).replace('\0', " ");
                if !s.is_empty() && alive(pid) {
                    v.push((pid, s.trim_end().to_string()));
                }
            }
        }
    }
    v
}

/// Mount points (host mount namespace, as this process sees it) at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    read("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|m| m.replace("\\040", " ")))
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .collect()
}

/// One cgroup hierarchy mounted on the host.
#[derive(Debug, Clone)]
pub struct Hier {
    pub mountpoint: PathBuf,
    /// v1 controllers of the hierarchy (`name=systemd` included); empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// The host's cgroup hierarchies, from /proc/self/mountinfo.
pub fn hierarchies() -> Vec<Hier> {
    let mut v = vec![];
    for l in read("/proc/self/mountinfo").unwrap_or_default().lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let fstype = f.get(sep + 1).copied().unwrap_or("");
        let mp = PathBuf::from(f[4]);
        // only hierarchies mounted at their root (not bind mounts of a sub-cgroup)
        if f[3] != "/" {
            continue;
        }
        match fstype {
            "cgroup" => {
                let opts = f.get(sep + 3).copied().unwrap_or("");
                let known = [
                    "cpu",
                    "cpuacct",
                    "cpuset",
                    "memory",
                    "devices",
                    "freezer",
                    "blkio",
                    "pids",
                    "hugetlb",
                    "net_cls",
                    "net_prio",
                    "perf_event",
                    "rdma",
                    "misc",
                ];
                let controllers = opts
                    .split(',')
                    .filter(|o| known.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                v.push(Hier {
                    mountpoint: mp,
                    controllers,
                    v2: false,
                });
            }
            "cgroup2" => v.push(Hier {
                mountpoint: mp,
                controllers: vec![],
                v2: true,
            }),
            _ => {}
        }
    }
    v
}

/// Pure cgroup v2 host (no v1 controllers mounted).
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup of `pid` in the hierarchy of `controller` (v1), or its v2 cgroup.
pub fn cgroup_of(pid: i32, controller: &str) -> Option<String> {
    let s = read(format!("/proc/{pid}/cgroup"))?;
    let v2 = cgroup_v2();
    for l in s.lines() {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        if v2 && ctrls.is_empty() {
            return Some(path.to_string());
        }
        if !v2 && ctrls.split(',').any(|c| c == controller) {
            return Some(path.to_string());
        }
    }
    None
}

/// Host directory of `pid`'s cgroup for `controller` (v1) or its v2 cgroup dir.
pub fn cgroup_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let path = cgroup_of(pid, controller)?;
    let h = hierarchies().into_iter().find(|h| {
        if cgroup_v2() {
            h.v2
        } else {
            h.controllers.iter().any(|c| c == controller)
        }
    })?;
    Some(h.mountpoint.join(path.trim_start_matches('/')))
}

/// A cgroup file of `pid`, trimmed.
pub fn cgroup_file(pid: i32, controller: &str, file: &str) -> Option<String> {
    read(cgroup_dir(pid, controller)?.join(file)).map(|s| s.trim().to_string())
}

/// Resource settings as read back from a cgroup (v1 or v2 files, normalised to v1 units).
#[derive(Debug, Default, PartialEq, Clone)]
pub struct Res {
    pub memory: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    /// v1 cpu.shares; on v2 the cpu.weight converted back is not exact, see `cpu_weight`.
    pub cpu_shares: Option<i64>,
    pub cpu_weight: Option<i64>,
}

/// Parse what `cat` of the resource files printed, v1 or v2 (`key=value` lines).
pub fn parse_res(lines: &str) -> Res {
    let mut r = Res::default();
    for l in lines.lines() {
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let num = |s: &str| s.parse::<i64>().ok();
        match k {
            "memory.limit_in_bytes" => r.memory = num(v),
            "memory.max" => r.memory = if v == "max" { Some(-1) } else { num(v) },
            "cpu.cfs_quota_us" => r.cpu_quota = num(v),
            "cpu.cfs_period_us" => r.cpu_period = num(v),
            "cpu.shares" => r.cpu_shares = num(v),
            "cpu.weight" => r.cpu_weight = num(v),
            "cpu.max" => {
                let mut it = v.split_whitespace();
                r.cpu_quota = it.next().map(|q| {
                    if q == "max" {
                        -1
                    } else {
                        q.parse().unwrap_or(-2)
                    }
                });
                r.cpu_period = it.next().and_then(num);
            }
            _ => {}
        }
    }
    r
}

/// The resource files of `pid`'s cgroups, as `file=value` lines (what `resources_script`
/// prints inside a container).
pub fn res_of(pid: i32) -> Res {
    let mut out = String::new();
    if cgroup_v2() {
        for f in ["memory.max", "cpu.max", "cpu.weight"] {
            if let Some(v) = cgroup_file(pid, "", f) {
                out += &format!("{f}={v}\n");
            }
        }
    } else {
        for (c, f) in [
            ("memory", "memory.limit_in_bytes"),
            ("cpu", "cpu.cfs_quota_us"),
            ("cpu", "cpu.cfs_period_us"),
            ("cpu", "cpu.shares"),
        ] {
            if let Some(v) = cgroup_file(pid, c, f) {
                out += &format!("{f}={v}\n");
            }
        }
    }
    parse_res(&out)
}

/// Shell run inside a container to print its own cgroup's resource files (v1 layout as the
/// runtime mounts it for the container, or v2 with a cgroup namespace).
pub const RESOURCES_SCRIPT: &str = "for f in memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us \
     cpu/cpu.cfs_period_us cpu/cpu.shares cpu,cpuacct/cpu.cfs_quota_us cpu,cpuacct/cpu.cfs_period_us \
     cpu,cpuacct/cpu.shares memory.max cpu.max cpu.weight; do \
     [ -f /sys/fs/cgroup/$f ] && echo ${f##*/}=$(cat /sys/fs/cgroup/$f); done; true";

/// v2 weight for v1 shares: the linear conversion of runc < 1.3.2 (Debian's 1.1.5; 1024 -> 39).
pub fn shares_to_weight(shares: i64) -> i64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares - 2) * 9999) / 262142
}

/// v2 weight for v1 shares as runc >= 1.3.2 and crun >= 1.23 convert them (and berth): a curve
/// in log2(shares) through 2 -> 1, 1024 -> 100, 262144 -> 10000.
pub fn shares_to_weight_curve(shares: i64) -> i64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as i64
        }
    }
}

/// Whether `weight` is what one of runc's two conversions makes of `shares`.
pub fn weight_of_shares(shares: i64, weight: i64) -> bool {
    weight == shares_to_weight(shares) || weight == shares_to_weight_curve(shares)
}

/// Capability sets of a process as bit masks: (CapEff, CapPrm, CapBnd).
pub fn caps(st: &HashMap<String, String>) -> (u64, u64, u64) {
    let h = |k: &str| {
        st.get(k)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(u64::MAX)
    };
    (h("CapEff"), h("CapPrm"), h("CapBnd"))
}

pub fn cap_bit(name: &str) -> u64 {
    let names = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let n = name.trim_start_matches("CAP_");
    names
        .iter()
        .position(|x| *x == n)
        .map(|i| 1u64 << i)
        .unwrap_or(0)
}

/// `cmd` output (stdout) or an error with stderr.
pub fn sh(cmd: &str, args: &[&str]) -> Result<String, String> {
    let o = std::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd} {}: {}: {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// sha256 hex of a string (through coreutils: no crypto crate for one hash).
pub fn sha256(s: &str) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let o = c.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A fresh random UUID (kubelet's pod UIDs are UUIDs).
pub fn uuid() -> String {
    read("/proc/sys/kernel/random/uuid")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// RSS and PSS in KiB (smaps_rollup); (0, 0) if gone.
pub fn rss_pss(pid: i32) -> (u64, u64) {
    let s = read(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let mut rss = 0;
    let mut pss = 0;
    for l in s.lines() {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("Rss:") => rss = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            Some("Pss:") => pss = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    (rss, pss)
}

pub fn exe(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn ppid(pid: i32) -> i32 {
    read(format!("/proc/{pid}/stat"))
        .and_then(|s| {
            let r = s.rfind(')')?;
            s[r + 1..].split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU time of a process and of its waited-for children, in seconds: (utime+stime,
/// cutime+cstime) from /proc/<pid>/stat.
pub fn cpu_secs(pid: i32) -> (f64, f64) {
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Some(s) = read(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    let Some(r) = s.rfind(')') else {
        return (0.0, 0.0);
    };
    // fields after the comm: state is field 3; utime 14, stime 15, cutime 16, cstime 17
    let f: Vec<f64> = s[r + 2..]
        .split(' ')
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let g = |n: usize| f.get(n - 3).copied().unwrap_or(0.0);
    ((g(14) + g(15)) / hz, (g(16) + g(17)) / hz)
}
