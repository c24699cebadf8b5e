//! `linux.resources` → cgroup files, on v1 hierarchies and on cgroup2 (with runc's and crun's
//! conversions of v1 values). A value of 0 (or an absent field) leaves the setting unchanged,
//! as runc does: `docker update` sends 0 for everything it does not change.
//!
//! On a hybrid host each controller is driven where it is: the v1 hierarchy when one is mounted,
//! otherwise the cgroup2 mount if it carries the controller (hugetlb on this kind of machine).

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxRdma,
    LinuxResources, LinuxThrottleDevice,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::fs::{read, read_u64, write_file};
use super::{Manager, Mode};
use crate::logger;

/// Where a controller's files are for this container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    V1(PathBuf),
    V2(PathBuf),
}

const R: &str = "linux.resources";

impl Manager {
    /// The directory that drives `ctrl`: its v1 hierarchy, or the cgroup2 directory when the
    /// controller is enabled there (pure v2, or the unified part of a hybrid host).
    pub fn place(&self, ctrl: &str) -> Option<Place> {
        if self.st.mode != Mode::V2
            && let Some(d) = self.v1_dir(ctrl)
        {
            return Some(Place::V1(d.clone()));
        }
        let d = self.st.v2.as_ref()?;
        let avail = read(d, "cgroup.controllers");
        if avail.split_whitespace().any(|c| c == ctrl) {
            return Some(Place::V2(d.clone()));
        }
        None
    }

    fn need(&self, ctrl: &str, field: &str) -> Result<Place> {
        self.place(ctrl).ok_or_else(|| {
            anyhow!(
                "{field}: the {ctrl} cgroup controller is not available on this host{}",
                match self.st.mode {
                    Mode::V2 => " (not enabled in the container's cgroup2 parent)",
                    Mode::Hybrid => " (neither a v1 hierarchy nor on the cgroup2 mount)",
                    Mode::V1 => " (no v1 hierarchy mounted)",
                }
            )
        })
    }

    /// Write every set field of `r` except the devices (see `devices.rs`). `update` is true for
    /// `berth update` (checkBeforeUpdate only applies then).
    pub(crate) fn apply_resources(&self, r: &LinuxResources, update: bool) -> Result<()> {
        if let Some(m) = r.memory() {
            self.memory(m, update)?;
        }
        if let Some(c) = r.cpu() {
            self.cpu(c)?;
        }
        if let Some(p) = r.pids()
            && p.limit() != 0
        {
            let v = if p.limit() < 0 {
                "max".to_string()
            } else {
                p.limit().to_string()
            };
            let f = format!("{R}.pids.limit");
            let d = match self.need("pids", &f)? {
                Place::V1(d) | Place::V2(d) => d,
            };
            write_file(&d, "pids.max", &v, &f)?;
        }
        if let Some(b) = r.block_io() {
            self.blkio(b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            self.hugetlb(h)?;
        }
        if let Some(n) = r.network() {
            self.network(n)?;
        }
        if let Some(rd) = r.rdma() {
            self.rdma(rd)?;
        }
        if let Some(u) = r.unified() {
            self.unified(u)?;
        }
        Ok(())
    }

    fn memory(&self, m: &LinuxMemory, update: bool) -> Result<()> {
        #[allow(deprecated)]
        if m.kernel().is_some_and(|k| k != 0) {
            logger::warn(
                "linux.resources.memory.kernel is deprecated (kernel memory limits are gone from the kernel): ignored",
            );
        }
        let any = m.limit().is_some_and(|v| v != 0)
            || m.swap().is_some_and(|v| v != 0)
            || m.reservation().is_some_and(|v| v != 0)
            || m.kernel_tcp().is_some_and(|v| v != 0)
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true)
            || m.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let f = |n: &str| format!("{R}.memory.{n}");
        match self.need("memory", &f("limit"))? {
            Place::V1(d) => memory_v1(&d, m, update),
            Place::V2(d) => memory_v2(&d, m, update),
        }
    }

    fn cpu(&self, c: &LinuxCpu) -> Result<()> {
        let f = |n: &str| format!("{R}.cpu.{n}");
        let cpu_set = c.shares().is_some_and(|v| v != 0)
            || c.quota().is_some_and(|v| v != 0)
            || c.period().is_some_and(|v| v != 0)
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0);
        if cpu_set {
            match self.need("cpu", &f("shares"))? {
                Place::V1(d) => cpu_v1(&d, c)?,
                Place::V2(d) => cpu_v2(&d, c)?,
            }
        }
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let d = match self.need("cpuset", &f("cpus"))? {
                Place::V1(d) | Place::V2(d) => d,
            };
            if let Some(v) = cpus {
                write_file(&d, "cpuset.cpus", v, &f("cpus"))?;
            }
            if let Some(v) = mems {
                write_file(&d, "cpuset.mems", v, &f("mems"))?;
            }
        }
        Ok(())
    }

    fn blkio(&self, b: &LinuxBlockIo) -> Result<()> {
        let any = b.weight().is_some_and(|v| v != 0)
            || b.leaf_weight().is_some_and(|v| v != 0)
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|t| t.as_ref().is_some_and(|v| !v.is_empty()));
        if !any {
            return Ok(());
        }
        let field = format!("{R}.blockIO");
        match self.place("blkio").or_else(|| self.place("io")) {
            Some(Place::V1(d)) => blkio_v1(&d, b),
            Some(Place::V2(d)) => io_v2(&d, b),
            None => bail!("{field}: the blkio/io cgroup controller is not available on this host"),
        }
    }

    fn hugetlb(&self, h: &[LinuxHugepageLimit]) -> Result<()> {
        if h.is_empty() {
            return Ok(());
        }
        let place = self.need("hugetlb", &format!("{R}.hugepageLimits"))?;
        for (i, l) in h.iter().enumerate() {
            let field = format!("{R}.hugepageLimits[{i}]");
            let ps = l.page_size();
            if ps.is_empty() || ps.contains('/') || ps.contains('.') {
                bail!("{field}.pageSize: {ps:?} is not a page size like \"2MB\"");
            }
            match &place {
                Place::V1(d) => {
                    let file = format!("hugetlb.{ps}.limit_in_bytes");
                    if !d.join(&file).exists() {
                        bail!(
                            "{field}.pageSize: {ps:?} is not a huge page size of this host (no {})",
                            d.join(&file).display()
                        );
                    }
                    write_file(d, &file, &l.limit().to_string(), &format!("{field}.limit"))?;
                }
                Place::V2(d) => {
                    let file = format!("hugetlb.{ps}.max");
                    if !d.join(&file).exists() {
                        bail!(
                            "{field}.pageSize: {ps:?} is not a huge page size of this host (no {})",
                            d.join(&file).display()
                        );
                    }
                    let v = if l.limit() < 0 {
                        "max".to_string()
                    } else {
                        l.limit().to_string()
                    };
                    write_file(d, &file, &v, &format!("{field}.limit"))?;
                    // Reservations are limited alike (runc does the same), where the kernel has them.
                    let rsvd = format!("hugetlb.{ps}.rsvd.max");
                    if d.join(&rsvd).exists() {
                        write_file(d, &rsvd, &v, &format!("{field}.limit"))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn network(&self, n: &LinuxNetwork) -> Result<()> {
        if let Some(id) = n.class_id().filter(|&c| c != 0) {
            let field = format!("{R}.network.classID");
            match self.place("net_cls") {
                Some(Place::V1(d)) => write_file(&d, "net_cls.classid", &id.to_string(), &field)?,
                _ if self.st.mode == Mode::V2 => {
                    bail!(
                        "{field}: net_cls does not exist on cgroup v2 (use an eBPF or nftables classifier)"
                    )
                }
                _ => bail!(
                    "{field}: the net_cls cgroup controller is not available on this host (not mounted)"
                ),
            }
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let field = format!("{R}.network.priorities[{i}]");
            match self.place("net_prio") {
                Some(Place::V1(d)) => write_file(
                    &d,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                    &field,
                )?,
                _ if self.st.mode == Mode::V2 => {
                    bail!("{field}: net_prio does not exist on cgroup v2")
                }
                _ => bail!(
                    "{field}: the net_prio cgroup controller is not available on this host (not mounted)"
                ),
            }
        }
        Ok(())
    }

    fn rdma(&self, rd: &HashMap<String, LinuxRdma>) -> Result<()> {
        let mut devs: Vec<_> = rd.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            let field = format!("{R}.rdma[{dev:?}]");
            let mut v = dev.clone();
            if let Some(h) = l.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            if v == *dev {
                continue;
            }
            let d = match self.need("rdma", &field)? {
                Place::V1(d) | Place::V2(d) => d,
            };
            write_file(&d, "rdma.max", &v, &field)?;
        }
        Ok(())
    }

    fn unified(&self, u: &HashMap<String, String>) -> Result<()> {
        if u.is_empty() {
            return Ok(());
        }
        let field = format!("{R}.unified");
        let Some(d) = self.st.v2.as_ref() else {
            bail!(
                "{field}: this host has no cgroup2 hierarchy (cgroup v1): unified keys cannot be set"
            );
        };
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let kf = format!("{field}[{k:?}]");
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                bail!("{kf}: not a cgroup file name");
            }
            if !d.join(k).exists() {
                let ctrl = k.split('.').next().unwrap_or("");
                if self.st.mode == Mode::Hybrid {
                    bail!(
                        "{kf}: {} does not exist: on this hybrid host the cgroup2 mount has only [{}]{}",
                        d.join(k).display(),
                        read(d, "cgroup.controllers"),
                        if self.v1_dir(ctrl).is_some() {
                            format!(" and {ctrl} is a v1 controller")
                        } else {
                            String::new()
                        }
                    );
                }
                bail!(
                    "{kf}: {} does not exist (is the {ctrl} controller enabled?)",
                    d.join(k).display()
                );
            }
            write_file(d, k, v, &kf)?;
        }
        Ok(())
    }
}

// ---- memory ----

fn memory_v1(d: &Path, m: &LinuxMemory, update: bool) -> Result<()> {
    let f = |n: &str| format!("{R}.memory.{n}");
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    let memsw = d.join("memory.memsw.limit_in_bytes").exists();
    if limit == -1 && swap == 0 && memsw {
        // Unlimited memory means unlimited memory+swap too (runc).
        swap = -1;
    }
    if update && m.check_before_update() == Some(true) && limit > 0 {
        check_usage(d, "memory.usage_in_bytes", limit)?;
    }
    if swap != 0 {
        if !memsw {
            bail!(
                "{}: {} does not exist: swap accounting is off on this host",
                f("swap"),
                d.join("memory.memsw.limit_in_bytes").display()
            );
        }
        // The kernel wants memory ≤ memory+swap at every moment: raise memsw first when growing.
        let cur = read_u64(d, "memory.limit_in_bytes").unwrap_or(u64::MAX);
        let set_limit = || -> Result<()> {
            if limit != 0 {
                write_file(d, "memory.limit_in_bytes", &limit.to_string(), &f("limit"))?;
            }
            Ok(())
        };
        let set_swap = || {
            write_file(
                d,
                "memory.memsw.limit_in_bytes",
                &swap.to_string(),
                &f("swap"),
            )
        };
        if swap == -1 || cur < swap as u64 {
            set_swap()?;
            set_limit()?;
        } else {
            set_limit()?;
            set_swap()?;
        }
    } else if limit != 0 {
        write_file(d, "memory.limit_in_bytes", &limit.to_string(), &f("limit"))?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write_file(
            d,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
            &f("reservation"),
        )?;
    }
    if let Some(k) = m.kernel_tcp().filter(|&k| k != 0) {
        write_file(
            d,
            "memory.kmem.tcp.limit_in_bytes",
            &k.to_string(),
            &f("kernelTCP"),
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            bail!("{}: {s} is out of range (0-100)", f("swappiness"));
        }
        write_file(d, "memory.swappiness", &s.to_string(), &f("swappiness"))?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(d, "memory.oom_control", "1", &f("disableOOMKiller"))?;
    }
    if let Some(h) = m.use_hierarchy() {
        write_file(
            d,
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
            &f("useHierarchy"),
        )?;
    }
    Ok(())
}

pub(super) fn check_usage(d: &Path, file: &str, limit: i64) -> Result<()> {
    if let Some(u) = read_u64(d, file)
        && u >= limit as u64
    {
        bail!(
            "{R}.memory.limit: {limit} is not above the current usage {u} ({}), and checkBeforeUpdate is set",
            d.join(file).display()
        );
    }
    Ok(())
}

/// memory.swap.max from the OCI memory+swap value (runc's ConvertMemorySwapToCgroupV2Value):
/// Some(-1) is "max", None leaves it unchanged.
pub fn swap_v2(swap: i64, limit: i64) -> Result<Option<i64>> {
    let f = format!("{R}.memory.swap");
    Ok(match (swap, limit) {
        (0, -1) => Some(-1),
        (0, _) => None,
        (-1, _) => Some(-1),
        (_, 0) => bail!("{f}: a swap limit needs a memory limit (linux.resources.memory.limit)"),
        (s, -1) => Some(s),
        (s, l) if s < l => bail!("{f}: memory+swap ({s}) must not be below memory.limit ({l})"),
        (s, l) => Some(s - l),
    })
}

fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

fn memory_v2(d: &Path, m: &LinuxMemory, update: bool) -> Result<()> {
    let f = |n: &str| format!("{R}.memory.{n}");
    let limit = m.limit().unwrap_or(0);
    if update && m.check_before_update() == Some(true) && limit > 0 {
        check_usage(d, "memory.current", limit)?;
    }
    if let Some(s) = swap_v2(m.swap().unwrap_or(0), limit)? {
        if d.join("memory.swap.max").exists() {
            write_file(d, "memory.swap.max", &max_or(s), &f("swap"))?;
        } else if s != -1 {
            bail!(
                "{}: {} does not exist: swap accounting is off on this host",
                f("swap"),
                d.join("memory.swap.max").display()
            );
        }
    }
    if limit != 0 {
        write_file(d, "memory.max", &max_or(limit), &f("limit"))?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write_file(d, "memory.low", &max_or(r), &f("reservation"))?;
    }
    let ignored = [
        ("kernelTCP", m.kernel_tcp().is_some_and(|v| v != 0)),
        ("swappiness", m.swappiness().is_some()),
        ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ("useHierarchy", m.use_hierarchy().is_some()),
    ];
    for (name, set) in ignored {
        if set {
            logger::warn(&format!(
                "{}: has no cgroup v2 equivalent: ignored",
                f(name)
            ));
        }
    }
    Ok(())
}

// ---- cpu ----

fn cpu_v1(d: &Path, c: &LinuxCpu) -> Result<()> {
    let f = |n: &str| format!("{R}.cpu.{n}");
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write_file(d, "cpu.shares", &s.to_string(), &f("shares"))?;
        let got = read_u64(d, "cpu.shares").unwrap_or(s);
        if got != s {
            bail!(
                "{}: the kernel set {got} instead of {s} (the range is 2-262144)",
                f("shares")
            );
        }
    }
    let period = c.period().filter(|&p| p != 0);
    let quota = c.quota().filter(|&q| q != 0);
    if let Some(p) = period
        && let Err(e) = write_file(d, "cpu.cfs_period_us", &p.to_string(), &f("period"))
    {
        // A shorter period can be refused while the old quota stands: quota first then.
        let Some(q) = quota else { return Err(e) };
        write_file(d, "cpu.cfs_quota_us", &q.to_string(), &f("quota"))?;
        write_file(d, "cpu.cfs_period_us", &p.to_string(), &f("period"))?;
    }
    if let Some(q) = quota {
        write_file(d, "cpu.cfs_quota_us", &q.to_string(), &f("quota"))?;
    }
    if let Some(b) = c.burst() {
        write_file(d, "cpu.cfs_burst_us", &b.to_string(), &f("burst"))?;
    }
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        write_file(d, "cpu.rt_period_us", &p.to_string(), &f("realtimePeriod"))?;
    }
    if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
        write_file(
            d,
            "cpu.rt_runtime_us",
            &r.to_string(),
            &f("realtimeRuntime"),
        )?;
    }
    if let Some(i) = c.idle() {
        write_file(d, "cpu.idle", &i.to_string(), &f("idle"))?;
    }
    Ok(())
}

/// cpu.weight from cpu.shares (runc, crun): [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn cpu_v2(d: &Path, c: &LinuxCpu) -> Result<()> {
    let f = |n: &str| format!("{R}.cpu.{n}");
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        bail!(
            "{}: realtime scheduling limits do not exist on cgroup v2",
            f("realtimeRuntime")
        );
    }
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write_file(
            d,
            "cpu.weight",
            &shares_to_weight(s).to_string(),
            &f("shares"),
        )?;
    }
    let period = c.period().filter(|&p| p != 0);
    let quota = c.quota().filter(|&q| q != 0);
    if period.is_some() || quota.is_some() {
        // cpu.max is "QUOTA PERIOD"; keep the part that is not being changed.
        let cur = read(d, "cpu.max");
        let mut it = cur.split_whitespace();
        let (cur_q, cur_p) = (
            it.next().unwrap_or("max").to_string(),
            it.next().unwrap_or("100000").to_string(),
        );
        let q = match quota {
            Some(q) if q < 0 => "max".to_string(),
            Some(q) => q.to_string(),
            None => cur_q,
        };
        let p = period.map(|p| p.to_string()).unwrap_or(cur_p);
        let field = if quota.is_some() {
            f("quota")
        } else {
            f("period")
        };
        write_file(d, "cpu.max", &format!("{q} {p}"), &field)?;
    }
    if let Some(b) = c.burst() {
        write_file(d, "cpu.max.burst", &b.to_string(), &f("burst"))?;
    }
    if let Some(i) = c.idle() {
        write_file(d, "cpu.idle", &i.to_string(), &f("idle"))?;
    }
    Ok(())
}

// ---- block io ----

fn throttles(b: &LinuxBlockIo) -> [(&'static str, &Option<Vec<LinuxThrottleDevice>>); 4] {
    [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ]
}

fn blkio_v1(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let f = |n: &str| format!("{R}.blockIO.{n}");
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight (runc picks the same way).
    let (wfile, wdfile) = if d.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if !d.join(wfile).exists() {
            bail!(
                "{}: this host's blkio controller has no weight files (no CFQ/BFQ): {} does not exist",
                f("weight"),
                d.join(wfile).display()
            );
        }
        write_file(d, wfile, &w.to_string(), &f("weight"))?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write_file(d, "blkio.leaf_weight", &w.to_string(), &f("leafWeight"))?;
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = wd.weight() {
            write_file(
                d,
                wdfile,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
                &f(&format!("weightDevice[{i}].weight")),
            )?;
        }
        if let Some(w) = wd.leaf_weight() {
            write_file(
                d,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
                &f(&format!("weightDevice[{i}].leafWeight")),
            )?;
        }
    }
    let files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    for ((name, list), file) in throttles(b).into_iter().zip(files) {
        for (i, t) in list.iter().flatten().enumerate() {
            write_file(
                d,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                &f(&format!("{name}[{i}]")),
            )?;
        }
    }
    Ok(())
}

/// io.weight from a blkio weight (runc): [10, 1000] → [1, 10000].
pub fn blkio_weight_to_io(w: u16) -> u64 {
    let w = (w as u64).clamp(10, 1000);
    1 + (w - 10) * 9999 / 990
}

fn io_v2(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let f = |n: &str| format!("{R}.blockIO.{n}");
    let bfq = d.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write_file(d, "io.bfq.weight", &w.to_string(), &f("weight"))?;
        } else {
            write_file(
                d,
                "io.weight",
                &blkio_weight_to_io(w).to_string(),
                &f("weight"),
            )?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        logger::warn(&format!(
            "{}: has no cgroup v2 equivalent: ignored",
            f("leafWeight")
        ));
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = wd.weight() {
            let field = f(&format!("weightDevice[{i}].weight"));
            if bfq {
                write_file(
                    d,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                    &field,
                )?;
            } else {
                write_file(
                    d,
                    "io.weight",
                    &format!("{}:{} {}", wd.major(), wd.minor(), blkio_weight_to_io(w)),
                    &field,
                )?;
            }
        }
    }
    let keys = ["rbps", "wbps", "riops", "wiops"];
    for ((name, list), key) in throttles(b).into_iter().zip(keys) {
        for (i, t) in list.iter().flatten().enumerate() {
            // 0 removes the limit, as on v1.
            let v = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write_file(
                d,
                "io.max",
                &format!("{}:{} {key}={v}", t.major(), t.minor()),
                &f(&format!("{name}[{i}]")),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10000);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(swap_v2(0, 100).unwrap(), None);
        assert_eq!(swap_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_v2(300, 100).unwrap(), Some(200));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(50, 0).is_err());
    }
}
