//! berth-probe: a tiny, dependency-free, statically linked program placed in the test
//! rootfs. It reports, as one JSON object, what the process sees of its environment
//! (ids, capabilities, mounts, rlimits, namespaces, ...), then runs the operations
//! named on its command line (`read=PATH`, `write=PATH=DATA`, `sys=NR,A0,..`, ...) and
//! records each result. Output goes to stdout, or to the file named by `out=PATH`.
//!
//! It uses only std plus a couple of libc symbols that std already links.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

unsafe extern "C" {
    fn syscall(num: i64, ...) -> i64;
    fn __errno_location() -> *mut i32;
}

/// Raw syscall with up to six arguments: Ok(return value) or Err(errno).
fn raw_syscall(nr: i64, a: &[i64]) -> Result<i64, i32> {
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    // SAFETY: the caller picks the syscall; the probe only ever passes integers, so no
    // memory is handed to the kernel.
    let r = unsafe { syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) };
    if r == -1 {
        // SAFETY: reading the thread's errno right after the call.
        Err(unsafe { *__errno_location() })
    } else {
        Ok(r)
    }
}

/// Minimal JSON value builder.
enum J {
    Null,
    Bool(bool),
    Num(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn esc(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl J {
    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => {
                let _ = write!(out, "{n}");
            }
            J::Str(s) => esc(s, out),
            J::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.render(out);
                }
                out.push(']');
            }
            J::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    esc(k, out);
                    out.push(':');
                    x.render(out);
                }
                out.push('}');
            }
        }
    }
}

fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

fn read_str(path: &str) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn opt(v: Option<String>) -> J {
    v.map(J::Str).unwrap_or(J::Null)
}

fn err_obj(e: &std::io::Error) -> J {
    J::Obj(vec![
        ("err".into(), J::Num(e.raw_os_error().unwrap_or(-1) as i64)),
        ("msg".into(), s(e.to_string())),
    ])
}

fn stat_obj(path: &str) -> J {
    match fs::symlink_metadata(path) {
        Err(e) => err_obj(&e),
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                "symlink"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "file"
            };
            let rdev = m.rdev();
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
            J::Obj(vec![
                ("kind".into(), s(kind)),
                (
                    "mode".into(),
                    J::Num((m.permissions().mode() & 0o7777) as i64),
                ),
                ("uid".into(), J::Num(m.uid() as i64)),
                ("gid".into(), J::Num(m.gid() as i64)),
                ("major".into(), J::Num(major as i64)),
                ("minor".into(), J::Num(minor as i64)),
                ("size".into(), J::Num(m.size() as i64)),
            ])
        }
    }
}

fn ok(v: J) -> J {
    J::Obj(vec![("ok".into(), v)])
}

fn run_op(op: &str) -> J {
    let (name, arg) = op.split_once('=').unwrap_or((op, ""));
    match name {
        "read" => match fs::read(arg) {
            Ok(b) => ok(s(String::from_utf8_lossy(&b))),
            Err(e) => err_obj(&e),
        },
        "write" => {
            let (path, data) = arg.split_once('=').unwrap_or((arg, ""));
            match fs::write(path, data) {
                Ok(()) => ok(J::Bool(true)),
                Err(e) => err_obj(&e),
            }
        }
        "open" => match fs::File::open(arg) {
            Ok(_) => ok(J::Bool(true)),
            Err(e) => err_obj(&e),
        },
        "mkdir" => match fs::create_dir(arg) {
            Ok(()) => ok(J::Bool(true)),
            Err(e) => err_obj(&e),
        },
        "stat" => match stat_obj(arg) {
            J::Obj(v) if v.first().map(|x| x.0 == "kind").unwrap_or(false) => ok(J::Obj(v)),
            other => other,
        },
        "readlink" => match fs::read_link(arg) {
            Ok(p) => ok(s(p.to_string_lossy())),
            Err(e) => err_obj(&e),
        },
        "ls" => match fs::read_dir(arg) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                ok(J::Arr(v.into_iter().map(J::Str).collect()))
            }
            Err(e) => err_obj(&e),
        },
        "exec" => match std::process::Command::new(arg).status() {
            Ok(st) => ok(J::Num(st.code().unwrap_or(-1) as i64)),
            Err(e) => err_obj(&e),
        },
        "sys" => {
            let nums: Vec<i64> = arg
                .split(',')
                .filter_map(|x| {
                    if let Some(h) = x.strip_prefix("0x") {
                        i64::from_str_radix(h, 16).ok()
                    } else {
                        x.parse().ok()
                    }
                })
                .collect();
            if nums.is_empty() {
                return J::Obj(vec![("err".into(), J::Num(-1))]);
            }
            match raw_syscall(nums[0], &nums[1..]) {
                Ok(r) => ok(J::Num(r)),
                Err(e) => J::Obj(vec![("err".into(), J::Num(e as i64))]),
            }
        }
        _ => J::Obj(vec![
            ("err".into(), J::Num(-1)),
            ("msg".into(), s("bad op")),
        ]),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut fields: Vec<(String, J)> = Vec::new();

    // fds first, before the probe opens anything of its own.
    let mut fds = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc/self/fd") {
        let mut all: Vec<(i64, String)> = Vec::new();
        for e in rd.filter_map(|e| e.ok()) {
            let n: i64 = e.file_name().to_string_lossy().parse().unwrap_or(-1);
            let t = fs::read_link(e.path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            all.push((n, t));
        }
        all.sort();
        for (n, t) in all {
            // The directory being listed is the probe's own fd.
            if t.starts_with("/proc/") && t.ends_with("/fd") {
                continue;
            }
            fds.push((n.to_string(), J::Str(t)));
        }
    }

    fields.push((
        "args".into(),
        J::Arr(args.iter().map(|a| s(a.clone())).collect()),
    ));
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    fields.push((
        "env".into(),
        J::Obj(env.into_iter().map(|(k, v)| (k, J::Str(v))).collect()),
    ));
    fields.push((
        "cwd".into(),
        opt(std::env::current_dir()
            .ok()
            .map(|p| p.to_string_lossy().into_owned())),
    ));

    // /proc/self/status: ids, caps, seccomp, nnp, umask, cpus.
    let mut status = Vec::new();
    if let Some(st) = read_str("/proc/self/status") {
        for line in st.lines() {
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim();
                if matches!(
                    k,
                    "Uid"
                        | "Gid"
                        | "Groups"
                        | "CapInh"
                        | "CapPrm"
                        | "CapEff"
                        | "CapBnd"
                        | "CapAmb"
                        | "NoNewPrivs"
                        | "Seccomp"
                        | "Seccomp_filters"
                        | "Umask"
                        | "Cpus_allowed_list"
                        | "Mems_allowed_list"
                        | "NSpid"
                        | "Speculation_Store_Bypass"
                ) {
                    status.push((k.to_string(), s(v.trim())));
                }
            }
        }
    }
    fields.push(("status".into(), J::Obj(status)));

    fields.push((
        "hostname".into(),
        opt(read_str("/proc/sys/kernel/hostname").map(|x| x.trim().to_string())),
    ));
    fields.push((
        "domainname".into(),
        opt(read_str("/proc/sys/kernel/domainname").map(|x| x.trim().to_string())),
    ));

    let mut ns = Vec::new();
    for n in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let l = fs::read_link(format!("/proc/self/ns/{n}"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        ns.push((n.to_string(), opt(l)));
    }
    fields.push(("ns".into(), J::Obj(ns)));

    fields.push(("cgroup".into(), opt(read_str("/proc/self/cgroup"))));
    fields.push((
        "mountinfo".into(),
        J::Arr(
            read_str("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .map(s)
                .collect(),
        ),
    ));

    // rlimits: name -> [soft, hard] as strings ("unlimited" or a number).
    let mut lim = Vec::new();
    if let Some(l) = read_str("/proc/self/limits") {
        for line in l.lines().skip(1) {
            if line.len() < 26 {
                continue;
            }
            let name = line[..26].trim().to_string();
            let rest: Vec<&str> = line[26..].split_whitespace().collect();
            if rest.len() >= 2 {
                lim.push((name, J::Arr(vec![s(rest[0]), s(rest[1])])));
            }
        }
    }
    fields.push(("limits".into(), J::Obj(lim)));
    fields.push(("fds".into(), J::Obj(fds)));
    fields.push((
        "oom_score_adj".into(),
        opt(read_str("/proc/self/oom_score_adj").map(|x| x.trim().to_string())),
    ));
    fields.push((
        "personality".into(),
        opt(read_str("/proc/self/personality").map(|x| x.trim().to_string())),
    ));
    if let Some(stat) = read_str("/proc/self/stat")
        && let Some(idx) = stat.rfind(')')
    {
        let f: Vec<&str> = stat[idx + 1..].split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<i64>().ok()).map(J::Num);
        fields.push(("nice".into(), num(16).unwrap_or(J::Null)));
        fields.push(("rt_priority".into(), num(37).unwrap_or(J::Null)));
        fields.push(("sched_policy".into(), num(38).unwrap_or(J::Null)));
    }
    // ioprio_get(IOPRIO_WHO_PROCESS, 0)
    fields.push((
        "ioprio".into(),
        match raw_syscall(252, &[1, 0]) {
            Ok(v) => J::Num(v),
            Err(_) => J::Null,
        },
    ));
    fields.push(("pid".into(), J::Num(std::process::id() as i64)));

    let mut ops = Vec::new();
    let mut out_path = None;
    let mut exit_code = 0;
    let mut sleep = 0u64;
    for a in args.iter().skip(1) {
        if let Some(p) = a.strip_prefix("out=") {
            out_path = Some(p.to_string());
        } else if let Some(c) = a.strip_prefix("exit=") {
            exit_code = c.parse().unwrap_or(0);
        } else if let Some(c) = a.strip_prefix("sleep=") {
            sleep = c.parse().unwrap_or(0);
        } else {
            ops.push(J::Obj(vec![
                ("op".into(), s(a.clone())),
                ("r".into(), run_op(a)),
            ]));
        }
    }
    fields.push(("ops".into(), J::Arr(ops)));

    let mut text = String::new();
    J::Obj(fields).render(&mut text);
    text.push('\n');
    match out_path {
        Some(p) => {
            // Write aside and rename so a reader never sees half a report.
            let tmp = format!("{p}.tmp");
            let _ = fs::write(&tmp, &text);
            let _ = fs::rename(&tmp, &p);
        }
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            let _ = std::io::stdout().flush();
        }
    }
    if sleep > 0 {
        std::thread::sleep(std::time::Duration::from_secs(sleep));
    }
    std::process::exit(exit_code);
}
