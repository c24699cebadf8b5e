//! What the kubelet sends: pod sandbox and container configs built the way kubelet's
//! kuberuntime builds them (labels, log paths, cgroup parent per cgroup driver, namespace
//! options, default masked/read-only /proc paths, explicit seccomp profile).

use crate::cri::*;
use std::collections::HashMap;

/// kubelet's default masked paths (ProcMount Default).
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
/// kubelet's default read-only paths.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Default, Clone, Copy)]
pub struct PodOpts {
    pub host_net: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub share_pid: bool,
    pub privileged: bool,
}

impl PodOpts {
    pub fn ns(&self) -> NamespaceOption {
        let m = |host: bool, pod: bool| {
            if host {
                NamespaceMode::Node as i32
            } else if pod {
                NamespaceMode::Pod as i32
            } else {
                NamespaceMode::Container as i32
            }
        };
        NamespaceOption {
            network: m(self.host_net, true),
            pid: m(self.host_pid, self.share_pid),
            ipc: m(self.host_ipc, true),
            ..Default::default()
        }
    }
}

/// How pods are placed in cgroups: kubelet's cgroupfs or systemd layout.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

impl Driver {
    /// CgroupParent kubelet sends for a burstable pod.
    pub fn parent(&self, uid: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("/kubepods/burstable/pod{uid}"),
            Driver::Systemd => format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_")),
        }
    }
    /// The pod's cgroup dir relative to a hierarchy root.
    pub fn pod_dir(&self, uid: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("kubepods/burstable/pod{uid}"),
            Driver::Systemd => format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                uid.replace('-', "_")
            ),
        }
    }
    /// The cgroup a container (or the sandbox) `id` of the pod should be in.
    pub fn container_cgroup(&self, uid: &str, id: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("/{}/{id}", self.pod_dir(uid)),
            Driver::Systemd => format!("/{}/cri-containerd-{id}.scope", self.pod_dir(uid)),
        }
    }
}

pub struct Pod {
    pub id: String,
    pub uid: String,
    pub cfg: PodSandboxConfig,
    pub opts: PodOpts,
}

pub fn pod_config(
    name: &str,
    uid: &str,
    run: &str,
    log_dir: &str,
    driver: Driver,
    o: PodOpts,
) -> PodSandboxConfig {
    let ns = "berth-cri";
    let labels: HashMap<String, String> = [
        ("io.kubernetes.pod.name", name),
        ("io.kubernetes.pod.namespace", ns),
        ("io.kubernetes.pod.uid", uid),
        ("berth-cri.run", run),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: ns.into(),
            attempt: 0,
        }),
        hostname: if o.host_net {
            String::new()
        } else {
            name.into()
        },
        log_directory: log_dir.into(),
        dns_config: if o.host_net {
            None
        } else {
            Some(DnsConfig {
                servers: vec!["10.96.0.10".into()],
                searches: vec![
                    format!("{ns}.svc.cluster.local"),
                    "svc.cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            })
        },
        port_mappings: vec![],
        labels,
        annotations: [("kubernetes.io/config.source".to_string(), "api".to_string())].into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: driver.parent(uid),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(o.ns()),
                privileged: o.privileged,
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
            // namespaced sysctls kubelet passes from the pod spec (safe ones), only where the
            // pod has its own network and IPC namespaces
            sysctls: if o.host_net || o.host_ipc {
                Default::default()
            } else {
                [
                    ("net.ipv4.ip_local_port_range", "20000 30000"),
                    ("kernel.shm_rmid_forced", "1"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
            },
            overhead: None,
            resources: None,
        }),
        windows: None,
    }
}

/// A busybox container running `sh -c script`, with what kubelet always sets: labels,
/// log path, namespace options of the pod, default masked/read-only paths, unconfined seccomp
/// unless asked otherwise (kubelet's default without SeccompDefault).
pub fn container(name: &str, image: &str, script: &str, pod: &Pod) -> ContainerConfig {
    let labels: HashMap<String, String> = [
        ("io.kubernetes.container.name", name),
        ("io.kubernetes.pod.uid", pod.uid.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}/0.log"),
        labels,
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: 100000,
                cpu_shares: 2,
                oom_score_adj: 1000,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(pod.opts.ns()),
                privileged: false,
                masked_paths: MASKED.iter().map(|s| s.to_string()).collect(),
                readonly_paths: READONLY.iter().map(|s| s.to_string()).collect(),
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::Unconfined as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Mutable access to the container's security context.
pub fn sc(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    c.linux.as_mut().unwrap().security_context.as_mut().unwrap()
}
/// Mutable access to the container's resources.
pub fn res(c: &mut ContainerConfig) -> &mut LinuxContainerResources {
    c.linux.as_mut().unwrap().resources.as_mut().unwrap()
}
