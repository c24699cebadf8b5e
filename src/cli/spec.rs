use anyhow::{Result, anyhow, bail};
use serde_json::json;
use std::path::PathBuf;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write a configuration for a rootless container (user namespace, no cgroup limits)
    #[arg(long)]
    rootless: bool,
}

/// The default configuration, the same shape as runc's: busybox-friendly `sh` on a terminal, a
/// read-only root, the usual pseudo filesystems, and a small capability set.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": crate::SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        to_rootless(&mut spec);
    }
    spec
}

/// What `--rootless` changes, as runc's: a user namespace mapping the caller's effective uid and
/// gid to 0 instead of a network namespace (a rootless caller cannot set one up), /sys bound
/// from the host read-only (sysfs cannot be mounted without an own network namespace), no
/// `uid=`/`gid=` mount options (those ids are not mapped), and no cgroup settings.
fn to_rootless(spec: &mut serde_json::Value) {
    let linux = &mut spec["linux"];
    if let Some(nss) = linux["namespaces"].as_array_mut() {
        nss.retain(|n| n["type"] != "network" && n["type"] != "user");
        nss.push(json!({"type": "user"}));
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    for m in spec["mounts"].as_array_mut().into_iter().flatten() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        } else if let Some(opts) = m.get_mut("options").and_then(|o| o.as_array_mut()) {
            opts.retain(|o| {
                o.as_str()
                    .is_none_or(|o| !o.starts_with("uid=") && !o.starts_with("gid="))
            });
        }
    }
}

/// `berth spec [--rootless]` writes a default config.json into the bundle directory.
pub fn run(_g: &Global, a: Args) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists: remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&default_spec(a.rootless))?;
    std::fs::write(&path, text + "\n").map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(0)
}
