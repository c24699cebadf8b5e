//! `berth checkpoint`: dump a running container with CRIU.
//!
//! On success without --leave-running (and without --pre-dump) the container is gone
//! afterwards, as with runc: CRIU killed its processes, berth removes its cgroup and state and
//! runs the poststop hooks. On failure the container keeps running (CRIU resumes what it
//! froze; berth thaws the cgroup if CRIU could not) and the image directory is marked
//! incomplete (`berth-checkpoint.json`), so restore refuses it.

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::image::{self, Kind, Meta};
use super::rpc::{CgMode, Features, Opts, Req, ReqType};
use super::swrk::Swrk;
use super::{ext, io_errno_text};
use crate::cgroups::Manager;
use crate::container::{Container, Status, lifecycle};

pub struct Options {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub page_server: Option<(String, i32)>,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    pub empty_ns: u32,
    pub auto_dedup: bool,
}

/// `org.criu.config` (runc's annotation): a CRIU configuration file for this container, or
/// none when empty; otherwise /etc/criu/berth.conf if present, else runc's.
pub fn config_file(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Option<String> {
    match annotations.and_then(|a| a.get("org.criu.config")) {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None if Path::new("/etc/criu/berth.conf").exists() => Some("/etc/criu/berth.conf".into()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

/// Make a directory CRIU writes to (mode 0700; an existing one is reused, as runc does).
pub fn make_dir(p: &Path, what: &str) -> Result<std::fs::File> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
    {
        Ok(()) => {}
        Err(e) => bail!("{what} {}: {}", p.display(), io_errno_text(&e)),
    }
    std::fs::File::open(p).map_err(|e| anyhow!("{what} {}: {}", p.display(), io_errno_text(&e)))
}

/// Ask CRIU whether it has `want` (FEATURE_CHECK); the missing ones by name.
pub fn check_features(criu: &Path, want: Features, log_dir: &Path) -> Result<()> {
    let req = Req {
        typ: ReqType::FeatureCheck,
        opts: None,
        notify_success: None,
        features: Some(want),
    };
    let resp = Swrk::new(criu)
        .call(&req, |_, _| Ok(()))
        .map_err(|e| anyhow!("asking CRIU for its features: {e}"))?;
    let got = resp.features.unwrap_or_default();
    let mut missing = vec![];
    if want.mem_track == Some(true) && got.mem_track != Some(true) {
        missing.push("memory tracking (needed by --pre-dump and --parent-path)");
    }
    if want.lazy_pages == Some(true) && got.lazy_pages != Some(true) {
        missing.push("lazy pages (userfaultfd; needed by --lazy-pages)");
    }
    if !missing.is_empty() {
        bail!(
            "CRIU on this host lacks {} (CRIU logs: {})",
            missing.join(" and "),
            log_dir.display()
        );
    }
    Ok(())
}

/// One line that says why CRIU failed: its log's reasons, or the error and what it printed;
/// and when CRIU cannot work on this host at all, `criu check`'s reason instead.
pub fn failure_message(
    op: &str,
    criu: &Path,
    err: &super::swrk::Error,
    log: &Path,
    after: &str,
) -> String {
    if let Err(host) = super::probe(criu) {
        return format!(
            "{op}: CRIU does not work on this host: {host}; {after} (CRIU log: {})",
            log.display()
        );
    }
    let mut reasons = image::log_reasons(log);
    if reasons.is_empty() {
        reasons = super::error_lines(&err.stderr);
    }
    let why = match (&err.failure, reasons.is_empty()) {
        (_, true) => err.to_string(),
        // CRIU's answer repeats the last of its log's errors: the log says it all.
        (super::swrk::Failure::Refused { .. }, false) => {
            format!("criu failed: {}", super::join_reasons(&reasons, 3))
        }
        (_, false) => format!("{err}: {}", super::join_reasons(&reasons, 3)),
    };
    format!("{op}: {why}; {after} (CRIU log: {})", log.display())
}

pub fn checkpoint(root: &Path, criu_flag: Option<&Path>, id: &str, o: &Options) -> Result<()> {
    let mut ph = crate::spawn::Phases::new("checkpoint");
    let (c, _lock) = Container::lock(root, id)?;
    let paused = match c.status() {
        Status::Running => false,
        Status::Paused => true,
        Status::Created => {
            bail!(
                "cannot checkpoint container {id:?}: it is created but not started (start it first)"
            )
        }
        Status::Stopped => bail!("cannot checkpoint container {id:?}: it has stopped"),
        Status::Creating => bail!("cannot checkpoint container {id:?}: it is still being created"),
    };
    let spec = lifecycle::saved_spec(&c)?;
    let criu = super::binary(criu_flag).map_err(|e| anyhow!("checkpoint: {e}"))?;

    if o.parent_path.as_ref().is_some_and(|p| p.is_absolute()) {
        bail!("--parent-path must be relative to --image-path");
    }
    if let Some(fd) = o.status_fd {
        let flags = nix::fcntl::fcntl(crate::sys::borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| anyhow!("--status-fd {fd}: {}", super::errno_text(e)))?;
        if flags & libc::O_ACCMODE == libc::O_RDONLY {
            bail!("--status-fd {fd}: not open for writing");
        }
        if !o.lazy_pages {
            bail!(
                "--status-fd is for --lazy-pages (CRIU signals on it that its page server is ready)"
            );
        }
    }

    let images = make_dir(&o.image_path, "--image-path")?;
    // After the image directory exists (the parent is relative to it), as runc does.
    if let Some(p) = &o.parent_path {
        let real = o.image_path.join(p);
        if !real.is_dir() {
            bail!(
                "--parent-path {}: {} is not a directory (a previous --pre-dump's image directory)",
                p.display(),
                real.display()
            );
        }
    }
    let work = match &o.work_path {
        Some(w) => Some(make_dir(w, "--work-path")?),
        None => None,
    };
    let log_dir = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
    let log = log_dir.join(image::DUMP_LOG);
    let image_dir = std::fs::canonicalize(&o.image_path).unwrap_or(o.image_path.clone());

    if o.pre_dump || o.parent_path.is_some() || o.lazy_pages {
        check_features(
            &criu,
            Features {
                mem_track: (o.pre_dump || o.parent_path.is_some()).then_some(true),
                lazy_pages: o.lazy_pages.then_some(true),
            },
            &log_dir,
        )?;
    }

    let pid = c.state.pid;
    let mgr = c.state.cgroup.as_ref().map(Manager::from_state);
    let mut opts = Opts {
        pid: Some(pid),
        log_level: Some(4),
        log_file: Some(image::DUMP_LOG.into()),
        root: Some(c.state.rootfs.to_string_lossy().into_owned()),
        manage_cgroups: true,
        manage_cgroups_mode: Some(o.manage_cgroups_mode.unwrap_or(CgMode::Default)),
        notify_scripts: true,
        shell_job: o.shell_job,
        leave_running: o.leave_running,
        tcp_established: o.tcp_established,
        tcp_skip_in_flight: o.tcp_skip_in_flight,
        link_remap: o.link_remap,
        ext_unix_sk: o.ext_unix_sk,
        file_locks: o.file_locks,
        empty_ns: o.empty_ns,
        orphan_pts_master: true,
        auto_dedup: o.auto_dedup,
        lazy_pages: o.lazy_pages,
        page_server: o.page_server.clone(),
        config_file: config_file(spec.annotations().as_ref()),
        freeze_cgroup: mgr
            .as_ref()
            .and_then(|m| m.freezer_dir())
            .map(|d| d.to_string_lossy().into_owned()),
        ..Default::default()
    };
    if let Some(p) = &o.parent_path {
        opts.parent_img = Some(p.to_string_lossy().into_owned());
        opts.track_mem = true;
    }
    if o.pre_dump {
        opts.track_mem = true;
    }
    for (t, path) in ext::joined_namespaces(&spec) {
        if matches!(t, LinuxNamespaceType::Network | LinuxNamespaceType::Pid) {
            let st = nix::sys::stat::stat(&path).map_err(|e| {
                anyhow!(
                    "linux.namespaces: {} namespace {}: {}",
                    ext::ns_name(t),
                    path.display(),
                    super::errno_text(e)
                )
            })?;
            opts.external.push(format!(
                "{}[{}]:{}",
                ext::ns_name(t),
                st.st_ino,
                ext::ns_key(t)
            ));
        }
    }

    let mut meta = Meta {
        complete: false,
        kind: if o.pre_dump {
            Kind::PreDump
        } else {
            Kind::Dump
        },
        lazy: o.lazy_pages,
        error: None,
        log: log.clone(),
        id: id.to_string(),
        time: crate::logger::rfc3339_now(),
        berth_version: env!("CARGO_PKG_VERSION").into(),
        external_stdio: vec![],
        config: std::fs::read(c.config_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
        state: serde_json::to_value(&c.state)?,
    };
    if !o.pre_dump {
        opts.ext_mnt = ext::dump_mounts(&spec, &c.state.rootfs, c.state.cgroup.as_ref(), pid);
        let mounts = image::mount_ids(pid);
        let mut descriptors = vec![];
        for fd in 0..3 {
            let (link, ext) = image::stdio_of(pid, fd, &mounts);
            descriptors.push(link);
            if let Some(x) = ext {
                opts.external.push(x.key.clone());
                meta.external_stdio.push(x);
            }
        }
        image::write_descriptors(&o.image_path, &descriptors)?;
    }
    // Written before CRIU runs: until it is rewritten below, the directory is incomplete.
    meta.write(&o.image_path)?;

    ph.mark("prepare");
    let swrk = Swrk::new(&criu);
    // CRIU opens these through /proc/<berth's pid>/fd (the peer of its socket): berth's own
    // descriptor numbers, not passed.
    opts.images_dir_fd = images.as_raw_fd();
    opts.work_dir_fd = work.as_ref().map(|w| w.as_raw_fd());
    let mut status_fd = o.status_fd.map(crate::sys::take_fd);
    // --lazy-pages: once CRIU's page server is ready, the directory holds all but the pages,
    // which a restore with --lazy-pages fetches from that server.
    let ready = Meta {
        complete: true,
        ..meta.clone()
    };
    let mut ready_err = None;
    let typ = if o.pre_dump {
        ReqType::PreDump
    } else {
        ReqType::Dump
    };
    crate::logger::debug(&format!(
        "checkpoint of {id:?}: CRIU {} with {opts:?}",
        typ.name()
    ));
    let res = swrk.call(
        &Req {
            typ,
            opts: Some(&opts),
            notify_success: None,
            features: None,
        },
        |n, _| {
            // The lazy-pages server is up: the images are usable, and whoever waits on
            // --status-fd is told (runc's way).
            if n.notify_script.as_deref() == Some("status-ready") {
                if let Err(e) = ready.write(&o.image_path) {
                    ready_err = Some(e);
                }
                if let Some(fd) = status_fd.take() {
                    let _ = nix::unistd::write(&fd, &[0]);
                }
            }
            Ok(())
        },
    );
    ph.mark("criu");
    if let Some(e) = ready_err {
        crate::logger::warn(&format!("checkpoint --lazy-pages: {e:#}"));
    }
    if let Err(e) = res {
        // CRIU resumes what it froze when it fails; if it died half way, thaw it here.
        if !paused
            && let Some(m) = &mgr
            && m.is_frozen()
        {
            let _ = m.thaw();
        }
        let after = if o.pre_dump || o.leave_running || !paused {
            "the container keeps running"
        } else {
            "the container stays paused"
        };
        let msg = failure_message("checkpoint", &criu, &e, &log, after);
        meta.error = Some(msg.clone());
        let _ = meta.write(&o.image_path);
        bail!(
            "{msg}; image directory {} is incomplete",
            image_dir.display()
        );
    }
    meta.complete = true;
    meta.write(&o.image_path)?;
    if !o.leave_running && !o.pre_dump {
        // CRIU killed the container's processes once they were dumped.
        lifecycle::destroy(&c)?;
    }
    ph.mark("finish");
    Ok(())
}
