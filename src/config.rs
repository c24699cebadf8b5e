//! Loading and validating a bundle's config.json. Every problem is found here, before any side
//! effect, and named by its field (`process.args: must not be empty`).

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::logger;

/// A loaded bundle: the parsed spec plus what berth derives from it.
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// The config as berth understood it (unknown capabilities removed), kept in the state dir.
    pub raw: Value,
}

/// Capability names this build and host know. Others are warned about and skipped, as
/// runtime-spec 1.1+ says ("the runtime MUST log a warning and ignore unknown capabilities").
fn known_caps() -> HashSet<String> {
    caps::all().into_iter().map(|c| c.to_string()).collect()
}

/// Read `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir =
        std::path::absolute(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    if !dir.is_dir() {
        bail!(
            "bundle {}: not a directory (pass the bundle with --bundle/-b, or run from it)",
            dir.display()
        );
    }
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| {
        anyhow!(
            "reading {}: {e}{}",
            path.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                " (create one with `berth spec`)"
            } else {
                ""
            }
        )
    })?;
    let raw = parse_value(&text).with_context(|| format!("{}", path.display()))?;
    from_value(dir, raw).with_context(|| format!("{}", path.display()))
}

/// Parse JSON text with a depth limit that cannot overflow the stack on hostile input.
pub fn parse_value(text: &[u8]) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v: Value =
        serde::Deserialize::deserialize(&mut de).map_err(|e| anyhow!("invalid JSON: {e}"))?;
    de.end().map_err(|e| anyhow!("invalid JSON: {e}"))?;
    Ok(v)
}

pub fn from_value(dir: PathBuf, mut raw: Value) -> Result<Bundle> {
    if !raw.is_object() {
        bail!("the top level must be a JSON object");
    }
    filter_capabilities(&mut raw);
    let spec: Spec = deserialize(&raw)?;
    validate(&spec)?;
    let root = spec.root().as_ref().ok_or_else(|| {
        anyhow!("root: missing (the bundle's root filesystem, e.g. {{\"path\": \"rootfs\"}})")
    })?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| anyhow!("root.path: {}: {e}", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path: {} is not a directory", rootfs.display());
    }
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw,
    })
}

/// Deserialize with the JSON path of the failing field in the message.
pub fn deserialize<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow!("{inner}")
        } else {
            anyhow!("{path}: {inner}")
        }
    })
}

/// As `deserialize`, for a document that sits at `field` in a larger one (`--process` is a
/// `process`): errors read `process.args: ...`, or `process: missing field ...` at its top.
pub fn deserialize_at<T: serde::de::DeserializeOwned>(field: &str, v: &Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow!("{field}: {inner}")
        } else {
            anyhow!("{field}.{path}: {inner}")
        }
    })
}

/// Remove capability names that this build or host does not know, with a warning for each.
fn filter_capabilities(raw: &mut Value) {
    let Some(caps) = raw
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    let known = known_caps();
    let bounding = host_bounding_set();
    for (set, list) in caps.iter_mut() {
        let Some(arr) = list.as_array_mut() else {
            continue;
        };
        arr.retain(|name| {
            let Some(s) = name.as_str() else { return true };
            if !known.contains(s) {
                logger::warn(&format!(
                    "process.capabilities.{set}: unknown capability {s:?} ignored"
                ));
                return false;
            }
            if let Some(b) = &bounding
                && !b.contains(s)
            {
                logger::warn(&format!(
                    "process.capabilities.{set}: {s} is not in this host's bounding set, ignored"
                ));
                return false;
            }
            true
        });
    }
}

/// The capabilities berth itself may hand out (its own bounding set).
fn host_bounding_set() -> Option<HashSet<String>> {
    caps::read(None, caps::CapSet::Bounding)
        .ok()
        .map(|s| s.into_iter().map(|c| c.to_string()).collect())
}

fn validate(spec: &Spec) -> Result<()> {
    let version = spec.version();
    if version.is_empty() {
        bail!("ociVersion: missing");
    }
    if !version.starts_with("1.") {
        bail!("ociVersion: {version:?} is not supported (berth implements runtime-spec 1.x)");
    }
    if let Some(p) = spec.process() {
        match p.args() {
            None => bail!("process.args: missing (the command to run in the container)"),
            Some(a) if a.is_empty() => bail!("process.args: must not be empty"),
            Some(a) if a[0].is_empty() => bail!("process.args[0]: must not be empty"),
            _ => {}
        }
        if !p.cwd().is_absolute() {
            bail!(
                "process.cwd: {:?} must be an absolute path",
                p.cwd().display()
            );
        }
        if let Some(env) = p.env() {
            for (i, e) in env.iter().enumerate() {
                if !e.contains('=') {
                    bail!("process.env[{i}]: {e:?} is not of the form NAME=value");
                }
            }
        }
        if let Some(rl) = p.rlimits() {
            let mut seen = HashSet::new();
            for (i, r) in rl.iter().enumerate() {
                if !seen.insert(format!("{:?}", r.typ())) {
                    bail!("process.rlimits[{i}]: {:?} given twice", r.typ());
                }
                if r.soft() > r.hard() {
                    bail!("process.rlimits[{i}]: soft limit is above the hard limit");
                }
            }
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                bail!(
                    "mounts[{i}].destination: {:?} must be an absolute path",
                    m.destination().display()
                );
            }
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    let mut user_ns = false;
    if let Some(nss) = linux.namespaces() {
        for (i, ns) in nss.iter().enumerate() {
            if !seen.insert(ns.typ()) {
                bail!(
                    "linux.namespaces[{i}]: namespace {:?} listed twice",
                    ns.typ()
                );
            }
            if ns.typ() == LinuxNamespaceType::User {
                user_ns = true;
            }
            if let Some(p) = ns.path()
                && !p.is_absolute()
            {
                bail!(
                    "linux.namespaces[{i}].path: {:?} must be an absolute path",
                    p.display()
                );
            }
        }
    }
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let joins_user = linux.namespaces().as_ref().is_some_and(|n| {
        n.iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_some())
    });
    if user_ns && !joins_user && !has_maps {
        bail!("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
    }
    if has_maps && !user_ns {
        bail!("linux.uidMappings: given without a user namespace in linux.namespaces");
    }
    if let Some(sysctl) = linux.sysctl() {
        for k in sysctl.keys() {
            if k.contains('/') && k.contains("..") || k.is_empty() {
                bail!("linux.sysctl: invalid key {k:?}");
            }
        }
    }
    if spec.hostname().is_some() && !seen.contains(&LinuxNamespaceType::Uts) {
        bail!("hostname: setting a hostname needs a new uts namespace in linux.namespaces");
    }
    if let Some(p) = linux.cgroups_path()
        && p.to_string_lossy().contains("..")
    {
        bail!(
            "linux.cgroupsPath: {:?} must not contain \"..\"",
            p.display()
        );
    }
    Ok(())
}
