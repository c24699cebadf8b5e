//! The device cgroup: which device nodes the container may create (m), read (r) and write (w).
//!
//! The rule list is built as runc builds it: everything denied, then `linux.resources.devices`
//! in order, then the default devices of runtime-linux.md (and mknod of any node, the pty
//! slaves, /dev/console, /dev/ptmx, /dev/net/tun). The defaults come last so that the usual
//! leading `{"allow": false, "access": "rwm"}` of docker and podman does not take them away.
//! The last rule that matches a device and an access wins.
//!
//! v1: written to devices.deny / devices.allow. v2: compiled to an eBPF program (`bpf.rs`).

use anyhow::{Result, bail};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::path::Path;

use std::io::Write;

pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (any), 'c' or 'b'.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u32,
}

impl Rule {
    fn access_str(&self) -> String {
        let mut s = String::new();
        if self.access & ACC_READ != 0 {
            s.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            s.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            s.push('m');
        }
        s
    }

    /// The line devices.allow / devices.deny take.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access_str()
        )
    }

    /// Matches every device with every access.
    pub fn is_all(&self) -> bool {
        self.typ == 'a' && self.major.is_none() && self.minor.is_none() && self.access == 7
    }
}

fn parse_access(s: &str, field: &str) -> Result<u32> {
    if s.is_empty() {
        return Ok(7);
    }
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => bail!("{field}.access: {s:?} may only hold r, w and m"),
        };
    }
    Ok(a)
}

fn num(v: Option<i64>, field: &str) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{field}: {v} is out of range")),
    }
}

/// The runtime's default rules (runc's AllowedDevices).
pub fn defaults() -> Vec<Rule> {
    let r = |typ, major, minor, access| Rule {
        allow: true,
        typ,
        major,
        minor,
        access,
    };
    vec![
        r('c', None, None, ACC_MKNOD),
        r('b', None, None, ACC_MKNOD),
        r('c', Some(1), Some(3), 7),    // /dev/null
        r('c', Some(1), Some(8), 7),    // /dev/random
        r('c', Some(1), Some(7), 7),    // /dev/full
        r('c', Some(5), Some(0), 7),    // /dev/tty
        r('c', Some(1), Some(5), 7),    // /dev/zero
        r('c', Some(1), Some(9), 7),    // /dev/urandom
        r('c', Some(5), Some(1), 7),    // /dev/console
        r('c', Some(136), None, 7),     // /dev/pts/*
        r('c', Some(5), Some(2), 7),    // /dev/ptmx
        r('c', Some(10), Some(200), 7), // /dev/net/tun
    ]
}

/// The full ordered rule list for a container.
pub fn rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = vec![Rule {
        allow: false,
        typ: 'a',
        major: None,
        minor: None,
        access: 7,
    }];
    for (i, d) in spec.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => bail!("{field}.type: \"p\" is not a device cgroup type"),
        };
        let rule = Rule {
            allow: d.allow(),
            typ,
            major: num(d.major(), &format!("{field}.major"))?,
            minor: num(d.minor(), &format!("{field}.minor"))?,
            access: parse_access(d.access().as_deref().unwrap_or(""), &field)?,
        };
        // For v1, "a" alone resets everything: a partial "a" rule is split into c and b.
        if typ == 'a' && !rule.is_all() {
            for t in ['c', 'b'] {
                out.push(Rule {
                    typ: t,
                    ..rule.clone()
                });
            }
        } else {
            out.push(rule);
        }
    }
    out.extend(defaults());
    Ok(out)
}

/// v1: reset to deny-all, then each rule in order. devices.allow and devices.deny are opened
/// once each: every write(2) to them is one rule.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    let mut files: [Option<std::fs::File>; 2] = [None, None];
    let mut put = |allow: bool, line: &str, field: &str| -> Result<()> {
        let name = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let slot = &mut files[allow as usize];
        if slot.is_none() {
            *slot = Some(super::fs::open_w(dir, name, field)?);
        }
        match slot.as_mut().map(|f| f.write_all(line.as_bytes())) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => bail!(
                "{field}: writing {line:?} to {}: {}",
                dir.join(name).display(),
                std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))
            ),
            None => bail!("{field}: {} is not open", dir.join(name).display()),
        }
    };
    put(false, "a", "linux.resources.devices")?;
    for (i, r) in rules.iter().enumerate() {
        let line = if r.is_all() {
            "a".to_string()
        } else {
            r.v1_line()
        };
        if i == 0 && !r.allow && r.is_all() {
            continue;
        }
        put(r.allow, &line, &format!("linux.resources.devices ({line})"))?;
    }
    Ok(())
}

/// Does the rule list allow `access` to the device (the semantics the eBPF program implements;
/// used by the unit tests)?
#[cfg(test)]
pub fn allows(rules: &[Rule], typ: char, major: u32, minor: u32, access: u32) -> bool {
    [ACC_MKNOD, ACC_READ, ACC_WRITE]
        .into_iter()
        .filter(|b| access & b != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| {
                    r.access & bit != 0
                        && (r.typ == 'a' || r.typ == typ)
                        && r.major.is_none_or(|m| m == major)
                        && r.minor.is_none_or(|m| m == minor)
                })
                .is_some_and(|r| r.allow)
        })
}
