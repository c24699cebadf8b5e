//! `update ID [--resources FILE|-] [runc's flags]`: change a live container's resources.
//! `--resources` is a LinuxResources JSON (podman passes a file, docker `-` on stdin); the flags
//! override it. As with runc, 0 means "leave unchanged". The new values are merged into the
//! config.json saved in the state directory, so later updates and `events` see them.

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value, json};
use std::io::Read;

use super::Global;
use crate::cgroups::Driver;
use crate::container::state::write_atomic;
use crate::container::{Container, Status};

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// LinuxResources JSON from a file, or "-" for stdin
    #[arg(short, long)]
    resources: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g allowed; -1 unlimited)
    #[arg(long, allow_negative_numbers = true)]
    memory: Option<String>,
    /// Memory plus swap limit (-1 unlimited)
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    memory_reservation: Option<String>,
    /// Kernel memory limit: obsolete, accepted and ignored with a warning (kernels since 5.16
    /// have no kernel memory limits; runc hides and ignores it too)
    #[arg(long = "kernel-memory", allow_negative_numbers = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit
    #[arg(long = "kernel-memory-tcp", allow_negative_numbers = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight vs. other containers; cgroup v2: converted to cpu.weight)
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        value_name = "SHARES"
    )]
    cpu_shares: Option<u64>,
    /// cpu.idle: 1 makes the container's cgroup SCHED_IDLE, 0 the default behaviour
    #[arg(long = "cpu-idle", value_name = "0|1")]
    cpu_idle: Option<i64>,
    /// CFS quota in microseconds (-1 unlimited)
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CFS burst in microseconds
    #[arg(long = "cpu-burst")]
    cpu_burst: Option<u64>,
    /// Realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (e.g. 0-1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1 unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// Intel RDT/CAT L3 cache schema (needs resctrl and a container created with
    /// linux.intelRdt, which berth does not support yet: a clear error)
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (as --l3-cache-schema)
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    mem_bw_schema: Option<String>,
}

/// `--l3-cache-schema` / `--mem-bw-schema`: runc changes the container's resctrl group; berth
/// makes none (linux.intelRdt is refused at create), so this is always an error, which says
/// whether the host could do it at all.
fn intel_rdt_update(flag: &str) -> Result<()> {
    const RDTGROUP_SUPER_MAGIC: i64 = 0x7655821;
    let mounted = nix::sys::statfs::statfs("/sys/fs/resctrl")
        .is_ok_and(|s| s.filesystem_type().0 == RDTGROUP_SUPER_MAGIC);
    if !mounted {
        bail!(
            "--{flag}: Intel RDT is not available on this host: no resctrl filesystem at /sys/fs/resctrl \
             (needs a CPU with RDT and `mount -t resctrl resctrl /sys/fs/resctrl`)"
        );
    }
    bail!(
        "--{flag}: the container was created without linux.intelRdt (berth does not support Intel \
         RDT yet): there is no resctrl group to update"
    )
}

/// "64m" → 67108864 (binary suffixes, as docker's RAMInBytes); "-1" stays -1.
fn bytes(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("--{flag}: {s:?} is not a size (like 67108864, 64m, 1g)"))?;
    if n < 0.0 {
        bail!("--{flag}: {s:?} must not be negative (except -1)");
    }
    Ok((n * mult as f64) as i64)
}

fn set(delta: &mut Value, path: &[&str], v: Value) {
    let mut cur = delta;
    for k in &path[..path.len() - 1] {
        if !cur.get(*k).is_some_and(|x| x.is_object()) {
            cur[*k] = json!({});
        }
        cur = &mut cur[*k];
    }
    cur[path[path.len() - 1]] = v;
}

/// Keys where 0 is a real value, not "unchanged".
const ZERO_MEANS_ZERO: &[&str] = &["swappiness", "idle", "burst"];

/// Merge the set values of `delta` into `base` (objects recursively; 0 and "" skipped except
/// where 0 is meaningful; lists replace).
fn merge(base: &mut Map<String, Value>, delta: &Map<String, Value>) {
    for (k, v) in delta {
        match v {
            Value::Null => {}
            Value::Object(d) => {
                if !base.get(k).is_some_and(|b| b.is_object()) {
                    base.insert(k.clone(), json!({}));
                }
                if let Some(Value::Object(b)) = base.get_mut(k) {
                    merge(b, d);
                }
            }
            Value::Number(n)
                if n.as_f64() == Some(0.0) && !ZERO_MEANS_ZERO.contains(&k.as_str()) => {}
            Value::String(s) if s.is_empty() => {}
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    for (flag, v) in [
        ("l3-cache-schema", &a.l3_cache_schema),
        ("mem-bw-schema", &a.mem_bw_schema),
    ] {
        if v.as_ref().is_some_and(|v| !v.is_empty()) {
            intel_rdt_update(flag)?;
        }
    }
    let (c, _lock) = Container::lock(&g.root, &a.id)?;
    match c.status() {
        Status::Stopped => bail!("container {:?} is not running", a.id),
        Status::Creating => bail!("container {:?} is still being created", a.id),
        _ => {}
    }
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| anyhow!("container {:?} has no cgroup", a.id))?;

    // The requested change, as LinuxResources JSON.
    let mut delta = match &a.resources {
        None => json!({}),
        Some(src) => {
            let mut text = vec![];
            if src == "-" {
                std::io::stdin()
                    .read_to_end(&mut text)
                    .map_err(|e| anyhow!("--resources: reading stdin: {e}"))?;
            } else {
                text =
                    std::fs::read(src).map_err(|e| anyhow!("--resources: reading {src}: {e}"))?;
            }
            let v = crate::config::parse_value(&text).map_err(|e| anyhow!("--resources: {e}"))?;
            if !v.is_object() {
                bail!("--resources: expected a JSON object (LinuxResources)");
            }
            v
        }
    };
    let mem = [
        ("memory", &a.memory, "limit"),
        ("memory-swap", &a.memory_swap, "swap"),
        ("memory-reservation", &a.memory_reservation, "reservation"),
        ("kernel-memory-tcp", &a.kernel_memory_tcp, "kernelTCP"),
    ];
    if let Some(v) = &a.kernel_memory {
        bytes("kernel-memory", v)?;
        crate::logger::warn(
            "--kernel-memory: kernel memory limits are obsolete (kernels since 5.16 have none; runc ignores them too): ignored",
        );
    }
    for (flag, v, key) in mem {
        if let Some(v) = v {
            set(&mut delta, &["memory", key], json!(bytes(flag, v)?));
        }
    }
    let cpu: [(&str, Option<Value>); 9] = [
        ("shares", a.cpu_shares.map(|v| json!(v))),
        ("quota", a.cpu_quota.map(|v| json!(v))),
        ("period", a.cpu_period.map(|v| json!(v))),
        ("burst", a.cpu_burst.map(|v| json!(v))),
        ("realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("cpus", a.cpuset_cpus.clone().map(|v| json!(v))),
        ("mems", a.cpuset_mems.clone().map(|v| json!(v))),
        ("idle", a.cpu_idle.map(|v| json!(v))),
    ];
    for (key, v) in cpu {
        if let Some(v) = v {
            set(&mut delta, &["cpu", key], v);
        }
    }
    if let Some(p) = a.pids_limit {
        set(&mut delta, &["pids", "limit"], json!(p));
    }
    if let Some(w) = a.blkio_weight {
        set(&mut delta, &["blockIO", "weight"], json!(w));
    }

    // Unlimited memory without a swap value is unlimited memory+swap too (runc): the old swap
    // limit must not stay in the merged resources (the systemd driver sends those) or the
    // saved config.
    if delta.pointer("/memory/limit").is_some_and(|l| l == -1)
        && !delta.pointer("/memory/swap").is_some_and(|s| s != 0)
    {
        set(&mut delta, &["memory", "swap"], json!(-1));
    }

    // The saved config, and the merged resources.
    let cfg_path = c.config_path();
    let mut cfg = crate::config::parse_value(
        &std::fs::read(&cfg_path).map_err(|e| anyhow!("reading {}: {e}", cfg_path.display()))?,
    )?;
    let mut merged = cfg
        .pointer("/linux/resources")
        .and_then(|r| r.as_object().cloned())
        .unwrap_or_default();
    if let Some(d) = delta.as_object() {
        merge(&mut merged, d);
    }
    let merged_r: LinuxResources = crate::config::deserialize(&Value::Object(merged.clone()))
        .map_err(|e| anyhow!("linux.resources after the update: {e}"))?;
    // A swap change is relative to the memory limit (cgroup v2 stores swap alone): give it
    // the limit in force.
    if delta.pointer("/memory/swap").is_some_and(|s| s != 0)
        && !delta.pointer("/memory/limit").is_some_and(|l| l != 0)
        && let Some(l) = merged_r.memory().as_ref().and_then(|m| m.limit())
    {
        set(&mut delta, &["memory", "limit"], json!(l));
    }
    let delta_r: LinuxResources =
        crate::config::deserialize(&delta).map_err(|e| anyhow!("--resources: {e}"))?;

    Driver::from_state(cg).update(
        &delta_r,
        &merged_r,
        merged_r
            .devices()
            .as_deref()
            .filter(|_| delta_r.devices().is_some()),
    )?;

    if !cfg.get("linux").is_some_and(|l| l.is_object()) {
        cfg["linux"] = json!({});
    }
    cfg["linux"]["resources"] = Value::Object(merged);
    write_atomic(&cfg_path, &serde_json::to_vec(&cfg)?, false)?;
    Ok(0)
}
