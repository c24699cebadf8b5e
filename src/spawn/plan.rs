//! Everything the child needs, computed and validated before the fork (so the child does little
//! work and every config error is reported before any side effect).

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, PosixRlimitType};
use std::ffi::CString;
use std::path::PathBuf;

use super::Options;
use crate::config::Bundle;
use crate::security::caps;
use crate::security::seccomp::Filter;

pub struct Rlimit {
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
    pub name: String,
}

/// `process.args` as C strings for execve (a NUL byte inside is an error naming the index).
pub fn args_cstrings(args: Option<&[String]>) -> Result<Vec<CString>> {
    args.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            CString::new(a.as_str()).map_err(|_| anyhow!("process.args[{i}]: contains a NUL byte"))
        })
        .collect()
}

impl Rlimit {
    pub fn from_spec(r: &oci_spec::runtime::PosixRlimit) -> Rlimit {
        Rlimit {
            resource: rlimit_resource(r.typ()),
            soft: r.soft(),
            hard: r.hard(),
            name: serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        }
    }
}

pub struct Plan {
    /// The sealed memfd the container's program is exec'd through (CVE-2019-5736).
    pub trampoline: Option<std::os::fd::OwnedFd>,
    /// `process` is in the config. Without it (allowed for create, config.md) the container's
    /// first process is set up as far as the namespaces, mounts and hooks go, then waits to be
    /// killed: `start` fails naming `process`.
    pub has_process: bool,
    pub terminal: bool,
    /// CLONE_NEW* flags for clone3 itself.
    pub clone_flags: libc::c_int,
    /// Namespaces joined by path, user first and mount last.
    pub joins: Vec<(LinuxNamespaceType, PathBuf, libc::c_int)>,
    /// New namespaces made with unshare in the child (when some are joined).
    pub unshare_flags: libc::c_int,
    pub new_userns: bool,
    /// A new network namespace (not joined by path): its loopback device is brought up.
    pub new_netns: bool,
    pub in_userns: bool,
    /// A mount namespace (new or joined). Without one the container shares berth's: its mounts
    /// are made there, exactly those config.json lists, and the rootfs is entered with chroot.
    pub mount_ns: bool,
    /// The container is in a user namespace, its own or one berth runs in (rootless podman,
    /// rootlesskit): mounts keep the kernel's locked flags, devices are bound from the host.
    pub userns_limits: bool,
    pub cgroup_ns: bool,
    /// A new pid namespace made by unshare + fork in the child, or a joined pid namespace, or
    /// a time namespace: the container process is the child's child.
    pub second_fork: bool,
    pub time_ns: bool,
    /// Make a new pid namespace with unshare before the second fork.
    pub unshare_pid: bool,
    pub time_offsets: Vec<String>,
    pub uid_maps: Vec<LinuxIdMapping>,
    pub gid_maps: Vec<LinuxIdMapping>,
    /// How the maps of a new user namespace are written (checked before anything is made).
    pub map_plan: Option<crate::rootless::MapPlan>,
    pub caps: Option<caps::Sets>,
    pub rlimits: Vec<Rlimit>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub args: Vec<CString>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub no_new_privs: bool,
    pub seccomp: Option<Filter>,
    pub oom_score_adj: Option<i32>,
    pub has_hooks: bool,
    pub preserve_fds: u32,
    /// personality, ioPriority, scheduler, memoryPolicy (execCPUAffinity is for exec only).
    pub attrs: super::procattr::Attrs,
    /// `linux.netDevices`: (host name, name in the container).
    pub net_devices: Vec<(String, String)>,
    /// User namespaces of idmapped mounts, by index in `mounts`.
    /// Detached idmapped mount trees, by index in `mounts` (rootfs::idmap::prepare).
    pub idmap_userns: Vec<(usize, std::os::fd::OwnedFd)>,
}

/// `linux.intelRdt` is refused, with the reason: berth does not write resctrl groups yet
/// (and cannot test them on hosts without Intel RDT / AMD PQoS).
fn intel_rdt_unsupported() -> Result<()> {
    const RDTGROUP_SUPER_MAGIC: i64 = 0x7655821;
    let mounted = nix::sys::statfs::statfs("/sys/fs/resctrl")
        .is_ok_and(|s| s.filesystem_type().0 == RDTGROUP_SUPER_MAGIC);
    if mounted {
        bail!(
            "linux.intelRdt: not supported by berth yet (resctrl is mounted at /sys/fs/resctrl, \
             but berth does not create resctrl groups); remove linux.intelRdt"
        );
    }
    bail!(
        "linux.intelRdt: this host has no resctrl filesystem at /sys/fs/resctrl (needs Intel RDT \
         or AMD PQoS and `mount -t resctrl resctrl /sys/fs/resctrl`); remove linux.intelRdt"
    )
}

/// Without a mount namespace the container shares the runtime's (runtime-spec: a namespace
/// type not listed is inherited). The mounts config.json lists are made there, and nothing
/// else: berth does not bind the rootfs onto itself nor change any propagation, and enters the
/// rootfs with chroot. What would need more is refused: masked and read-only paths (as runc:
/// "unable to restrict sys entries without a private MNT namespace"), a read-only root (a
/// read-only bind of the rootfs; runc silently ignores it) and rootfsPropagation (it would
/// change the runtime's own mounts).
fn no_mount_namespace(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let hint = "without a mount namespace the container shares berth's; add {\"type\": \"mount\"} \
                to linux.namespaces";
    let linux = spec.linux().as_ref();
    for (field, list) in [
        ("maskedPaths", linux.and_then(|l| l.masked_paths().as_ref())),
        (
            "readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        ),
    ] {
        if list.is_some_and(|v| !v.is_empty()) {
            bail!(
                "linux.{field}: needs a mount namespace of the container (they would be \
                 mounted over the runtime's own paths): {hint}, or remove linux.{field}"
            );
        }
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        bail!(
            "root.readonly: needs a mount namespace of the container (a read-only root is a \
             read-only bind mount of the rootfs, which config.json does not list): {hint}, or set \
             root.readonly to false"
        );
    }
    if linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty())
    {
        bail!(
            "linux.rootfsPropagation: needs a mount namespace of the container (it would change \
             the propagation of the runtime's own mounts): {hint}, or remove it"
        );
    }
    Ok(())
}

fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80,
    }
}

pub fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

impl Plan {
    pub fn new(bundle: &Bundle, opts: &Options) -> Result<Plan> {
        let spec = &bundle.spec;
        // Optional for create (config.md); `start` refuses a container without it.
        let process = spec.process().as_ref();
        crate::security::labels::validate(spec)?;
        let linux = spec.linux().as_ref();
        if linux.and_then(|l| l.intel_rdt().as_ref()).is_some() {
            intel_rdt_unsupported()?;
        }
        let nss = linux
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut joins = vec![];
        let mut new_flags = 0;
        let mut new_userns = false;
        let mut in_userns = false;
        let mut pid_join = false;
        let mut time_ns = false;
        let mut cgroup_ns = false;
        let mut mount_ns = false;
        for (i, ns) in nss.iter().enumerate() {
            let f = ns_flag(ns.typ());
            match ns.typ() {
                LinuxNamespaceType::User => in_userns = true,
                LinuxNamespaceType::Time => time_ns = true,
                LinuxNamespaceType::Cgroup => cgroup_ns = true,
                LinuxNamespaceType::Mount => mount_ns = true,
                _ => {}
            }
            match ns.path() {
                Some(p) => {
                    if !p.exists() {
                        bail!("linux.namespaces[{i}].path: {} does not exist", p.display());
                    }
                    if ns.typ() == LinuxNamespaceType::Pid {
                        pid_join = true;
                    }
                    if ns.typ() == LinuxNamespaceType::Cgroup {
                        cgroup_ns = false;
                    }
                    joins.push((ns.typ(), p.clone(), f));
                }
                None => {
                    if ns.typ() == LinuxNamespaceType::User {
                        new_userns = true;
                    }
                    new_flags |= f;
                }
            }
        }
        if !mount_ns {
            no_mount_namespace(spec)?;
        }
        joins.sort_by_key(|(t, _, _)| match t {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        // The cgroup namespace is made after placement; time (and pid with a second fork)
        // by unshare in the child.
        let time_flag = 0x80;
        let base = new_flags & !libc::CLONE_NEWCGROUP & !time_flag;
        let (clone_flags, unshare_flags, unshare_pid, second_fork);
        if joins.is_empty() {
            second_fork = time_ns;
            unshare_pid = second_fork && base & libc::CLONE_NEWPID != 0;
            clone_flags = if second_fork {
                base & !libc::CLONE_NEWPID
            } else {
                base
            };
            unshare_flags = 0;
        } else {
            // Join first (with the runtime's privileges), then create the new ones.
            if joins.iter().any(|(t, _, _)| *t != LinuxNamespaceType::User) && new_userns {
                bail!(
                    "linux.namespaces: joining namespaces by path together with a new user namespace is not supported"
                );
            }
            clone_flags = base & libc::CLONE_NEWUSER;
            unshare_flags = base & !libc::CLONE_NEWUSER & !libc::CLONE_NEWPID;
            unshare_pid = base & libc::CLONE_NEWPID != 0;
            second_fork = pid_join || time_ns || unshare_pid;
        }
        let mut time_offsets = vec![];
        if let Some(to) = linux.and_then(|l| l.time_offsets().as_ref()) {
            if !time_ns {
                bail!("linux.timeOffsets: needs a new time namespace in linux.namespaces");
            }
            for (clock, off) in to {
                if clock != "monotonic" && clock != "boottime" {
                    bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
                }
                time_offsets.push(format!(
                    "{clock} {} {}",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
        }
        let user = process.map(|p| p.user().clone()).unwrap_or_default();
        let mut rlimits = vec![];
        for r in process
            .and_then(|p| p.rlimits().as_ref())
            .into_iter()
            .flatten()
        {
            rlimits.push(Rlimit::from_spec(r));
        }
        let args = args_cstrings(process.and_then(|p| p.args().as_deref()))?;
        let mut env: Vec<String> = process.and_then(|p| p.env().clone()).unwrap_or_default();
        for (i, e) in env.iter().enumerate() {
            if e.contains('\0') {
                bail!("process.env[{i}]: contains a NUL byte");
            }
        }
        let mut preserve_fds = opts.preserve_fds;
        if process.is_some()
            && let Ok(n) = std::env::var("LISTEN_FDS")
            && let Ok(n) = n.parse::<u32>()
        {
            preserve_fds += n;
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={n}"));
            env.push("LISTEN_PID=1".into());
        }
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(Filter::compile(s)?),
            None => None,
        };
        let uid_maps = linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default();
        let gid_maps = linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default();
        if new_userns {
            for (name, maps) in [("uidMappings", &uid_maps), ("gidMappings", &gid_maps)] {
                if maps.is_empty() {
                    bail!("linux.{name}: a new user namespace needs mappings");
                }
                for (i, m) in maps.iter().enumerate() {
                    if m.size() == 0 {
                        bail!("linux.{name}[{i}].size: must be greater than 0");
                    }
                }
            }
        }
        if !in_userns && !nix::unistd::geteuid().is_root() {
            bail!(
                "linux.namespaces: a rootless container needs a user namespace: add {{\"type\": \"user\"}} \
                 with linux.uidMappings and linux.gidMappings (`berth spec --rootless` writes them)"
            );
        }
        let map_plan = match new_userns {
            true => Some(crate::rootless::plan_maps(&uid_maps, &gid_maps)?),
            false => None,
        };
        // Supplementary groups need setgroups(2), which a user namespace whose gid map an
        // unprivileged user wrote itself has denied (runc fails at setgroups, after the
        // container is half made): refused now, before anything exists.
        let extra_gids = process
            .and_then(|p| p.user().additional_gids().clone())
            .unwrap_or_default();
        if !extra_gids.is_empty() {
            let own_denied = || {
                crate::sys::read_small_string(std::path::Path::new("/proc/self/setgroups"))
                    .is_ok_and(|s| s.trim() == "deny")
            };
            if map_plan.is_some_and(|m| m.deny_setgroups) {
                bail!(
                    "process.user.additionalGids: {extra_gids:?} cannot be set: linux.gidMappings \
                     maps only the caller's own gid, which an unprivileged user may write only \
                     with setgroups(2) denied in the new user namespace; map a range of \
                     /etc/subgid as well (written through newgidmap, Debian package uidmap) or \
                     remove process.user.additionalGids"
                );
            }
            if !in_userns && own_denied() {
                bail!(
                    "process.user.additionalGids: {extra_gids:?} cannot be set: setgroups(2) is \
                     denied in the user namespace berth runs in (/proc/self/setgroups is \"deny\"), \
                     which the container shares; remove process.user.additionalGids or run berth \
                     in a user namespace that allows setgroups"
                );
            }
        }
        let mut net_devices = vec![];
        for (host, d) in linux
            .and_then(|l| l.net_devices().as_ref())
            .into_iter()
            .flatten()
        {
            super::netdev::host_index(host)?;
            let to = d.name().clone().filter(|n| !n.is_empty());
            net_devices.push((host.clone(), to.unwrap_or_else(|| host.clone())));
        }
        net_devices.sort();
        // Idmapped mounts are made now, before the fork, in berth's user namespace (see
        // rootfs::idmap::prepare): a user namespace holding the mount's maps, then a detached
        // idmapped clone of the source, which the child attaches.
        let mut idmap_userns = vec![];
        let container_maps = in_userns.then_some((&uid_maps[..], &gid_maps[..]));
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            if let Some((u, g)) = crate::rootfs::idmap::mount_maps(m, i, container_maps)? {
                let ns = crate::rootfs::idmap::userns(&u, &g, &format!("mounts[{i}]"))?;
                let tree = crate::rootfs::idmap::prepare(
                    m,
                    i,
                    &bundle.dir,
                    std::os::fd::AsFd::as_fd(&ns),
                )?;
                idmap_userns.push((i, tree));
            }
        }
        let has_hooks = spec.hooks().as_ref().is_some_and(|h| {
            [
                h.prestart(),
                h.create_runtime(),
                h.create_container(),
                h.start_container(),
            ]
            .iter()
            .any(|x| x.as_ref().is_some_and(|v| !v.is_empty()))
        });
        Ok(Plan {
            trampoline: if process.is_none() || crate::security::labels::has_exec_label(spec) {
                None
            } else {
                super::trampoline::prepare()
            },
            has_process: process.is_some(),
            terminal: process.and_then(|p| p.terminal()).unwrap_or(false),
            clone_flags,
            joins,
            unshare_flags,
            new_userns,
            new_netns: new_flags & libc::CLONE_NEWNET != 0,
            in_userns,
            mount_ns,
            userns_limits: in_userns || crate::rootless::in_userns(),
            cgroup_ns,
            second_fork,
            time_ns,
            unshare_pid,
            time_offsets,
            uid_maps,
            gid_maps,
            map_plan,
            caps: process
                .and_then(|p| p.capabilities().as_ref())
                .map(|c| caps::from_spec(c, in_userns)),
            rlimits,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(0o022),
            args,
            env,
            cwd: process.map_or_else(|| PathBuf::from("/"), |p| p.cwd().clone()),
            no_new_privs: process.and_then(|p| p.no_new_privileges()).unwrap_or(false),
            seccomp,
            oom_score_adj: process.and_then(|p| p.oom_score_adj()),
            has_hooks,
            preserve_fds,
            attrs: match process {
                Some(p) => super::procattr::Attrs::new(spec, p)?,
                None => super::procattr::Attrs::default(),
            },
            net_devices,
            idmap_userns,
        })
    }

    /// Write /proc/<pid>/{uid_map,gid_map} (and setgroups) from the parent, as planned.
    pub fn write_id_maps(&self, pid: i32) -> Result<()> {
        let plan = self
            .map_plan
            .as_ref()
            .ok_or_else(|| anyhow!("linux.uidMappings: no new user namespace to map"))?;
        crate::rootless::write_maps(pid, plan, &self.uid_maps, &self.gid_maps)
    }
}
