//! A thin CRI v1 client over containerd's unix socket (tonic), every call with a deadline,
//! errors as strings naming the call.

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as api;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

pub use api::*;

#[derive(Clone)]
pub struct Cri {
    rt: RuntimeServiceClient<Channel>,
    im: ImageServiceClient<Channel>,
    pub timeout: Duration,
}

pub type R<T> = Result<T, String>;

fn req<T>(msg: T, t: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(t);
    r
}

macro_rules! call {
    ($self:ident, $client:ident, $method:ident, $msg:expr) => {{
        let mut c = $self.$client.clone();
        match tokio::time::timeout(
            $self.timeout + Duration::from_secs(5),
            c.$method(req($msg, $self.timeout)),
        )
        .await
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(format!(
                "{}: {:?}: {}",
                stringify!($method),
                s.code(),
                s.message()
            )),
            Err(_) => Err(format!(
                "{}: no answer in {:?}",
                stringify!($method),
                $self.timeout
            )),
        }
    }};
}

impl Cri {
    pub async fn connect(sock: &Path) -> R<Cri> {
        let p = sock.to_path_buf();
        let ch = Endpoint::try_from("http://[::]:50051")
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(10))
            .connect_with_connector(service_fn(move |_: Uri| {
                let p = p.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
                }
            }))
            .await
            .map_err(|e| format!("connect {}: {e}", sock.display()))?;
        Ok(Cri {
            rt: RuntimeServiceClient::new(ch.clone()),
            im: ImageServiceClient::new(ch),
            timeout: Duration::from_secs(90),
        })
    }

    pub async fn version(&self) -> R<VersionResponse> {
        call!(
            self,
            rt,
            version,
            VersionRequest {
                version: "v1".into()
            }
        )
    }
    pub async fn status(&self) -> R<StatusResponse> {
        call!(self, rt, status, StatusRequest { verbose: false })
    }
    pub async fn image_status(&self, image: &str) -> R<Option<Image>> {
        call!(
            self,
            im,
            image_status,
            ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            }
        )
        .map(|r| r.image)
    }

    pub async fn run_pod(&self, cfg: &PodSandboxConfig) -> R<String> {
        call!(
            self,
            rt,
            run_pod_sandbox,
            RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: String::new(),
            }
        )
        .map(|r| r.pod_sandbox_id)
    }
    pub async fn pod_status(&self, id: &str) -> R<PodSandboxStatusResponse> {
        call!(
            self,
            rt,
            pod_sandbox_status,
            PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            }
        )
    }
    pub async fn stop_pod(&self, id: &str) -> R<()> {
        call!(
            self,
            rt,
            stop_pod_sandbox,
            StopPodSandboxRequest {
                pod_sandbox_id: id.into()
            }
        )
        .map(|_| ())
    }
    pub async fn remove_pod(&self, id: &str) -> R<()> {
        call!(
            self,
            rt,
            remove_pod_sandbox,
            RemovePodSandboxRequest {
                pod_sandbox_id: id.into()
            }
        )
        .map(|_| ())
    }
    pub async fn list_pods(&self) -> R<Vec<PodSandbox>> {
        call!(
            self,
            rt,
            list_pod_sandbox,
            ListPodSandboxRequest { filter: None }
        )
        .map(|r| r.items)
    }

    pub async fn create(
        &self,
        pod: &str,
        cfg: &ContainerConfig,
        pod_cfg: &PodSandboxConfig,
    ) -> R<String> {
        call!(
            self,
            rt,
            create_container,
            CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(cfg.clone()),
                sandbox_config: Some(pod_cfg.clone()),
            }
        )
        .map(|r| r.container_id)
    }
    pub async fn start(&self, id: &str) -> R<()> {
        call!(
            self,
            rt,
            start_container,
            StartContainerRequest {
                container_id: id.into()
            }
        )
        .map(|_| ())
    }
    pub async fn stop(&self, id: &str, timeout: i64) -> R<()> {
        call!(
            self,
            rt,
            stop_container,
            StopContainerRequest {
                container_id: id.into(),
                timeout,
            }
        )
        .map(|_| ())
    }
    pub async fn remove(&self, id: &str) -> R<()> {
        call!(
            self,
            rt,
            remove_container,
            RemoveContainerRequest {
                container_id: id.into()
            }
        )
        .map(|_| ())
    }
    pub async fn list_containers(&self, pod: &str) -> R<Vec<Container>> {
        call!(
            self,
            rt,
            list_containers,
            ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.into(),
                    ..Default::default()
                }),
            }
        )
        .map(|r| r.containers)
    }
    pub async fn container_status(&self, id: &str) -> R<ContainerStatusResponse> {
        call!(
            self,
            rt,
            container_status,
            ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            }
        )
    }
    pub async fn update(&self, id: &str, res: LinuxContainerResources) -> R<()> {
        call!(
            self,
            rt,
            update_container_resources,
            UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(res),
                windows: None,
                annotations: Default::default(),
            }
        )
        .map(|_| ())
    }
    pub async fn reopen_log(&self, id: &str) -> R<()> {
        call!(
            self,
            rt,
            reopen_container_log,
            ReopenContainerLogRequest {
                container_id: id.into()
            }
        )
        .map(|_| ())
    }
    /// ExecSync: (stdout, stderr, exit code). `timeout` in seconds (0: none).
    pub async fn exec(&self, id: &str, cmd: &[&str], timeout: i64) -> R<(String, String, i32)> {
        call!(
            self,
            rt,
            exec_sync,
            ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            }
        )
        .map(|r| {
            (
                String::from_utf8_lossy(&r.stdout).into_owned(),
                String::from_utf8_lossy(&r.stderr).into_owned(),
                r.exit_code,
            )
        })
    }
    /// `sh -c SCRIPT` in the container; Err unless it exits 0. Returns stdout.
    pub async fn sh(&self, id: &str, script: &str) -> R<String> {
        let (o, e, c) = self.exec(id, &["/bin/sh", "-c", script], 30).await?;
        if c != 0 {
            return Err(format!(
                "exec `{script}` exited {c}: {}{}",
                e.trim(),
                o.trim()
            ));
        }
        Ok(o)
    }
    pub async fn stats(&self, id: &str) -> R<Option<ContainerStats>> {
        call!(
            self,
            rt,
            container_stats,
            ContainerStatsRequest {
                container_id: id.into()
            }
        )
        .map(|r| r.stats)
    }
    pub async fn list_stats(&self, pod: &str) -> R<Vec<ContainerStats>> {
        call!(
            self,
            rt,
            list_container_stats,
            ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: pod.into(),
                    ..Default::default()
                }),
            }
        )
        .map(|r| r.stats)
    }
}

/// The host PID of a container or sandbox, from the verbose `info` answer.
pub fn info_pid(info: &std::collections::HashMap<String, String>) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["pid"].as_i64().map(|p| p as i32).filter(|p| *p > 0)
}

/// The runtime spec containerd generated, from the verbose `info` answer.
pub fn info_spec(info: &std::collections::HashMap<String, String>) -> serde_json::Value {
    info.get("info")
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .map(|v| v["runtimeSpec"].clone())
        .unwrap_or_default()
}
