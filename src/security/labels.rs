//! LSM labels (`process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`).
//! Asking for a label on a host without that LSM is a clear error, never silently ignored.

use anyhow::{Result, bail};
use oci_spec::runtime::Spec;
use std::path::Path;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
        && Path::new("/sys/kernel/security/apparmor").exists()
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checked before any side effect.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        if let Some(a) = p.apparmor_profile()
            && !a.is_empty()
            && !apparmor_enabled()
        {
            bail!(
                "process.apparmorProfile: {a:?} was asked for, but AppArmor is not enabled on this host"
            );
        }
        if let Some(l) = p.selinux_label()
            && !l.is_empty()
            && !selinux_enabled()
        {
            bail!(
                "process.selinuxLabel: {l:?} was asked for, but SELinux is not enabled on this host"
            );
        }
    }
    if let Some(l) = spec.linux().as_ref().and_then(|l| l.mount_label().clone())
        && !l.is_empty()
        && !selinux_enabled()
    {
        bail!("linux.mountLabel: {l:?} was asked for, but SELinux is not enabled on this host");
    }
    Ok(())
}

/// Does the process get an LSM label on exec? (It applies to the next exec, which must then be
/// the program's own: see spawn/trampoline.rs.)
pub fn has_exec_label(spec: &Spec) -> bool {
    spec.process().as_ref().is_some_and(|p| {
        p.apparmor_profile().as_ref().is_some_and(|a| !a.is_empty())
            || p.selinux_label().as_ref().is_some_and(|l| !l.is_empty())
    })
}

/// Set the label the next exec gets (called right before execve).
pub fn apply_exec_labels(spec: &Spec) -> Result<()> {
    let Some(p) = spec.process() else {
        return Ok(());
    };
    if let Some(a) = p.apparmor_profile()
        && !a.is_empty()
    {
        write_attr("thread-self/attr/apparmor/exec", &format!("exec {a}"))
            .or_else(|_| write_attr("thread-self/attr/exec", &format!("exec {a}")))?;
    }
    if let Some(l) = p.selinux_label()
        && !l.is_empty()
    {
        write_attr("thread-self/attr/exec", l)?;
    }
    Ok(())
}

fn write_attr(path: &str, value: &str) -> Result<()> {
    crate::procfs::write(path, value)
        .map_err(|e| anyhow::anyhow!("writing LSM label {value:?} to /proc/{path}: {e}"))
}
