//! `berth restore`: a new container whose process is restored by CRIU from a checkpoint.
//!
//! The container is claimed and its cgroup made exactly as `create` does (same state
//! directory, same cgroup placement: CRIU is started inside the container's cgroups and forks
//! the restored tree from there; with the systemd driver the transient scope is started with
//! the criu process in it, as runc does, and state.json records the unit). CRIU is told the
//! mounts to bind from this host, the namespaces to join, the descriptors to hand over and the
//! cgroup to restore into; its notifications run the prestart/createRuntime hooks
//! ("setup-namespaces"), record the restored process as the container's init ("post-restore")
//! and pass a terminal's new master to the console socket ("orphan-pts-master"). CRIU's root is
//! the rootfs bound in a private mount namespace of the criu process only, so nothing is
//! mounted on the host and nothing is left mounted whatever happens. Any failure removes the
//! container completely.

use anyhow::{Result, anyhow, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use oci_spec::runtime::LinuxNamespaceType;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::dump::{check_features, config_file, failure_message, make_dir};
use super::image::{self, Kind, Meta};
use super::rpc::{CgMode, Features, Opts, Req, ReqType};
use super::swrk::Swrk;
use super::{errno_text, ext, io_errno_text};
use crate::cgroups::Kind as CgKind;
use crate::cgroups::driver::Driver;
use crate::config::Bundle;
use crate::container::state::{self, write_atomic};
use crate::container::{Container, State, Status, lifecycle};
use crate::hooks;
use crate::rootfs::resolve::{Kind as PathKind, Root, fd_path};

pub struct Options {
    pub id: String,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// A restored container.
pub struct Restored {
    pub container: Container,
    /// The terminal's master, when the container has one and no console socket was given.
    pub console_master: Option<OwnedFd>,
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// Undo a restore that failed: whatever runs in the cgroup, the cgroup (with the systemd
/// driver: the unit), the state directory.
struct Rollback<'a> {
    dir: PathBuf,
    cgroup: Option<&'a RefCell<Driver>>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(d) = self.cgroup
            && let Ok(mut d) = d.try_borrow_mut()
            && d.owned()
            && let Err(e) = lifecycle::empty_and_remove_cgroup(&mut d)
        {
            crate::logger::warn(&format!("restore rollback: {e:#}"));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            crate::logger::warn(&format!(
                "restore rollback: removing {}: {}",
                self.dir.display(),
                io_errno_text(&e)
            ));
        }
    }
}

/// The cgroup roots CRIU restores into: where the criu process itself was placed (the
/// container's cgroups), read back from /proc as runc does. The cgroup2 path is the default
/// for every controller; a v1 hierarchy's path applies to its controllers.
fn cgroup_roots(pid: i32) -> Result<Vec<(Option<String>, String)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| anyhow!("reading /proc/{pid}/cgroup of criu: {}", io_errno_text(&e)))?;
    let mut out = vec![];
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.push((None, path.to_string()));
        } else {
            for c in ctrls.split(',') {
                out.push((Some(c.to_string()), path.to_string()));
            }
        }
    }
    Ok(out)
}

/// In the criu process before its exec: a private mount namespace, the rootfs bound on
/// `criu_root` (CRIU wants its root to be a mount point), and every mount point of config.json
/// made in the rootfs as `create` would (a rootfs from an image may lack them; runc does the
/// same) — those under a tmpfs excepted, whose content CRIU restores, and binds made for a
/// moment so that mount points inside them can be made too.
fn prepare_root(
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    bundle: &Path,
    criu_root: &Path,
) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| anyhow!("unshare(CLONE_NEWNS): {}", errno_text(e)))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| anyhow!("making / a slave: {}", errno_text(e)))?;
    mount(
        Some(rootfs),
        criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        anyhow!(
            "binding the rootfs {} on {}: {}",
            rootfs.display(),
            criu_root.display(),
            errno_text(e)
        )
    })?;
    let root = Root::open(criu_root)?;
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let mut binds = vec![];
    for (i, m) in mounts.iter().enumerate() {
        let dest = m.destination();
        if matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2"))
            || tmpfs.iter().any(|t| dest != *t && dest.starts_with(t))
        {
            continue;
        }
        let opts = crate::rootfs::mounts::parse(m.options().as_deref().unwrap_or(&[]));
        let bind = m.typ().as_deref() == Some("bind") || opts.bind();
        let src = m.source().as_ref().map(|s| {
            if bind && s.is_relative() {
                bundle.join(s)
            } else {
                s.clone()
            }
        });
        let kind = match (&src, bind) {
            (Some(s), true) if !s.is_dir() => PathKind::File,
            _ => PathKind::Dir,
        };
        let target = root
            .mkdir_all(dest, kind)
            .map_err(|e| anyhow!("mounts[{i}]: mount point {}: {e:#}", dest.display()))?;
        if let (true, Some(s)) = (bind, &src) {
            mount(
                Some(s.as_path()),
                &fd_path(std::os::fd::AsFd::as_fd(&target)),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| anyhow!("mounts[{i}]: binding {}: {}", s.display(), errno_text(e)))?;
            binds.push(dest.clone());
        }
    }
    for d in binds.iter().rev() {
        if let Some(fd) = root.open_path(d)? {
            let _ = umount2(
                &fd_path(std::os::fd::AsFd::as_fd(&fd)),
                MntFlags::MNT_DETACH,
            );
        }
    }
    Ok(())
}

/// A file the container's process had as stdio, opened again as it was (None when it is gone
/// or cannot be opened: the restoring command's own descriptor stands in).
fn reopen(x: &image::ExternalFd) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if !x.path.starts_with('/') {
        return None;
    }
    let acc = x.flags & libc::O_ACCMODE;
    std::fs::OpenOptions::new()
        .read(acc == libc::O_RDONLY || acc == libc::O_RDWR)
        .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
        .custom_flags(x.flags & libc::O_APPEND)
        .open(&x.path)
        .ok()
}

pub fn restore(
    root: &Path,
    criu_flag: Option<&Path>,
    cgroup_driver: CgKind,
    bundle: Bundle,
    o: &Options,
) -> Result<Restored> {
    let mut ph = crate::spawn::Phases::new("restore");
    let id = &o.id;
    crate::container::validate_id(id)?;
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        bail!("process.terminal is true: --detach needs --console-socket");
    }
    if state::container_dir(root, id).exists() {
        bail!("container {id:?} already exists");
    }
    let criu = super::binary(criu_flag).map_err(|e| anyhow!("restore: {e}"))?;
    if !o.image_path.is_dir() {
        bail!(
            "--image-path {}: not a directory (the directory `berth checkpoint --image-path` wrote)",
            o.image_path.display()
        );
    }
    let meta = Meta::read(&o.image_path)?;
    if let Some(m) = &meta {
        if m.kind == Kind::PreDump {
            bail!(
                "--image-path {}: a pre-dump (memory only), not a checkpoint: restore the checkpoint made with --parent-path after it",
                o.image_path.display()
            );
        }
        if m.lazy && !o.lazy_pages {
            bail!(
                "--image-path {}: a --lazy-pages checkpoint, whose memory pages are served by the checkpointing side's page server: restore it with --lazy-pages, with a `criu lazy-pages --page-server --address ADDR --port PORT -D {}` daemon running",
                o.image_path.display(),
                o.image_path.display()
            );
        }
        if !m.complete {
            bail!(
                "--image-path {}: incomplete: its checkpoint failed or was interrupted ({})",
                o.image_path.display(),
                m.error
                    .clone()
                    .unwrap_or_else(|| format!("CRIU log: {}", m.log.display()))
            );
        }
    }
    let descriptors = image::read_descriptors(&o.image_path)?;
    if let Some(w) = &o.work_path {
        make_dir(w, "--work-path")?;
    }
    let log_dir = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
    let log = log_dir.join(image::RESTORE_LOG);
    if o.lazy_pages {
        check_features(
            &criu,
            Features {
                mem_track: None,
                lazy_pages: Some(true),
            },
            &log_dir,
        )?;
    }
    // Namespaces joined by path, opened now (a missing one fails before anything is made).
    let mut ns_files = vec![];
    let mut join_ns = vec![];
    for (t, path) in ext::joined_namespaces(spec) {
        match t {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let f = std::fs::File::open(&path).map_err(|e| {
                    anyhow!(
                        "linux.namespaces: {} namespace {}: {}",
                        ext::ns_name(t),
                        path.display(),
                        io_errno_text(&e)
                    )
                })?;
                ns_files.push((ext::ns_key(t), f));
            }
            LinuxNamespaceType::Cgroup => bail!(
                "linux.namespaces: a cgroup namespace joined by path ({}) cannot be restored by CRIU",
                path.display()
            ),
            _ => join_ns.push((
                ext::ns_name(t).to_string(),
                path.to_string_lossy().into_owned(),
            )),
        }
    }

    // The cgroup driver: with --systemd-cgroup a transient unit, started around the criu
    // process once it runs (as runc does: CRIU forks the restored tree in its own cgroup).
    let mut driver = Driver::new(
        cgroup_driver,
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref()),
        id,
        spec.annotations().as_ref().unwrap_or(&Default::default()),
    )?;
    // A missing bus is an error before anything exists.
    driver.connect()?;
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();

    // ---- from here on, everything made is undone on failure ----
    let st = State {
        id: id.clone(),
        status: Status::Creating,
        pid: 0,
        pid_start: 0,
        creator_pid: std::process::id() as i32,
        creator_start: state::process_start_time(std::process::id() as i32).unwrap_or(0),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::logger::rfc3339_now(),
        owner: crate::spawn::user_name(nix::unistd::geteuid().as_raw()),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: Some(driver.state().clone()),
        rootless: false,
    };
    let dir = crate::spawn::claim(root, &st, &serde_json::to_vec(&bundle.raw)?, false)?;
    let driver = RefCell::new(driver);
    let st = RefCell::new(st);
    let mut rb = Rollback {
        dir: dir.clone(),
        cgroup: None,
        armed: true,
    };
    let lock_file = std::fs::File::open(&dir)?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("locking {}: {e}", dir.display()))?;
    rb.cgroup = Some(&driver);
    // cgroupfs: the cgroup made and set up, criu cloned into it. systemd (a scope): the v1
    // hierarchies systemd does not manage; the unit comes with criu's pid below.
    let placement = driver.borrow_mut().prepare(&resources)?;
    let criu_root = dir.join("criu-root");
    std::fs::create_dir(&criu_root)
        .map_err(|e| anyhow!("creating {}: {}", criu_root.display(), io_errno_text(&e)))?;

    let mut opts = Opts {
        log_level: Some(4),
        log_file: Some(image::RESTORE_LOG.into()),
        root: Some(criu_root.to_string_lossy().into_owned()),
        rst_sibling: true,
        evasive_devices: true,
        manage_cgroups: true,
        manage_cgroups_mode: Some(o.manage_cgroups_mode.unwrap_or(CgMode::Default)),
        notify_scripts: true,
        orphan_pts_master: true,
        shell_job: o.shell_job,
        ext_unix_sk: o.ext_unix_sk,
        tcp_established: o.tcp_established,
        file_locks: o.file_locks,
        empty_ns: o.empty_ns,
        auto_dedup: o.auto_dedup,
        lazy_pages: o.lazy_pages,
        lsm_profile: o.lsm_profile.clone(),
        lsm_mount_context: o.lsm_mount_context.clone(),
        config_file: config_file(spec.annotations().as_ref()),
        ext_mnt: ext::restore_mounts(
            spec,
            &bundle.rootfs,
            &bundle.dir,
            Some(driver.borrow().state()),
        ),
        join_ns,
        ..Default::default()
    };
    let mut swrk = Swrk::new(&criu);
    swrk.inherit_stdin();
    swrk.place(&placement);
    // Opened by criu itself in its mount namespace (see Swrk::open_dir).
    opts.images_dir_fd = swrk.open_dir(std::path::absolute(&o.image_path)?);
    if let Some(w) = &o.work_path {
        opts.work_dir_fd = Some(swrk.open_dir(std::path::absolute(w)?));
    }
    for (key, f) in &ns_files {
        let n = swrk.pass_fd(f.as_raw_fd());
        opts.inherit_fd.push((key.to_string(), n));
    }
    // The container's stdio at checkpoint, replaced by this command's own: pipes (an engine's
    // new ones) and files that were outside the container.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let stdio_fd = |fd: i32, swrk: &mut Swrk| -> i32 {
        let open =
            nix::fcntl::fcntl(crate::sys::borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFD).is_ok();
        swrk.pass_fd(if open { fd } else { null.as_raw_fd() })
    };
    for (fd, link) in descriptors.iter().enumerate().take(3) {
        if link.starts_with("pipe:") {
            let n = stdio_fd(fd as i32, &mut swrk);
            opts.inherit_fd.push((link.clone(), n));
        }
    }
    let mut reopened = vec![];
    for x in meta.iter().flat_map(|m| m.external_stdio.iter()) {
        if !(0..3).contains(&x.fd) {
            continue;
        }
        let n = if x.null {
            swrk.pass_fd(null.as_raw_fd())
        } else {
            match reopen(x) {
                Some(f) => {
                    let n = swrk.pass_fd(f.as_raw_fd());
                    reopened.push(f);
                    n
                }
                None => stdio_fd(x.fd, &mut swrk),
            }
        };
        opts.inherit_fd.push((x.key.clone(), n));
    }
    {
        let (spec, rootfs, bdir, croot) = (spec, &bundle.rootfs, &bundle.dir, &criu_root);
        swrk.setup(move || prepare_root(spec, rootfs, bdir, croot));
    }

    let hooks = spec.hooks().clone();
    let console_socket = match &o.console_socket {
        Some(p) => Some(crate::tty::connect(p)?),
        None => None,
    };
    let mut console_master: Option<OwnedFd> = None;
    let mut restored_pid: Option<i32> = None;
    ph.mark("prepare");
    let res = swrk.call_with(
        ReqType::Restore,
        |criu_pid| {
            // The systemd driver: the unit made with criu in it, and the resources written
            // (nothing to do for the cgroupfs driver, whose cgroup criu was cloned into).
            {
                let mut d = driver.borrow_mut();
                d.enter(criu_pid, &resources)?;
                d.finish(&resources)?;
                // Where systemd really put it.
                st.borrow_mut().cgroup = Some(d.state().clone());
            }
            opts.cg_root = cgroup_roots(criu_pid)?;
            crate::logger::debug(&format!("restore of {id:?}: CRIU restore with {opts:?}"));
            Ok(Req {
                typ: ReqType::Restore,
                opts: Some(&opts),
                notify_success: None,
                features: None,
            }
            .encode())
        },
        |n, fd| {
            match n.notify_script.as_deref() {
                Some("setup-namespaces") => {
                    // The namespaces exist, the process does not run yet: runc runs these
                    // here too.
                    if let Some(h) = &hooks {
                        let mut s = st.borrow().clone();
                        s.pid = n.notify_pid.unwrap_or(0);
                        let c = Container {
                            dir: dir.clone(),
                            state: s,
                        };
                        let json = serde_json::to_vec(&c.oci_state(Status::Creating))?;
                        hooks::run_all("prestart", h.prestart().as_ref(), &json)?;
                        hooks::run_all("createRuntime", h.create_runtime().as_ref(), &json)?;
                    }
                }
                Some("post-restore") => {
                    // Before CRIU lets the process run: from now on it is the container's init.
                    let pid = n
                        .notify_pid
                        .ok_or_else(|| anyhow!("post-restore without a pid"))?;
                    let mut st = st.borrow_mut();
                    st.pid = pid;
                    st.pid_start = state::process_start_time(pid)
                        .ok_or_else(|| anyhow!("the restored process {pid} is gone"))?;
                    st.status = Status::Running;
                    Container {
                        dir: dir.clone(),
                        state: st.clone(),
                    }
                    .save()?;
                    restored_pid = Some(pid);
                }
                Some("orphan-pts-master") => {
                    let fd = fd.ok_or_else(|| anyhow!("orphan-pts-master without a descriptor"))?;
                    match &console_socket {
                        Some(sock) => crate::tty::send_master(sock.as_raw_fd(), fd.as_raw_fd())?,
                        None => console_master = Some(fd),
                    }
                }
                _ => {}
            }
            Ok(())
        },
    );
    ph.mark("criu");
    let _ = std::fs::remove_dir(&criu_root);
    let resp = match res {
        Ok(r) => r,
        Err(e) => {
            let msg = failure_message("restore", &criu, &e, &log, "nothing was restored");
            bail!("{msg}");
        }
    };
    let pid = restored_pid
        .or(resp.restore_pid)
        .ok_or_else(|| anyhow!("restore: CRIU did not say which process it restored"))?;
    if terminal && console_master.is_none() && o.console_socket.is_none() && !o.detach {
        crate::logger::warn("restore: the container has a terminal but CRIU passed no master");
    }
    let c = Container {
        dir: dir.clone(),
        state: st.into_inner(),
    };
    if c.state.pid != pid {
        bail!(
            "restore: CRIU restored pid {pid} but announced {}",
            c.state.pid
        );
    }
    if let Some(pf) = &o.pid_file {
        let pf = std::path::absolute(pf)?;
        write_atomic(&pf, pid.to_string().as_bytes(), false)
            .map_err(|e| anyhow!("--pid-file: {e:#}"))?;
    }
    rb.armed = false;
    lifecycle::poststart(&c, Some(hooks.as_ref()))?;
    ph.mark("finish");
    Ok(Restored {
        container: c,
        console_master,
        hooks,
    })
}
