//! `berth features`: the OCI features document (runtime-spec features.md, features-linux.md).
//! It lists what this build of berth recognises and implements, never more: an engine reads it
//! to decide what it may put in config.json.

use anyhow::Result;
use serde_json::{Value, json};

use super::Global;

#[derive(clap::Args)]
pub struct Args {}

/// Mount options `rootfs::mounts::parse` understands and `mount_entry` carries out
/// (`idmap`/`ridmap` are parsed but refused, so they are not listed).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

pub fn run(_g: &Global, _a: Args) -> Result<i32> {
    let doc = document();
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

fn document() -> Value {
    let mut caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::SPEC_VERSION,
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": seccomp(),
            // Labels are written when asked for (and refused on a host without that LSM).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": annotations()
    })
}

fn seccomp() -> Value {
    json!({ "enabled": false })
}

fn annotations() -> Value {
    let mut a = serde_json::Map::new();
    a.insert(
        "io.github.berth.version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    if let Some(c) = option_env!("BERTH_COMMIT") {
        a.insert("io.github.berth.commit".into(), c.into());
    }
    Value::Object(a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_shape() {
        let d = super::document();
        assert_eq!(d["ociVersionMax"], crate::SPEC_VERSION);
        assert!(
            d["linux"]["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_SYS_ADMIN")
        );
        let opts = d["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "rbind"));
        assert!(!opts.iter().any(|o| o == "idmap"));
    }
}
