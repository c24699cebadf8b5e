//! Per-process kernel attributes of the runtime-spec, validated before any side effect and
//! applied in the process right before it execs: `linux.personality`, `process.ioPriority`,
//! `process.scheduler`, `process.execCPUAffinity` and `linux.memoryPolicy`.
//!
//! Each `from_*` function validates one field and returns what the syscall needs, with errors
//! that name the field; `config.rs` calls them at load time, the create and exec plans again
//! to keep the result.

use anyhow::{Result, anyhow, bail};
use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler, Spec,
};

/// Everything of this module one process needs, computed before the fork.
#[derive(Default, Clone, Debug)]
pub struct Attrs {
    pub personality: Option<libc::c_ulong>,
    pub ioprio: Option<libc::c_int>,
    pub sched: Option<SchedAttr>,
    /// `execCPUAffinity.initial` (used by `exec` only).
    pub cpus_initial: Option<CpuSet>,
    /// `execCPUAffinity.final` (used by `exec` only).
    pub cpus_final: Option<CpuSet>,
    pub mempolicy: Option<MemPolicy>,
}

impl Attrs {
    /// The attributes of `process` in a container configured by `spec`.
    pub fn new(spec: &Spec, process: &Process) -> Result<Attrs> {
        let linux = spec.linux().as_ref();
        let aff = process.exec_cpu_affinity().as_ref();
        Ok(Attrs {
            personality: match linux.and_then(|l| l.personality().as_ref()) {
                Some(p) => Some(personality(p)?),
                None => None,
            },
            ioprio: match process.io_priority() {
                Some(p) => Some(ioprio(p.class(), p.priority())?),
                None => None,
            },
            sched: match process.scheduler() {
                Some(s) => Some(sched_attr(s)?),
                None => None,
            },
            cpus_initial: match aff.and_then(|a| a.initial().as_deref()) {
                Some(s) if !s.is_empty() => Some(cpu_list(s, "process.execCPUAffinity.initial")?),
                _ => None,
            },
            cpus_final: match aff.and_then(|a| a.cpu_affinity_final().as_deref()) {
                Some(s) if !s.is_empty() => Some(cpu_list(s, "process.execCPUAffinity.final")?),
                _ => None,
            },
            mempolicy: match linux.and_then(|l| l.memory_policy().as_ref()) {
                Some(m) => Some(mempolicy(m)?),
                None => None,
            },
        })
    }

    /// Apply, in the calling process, everything but the CPU affinity: personality, I/O
    /// priority, scheduler and memory policy. Called while the process still has its
    /// capabilities (a real-time policy or a lower nice value needs CAP_SYS_NICE).
    pub fn apply(&self) -> Result<()> {
        if let Some(p) = self.ioprio {
            crate::sys::ioprio_set_self(p)
                .map_err(|e| anyhow!("process.ioPriority: ioprio_set: {e}"))?;
        }
        if let Some(a) = &self.sched
            && let Err(e) = crate::sys::sched_setattr_self(a)
        {
            let hint = if e == nix::errno::Errno::EPERM {
                " (a real-time or deadline policy needs CAP_SYS_NICE and, with a cgroup v1 cpu \
                 controller, a realtime budget: linux.resources.cpu.realtimeRuntime)"
            } else {
                ""
            };
            bail!("process.scheduler: sched_setattr: {e}{hint}");
        }
        if let Some(m) = &self.mempolicy {
            crate::sys::set_mempolicy(m.mode, &m.nodes).map_err(|e| {
                anyhow!(
                    "linux.memoryPolicy: set_mempolicy: {e} (are the nodes online and in the \
                     container's cpuset.mems?)"
                )
            })?;
        }
        // Last: personality(2) cannot fail for the two supported domains, and nothing after
        // it here depends on uname.
        if let Some(p) = self.personality
            && let Err(e) = nix::sys::personality::set(
                nix::sys::personality::Persona::from_bits_retain(p as libc::c_int),
            )
        {
            bail!("linux.personality: personality({p:#x}): {e}");
        }
        Ok(())
    }
}

/// Set the CPU affinity of `pid` (0: the caller).
pub fn set_affinity(pid: i32, cpus: &CpuSet, field: &str) -> Result<()> {
    nix::sched::sched_setaffinity(Pid::from_raw(pid), cpus).map_err(|e| {
        anyhow!(
            "{field}: sched_setaffinity: {e} (are the CPUs online and in the container's cpuset?)"
        )
    })
}

// ---------------------------------------------------------------- personality

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

fn personality(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    if let Some(flags) = p.flags()
        && let Some(f) = flags.first()
    {
        bail!(
            "linux.personality.flags: {f:?} is not supported (the runtime-spec defines no flags \
             yet; remove the field)"
        );
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    })
}

// ---------------------------------------------------------------- I/O priority

const IOPRIO_CLASS_SHIFT: libc::c_int = 13;

fn ioprio(class: IOPriorityClass, priority: i64) -> Result<libc::c_int> {
    if !(0..=7).contains(&priority) {
        bail!("process.ioPriority.priority: {priority} is out of range (0 to 7, 0 is the highest)");
    }
    let c = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok((c << IOPRIO_CLASS_SHIFT) | priority as libc::c_int)
}

// ---------------------------------------------------------------- scheduler

/// `struct sched_attr` of sched_setattr(2) (SCHED_ATTR_SIZE_VER1, with the utilization clamps).
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Translate the runtime-spec's scheduler flag names to the ones oci-spec 0.10 deserializes.
/// oci-spec derives the JSON names from its variant names, which gives "SCHED_RESET_ON_FORK"
/// and "SCHED_FLAG_D_L_OVERRUN" where the spec (and runc) say "SCHED_FLAG_RESET_ON_FORK" and
/// "SCHED_FLAG_DL_OVERRUN"; without this a spec-conformant config would not parse. Applied to
/// the raw JSON of a process object before it is deserialized (config.json and `--process`).
pub fn fix_scheduler_flag_names(process: &mut serde_json::Value) {
    let Some(flags) = process
        .get_mut("scheduler")
        .and_then(|s| s.get_mut("flags"))
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for f in flags {
        let fixed = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = serde_json::Value::from(fixed);
    }
}

fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy as P;
    let policy = *s.policy();
    let pol = match policy {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => {
            bail!("process.scheduler.policy: SCHED_ISO is reserved and not implemented by Linux")
        }
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler.nice: {nice} is out of range (-20 to 19)");
    }
    let priority = s.priority().unwrap_or(0);
    match policy {
        P::SchedFifo | P::SchedRr if !(1..=99).contains(&priority) => {
            bail!("process.scheduler.priority: {priority} is out of range for {policy} (1 to 99)");
        }
        P::SchedFifo | P::SchedRr => {}
        _ if priority != 0 => {
            bail!(
                "process.scheduler.priority: must be 0 (or absent) for {policy}; only SCHED_FIFO \
                 and SCHED_RR have a static priority"
            );
        }
        _ => {}
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy == P::SchedDeadline {
        if runtime == 0 {
            bail!("process.scheduler.runtime: SCHED_DEADLINE needs a runtime (nanoseconds) > 0");
        }
        if deadline < runtime {
            bail!("process.scheduler.deadline: must be at least the runtime ({runtime} ns)");
        }
        if period != 0 && period < deadline {
            bail!("process.scheduler.period: must be at least the deadline ({deadline} ns)");
        }
    } else {
        for (name, v) in [
            ("runtime", runtime),
            ("deadline", deadline),
            ("period", period),
        ] {
            if v != 0 {
                bail!("process.scheduler.{name}: only for SCHED_DEADLINE, not {policy}");
            }
        }
    }
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag as F;
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: pol,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        // The spec has no clamp values: a clamp flag alone sets the widest clamp (0..1024).
        util_min: 0,
        util_max: 1024,
    })
}

// ---------------------------------------------------------------- CPU lists

/// Parse a list such as "0-3,7" (as in cpuset files).
pub fn cpu_list(s: &str, field: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for n in parse_list(s, CpuSet::count()).map_err(|e| anyhow!("{field}: {s:?}: {e}"))? {
        set.set(n).map_err(|e| anyhow!("{field}: CPU {n}: {e}"))?;
    }
    Ok(set)
}

/// The CPUs of a set as a list "0-3,7".
pub fn cpu_list_string(set: &CpuSet) -> String {
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    let mut parts: Vec<String> = vec![];
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The numbers of a list "0-3,7"; each below `limit`.
fn parse_list(s: &str, limit: usize) -> std::result::Result<Vec<usize>, String> {
    let mut out = vec![];
    for part in s.split(',') {
        let num = |x: &str| -> std::result::Result<usize, String> {
            let x = x.trim();
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{part:?} is not a number or a range N-M"));
            }
            let n: usize = x.parse().map_err(|_| format!("{x:?} is too large"))?;
            if n >= limit {
                return Err(format!("{n} is too large (at most {})", limit - 1));
            }
            Ok(n)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} is backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- memory policy

#[derive(Clone, Debug, PartialEq)]
pub struct MemPolicy {
    /// Mode with its flags or'ed in.
    mode: libc::c_int,
    /// Node mask, 64 nodes per word.
    nodes: Vec<libc::c_ulong>,
}

/// Node numbers accepted in `linux.memoryPolicy.nodes` (the kernel's MAX_NUMNODES is at most
/// 1024 on every architecture).
const MAX_NODES: usize = 1024;

fn mempolicy(m: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    use MemoryPolicyModeType as M;
    let mode = m.mode();
    let nodes_s = m.nodes().as_deref().unwrap_or("").trim();
    let nodes = if nodes_s.is_empty() {
        vec![]
    } else {
        parse_list(nodes_s, MAX_NODES)
            .map_err(|e| anyhow!("linux.memoryPolicy.nodes: {nodes_s:?}: {e}"))?
    };
    let mode_no = match mode {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    match mode {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            bail!("linux.memoryPolicy.nodes: must be empty with {mode}")
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            bail!("linux.memoryPolicy.nodes: {mode} needs at least one node (e.g. \"0\")")
        }
        _ => {}
    }
    let mut flags = 0;
    let mut static_or_relative = 0;
    for f in m.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => {
                if mode != M::MpolBind && mode != M::MpolPreferredMany {
                    bail!(
                        "linux.memoryPolicy.flags: MPOL_F_NUMA_BALANCING only goes with MPOL_BIND \
                         or MPOL_PREFERRED_MANY"
                    );
                }
                1 << 13
            }
            MemoryPolicyFlagType::MpolFRelativeNodes => {
                static_or_relative += 1;
                1 << 14
            }
            MemoryPolicyFlagType::MpolFStaticNodes => {
                static_or_relative += 1;
                1 << 15
            }
        };
    }
    if static_or_relative > 1 {
        bail!(
            "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
        );
    }
    if static_or_relative > 0 && matches!(mode, M::MpolDefault | M::MpolLocal) {
        bail!("linux.memoryPolicy.flags: {mode} takes no node flags");
    }
    let mut mask = vec![];
    for n in nodes {
        let w = n / 64;
        if mask.len() <= w {
            mask.resize(w + 1, 0 as libc::c_ulong);
        }
        mask[w] |= 1 << (n % 64);
    }
    Ok(MemPolicy {
        mode: mode_no | flags,
        nodes: mask,
    })
}

/// Validate every field of this module in a config (no side effect).
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        Attrs::new(spec, p)?;
    } else if let Some(l) = spec.linux() {
        if let Some(p) = l.personality() {
            personality(p)?;
        }
        if let Some(m) = l.memory_policy() {
            mempolicy(m)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sched(v: serde_json::Value) -> Result<SchedAttr> {
        let mut p = json!({"scheduler": v});
        fix_scheduler_flag_names(&mut p);
        let s: Scheduler = serde_json::from_value(p["scheduler"].clone()).unwrap();
        sched_attr(&s)
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5", 64).unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_list("3", 64).unwrap(), vec![3]);
        assert!(parse_list("2-1", 64).is_err());
        assert!(parse_list("a", 64).is_err());
        assert!(parse_list("1,", 64).is_err());
        assert!(parse_list("64", 64).is_err());
        assert!(parse_list("-1", 64).is_err());
        let set = cpu_list("0-2,5,7-8", "f").unwrap();
        assert_eq!(cpu_list_string(&set), "0-2,5,7-8");
    }

    #[test]
    fn io_priorities() {
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassBe, 3).unwrap(),
            (2 << 13) | 3
        );
        assert_eq!(
            ioprio(IOPriorityClass::IoprioClassIdle, 0).unwrap(),
            3 << 13
        );
        let e = ioprio(IOPriorityClass::IoprioClassRt, 8).unwrap_err();
        assert!(
            format!("{e}").contains("process.ioPriority.priority"),
            "{e}"
        );
    }

    #[test]
    fn scheduler_fields() {
        let a = sched(json!({"policy": "SCHED_FIFO", "priority": 10,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]}))
        .unwrap();
        assert_eq!((a.policy, a.priority, a.flags), (1, 10, 0x05));
        assert_eq!(a.size, 56);
        for (bad, field) in [
            (json!({"policy": "SCHED_FIFO"}), "priority"),
            (json!({"policy": "SCHED_OTHER", "priority": 3}), "priority"),
            (json!({"policy": "SCHED_OTHER", "nice": 20}), "nice"),
            (json!({"policy": "SCHED_BATCH", "runtime": 5}), "runtime"),
            (json!({"policy": "SCHED_DEADLINE"}), "runtime"),
            (
                json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 5}),
                "deadline",
            ),
            (json!({"policy": "SCHED_ISO"}), "policy"),
        ] {
            let e = sched(bad.clone()).unwrap_err();
            assert!(
                format!("{e}").contains(&format!("process.scheduler.{field}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn memory_policies() {
        let m = |v: serde_json::Value| mempolicy(&serde_json::from_value(v).unwrap());
        let p = m(json!({"mode": "MPOL_BIND", "nodes": "0,65", "flags": ["MPOL_F_STATIC_NODES"]}))
            .unwrap();
        assert_eq!(p.mode, 2 | (1 << 15));
        assert_eq!(p.nodes, vec![1, 2]);
        assert_eq!(m(json!({"mode": "MPOL_LOCAL"})).unwrap().mode, 4);
        assert!(m(json!({"mode": "MPOL_BIND"})).is_err());
        assert!(m(json!({"mode": "MPOL_DEFAULT", "nodes": "0"})).is_err());
        assert!(
            m(json!({"mode": "MPOL_BIND", "nodes": "0",
                "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}))
            .is_err()
        );
        assert!(m(json!({"mode": "MPOL_BIND", "nodes": "0-x"})).is_err());
    }

    #[test]
    fn personalities() {
        let p = |v: serde_json::Value| personality(&serde_json::from_value(v).unwrap());
        assert_eq!(p(json!({"domain": "LINUX32"})).unwrap(), 8);
        assert_eq!(p(json!({"domain": "LINUX"})).unwrap(), 0);
        assert!(p(json!({"domain": "LINUX", "flags": ["SHORT_INODE"]})).is_err());
    }
}
