//! The cgroup driver of a container: the cgroupfs driver (`Manager`, berth's own writes under
//! /sys/fs/cgroup) or the systemd driver (`systemd::Systemd`, a transient unit over D-Bus plus
//! the cgroupfs driver's writes for what systemd does not express). One interface for the
//! commands; state.json records which driver made the cgroup, so every later command uses the
//! same one whatever flags it gets.
//!
//! What only reads or signals the cgroup (state, ps, kill --all, events, exec's placement) is
//! the same for both and goes straight to the cgroupfs side (`fs()`).

use anyhow::Result;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use std::collections::HashMap;
use std::path::Path;

use super::dbus::Bus;
use super::systemd::Systemd;
use super::{CgroupState, Manager, Placement};

/// Which driver a create asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fs,
    /// `--systemd-cgroup`: the system's systemd, or (rootless) the user's.
    Systemd(Bus),
}

pub enum Driver {
    Fs(Manager),
    Systemd(Box<Systemd>),
}

impl Driver {
    /// The driver for a new container (nothing is created, nothing is connected yet; a bad
    /// `linux.cgroupsPath` or systemd annotation is an error here).
    pub fn new(
        kind: Kind,
        cgroups_path: Option<&Path>,
        id: &str,
        annotations: &HashMap<String, String>,
    ) -> Result<Driver> {
        Ok(match kind {
            Kind::Fs => Driver::Fs(Manager::new(cgroups_path, id)?),
            Kind::Systemd(bus) => {
                let p = match cgroups_path {
                    Some(p) => Some(p.to_str().ok_or_else(|| {
                        anyhow::anyhow!("linux.cgroupsPath: {} is not UTF-8", p.display())
                    })?),
                    None => None,
                };
                Driver::Systemd(Box::new(Systemd::new(
                    p,
                    id,
                    annotations,
                    bus == Bus::User,
                )?))
            }
        })
    }

    /// The driver that made a container's cgroup.
    pub fn from_state(st: &CgroupState) -> Driver {
        match &st.systemd {
            Some(u) => Driver::Systemd(Box::new(Systemd::from_state(st, u))),
            None => Driver::Fs(Manager::from_state(st)),
        }
    }

    pub fn state(&self) -> &CgroupState {
        self.fs().state()
    }

    /// The cgroupfs side: the container's directories.
    pub fn fs(&self) -> &Manager {
        match self {
            Driver::Fs(m) => m,
            Driver::Systemd(s) => &s.fs,
        }
    }

    /// Before any side effect of a create: open what the driver needs (systemd: the bus).
    pub fn connect(&mut self) -> Result<()> {
        match self {
            Driver::Fs(_) => Ok(()),
            Driver::Systemd(s) => s.connect(true),
        }
    }

    /// Before the clone: the cgroup made and set up (cgroupfs), or what the child needs to
    /// wait for berth (systemd). The returned placement is what the child does itself.
    pub fn prepare(&mut self, r: &LinuxResources) -> Result<Placement> {
        match self {
            Driver::Fs(m) => {
                m.create()?;
                // Always: with no linux.resources the device cgroup still gets the defaults.
                m.apply(r)?;
                m.placement()
            }
            Driver::Systemd(s) => s.prepare(r),
        }
    }

    /// After the clone, with the container's first process (host pid): put it into its cgroup
    /// when the child does not place itself (`Placement::waits_for_parent`). Then `finish`.
    /// Both callable on their own for a process made elsewhere (restore).
    pub fn enter(&mut self, pid: i32, r: &LinuxResources) -> Result<()> {
        match self {
            Driver::Fs(_) => Ok(()),
            Driver::Systemd(s) => s.enter(pid, r),
        }
    }

    /// After `enter`: the rest of the cgroup's setup (the systemd driver's cgroupfs writes).
    /// The process may run its own setup meanwhile; what it runs of the container's comes later.
    pub fn finish(&mut self, r: &LinuxResources) -> Result<()> {
        match self {
            Driver::Fs(_) => Ok(()),
            Driver::Systemd(s) => s.finish(r),
        }
    }

    /// `berth update`: `delta` holds the changed fields (0 = unchanged), `merged` the
    /// container's resources after the change.
    pub fn update(
        &mut self,
        delta: &LinuxResources,
        merged: &LinuxResources,
        devices: Option<&[LinuxDeviceCgroup]>,
    ) -> Result<()> {
        match self {
            Driver::Fs(m) => m.update(delta, devices),
            Driver::Systemd(s) => s.update(delta, merged, devices),
        }
    }

    /// `pause` (true) and `resume` (false).
    pub fn set_frozen(&mut self, frozen: bool) -> Result<()> {
        match self {
            Driver::Fs(m) if frozen => m.freeze(),
            Driver::Fs(m) => m.thaw(),
            Driver::Systemd(s) => s.set_frozen(frozen),
        }
    }

    /// Remove the cgroup (its processes are gone: see lifecycle).
    pub fn destroy(&mut self) -> Result<()> {
        match self {
            Driver::Fs(m) => m.destroy(),
            Driver::Systemd(s) => s.destroy(),
        }
    }

    /// Whether the cgroup is this container's to empty and remove. Not when systemd refused
    /// the unit because one of that name exists: that cgroup is another container's.
    pub fn owned(&self) -> bool {
        match self {
            Driver::Fs(_) => true,
            Driver::Systemd(s) => s.owned(),
        }
    }

    /// For --debug: "D-Bus: N messages, M round trips" (answers berth had to wait for).
    pub fn dbus_stats(&self) -> Option<String> {
        match self {
            Driver::Fs(_) => None,
            Driver::Systemd(s) => s.dbus_stats().map(|(n, w)| {
                let s = if w == 1 { "" } else { "s" };
                format!("D-Bus: {n} messages, {w} round trip{s}")
            }),
        }
    }
}
