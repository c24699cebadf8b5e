//! Statistics in the shape of runc's `events --stats` "data" (runc's types/events.go; containerd
//! parses it): cpu, memory, pids, blkio, hugetlb. Go's `omitempty` is followed: zero numbers and
//! empty lists are left out where runc leaves them out, structs are always present.

use serde_json::{Map, Value, json};
use std::path::Path;

use super::Manager;
use super::fs::{read, read_kv, read_u64};
use super::resources::Place;

fn put(m: &mut Map<String, Value>, k: &str, v: u64) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

/// A limit file's value; "max" (or the v1 "unlimited" huge number) reads as u64::MAX.
fn limit(d: &Path, file: &str) -> u64 {
    let s = read(d, file);
    if s == "max" {
        u64::MAX
    } else {
        s.parse().unwrap_or(0)
    }
}

fn entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    let mut m = Map::new();
    m.insert("limit".into(), json!(limit));
    put(&mut m, "usage", usage);
    put(&mut m, "max", max);
    m.insert("failcnt".into(), json!(failcnt));
    Value::Object(m)
}

impl Manager {
    pub fn stats(&self) -> Value {
        json!({
            "cpu": self.cpu_stats(),
            "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                       "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                       "sched_load_balance": 0, "sched_relax_domain_level": 0},
            "memory": self.memory_stats(),
            "pids": self.pids_stats(),
            "blkio": self.blkio_stats(),
            "hugetlb": self.hugetlb_stats(),
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }

    fn cpu_stats(&self) -> Value {
        let mut usage = Map::new();
        let mut thr = Map::new();
        match self.place("cpu") {
            Some(Place::V2(d)) => {
                let s = read_kv(&d, "cpu.stat");
                let g = |k: &str| s.get(k).copied().unwrap_or(0);
                put(&mut usage, "total", g("usage_usec") * 1000);
                usage.insert("kernel".into(), json!(g("system_usec") * 1000));
                usage.insert("user".into(), json!(g("user_usec") * 1000));
                put(&mut thr, "periods", g("nr_periods"));
                put(&mut thr, "throttledPeriods", g("nr_throttled"));
                put(&mut thr, "throttledTime", g("throttled_usec") * 1000);
            }
            Some(Place::V1(d)) => {
                let s = read_kv(&d, "cpu.stat");
                let g = |k: &str| s.get(k).copied().unwrap_or(0);
                put(&mut thr, "periods", g("nr_periods"));
                put(&mut thr, "throttledPeriods", g("nr_throttled"));
                put(&mut thr, "throttledTime", g("throttled_time"));
                if let Some(Place::V1(a)) = self.place("cpuacct") {
                    put(
                        &mut usage,
                        "total",
                        read_u64(&a, "cpuacct.usage").unwrap_or(0),
                    );
                    let per = |f: &str| -> Vec<u64> {
                        read(&a, f)
                            .split_whitespace()
                            .filter_map(|v| v.parse().ok())
                            .collect()
                    };
                    for (k, f) in [
                        ("percpu", "cpuacct.usage_percpu"),
                        ("percpu_kernel", "cpuacct.usage_percpu_sys"),
                        ("percpu_user", "cpuacct.usage_percpu_user"),
                    ] {
                        let v = per(f);
                        if !v.is_empty() {
                            usage.insert(k.into(), json!(v));
                        }
                    }
                    let st = read_kv(&a, "cpuacct.stat");
                    let ns = 1_000_000_000 / crate::sys::clk_tck();
                    usage.insert(
                        "kernel".into(),
                        json!(st.get("system").copied().unwrap_or(0) * ns),
                    );
                    usage.insert(
                        "user".into(),
                        json!(st.get("user").copied().unwrap_or(0) * ns),
                    );
                }
            }
            None => {
                usage.insert("kernel".into(), json!(0));
                usage.insert("user".into(), json!(0));
            }
        }
        json!({"usage": usage, "throttling": thr})
    }

    fn memory_stats(&self) -> Value {
        let mut m = Map::new();
        match self.place("memory") {
            Some(Place::V2(d)) => {
                let raw = read_kv(&d, "memory.stat");
                put(&mut m, "cache", raw.get("file").copied().unwrap_or(0));
                let cur = read_u64(&d, "memory.current").unwrap_or(0);
                let ev = read_kv(&d, "memory.events");
                let failcnt = ev.get("max").copied().unwrap_or(0);
                m.insert(
                    "usage".into(),
                    entry(
                        limit(&d, "memory.max"),
                        cur,
                        read_u64(&d, "memory.peak").unwrap_or(0),
                        failcnt,
                    ),
                );
                // Like runc: swap is reported as memory+swap, v1-style.
                let sw = read_u64(&d, "memory.swap.current").unwrap_or(0);
                let swl = limit(&d, "memory.swap.max");
                let mem_l = limit(&d, "memory.max");
                m.insert(
                    "swap".into(),
                    entry(mem_l.saturating_add(swl), cur + sw, 0, 0),
                );
                m.insert("kernel".into(), entry(0, 0, 0, 0));
                m.insert("kernelTCP".into(), entry(0, 0, 0, 0));
                if !raw.is_empty() {
                    m.insert("raw".into(), json!(raw));
                }
            }
            Some(Place::V1(d)) => {
                let raw = read_kv(&d, "memory.stat");
                put(&mut m, "cache", raw.get("cache").copied().unwrap_or(0));
                let e = |pfx: &str| {
                    entry(
                        read_u64(&d, &format!("{pfx}.limit_in_bytes")).unwrap_or(0),
                        read_u64(&d, &format!("{pfx}.usage_in_bytes")).unwrap_or(0),
                        read_u64(&d, &format!("{pfx}.max_usage_in_bytes")).unwrap_or(0),
                        read_u64(&d, &format!("{pfx}.failcnt")).unwrap_or(0),
                    )
                };
                m.insert("usage".into(), e("memory"));
                m.insert("swap".into(), e("memory.memsw"));
                m.insert("kernel".into(), e("memory.kmem"));
                m.insert("kernelTCP".into(), e("memory.kmem.tcp"));
                if !raw.is_empty() {
                    m.insert("raw".into(), json!(raw));
                }
            }
            None => {
                for k in ["usage", "swap", "kernel", "kernelTCP"] {
                    m.insert(k.into(), entry(0, 0, 0, 0));
                }
            }
        }
        Value::Object(m)
    }

    fn pids_stats(&self) -> Value {
        let mut m = Map::new();
        if let Some(Place::V1(d) | Place::V2(d)) = self.place("pids") {
            put(&mut m, "current", read_u64(&d, "pids.current").unwrap_or(0));
            // "max" is no limit: 0, as runc reports it.
            put(&mut m, "limit", read_u64(&d, "pids.max").unwrap_or(0));
        }
        Value::Object(m)
    }

    fn blkio_stats(&self) -> Value {
        let mut bytes = vec![];
        let mut ios = vec![];
        let e = |maj: u64, min: u64, op: &str, v: u64| {
            let mut m = Map::new();
            put(&mut m, "major", maj);
            put(&mut m, "minor", min);
            m.insert("op".into(), json!(op));
            put(&mut m, "value", v);
            Value::Object(m)
        };
        let devnum = |s: &str| -> Option<(u64, u64)> {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        match self.place("blkio").or_else(|| self.place("io")) {
            Some(Place::V2(d)) => {
                for line in read(&d, "io.stat").lines() {
                    let mut it = line.split_whitespace();
                    let Some((maj, min)) = it.next().and_then(devnum) else {
                        continue;
                    };
                    for kv in it {
                        let Some((k, v)) = kv.split_once('=') else {
                            continue;
                        };
                        let v: u64 = v.parse().unwrap_or(0);
                        match k {
                            "rbytes" => bytes.push(e(maj, min, "Read", v)),
                            "wbytes" => bytes.push(e(maj, min, "Write", v)),
                            "rios" => ios.push(e(maj, min, "Read", v)),
                            "wios" => ios.push(e(maj, min, "Write", v)),
                            _ => {}
                        }
                    }
                }
            }
            Some(Place::V1(d)) => {
                for (file, out) in [
                    ("blkio.throttle.io_service_bytes_recursive", &mut bytes),
                    ("blkio.throttle.io_serviced_recursive", &mut ios),
                ] {
                    for line in read(&d, file).lines() {
                        let f: Vec<&str> = line.split_whitespace().collect();
                        if let [dev, op, v] = f[..]
                            && let Some((maj, min)) = devnum(dev)
                        {
                            out.push(e(maj, min, op, v.parse().unwrap_or(0)));
                        }
                    }
                }
            }
            None => {}
        }
        let mut m = Map::new();
        if !bytes.is_empty() {
            m.insert("ioServiceBytesRecursive".into(), json!(bytes));
        }
        if !ios.is_empty() {
            m.insert("ioServicedRecursive".into(), json!(ios));
        }
        Value::Object(m)
    }

    fn hugetlb_stats(&self) -> Value {
        let mut out = Map::new();
        let Some(place) = self.place("hugetlb") else {
            return Value::Object(out);
        };
        for size in hugepage_sizes() {
            let mut m = Map::new();
            match &place {
                Place::V1(d) => {
                    put(
                        &mut m,
                        "usage",
                        read_u64(d, &format!("hugetlb.{size}.usage_in_bytes")).unwrap_or(0),
                    );
                    put(
                        &mut m,
                        "max",
                        read_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes")).unwrap_or(0),
                    );
                    m.insert(
                        "failcnt".into(),
                        json!(read_u64(d, &format!("hugetlb.{size}.failcnt")).unwrap_or(0)),
                    );
                }
                Place::V2(d) => {
                    put(
                        &mut m,
                        "usage",
                        read_u64(d, &format!("hugetlb.{size}.current")).unwrap_or(0),
                    );
                    let ev = read_kv(d, &format!("hugetlb.{size}.events"));
                    m.insert("failcnt".into(), json!(ev.get("max").copied().unwrap_or(0)));
                }
            }
            out.insert(size, Value::Object(m));
        }
        Value::Object(out)
    }

    /// The number of OOM kills in the container's memory cgroup so far.
    /// The file whose changes announce an OOM kill (cgroup v2's memory.events; v1 has no
    /// such notification).
    pub fn oom_events_file(&self) -> Option<std::path::PathBuf> {
        match self.place("memory") {
            Some(Place::V2(d)) => Some(d.join("memory.events")),
            _ => None,
        }
    }

    pub fn oom_kills(&self) -> u64 {
        match self.place("memory") {
            Some(Place::V2(d)) => read_kv(&d, "memory.events")
                .get("oom_kill")
                .copied()
                .unwrap_or(0),
            Some(Place::V1(d)) => read_kv(&d, "memory.oom_control")
                .get("oom_kill")
                .copied()
                .unwrap_or(0),
            None => 0,
        }
    }
}

/// Huge page sizes of this host in cgroup notation ("2MB", "1GB").
pub fn hugepage_sizes() -> Vec<String> {
    let mut v: Vec<(u64, String)> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let kb: u64 = n
                        .strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()?;
                    Some((kb, kb_to_name(kb)))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

fn kb_to_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}
