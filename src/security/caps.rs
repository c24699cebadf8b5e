//! `process.capabilities`: the five sets. The bounding set is reduced while berth is still root
//! (it needs CAP_SETPCAP); the others are set after the switch to the container user, with
//! PR_SET_KEEPCAPS keeping the permitted set across it.

use anyhow::{Result, anyhow};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;
use std::collections::HashSet;
use std::str::FromStr;

pub struct Sets {
    pub bounding: CapsHashSet,
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

/// Computed before the fork.
pub fn from_spec(c: &LinuxCapabilities) -> Sets {
    Sets {
        bounding: conv(c.bounding()),
        effective: conv(c.effective()),
        permitted: conv(c.permitted()),
        inheritable: conv(c.inheritable()),
        ambient: conv(c.ambient()),
    }
}

/// Drop from the bounding set every capability not listed.
pub fn drop_bounding(s: &Sets) -> Result<()> {
    for c in caps::all() {
        if !s.bounding.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, c)
                .map_err(|e| anyhow!("process.capabilities.bounding: dropping {c}: {e}"))?;
        }
    }
    Ok(())
}

/// Set permitted, inheritable, effective and ambient (after the user switch).
pub fn apply(s: &Sets) -> Result<()> {
    // capset(2) wants effective ⊆ permitted at every step, and a new inheritable set within the
    // old permitted one: inheritable first, then effective, then permitted.
    caps::set(None, CapSet::Inheritable, &s.inheritable)
        .map_err(|e| anyhow!("process.capabilities.inheritable: {e}"))?;
    caps::set(None, CapSet::Effective, &s.effective)
        .map_err(|e| anyhow!("process.capabilities.effective: {e}"))?;
    caps::set(None, CapSet::Permitted, &s.permitted).map_err(|e| {
        anyhow!("process.capabilities.permitted: {e} (effective must be a subset of permitted)")
    })?;
    caps::clear(None, CapSet::Ambient).map_err(|e| anyhow!("process.capabilities.ambient: {e}"))?;
    for c in &s.ambient {
        // As runc: an ambient capability that cannot be raised (not also permitted and
        // inheritable) is a warning, not a failure.
        if let Err(e) = caps::raise(None, CapSet::Ambient, *c) {
            crate::logger::warn(&format!(
                "process.capabilities.ambient: {c} not raised (it must also be permitted and inheritable): {e}"
            ));
        }
    }
    Ok(())
}
