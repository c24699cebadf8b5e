//! `berth features`: the OCI features document (runtime-spec features.md, features-linux.md).
//! It lists what this build of berth recognises and implements, never more: an engine reads it
//! to decide what it may put in config.json.

use anyhow::Result;
use serde_json::{Value, json};

use super::Global;

#[derive(clap::Args)]
pub struct Args {}

/// Mount options `rootfs::mounts::parse` understands and `mount_entry` carries out
/// (`idmap`/`ridmap`: bind mounts only, see rootfs/idmap.rs).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
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
    "ridmap",
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
                // --systemd-cgroup (the system instance; not the user's yet).
                "systemd": true,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": seccomp(),
            // Labels are written when asked for (and refused on a host without that LSM).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "netDevices": { "enabled": true },
            // set_mempolicy(2) in the container process (spawn::procattr).
            "memoryPolicy": {
                "modes": [
                    "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"
                ],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": annotations()
    })
}

/// Seccomp as `security::seccomp` implements it. Whether filters are supported at all is
/// asked of the module itself (a trivial profile must compile), so this never claims more
/// than the build does.
fn seccomp() -> Value {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder};
    let trivial = LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .build();
    let enabled = trivial.is_ok_and(|s| crate::security::seccomp::Filter::compile(&s).is_ok());
    if !enabled {
        return json!({ "enabled": false });
    }
    let known = [
        ("SECCOMP_FILTER_FLAG_TSYNC", None),
        ("SECCOMP_FILTER_FLAG_LOG", Some(FLAG_LOG)),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", Some(FLAG_SPEC_ALLOW)),
        (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            Some(FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV),
        ),
    ];
    // TSYNC is accepted and has nothing to do: the process loading the filter has one thread.
    let supported: Vec<&str> = known
        .iter()
        .filter(|(_, bits)| bits.is_none_or(crate::sys::seccomp_accepts_flags))
        .map(|(n, _)| *n)
        .collect();
    json!({
        "enabled": true,
        "actions": [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ],
        "operators": [
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE"
        ],
        "archs": [
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_LOONGARCH64",
            "SCMP_ARCH_M68K",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_SH",
            "SCMP_ARCH_SHEB",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64"
        ],
        "knownFlags": known.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported
    })
}

const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

fn annotations() -> Value {
    let mut a = serde_json::Map::new();
    a.insert(
        "io.github.berth.version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    if let Some(c) = option_env!("BERTH_COMMIT") {
        a.insert("io.github.berth.commit".into(), c.into());
    }
    // This build checkpoints and restores with CRIU (as runc's
    // org.opencontainers.runc.checkpoint.enabled says of runc). Whether CRIU works on the
    // host is another question, asked by running it: `berth checkpoint` says so when not.
    a.insert("io.github.berth.checkpoint.enabled".into(), "true".into());
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
        assert_eq!(
            d["annotations"]["io.github.berth.checkpoint.enabled"], "true",
            "checkpoint/restore is built in"
        );
        let opts = d["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "rbind"));
        assert!(opts.iter().any(|o| o == "idmap") && opts.iter().any(|o| o == "ridmap"));
        let mut sorted = opts.clone();
        sorted.sort_by_key(|o| o.as_str().unwrap().to_string());
        assert_eq!(&sorted, opts, "MOUNT_OPTIONS stays sorted");
        // What the features document lists must parse as a config (oci-spec's names).
        let modes = d["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
        assert_eq!(modes.len(), 7);
        for m in modes {
            let _: oci_spec::runtime::MemoryPolicyModeType =
                serde_json::from_value(m.clone()).unwrap();
        }
        for f in d["linux"]["memoryPolicy"]["flags"].as_array().unwrap() {
            let _: oci_spec::runtime::MemoryPolicyFlagType =
                serde_json::from_value(f.clone()).unwrap();
        }
    }
}
