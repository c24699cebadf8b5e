//! The systemd cgroup driver (`--systemd-cgroup`), after runc's docs/systemd.md: systemd owns
//! the container's cgroup. berth asks for a transient unit over D-Bus (`StartTransientUnit`)
//! holding the container's first process, translates `linux.resources` into the unit's
//! properties, and then writes through cgroupfs, with the cgroupfs driver's own code (`Manager`),
//! everything systemd cannot express (the device eBPF program, hugetlb, rdma, `unified` ...), so
//! the container's cgroup files end up as the cgroupfs driver writes them.
//!
//! `linux.cgroupsPath` is `slice:prefix:name`: a scope `<prefix>-<name>.scope` in `slice`
//! (empty: system.slice; `-`: the root slice), or a slice unit when `name` ends in `.slice`.
//! No cgroupsPath means `:berth:<id>`. Slices nest by dashes: `kubepods-besteffort-pod1.slice`
//! is `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice`, and systemd
//! creates the missing ones.
//!
//! Placement: systemd moves the PIDs given to StartTransientUnit into the scope, and a scope
//! cannot exist before its first process, so clone3(CLONE_INTO_CGROUP) cannot be used. The
//! container's first process is cloned into berth's own cgroup and waits on the sync socket
//! (`Placement::after_parent`) until berth has started the unit and written the cgroup files;
//! only then does it fork, unshare its cgroup namespace or set anything up.
//!
//! D-Bus round trips per create: the authentication, `Hello`, `AddMatch` (JobRemoved) and the
//! version query are written at once before the clone; after it, `StartTransientUnit` (one
//! wait for its reply, which also collects the earlier ones) and the job's `JobRemoved` signal
//! (one wait). `--debug` logs the count and the time.

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::dbus::{self, Bus, Call, Conn, Value, prop};
use super::resources::{Place, blkio_weight_to_io, check_usage, shares_to_weight, swap_v2};
use super::{CgroupState, Manager, Mode, Placement, devices, gvariant};
use crate::logger;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const ANNOTATION: &str = "org.systemd.property.";
const FIELD: &str = "linux.cgroupsPath";

/// The unit that owns a container's cgroup (recorded in state.json).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// `berth-<id>.scope`, `docker-<id>.scope`, or a slice unit.
    pub unit: String,
    /// The scope's `Slice=`, or the slice unit's parent (`Wants=`).
    pub slice: String,
    /// The calling user's systemd instance instead of the system's (rootless).
    #[serde(default)]
    pub user: bool,
}

impl Unit {
    fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
    fn bus(&self) -> Bus {
        if self.user { Bus::User } else { Bus::System }
    }
}

/// Characters systemd allows in a unit name (unit_name_is_valid).
fn valid_unit_chars(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 256
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b":-_.\\@".contains(&c))
}

/// The cgroup path of a slice: `a-b.slice` → `/a.slice/a-b.slice`, `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = || anyhow!("{slice:?} is not a slice name (like \"system.slice\" or \"a-b.slice\")");
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || slice.contains('/') || !valid_unit_chars(slice) {
        return Err(bad());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// `linux.cgroupsPath` (`slice:prefix:name`) → the unit and its cgroup path.
pub fn parse_path(p: Option<&str>, id: &str, user: bool) -> Result<(Unit, String)> {
    let form = "the form \"slice:prefix:name\" that --systemd-cgroup takes (e.g. \
                \"system.slice:berth:<id>\"; an empty slice is system.slice, \"-\" the root slice)";
    let owned;
    let text = match p {
        None | Some("") => {
            owned = format!(":berth:{id}");
            &owned
        }
        Some(t) => t,
    };
    let parts: Vec<&str> = text.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        bail!("{FIELD}: {text:?} is not of {form}");
    };
    let slice = match slice {
        "" if user => "user.slice".to_string(),
        "" => "system.slice".to_string(),
        "-" => "-.slice".to_string(),
        s => s.to_string(),
    };
    let slice_path =
        expand_slice(&slice).map_err(|e| anyhow!("{FIELD}: {text:?}: the slice part: {e:#}"))?;
    if name.is_empty() {
        bail!("{FIELD}: {text:?}: the name part is empty ({form})");
    }
    let (unit, path) = if name.ends_with(".slice") {
        let p =
            expand_slice(name).map_err(|e| anyhow!("{FIELD}: {text:?}: the name part: {e:#}"))?;
        (name.to_string(), p)
    } else {
        let unit = format!("{prefix}-{name}.scope");
        if !valid_unit_chars(&unit) {
            bail!(
                "{FIELD}: {text:?}: {unit:?} is not a valid systemd unit name (letters, digits \
                 and \":-_.\\@\" only, at most 255 characters)"
            );
        }
        let path = format!("{}/{unit}", slice_path.trim_end_matches('/'));
        (unit, path)
    };
    Ok((Unit { unit, slice, user }, path))
}

/// `org.systemd.property.<Name>` annotations → unit properties (the values in GVariant text).
pub fn annotation_props(annotations: &HashMap<String, String>) -> Result<Vec<(String, Value)>> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION))
        .collect();
    keys.sort();
    let mut out = vec![];
    for k in keys {
        let field = format!("annotations[{k:?}]");
        let name = &k[ANNOTATION.len()..];
        gvariant::check_property_name(name).map_err(|e| anyhow!("{field}: {e:#}"))?;
        let v = gvariant::parse(&annotations[k]).map_err(|e| {
            anyhow!(
                "{field}: {:?} is not a GVariant text value ({e:#}); e.g. \"uint64 5\", \
                 \"'text'\", \"true\", \"['a', 'b']\"",
                annotations[k]
            )
        })?;
        let (name, v) = gvariant::sec_to_usec(name, v).map_err(|e| anyhow!("{field}: {e:#}"))?;
        out.push((name, v));
    }
    Ok(out)
}

/// `AllowedCPUs`/`AllowedMemoryNodes` take a bitmask: byte i holds CPUs 8i..8i+7, lowest bit
/// first.
fn list_to_mask(list: &str, field: &str) -> Result<Vec<u8>> {
    let mut mask: Vec<u8> = vec![];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| anyhow!("{field}: {list:?} is not a list like \"0-2,4\""))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b || b >= 1 << 16 {
            bail!("{field}: {list:?} is not a list like \"0-2,4\"");
        }
        for i in a..=b {
            if mask.len() <= i / 8 {
                mask.resize(i / 8 + 1, 0);
            }
            mask[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(mask)
}

fn bytes(v: Vec<u8>) -> Value {
    Value::Array("y".into(), v.into_iter().map(Value::Byte).collect())
}

/// -1 (or "max") → infinity, as systemd writes it.
fn limit(v: i64) -> Value {
    Value::U64(if v < 0 { u64::MAX } else { v as u64 })
}

/// CPUQuotaPerSecUSec from a quota and period, rounded up to systemd's 10 ms granularity
/// (systemd keeps a percentage: a lower value would leave the kernel below the quota asked
/// for; the exact quota is written to cpu.max afterwards). None: unlimited.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// The device rules as systemd's `DevicePolicy` and `DeviceAllow`, when an allow list says
/// exactly what they say; None when it cannot (deny rules carving a hole into a wildcard,
/// wildcard majors): then systemd gets no device rules (no program of its own) and berth's
/// eBPF program alone decides — it decides in every case, as it replaces systemd's.
fn device_props(rules: &[devices::Rule]) -> Option<Vec<Value>> {
    let start = rules.iter().rposition(|r| !r.allow && r.is_all())?;
    let mut allow: Vec<devices::Rule> = vec![];
    for r in &rules[start + 1..] {
        if r.allow {
            if r.is_all() {
                allow.clear();
            }
            // Anything after an allow-everything adds nothing.
            if !allow.first().is_some_and(|a| a.is_all()) || r.is_all() {
                allow.push(r.clone());
            }
            continue;
        }
        // A deny: exact only if it takes its bits from whole earlier allows.
        for a in allow.iter_mut() {
            let same_dev = |x: Option<u32>, y: Option<u32>| x.is_none() || x == y;
            let overlaps = (r.typ == 'a' || a.typ == 'a' || r.typ == a.typ)
                && (r.major.is_none() || a.major.is_none() || r.major == a.major)
                && (r.minor.is_none() || a.minor.is_none() || r.minor == a.minor)
                && r.access & a.access != 0;
            if !overlaps {
                continue;
            }
            let covers = (r.typ == 'a' || r.typ == a.typ)
                && same_dev(r.major, a.major)
                && same_dev(r.minor, a.minor);
            if !covers {
                return None;
            }
            a.access &= !r.access;
        }
        allow.retain(|a| a.access != 0);
    }
    if allow.len() == 1 && allow[0].is_all() {
        return Some(vec![
            prop("DevicePolicy", Value::Str("auto".into())),
            prop("DeviceAllow", Value::Array("(ss)".into(), vec![])),
        ]);
    }
    let mut entries = vec![];
    for a in &allow {
        let access = {
            let mut s = String::new();
            for (bit, c) in [
                (devices::ACC_READ, 'r'),
                (devices::ACC_WRITE, 'w'),
                (devices::ACC_MKNOD, 'm'),
            ] {
                if a.access & bit != 0 {
                    s.push(c);
                }
            }
            s
        };
        let types: &[char] = if a.typ == 'a' { &['c', 'b'] } else { &[a.typ] };
        for &t in types {
            let (group, dir) = if t == 'c' {
                ("char", "/dev/char")
            } else {
                ("block", "/dev/block")
            };
            let path = match (a.major, a.minor) {
                (None, None) => format!("{group}-*"),
                (None, Some(_)) => return None,
                (Some(m), None) => format!("{group}-{m}"),
                (Some(m), Some(n)) => format!("{dir}/{m}:{n}"),
            };
            entries.push(Value::Struct(vec![
                Value::Str(path),
                Value::Str(access.clone()),
            ]));
        }
    }
    Some(vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        // The empty list first resets what an earlier SetUnitProperties gave.
        prop("DeviceAllow", Value::Array("(ss)".into(), vec![])),
        prop("DeviceAllow", Value::Array("(ss)".into(), entries)),
    ])
}

/// Unit properties for `linux.resources` (runc's tables in docs/systemd.md), skipping those the
/// running systemd (`version`; 0 if unknown) does not have. The same conversions as the
/// cgroupfs driver (resources.rs). `devices`: include the device rules.
pub fn resource_props(
    r: &LinuxResources,
    mode: Mode,
    version: u32,
    devices: bool,
) -> Result<Vec<Value>> {
    let v2 = mode == Mode::V2;
    let mut p = vec![];
    let f = |n: &str| format!("linux.resources.{n}");
    let mut skipped = vec![];
    let mut gated = |p: &mut Vec<Value>, name: &str, min: u32, v: Value| {
        if version >= min {
            p.push(prop(name, v));
        } else {
            skipped.push(format!("{name} (systemd {min})"));
        }
    };
    if devices {
        let rules = devices::rules(r.devices().as_deref().unwrap_or(&[]))?;
        match device_props(&rules) {
            Some(d) => p.extend(d),
            None => {
                logger::debug(
                    "systemd: the device rules have no exact DeviceAllow form; berth's eBPF program alone applies them",
                );
                p.push(prop("DevicePolicy", Value::Str("auto".into())));
                p.push(prop("DeviceAllow", Value::Array("(ss)".into(), vec![])));
            }
        }
    }
    if let Some(m) = r.memory() {
        let lim = m.limit().unwrap_or(0);
        if lim != 0 {
            p.push(prop(
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                limit(lim),
            ));
        }
        if v2 {
            if let Some(res) = m.reservation().filter(|&v| v != 0) {
                p.push(prop("MemoryLow", limit(res)));
            }
            if let Some(s) = swap_v2(m.swap().unwrap_or(0), lim)? {
                p.push(prop("MemorySwapMax", limit(s)));
            }
        }
    }
    let mut idle = false;
    if let Some(c) = r.cpu() {
        if v2 && c.idle() == Some(1) {
            gated(&mut p, "CPUWeight", 252, Value::U64(0));
            idle = version >= 252;
        }
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            if !v2 {
                p.push(prop("CPUShares", Value::U64(s)));
            } else if idle {
                logger::warn(&format!(
                    "{}: systemd cannot have both a CPU weight and cpu.idle: CPUWeight is left at 0 (idle)",
                    f("cpu.shares")
                ));
            } else {
                p.push(prop("CPUWeight", Value::U64(shares_to_weight(s))));
            }
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if period != 0 {
            gated(&mut p, "CPUQuotaPeriodUSec", 242, Value::U64(period));
        }
        if quota != 0 || period != 0 {
            p.push(prop(
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let m = list_to_mask(cpus, &f("cpu.cpus"))?;
            gated(&mut p, "AllowedCPUs", 244, bytes(m));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let m = list_to_mask(mems, &f("cpu.mems"))?;
            gated(&mut p, "AllowedMemoryNodes", 244, bytes(m));
        }
    }
    if let Some(l) = r.pids().map(|p| p.limit())
        && (l > 0 || l == -1)
    {
        p.push(prop("TasksMax", limit(l)));
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|&w| w != 0)
    {
        if v2 {
            p.push(prop("IOWeight", Value::U64(blkio_weight_to_io(w))));
        } else {
            p.push(prop("BlockIOWeight", Value::U64(w as u64)));
        }
    }
    if v2 && let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, val) in keys {
            let field = format!("{}[{k:?}]", f("unified"));
            let val = val.trim();
            let num = |s: &str| -> Result<Value> {
                if s == "max" {
                    return Ok(Value::U64(u64::MAX));
                }
                s.parse::<u64>()
                    .map(Value::U64)
                    .map_err(|_| anyhow!("{field}: {val:?} is not a number or \"max\""))
            };
            match k.as_str() {
                "memory.max" => p.push(prop("MemoryMax", num(val)?)),
                "memory.high" => p.push(prop("MemoryHigh", num(val)?)),
                "memory.low" => p.push(prop("MemoryLow", num(val)?)),
                "memory.min" => p.push(prop("MemoryMin", num(val)?)),
                "memory.swap.max" => p.push(prop("MemorySwapMax", num(val)?)),
                "pids.max" => p.push(prop("TasksMax", num(val)?)),
                "cpu.weight" if !idle => p.push(prop("CPUWeight", num(val)?)),
                "cpu.max" => {
                    let mut it = val.split_whitespace();
                    let q = it.next().unwrap_or("max");
                    let quota = if q == "max" {
                        -1
                    } else {
                        q.parse::<i64>()
                            .map_err(|_| anyhow!("{field}: {val:?} is not \"QUOTA [PERIOD]\""))?
                    };
                    let period = match it.next() {
                        Some(s) => s
                            .parse::<u64>()
                            .map_err(|_| anyhow!("{field}: {val:?} is not \"QUOTA [PERIOD]\""))?,
                        None => 100_000,
                    };
                    gated(&mut p, "CPUQuotaPeriodUSec", 242, Value::U64(period));
                    p.push(prop(
                        "CPUQuotaPerSecUSec",
                        Value::U64(quota_per_sec(quota, period)),
                    ));
                }
                "cpuset.cpus" => gated(
                    &mut p,
                    "AllowedCPUs",
                    244,
                    bytes(list_to_mask(val, &field)?),
                ),
                "cpuset.mems" => gated(
                    &mut p,
                    "AllowedMemoryNodes",
                    244,
                    bytes(list_to_mask(val, &field)?),
                ),
                // The rest exists in cgroupfs only (written there afterwards).
                _ => {}
            }
        }
    }
    if !skipped.is_empty() {
        logger::debug(&format!(
            "systemd {version} is too old for {} (set in cgroupfs only)",
            skipped.join(", ")
        ));
    }
    Ok(p)
}

/// A connection to systemd, with the version asked for once.
struct Client {
    conn: Conn,
    version_serial: Option<u32>,
    version: Option<u32>,
    /// The user's instance: the pending answer to "where is your cgroup tree".
    cgroup_serial: Option<u32>,
}

/// `Properties.Get` of one property of systemd's manager object.
fn get_manager_prop(name: &str) -> Call<'static> {
    Call {
        destination: Some(DEST),
        path: PATH,
        interface: "org.freedesktop.DBus.Properties",
        member: "Get",
        body: vec![Value::Str(MANAGER.into()), Value::Str(name.into())],
        no_reply: false,
    }
}

impl Client {
    fn call<'a>(&self, member: &'a str, body: Vec<Value>) -> Call<'a> {
        Call {
            destination: Some(DEST),
            path: PATH,
            interface: MANAGER,
            member,
            body,
            no_reply: false,
        }
    }

    /// Connect, and on a bus subscribe to JobRemoved (before any job is started, so that its
    /// end cannot be missed) and ask for the version: written at once, answered later.
    fn open(bus: Bus, ask_version: bool, ask_cgroup: bool) -> Result<Client> {
        if bus == Bus::System && !Path::new("/run/systemd/system").is_dir() {
            bail!(
                "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system): \
                 run without --systemd-cgroup to use the cgroupfs driver"
            );
        }
        let mut conn = Conn::connect(bus).map_err(|e| {
            anyhow!(
                "--systemd-cgroup: cannot reach systemd over D-Bus ({e:#}): start the D-Bus \
                 {} bus, or run without --systemd-cgroup to use the cgroupfs driver",
                if bus == Bus::System {
                    "system"
                } else {
                    "session"
                }
            )
        })?;
        let mut calls = vec![];
        if conn.via_bus {
            calls.push(Conn::add_match_call(
                "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',\
                 interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
            ));
        }
        // The user's instance runs in a cgroup of its own (user@UID.service), under which its
        // slices and units live: asked for at once, as runc does, so the container's cgroup
        // path is known before the clone.
        let ask_cgroup = ask_cgroup && bus == Bus::User;
        if ask_cgroup {
            calls.push(get_manager_prop("ControlGroup"));
        }
        if ask_version {
            calls.push(get_manager_prop("Version"));
        }
        let serials = conn.send(&calls)?;
        let mut rest = serials.iter().rev().copied();
        let version_serial = if ask_version { rest.next() } else { None };
        let cgroup_serial = if ask_cgroup { rest.next() } else { None };
        Ok(Client {
            version_serial,
            conn,
            version: None,
            cgroup_serial,
        })
    }

    /// The cgroup of the user's systemd instance (`ControlGroup` of its manager object, e.g.
    /// `/user.slice/user-1000.slice/user@1000.service`); None when it was not asked for.
    fn manager_cgroup(&mut self) -> Result<Option<String>> {
        let Some(s) = self.cgroup_serial.take() else {
            return Ok(None);
        };
        let m = self.conn.reply(s).map_err(|e| {
            anyhow!("--systemd-cgroup: asking the user's systemd for its cgroup: {e:#}")
        })?;
        let cg = m.body.first().and_then(|v| v.as_str()).unwrap_or("");
        if !cg.starts_with('/') {
            bail!(
                "--systemd-cgroup: the user's systemd instance names no cgroup of its own \
                 (ControlGroup={cg:?}): is it running with cgroup v2 delegated to it?"
            );
        }
        Ok(Some(cg.to_string()))
    }

    /// systemd's version number ("252.22-1~deb12u1" → 252); 0 when it cannot be had.
    fn version(&mut self) -> u32 {
        if let Some(v) = self.version {
            return v;
        }
        let v = match self.version_serial.take() {
            Some(s) => self.conn.reply(s),
            None => self.conn.call(get_manager_prop("Version")),
        };
        let n = match v {
            Ok(m) => m
                .body
                .first()
                .and_then(|v| v.as_str())
                .map(|s| {
                    s.trim_start_matches(['"', 'v'])
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect::<String>()
                })
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            Err(e) => {
                logger::warn(&format!("systemd: asking for its version: {e:#}"));
                0
            }
        };
        self.version = Some(n);
        n
    }

    /// Wait for the end of the job `job` (JobRemoved); its result ("done" on success).
    fn wait_job(&mut self, job: &str) -> Result<String> {
        let m = self
            .conn
            .signal(Duration::from_secs(30), |m| {
                m.member.as_deref() == Some("JobRemoved")
                    && m.interface.as_deref() == Some(MANAGER)
                    && m.body.get(1).and_then(|v| v.as_str()) == Some(job)
            })
            .map_err(|e| anyhow!("waiting for systemd job {job}: {e:#}"))?;
        Ok(m.body
            .get(3)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string())
    }

    fn job_of(m: &dbus::Msg) -> Result<String> {
        m.body
            .first()
            .and_then(|v| v.as_str())
            .map(String::from)
            .ok_or_else(|| anyhow!("systemd answered without a job path"))
    }

    fn reset_failed(&mut self, unit: &str) -> Result<()> {
        let c = self.call("ResetFailedUnit", vec![Value::Str(unit.into())]);
        match self.conn.call(c) {
            Ok(_) => Ok(()),
            Err(e) if dbus::is_error(&e, "org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Put `pid` into `unit`'s cgroup through systemd (`AttachProcessesToUnit`, systemd 248):
/// for a rootless `exec` whose caller may not move processes there itself. The user's
/// instance, itself unable to, asks the system's (which allows it for processes of the user
/// into units of that user's delegated instance).
pub fn attach(unit: &Unit, pid: i32) -> Result<()> {
    let mut c = Client::open(unit.bus(), false, false)?;
    let call = c.call(
        "AttachProcessesToUnit",
        vec![
            Value::Str(unit.unit.clone()),
            Value::Str(String::new()),
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ],
    );
    c.conn
        .call(call)
        .map(|_| ())
        .map_err(|e| anyhow!("systemd AttachProcessesToUnit {}: {e:#}", unit.unit))
}

/// The systemd driver: a unit, and the cgroupfs driver on the unit's cgroup.
pub struct Systemd {
    pub fs: Manager,
    pub unit: Unit,
    id: String,
    extra: Vec<(String, Value)>,
    client: Option<Client>,
    /// Whether this container may own the unit: false once systemd said a unit of that name
    /// exists already (it belongs to someone else, and a rollback must leave it alone).
    owned: bool,
    /// The process `enter` put in the unit.
    pid: i32,
}

impl Systemd {
    pub fn new(
        cgroups_path: Option<&str>,
        id: &str,
        annotations: &HashMap<String, String>,
        user: bool,
    ) -> Result<Systemd> {
        let (unit, path) = parse_path(cgroups_path, id, user)?;
        let extra = annotation_props(annotations)?;
        let mut fs = Manager::new(Some(Path::new(&path)), id)?;
        fs.st.systemd = Some(unit.clone());
        Ok(Systemd {
            fs,
            unit,
            id: id.to_string(),
            extra,
            client: None,
            owned: true,
            pid: 0,
        })
    }

    pub fn from_state(st: &CgroupState, unit: &Unit) -> Systemd {
        Systemd {
            fs: Manager::from_state(st),
            unit: unit.clone(),
            id: String::new(),
            extra: vec![],
            client: None,
            owned: true,
            pid: 0,
        }
    }

    /// Open the connection (before any side effect of a create: no bus, no container).
    pub fn connect(&mut self, ask_version: bool) -> Result<()> {
        if self.client.is_some() {
            return Ok(());
        }
        // A new container (`new` knows its id; `from_state` does not) of the user's instance:
        // its cgroup is under the instance's own.
        let new = !self.id.is_empty();
        let mut client = Client::open(self.unit.bus(), ask_version, new)?;
        if let Some(base) = client.manager_cgroup()? {
            let path = format!(
                "{}/{}",
                base.trim_end_matches('/'),
                self.fs.st.path.trim_start_matches('/')
            );
            let mut fs = Manager::new(Some(Path::new(&path)), &self.id)?;
            fs.st.systemd = Some(self.unit.clone());
            self.fs = fs;
        }
        self.client = Some(client);
        Ok(())
    }

    fn client(&mut self) -> Result<&mut Client> {
        self.connect(false)?;
        self.client
            .as_mut()
            .ok_or_else(|| anyhow!("no D-Bus connection"))
    }

    pub fn owned(&self) -> bool {
        self.owned
    }

    /// D-Bus messages sent and waits, for --debug.
    pub fn dbus_stats(&self) -> Option<(u32, u32)> {
        self.client.as_ref().map(|c| (c.conn.sent, c.conn.waits))
    }

    /// Before the clone. A scope: the child waits for berth (v1 hierarchies systemd does not
    /// manage are made now and joined by the child itself). A slice unit: started now (it
    /// needs no process), and the child is cloned into it as with the cgroupfs driver.
    pub fn prepare(&mut self, r: &LinuxResources) -> Result<Placement> {
        if self.unit.is_slice() {
            self.start(None, r)?;
            self.fs.create()?;
            self.fs.apply(r)?;
            return self.fs.placement();
        }
        let v1: Vec<_> = self.fs.st.v1.values().cloned().collect();
        for (key, d) in &self.fs.st.v1 {
            super::fs::create_v1(d, key.split(',').any(|c| c == "cpuset"))?;
        }
        Ok(Placement::after_parent(Placement::open(&v1, None)?))
    }

    /// After the clone: the unit with `pid` in it.
    pub fn enter(&mut self, pid: i32, r: &LinuxResources) -> Result<()> {
        if self.unit.is_slice() {
            return Ok(());
        }
        self.pid = pid;
        self.start(Some(pid), r)
    }

    /// Once the process is in the unit: the cgroupfs writes (while the process sets itself up:
    /// its program runs only after `create` returns).
    pub fn finish(&mut self, r: &LinuxResources) -> Result<()> {
        if self.unit.is_slice() {
            return Ok(());
        }
        let pid = self.pid;
        let t = std::time::Instant::now();
        self.adopt_actual_path(pid)?;
        if self.fs.st.mode == Mode::V2
            && let Some(d) = self.fs.st.v2.clone()
        {
            enable_down_to(&d);
        }
        let t1 = std::time::Instant::now();
        self.fs.apply(r)?;
        if logger::debug_enabled() {
            logger::debug(&format!(
                "systemd: path and controllers {:.2} ms, cgroupfs writes {:.2} ms",
                (t1 - t).as_secs_f64() * 1e3,
                t1.elapsed().as_secs_f64() * 1e3
            ));
        }
        Ok(())
    }

    /// Where systemd really put the process (the computed path, unless systemd runs in a
    /// cgroup namespace or the annotations moved the unit elsewhere).
    fn adopt_actual_path(&mut self, pid: i32) -> Result<()> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let actual = text.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            match (it.next(), it.next(), it.next()) {
                (Some(_), Some(""), Some(p)) if self.fs.st.mode != Mode::V1 => Some(p),
                (Some(_), Some("name=systemd"), Some(p)) if self.fs.st.mode == Mode::V1 => Some(p),
                _ => None,
            }
        });
        if let Some(p) = actual
            && p != self.fs.st.path
        {
            logger::debug(&format!(
                "systemd put {} in {p}, not {}",
                self.unit.unit, self.fs.st.path
            ));
            let mut fs = Manager::new(Some(Path::new(p)), &self.id)?;
            fs.st.systemd = Some(self.unit.clone());
            self.fs = fs;
        }
        Ok(())
    }

    fn base_props(&self, pid: Option<i32>) -> Vec<Value> {
        let v2 = self.fs.st.mode == Mode::V2;
        let mut p = vec![prop(
            "Description",
            Value::Str(format!("berth container {}", self.id)),
        )];
        if self.unit.is_slice() {
            p.push(prop(
                "Wants",
                Value::Array("s".into(), vec![Value::Str(self.unit.slice.clone())]),
            ));
        } else {
            p.push(prop("Slice", Value::Str(self.unit.slice.clone())));
            p.push(prop("Delegate", Value::Bool(true)));
        }
        if let Some(pid) = pid {
            p.push(prop(
                "PIDs",
                Value::Array("u".into(), vec![Value::U32(pid as u32)]),
            ));
        }
        for a in [
            "MemoryAccounting",
            "CPUAccounting",
            if v2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            "TasksAccounting",
        ] {
            p.push(prop(a, Value::Bool(true)));
        }
        p.push(prop("DefaultDependencies", Value::Bool(false)));
        p
    }

    /// StartTransientUnit (mode "replace") and wait for its job.
    fn start(&mut self, pid: Option<i32>, r: &LinuxResources) -> Result<()> {
        let t0 = std::time::Instant::now();
        let mode = self.fs.st.mode;
        let mut props = self.base_props(pid);
        let version = self.client()?.version();
        props.extend(resource_props(r, mode, version, true)?);
        props.extend(self.extra.iter().map(|(n, v)| prop(n, v.clone())));
        let unit = self.unit.unit.clone();
        let body = vec![
            Value::Str(unit.clone()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let mut retried = false;
        let job = loop {
            let cl = self.client()?;
            let c = cl.call("StartTransientUnit", body.clone());
            match cl.conn.call(c) {
                Ok(m) => break Client::job_of(&m)?,
                Err(e) if dbus::is_error(&e, "org.freedesktop.systemd1.UnitExists") && !retried => {
                    // Perhaps a failed leftover of an earlier container: reset it, once.
                    retried = true;
                    cl.reset_failed(&unit)?;
                }
                Err(e) => {
                    if dbus::is_error(&e, "org.freedesktop.systemd1.UnitExists") {
                        self.owned = false;
                        bail!(
                            "systemd unit {unit:?} already exists: another container has this \
                             id or {FIELD}; choose another"
                        );
                    }
                    return Err(self.explain_refusal(e));
                }
            }
        };
        let t1 = std::time::Instant::now();
        let result = self.client()?.wait_job(&job)?;
        if logger::debug_enabled() {
            logger::debug(&format!(
                "systemd: StartTransientUnit {unit} answered in {:.2} ms, its job ended in {:.2} ms more",
                (t1 - t0).as_secs_f64() * 1e3,
                t1.elapsed().as_secs_f64() * 1e3
            ));
        }
        if result != "done" {
            let _ = self.client()?.reset_failed(&unit);
            bail!(
                "systemd could not start unit {unit:?}: its job ended with {result:?} (see \
                 `journalctl -u {unit}`)"
            );
        }
        Ok(())
    }

    /// systemd's refusal, with the annotation that asked for the property if it was one.
    fn explain_refusal(&self, e: anyhow::Error) -> anyhow::Error {
        let text = format!("{e:#}");
        let from = self
            .extra
            .iter()
            .find(|(n, _)| {
                text.contains(&format!("property {n}")) || text.contains(&format!("{n}="))
            })
            .map(|(n, _)| format!(" (from annotations[\"{ANNOTATION}{n}\"])"))
            .unwrap_or_default();
        anyhow!(
            "systemd refused to start unit {:?}: {text}{from}",
            self.unit.unit
        )
    }

    /// `update`: the unit's properties for the merged resources (runtime, not persisted),
    /// then the cgroupfs writes of the change.
    pub fn update(
        &mut self,
        delta: &LinuxResources,
        merged: &LinuxResources,
        devices: Option<&[oci_spec::runtime::LinuxDeviceCgroup]>,
    ) -> Result<()> {
        let mode = self.fs.st.mode;
        // Refused before systemd lowers the limit below the usage (and the OOM killer ends the
        // container and with it the unit).
        if let Some(m) = delta.memory()
            && m.check_before_update() == Some(true)
            && let Some(l) = m.limit().filter(|&l| l > 0)
        {
            match self.fs.place("memory") {
                Some(Place::V2(d)) => check_usage(&d, "memory.current", l)?,
                Some(Place::V1(d)) => check_usage(&d, "memory.usage_in_bytes", l)?,
                None => {}
            }
        }
        self.connect(true)?;
        let version = self.client()?.version();
        let mut r = merged.clone();
        if let Some(d) = devices {
            r.set_devices(Some(d.to_vec()));
        }
        let props = resource_props(&r, mode, version, devices.is_some())?;
        let sent = !props.is_empty();
        // systemd replaces its device program disruptively: freeze meanwhile (runc does).
        let freeze = devices.is_some() && !self.fs.is_frozen() && self.fs.freeze().is_ok();
        let unit = self.unit.unit.clone();
        let res = if props.is_empty() {
            Ok(())
        } else {
            let cl = self.client()?;
            let c = cl.call(
                "SetUnitProperties",
                vec![
                    Value::Str(unit.clone()),
                    Value::Bool(true),
                    Value::Array("(sv)".into(), props),
                ],
            );
            cl.conn.call(c).map(|_| ())
        };
        if freeze {
            let _ = self.fs.thaw();
        }
        res.map_err(|e| anyhow!("systemd refused the update of unit {unit:?}: {e:#}"))?;
        // systemd rewrites cpu.max with its own period whenever the quota changes (its default
        // period for an unlimited quota): the cgroupfs write after it carries both, from the
        // merged resources, so the period asked for stays (runc's fs write does the same).
        let mut delta = delta.clone();
        if let (Some(dc), Some(mc)) = (delta.cpu().clone(), merged.cpu().as_ref())
            && (dc.quota().unwrap_or(0) != 0 || dc.period().unwrap_or(0) != 0)
        {
            let mut c = dc;
            if c.period().unwrap_or(0) == 0 {
                c.set_period(mc.period());
            }
            if c.quota().unwrap_or(0) == 0 {
                c.set_quota(mc.quota());
            }
            delta.set_cpu(Some(c));
        }
        self.fs.update(&delta, devices)?;
        // SetUnitProperties makes systemd realize the unit again, attaching a device program of
        // its own beside berth's: replace it, as at create (runc's Set does the same).
        if devices.is_none() && sent {
            self.fs
                .apply_devices(merged.devices().as_deref().unwrap_or(&[]))?;
        }
        Ok(())
    }

    /// `pause`/`resume`: freeze or thaw through systemd (FreezeUnit/ThawUnit, systemd 246), so
    /// that the unit's FreezerState says so (systemd does not notice a write to cgroup.freeze),
    /// and through cgroupfs where systemd did not (older systemd, v1, a state it did not know).
    pub fn set_frozen(&mut self, frozen: bool) -> Result<()> {
        let member = if frozen { "FreezeUnit" } else { "ThawUnit" };
        let unit = self.unit.unit.clone();
        let res = self.client().and_then(|cl| {
            let c = cl.call(member, vec![Value::Str(unit.clone())]);
            cl.conn.call(c)
        });
        if let Err(e) = res {
            logger::debug(&format!("systemd: {member} {unit}: {e:#}; cgroupfs only"));
        }
        if self.fs.is_frozen() != frozen {
            if frozen {
                self.fs.freeze()?;
            } else {
                self.fs.thaw()?;
            }
        }
        Ok(())
    }

    /// Stop the unit (systemd removes its cgroup), reset it if it failed, and remove what is
    /// left in cgroupfs (sub-cgroups, v1 hierarchies systemd does not manage). The processes
    /// are killed by the caller first.
    pub fn destroy(&mut self) -> Result<()> {
        if self.owned {
            self.stop_unit()?;
        }
        self.fs.destroy()
    }

    fn stop_unit(&mut self) -> Result<()> {
        let unit = self.unit.unit.clone();
        let cl = self.client()?;
        let c = cl.call(
            "StopUnit",
            vec![Value::Str(unit.clone()), Value::Str("replace".into())],
        );
        let job = match cl.conn.call(c) {
            Ok(m) => Client::job_of(&m)?,
            // Gone already (an empty scope stops by itself): nothing to stop or reset.
            Err(e) if dbus::is_error(&e, "org.freedesktop.systemd1.NoSuchUnit") => return Ok(()),
            Err(e) => return Err(e).context(format!("stopping systemd unit {unit:?}")),
        };
        let result = cl.wait_job(&job)?;
        if result != "done" {
            logger::warn(&format!(
                "stopping systemd unit {unit:?}: its job ended with {result:?}"
            ));
        }
        // A unit that failed (its process was OOM-killed, say) stays listed until reset.
        cl.reset_failed(&unit)
            .with_context(|| format!("resetting systemd unit {unit:?}"))
    }
}

/// Enable every controller the hierarchy has on the way from its root down to `dir`, as the
/// cgroupfs driver does for the cgroups it creates (and runc's systemd driver too): systemd
/// enables only the controllers it knows (not hugetlb, rdma, misc).
fn enable_down_to(dir: &Path) {
    let root = Path::new("/sys/fs/cgroup");
    let want = super::fs::read(root, "cgroup.controllers");
    let have = super::fs::read(dir, "cgroup.controllers");
    if want
        .split_whitespace()
        .all(|c| have.split_whitespace().any(|h| h == c))
    {
        return;
    }
    let Ok(rel) = dir.strip_prefix(root) else {
        return;
    };
    let mut at = root.to_path_buf();
    for part in rel.parent().into_iter().flat_map(|p| p.components()) {
        super::fs::enable_controllers(&at);
        at.push(part);
    }
    super::fs::enable_controllers(&at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(
            expand_slice("kubepods-besteffort-pod1_2.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice"
        );
        for bad in [
            "system",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_paths() {
        let (u, p) = parse_path(None, "c1", false).unwrap();
        assert_eq!(
            (u.unit.as_str(), u.slice.as_str()),
            ("berth-c1.scope", "system.slice")
        );
        assert_eq!(p, "/system.slice/berth-c1.scope");
        let (u, p) = parse_path(Some("system.slice:docker:abc"), "x", false).unwrap();
        assert_eq!(u.unit, "docker-abc.scope");
        assert_eq!(p, "/system.slice/docker-abc.scope");
        let (u, p) = parse_path(Some("-:p:n"), "x", false).unwrap();
        assert_eq!((u.slice.as_str(), p.as_str()), ("-.slice", "/p-n.scope"));
        let (u, p) = parse_path(Some(":berth:x"), "x", true).unwrap();
        assert_eq!(
            (u.slice.as_str(), p.as_str()),
            ("user.slice", "/user.slice/berth-x.scope")
        );
        let (u, p) = parse_path(
            Some("kubepods-besteffort-pod12.slice:cri-containerd:abc"),
            "abc",
            false,
        )
        .unwrap();
        assert_eq!(u.unit, "cri-containerd-abc.scope");
        assert_eq!(
            p,
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"
        );
        let (u, p) = parse_path(Some("system.slice:x:mine-sub.slice"), "x", false).unwrap();
        assert_eq!(
            (u.unit.as_str(), p.as_str()),
            ("mine-sub.slice", "/mine.slice/mine-sub.slice")
        );
        for bad in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "system.slice:x:",
            "system:x:y",
            "system.slice:x:a/b",
            "system.slice:x y:z",
        ] {
            let e = parse_path(Some(bad), "x", false).unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath: "), "{bad}: {e}");
        }
    }

    #[test]
    fn masks_and_quota() {
        assert_eq!(list_to_mask("0", "f").unwrap(), vec![1]);
        assert_eq!(list_to_mask("0-2,9", "f").unwrap(), vec![7, 2]);
        assert!(list_to_mask("3-1", "f").is_err());
        assert!(list_to_mask("x", "f").is_err());
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
        assert_eq!(quota_per_sec(20_000, 0), 200_000);
    }

    #[test]
    fn device_rules_as_systemd_sees_them() {
        let entries = |p: &[Value]| -> Vec<String> {
            let Value::Struct(f) = p.last().unwrap() else {
                panic!()
            };
            let Value::Variant(v) = &f[1] else { panic!() };
            let Value::Array(_, items) = &**v else {
                panic!()
            };
            items
                .iter()
                .map(|i| {
                    let Value::Struct(s) = i else { panic!() };
                    format!("{} {}", s[0].as_str().unwrap(), s[1].as_str().unwrap())
                })
                .collect()
        };
        // The defaults after docker's usual leading deny-all.
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": false, "access": "rwm"}]"#).unwrap();
        let p = device_props(&devices::rules(&spec).unwrap()).unwrap();
        let e = entries(&p);
        assert!(e.contains(&"char-* m".to_string()), "{e:?}");
        assert!(e.contains(&"/dev/char/1:3 rwm".to_string()), "{e:?}");
        assert!(e.contains(&"char-136 rwm".to_string()), "{e:?}");
        // Allow everything.
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rwm"}]"#).unwrap();
        let p = device_props(&devices::rules(&spec).unwrap()).unwrap();
        assert_eq!(p[0], prop("DevicePolicy", Value::Str("auto".into())));
        // A deny inside a wildcard allow cannot be an allow list.
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "type": "c", "major": 1, "access": "rw"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        )
        .unwrap();
        assert!(device_props(&devices::rules(&spec).unwrap()).is_none());
        // A deny taking whole rules away is fine.
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "type": "c", "major": 4, "minor": 7, "access": "rw"},
                {"allow": false, "type": "c", "major": 4, "access": "w"}]"#,
        )
        .unwrap();
        let e = entries(&device_props(&devices::rules(&spec).unwrap()).unwrap());
        assert!(e.contains(&"/dev/char/4:7 r".to_string()), "{e:?}");
    }

    #[test]
    fn resources_to_properties() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 67108864, "reservation": 1024, "swap": 134217728},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
                "pids": {"limit": 50}, "blockIO": {"weight": 500},
                "unified": {"memory.high": "max", "hugetlb.2MB.max": "0"}}"#,
        )
        .unwrap();
        let names = |p: &[Value]| -> Vec<String> {
            p.iter()
                .map(|v| {
                    let Value::Struct(f) = v else { panic!() };
                    let Value::Variant(x) = &f[1] else { panic!() };
                    format!("{}={:?}", f[0].as_str().unwrap(), x)
                })
                .collect()
        };
        let p = names(&resource_props(&r, Mode::V2, 252, false).unwrap());
        for want in [
            "MemoryMax=U64(67108864)",
            "MemoryLow=U64(1024)",
            "MemorySwapMax=U64(67108864)",
            &format!("CPUWeight=U64({})", shares_to_weight(1024)),
            "CPUQuotaPeriodUSec=U64(100000)",
            "CPUQuotaPerSecUSec=U64(500000)",
            "TasksMax=U64(50)",
            &format!("IOWeight=U64({})", blkio_weight_to_io(500)),
            "MemoryHigh=U64(18446744073709551615)",
        ] {
            assert!(p.iter().any(|x| x == want), "{want} not in {p:?}");
        }
        assert!(p.iter().any(|x| x.starts_with("AllowedCPUs=")));
        // An old systemd gets none of the newer properties.
        let p = names(&resource_props(&r, Mode::V2, 241, false).unwrap());
        assert!(
            !p.iter()
                .any(|x| x.starts_with("AllowedCPUs") || x.starts_with("CPUQuotaPeriod"))
        );
        let p = names(&resource_props(&r, Mode::V1, 252, false).unwrap());
        assert!(
            p.contains(&"MemoryLimit=U64(67108864)".to_string()),
            "{p:?}"
        );
        assert!(p.contains(&"CPUShares=U64(1024)".to_string()), "{p:?}");
        assert!(p.contains(&"BlockIOWeight=U64(500)".to_string()), "{p:?}");
    }

    #[test]
    fn annotations() {
        let mut a = HashMap::new();
        a.insert("org.systemd.property.TimeoutStopSec".into(), "5".into());
        a.insert(
            "org.systemd.property.CollectMode".into(),
            "'inactive-or-failed'".into(),
        );
        a.insert("other".into(), "x".into());
        let p = annotation_props(&a).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], ("TimeoutStopUSec".into(), Value::U64(5_000_000)));
        a.insert("org.systemd.property.Bad".into(), "'unterminated".into());
        let e = annotation_props(&a).unwrap_err().to_string();
        assert!(
            e.contains("annotations[\"org.systemd.property.Bad\"]"),
            "{e}"
        );
    }
}
