//! `process.capabilities`: the five sets. The bounding set is reduced while berth is still root
//! (it needs CAP_SETPCAP); the others are set after the switch to the container user, with
//! PR_SET_KEEPCAPS keeping the permitted set across it.

use anyhow::{Result, anyhow, bail};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;
use std::collections::HashSet;
use std::str::FromStr;

pub struct Sets {
    /// Capabilities in berth's bounding set now (so in the child's) that the container's
    /// bounding set leaves out: the ones `drop_bounding` drops, computed before the fork.
    pub to_drop: Vec<Capability>,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn conv(set: &Option<HashSet<oci_spec::runtime::Capability>>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            Capability::from_str(name.as_str()?).ok()
        })
        .collect()
}

/// This process's bounding set, read once from /proc/self/status (`CapBnd`, one read instead of
/// a PR_CAPBSET_READ per capability). None if it cannot be read.
pub fn current_bounding() -> Option<CapsHashSet> {
    static CACHE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let mask = (*CACHE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let hex = text.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    }))?;
    Some(
        caps::all()
            .into_iter()
            .filter(|c| c.index() < 64 && mask & (1u64 << c.index()) != 0)
            .collect(),
    )
}

/// Computed before the fork. `userns`: the process will be in a user namespace it creates or
/// joins, which gives it a full bounding set (the kernel's set_cred_user_ns) — so every
/// capability not listed is dropped there, not only those berth itself holds.
pub fn from_spec(c: &LinuxCapabilities, userns: bool) -> Sets {
    let bounding = conv(c.bounding());
    let have = if userns {
        caps::all()
    } else {
        current_bounding().unwrap_or_else(caps::all)
    };
    let mut to_drop: Vec<Capability> = have.into_iter().filter(|c| !bounding.contains(c)).collect();
    to_drop.sort_by_key(|c| c.index());
    Sets {
        to_drop,
        effective: conv(c.effective()),
        permitted: conv(c.permitted()),
        inheritable: conv(c.inheritable()),
        ambient: conv(c.ambient()),
    }
}

/// Drop from the bounding set every capability not listed (those in it: `Sets::to_drop`).
pub fn drop_bounding(s: &Sets) -> Result<()> {
    for &c in &s.to_drop {
        match caps::drop(None, CapSet::Bounding, c) {
            Ok(()) => {}
            // A capability this kernel does not have (listed by a newer caps crate).
            Err(_) if !caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) => {}
            Err(e) => bail!("process.capabilities.bounding: dropping {c}: {e}"),
        }
    }
    Ok(())
}

/// Set permitted, inheritable, effective and ambient (after the user switch). `keep_admin`:
/// CAP_SYS_ADMIN stays effective and permitted on top of the sets, for loading the seccomp
/// filter without no_new_privs right before the exec. It ends there: execve computes the
/// permitted and effective sets from the bounding, inheritable and ambient sets (and the file's
/// capabilities) without looking at the old ones, unless no_new_privs is set — and with
/// no_new_privs the filter needs no CAP_SYS_ADMIN, so none is kept.
pub fn apply(s: &Sets, keep_admin: bool) -> Result<()> {
    let (mut effective, mut permitted) = (s.effective.clone(), s.permitted.clone());
    if keep_admin {
        effective.insert(Capability::CAP_SYS_ADMIN);
        permitted.insert(Capability::CAP_SYS_ADMIN);
    }
    // capset(2) wants effective ⊆ permitted at every step, and a new inheritable set within the
    // old permitted one: inheritable first, then effective, then permitted.
    caps::set(None, CapSet::Inheritable, &s.inheritable)
        .map_err(|e| anyhow!("process.capabilities.inheritable: {e}"))?;
    caps::set(None, CapSet::Effective, &effective)
        .map_err(|e| anyhow!("process.capabilities.effective: {e}"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| {
        anyhow!("process.capabilities.permitted: {e} (effective must be a subset of permitted)")
    })?;
    caps::clear(None, CapSet::Ambient).map_err(|e| anyhow!("process.capabilities.ambient: {e}"))?;
    // As runc: an ambient capability that cannot be raised (not also permitted and
    // inheritable) is a warning, not a failure; one warning for all of them.
    let mut not_raised = vec![];
    for c in &s.ambient {
        if let Err(e) = caps::raise(None, CapSet::Ambient, *c) {
            not_raised.push((c.to_string(), e.to_string()));
        }
    }
    if !not_raised.is_empty() {
        let names: Vec<&str> = not_raised.iter().map(|(c, _)| c.as_str()).collect();
        crate::logger::warn(&format!(
            "process.capabilities.ambient: {} not raised (an ambient capability must also be permitted and inheritable): {}",
            names.join(", "),
            not_raised[0].1
        ));
    }
    Ok(())
}

/// Without `process.capabilities`, after a switch to a non-root user (which cleared the
/// effective set): CAP_SYS_ADMIN effective again, from the permitted set PR_SET_KEEPCAPS kept,
/// for loading the seccomp filter without no_new_privs (see `apply`).
pub fn raise_admin() -> Result<()> {
    caps::raise(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
        .map_err(|e| anyhow!("linux.seccomp: raising CAP_SYS_ADMIN to load the filter: {e}"))
}
