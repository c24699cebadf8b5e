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

/// Is SELinux usable here (Ok), or why not (Err)? Decided once, the way libselinux (is_selinux_enabled) and runc's
/// go-selinux (GetEnabled) decide it: selinuxfs is mounted read-write (at /sys/fs/selinux,
/// checked by its magic number, else wherever /proc/self/mountinfo has it), its `enforce`
/// file reads 0 or 1 (permissive or enforcing), and a policy is loaded — before one is, every
/// process's label is "kernel". A kernel with SELinux compiled in and enabled but no policy
/// (e.g. Debian's, booted with apparmor=0) has selinuxfs and `enforce`, but rejects every
/// `context=` mount option with EINVAL.
pub fn selinux_state() -> Result<(), String> {
    static STATE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    STATE.get_or_init(probe_selinux).clone()
}

fn probe_selinux() -> Result<(), String> {
    const SELINUX_MAGIC: i64 = 0xf97c_ff8c;
    let is_selinuxfs = |p: &Path| {
        nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == SELINUX_MAGIC)
            && nix::sys::statvfs::statvfs(p)
                .is_ok_and(|v| !v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    };
    let default = Path::new("/sys/fs/selinux");
    let mnt = if is_selinuxfs(default) {
        default.to_path_buf()
    } else {
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if !filesystems.lines().any(|l| l.ends_with("\tselinuxfs")) {
            return Err("the kernel has no SELinux (no selinuxfs in /proc/filesystems)".into());
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        mountinfo
            .lines()
            .filter_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                if right.split(' ').next() != Some("selinuxfs") {
                    return None;
                }
                Some(std::path::PathBuf::from(left.split(' ').nth(4)?))
            })
            .find(|p| is_selinuxfs(p))
            .ok_or("selinuxfs is not mounted (read-write)")?
    };
    let enforce = crate::sys::read_small_string(&mnt.join("enforce")).unwrap_or_default();
    if !matches!(enforce.trim(), "0" | "1") {
        return Err(format!(
            "{} does not read 0 or 1",
            mnt.join("enforce").display()
        ));
    }
    let label = crate::sys::read_small_string(Path::new("/proc/thread-self/attr/current"))
        .or_else(|_| crate::sys::read_small_string(Path::new("/proc/self/attr/current")))
        .unwrap_or_default();
    let label = label.trim_end_matches(['\0', '\n']);
    if label.is_empty() || label == "kernel" {
        return Err(format!(
            "selinuxfs is mounted at {}, but no SELinux policy is loaded",
            mnt.display()
        ));
    }
    Ok(())
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
            && let Err(why) = selinux_state()
        {
            bail!(
                "process.selinuxLabel: {l:?} was asked for, but SELinux is not enabled on this host ({why}); remove the label"
            );
        }
    }
    if let Some(l) = spec.linux().as_ref().and_then(|l| l.mount_label().clone())
        && !l.is_empty()
        && let Err(why) = selinux_state()
    {
        bail!(
            "linux.mountLabel: {l:?} was asked for, but SELinux is not enabled on this host ({why}); remove the label"
        );
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
