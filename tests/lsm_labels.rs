//! SELinux labels on a host where SELinux is not usable: `linux.mountLabel` and
//! `process.selinuxLabel` are refused up front with the reason, and nothing is made — never a
//! mount with `context=` that the kernel rejects with EINVAL. Runs on this host (no SELinux in
//! the kernel) and in the pure cgroup v2 VM, which boots Debian's kernel with apparmor=0:
//! there SELinux is enabled but has no policy, and selinuxfs is mounted at /sys/fs/selinux
//! (hack/vm/guest-tests.sh mounts it, as systemd does) — the case libselinux and runc detect
//! as "disabled".
mod common;
use common::*;
use serde_json::json;
use std::path::Path;

/// What this machine's SELinux looks like, for the messages.
fn selinux_situation() -> String {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(" - selinuxfs ");
    let label = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
    format!(
        "selinuxfs known: {}, mounted: {mounted}, /sys/fs/selinux/enforce: {:?}, own label: {:?}",
        fs.contains("selinuxfs"),
        std::fs::read_to_string("/sys/fs/selinux/enforce").ok(),
        label.trim_end_matches(['\0', '\n'])
    )
}

#[test]
fn selinux_labels_refused_up_front_without_a_policy() {
    let label = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
    let label = label.trim_end_matches(['\0', '\n']);
    if Path::new("/sys/fs/selinux/enforce").exists() && !label.is_empty() && label != "kernel" {
        eprintln!("skipped: SELinux has a policy here ({label:?}): labels can be applied");
        return;
    }
    let env = Env::new("selinux");
    let cases = [
        ("mount", "linux.mountLabel"),
        ("proc", "process.selinuxLabel"),
    ];
    // One bundle (a rootfs copy is slow under emulation), one container id per case.
    let mut b = env.bundle("selinux", &["true"]);
    let plain = b.config.clone();
    for (tag, field) in cases {
        let id = env.id(tag);
        b.config = plain.clone();
        let l = "system_u:object_r:container_file_t:s0:c1,c2";
        match tag {
            "mount" => b.config["linux"]["mountLabel"] = json!(l),
            _ => b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
        }
        let (code, out, err) = env.run(&id, &b);
        assert_ne!(code, 0, "{field}: ran: {out}");
        assert!(
            err.contains(field) && err.contains("SELinux is not enabled"),
            "{field}: {err}\n{}",
            selinux_situation()
        );
        // Up front: no mount was tried (EINVAL from a context= mount), nothing left.
        assert!(!err.contains("mounts["), "{err}");
        assert!(!env.root.join(&id).exists(), "state left for {id}");
        assert!(
            env.cgroup_parent_dirs()
                .iter()
                .all(|d| !d.join(&id).exists()),
            "cgroup left for {id}"
        );
    }
    // In a guest whose kernel has SELinux without a policy, the reason says so.
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if fs.contains("selinuxfs") && Path::new("/sys/fs/selinux/enforce").exists() {
        let id = env.id("why");
        b.config = plain;
        b.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
        let (_, _, err) = env.run(&id, &b);
        assert!(err.contains("no SELinux policy is loaded"), "{err}");
    }
}
