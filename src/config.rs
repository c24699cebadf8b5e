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
    if let Some(p) = raw.get_mut("process") {
        crate::spawn::procattr::fix_scheduler_flag_names(p);
    }
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
    deserialize_in(None, v)
}

/// As `deserialize`, for a document that sits at `field` in a larger one (`--process` is a
/// `process`): errors read `process.args: ...`, or `process: missing field ...` at its top.
pub fn deserialize_at<T: serde::de::DeserializeOwned>(field: &str, v: &Value) -> Result<T> {
    deserialize_in(Some(field), v)
}

fn deserialize_in<T: serde::de::DeserializeOwned>(field: Option<&str>, v: &Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match (field, path.as_str()) {
            (None, ".") => anyhow!("{inner}"),
            (None, _) => anyhow!("{path}: {inner}"),
            (Some(f), ".") => anyhow!("{f}: {inner}"),
            (Some(f), _) => anyhow!("{f}.{path}: {inner}"),
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
    crate::security::caps::current_bounding()
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
    // personality, ioPriority, scheduler, execCPUAffinity, memoryPolicy.
    crate::spawn::procattr::validate(spec)?;
    let container_maps = spec.linux().as_ref().and_then(|l| {
        let has_userns = l
            .namespaces()
            .as_ref()
            .is_some_and(|n| n.iter().any(|ns| ns.typ() == LinuxNamespaceType::User));
        has_userns.then(|| {
            (
                l.uid_mappings().as_deref().unwrap_or(&[]),
                l.gid_mappings().as_deref().unwrap_or(&[]),
            )
        })
    });
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            crate::rootfs::idmap::mount_maps(m, i, container_maps)?;
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
    if let Some(devs) = linux.net_devices()
        && !devs.is_empty()
    {
        let new_netns = linux.namespaces().as_ref().is_some_and(|n| {
            n.iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Network && ns.path().is_none())
        });
        if !new_netns {
            bail!(
                "linux.netDevices: moving devices needs a new network namespace (add \
                 {{\"type\": \"network\"}} without a path to linux.namespaces)"
            );
        }
        let mut names = HashSet::new();
        for (host, d) in devs {
            let field = format!("linux.netDevices[{host:?}]");
            crate::spawn::netdev::validate_name(&field, host, false)?;
            let to = d
                .name()
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(host);
            crate::spawn::netdev::validate_name(&format!("{field}.name"), to, true)?;
            if !to.contains('%') && !names.insert(to.to_string()) {
                bail!("{field}.name: {to:?} is given to two devices");
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

/// Hostile config.json: arbitrary JSON and a valid config with one field replaced by anything
/// must give an error that names a field (or the JSON itself), never a panic. Run by
/// `cargo test --release --bin berth`.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, nested a few levels.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just(String::new()),
                Just("/".to_string()),
                Just("..".to_string()),
                Just("a\u{0}b".to_string()),
                Just("RLIMIT_NOFILE".to_string()),
                Just("mount".to_string()),
                Just("CAP_SYS_ADMIN".to_string()),
                "\\PC{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z]{1,10}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Every JSON path (object keys and array indexes) in `v`.
    fn paths(v: &Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    here.push(k.clone());
                    out.push(here.clone());
                    paths(x, here, out);
                    here.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    here.push(i.to_string());
                    out.push(here.clone());
                    paths(x, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }

    fn set(v: &mut Value, path: &[String], new: Value) {
        let mut cur = v;
        for p in path {
            cur = match cur {
                Value::Object(m) => m.get_mut(p).unwrap(),
                Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                _ => unreachable!(),
            };
        }
        *cur = new;
    }

    fn base() -> Value {
        crate::cli::spec::default_spec(false)
    }

    fn bundle_dir() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            // Next to the test binary (under target/), so nothing is left in /tmp.
            let exe = std::env::current_exe().unwrap();
            let d = exe.with_file_name("berth-fuzz-bundle");
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(d.join("rootfs")).unwrap();
            d
        })
        .clone()
    }

    /// Load and validate as create does (config.json, then the plan computed before the fork).
    fn check(v: Value) -> Result<()> {
        let b = from_value(bundle_dir(), v)?;
        let opts = crate::spawn::Options {
            id: "fuzz".into(),
            pid_file: None,
            console_socket: None,
            console_relay: false,
            preserve_fds: 0,
            no_pivot: false,
            no_new_keyring: false,
            start_by_socket: false,
            cgroup_driver: crate::cgroups::Kind::Fs,
        };
        crate::spawn::plan::Plan::new(&b, &opts)?;
        Ok(())
    }

    /// The fields a message may start with: the spec's top-level properties, or the document.
    const FIELDS: &[&str] = &[
        "ociVersion",
        "process",
        "root",
        "hostname",
        "domainname",
        "mounts",
        "hooks",
        "annotations",
        "linux",
        "the top level",
    ];

    fn names_a_field(e: &anyhow::Error) -> bool {
        let msg = format!("{e:#}");
        FIELDS.iter().any(|f| msg.starts_with(f))
    }

    #[test]
    fn the_default_spec_is_valid() {
        check(base()).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_json_is_an_error_not_a_panic(v in any_json()) {
            if let Err(e) = check(v) {
                let msg = format!("{e:#}");
                prop_assert!(!msg.is_empty());
            }
        }

        #[test]
        fn arbitrary_bytes_are_an_error_not_a_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = parse_value(&b) {
                let _ = check(v);
            }
        }

        #[test]
        fn one_field_replaced_gives_an_error_naming_a_field(pick in any::<prop::sample::Index>(), new in any_json()) {
            let mut v = base();
            let mut all = vec![];
            paths(&v, &mut vec![], &mut all);
            let path = pick.get(&all).clone();
            set(&mut v, &path, new.clone());
            if let Err(e) = check(v) {
                prop_assert!(names_a_field(&e), "{}: {} → {:#}", path.join("."), new, e);
            }
        }

        #[test]
        fn one_field_removed_gives_an_error_naming_a_field(pick in any::<prop::sample::Index>()) {
            let mut v = base();
            let mut all = vec![];
            paths(&v, &mut vec![], &mut all);
            let path = pick.get(&all).clone();
            let (last, parent) = path.split_last().unwrap();
            let mut cur = &mut v;
            for p in parent {
                cur = match cur {
                    Value::Object(m) => m.get_mut(p).unwrap(),
                    Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                    _ => unreachable!(),
                };
            }
            match cur {
                Value::Object(m) => { m.remove(last); }
                Value::Array(a) => { a.remove(last.parse::<usize>().unwrap()); }
                _ => unreachable!(),
            }
            if let Err(e) = check(v) {
                prop_assert!(names_a_field(&e), "without {}: {:#}", path.join("."), e);
            }
        }
    }

    #[test]
    fn deep_nesting_hits_the_recursion_limit() {
        for depth in [127, 128, 129, 1_000, 1_000_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            match parse_value(text.as_bytes()) {
                Ok(_) => assert!(depth <= 128, "depth {depth} accepted"),
                Err(e) => assert!(
                    format!("{e}").contains("recursion limit"),
                    "depth {depth}: {e}"
                ),
            }
            let text = format!(
                "{{\"ociVersion\": \"1.0.2\", \"annotations\": {{\"a\": {}1{}}}}}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            );
            let _ = parse_value(text.as_bytes()).and_then(check);
        }
    }
}
