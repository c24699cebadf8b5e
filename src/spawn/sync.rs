//! The sync protocol between berth (parent) and the container's first process (child), over a
//! SOCK_SEQPACKET socketpair: one JSON message per packet, file descriptors with SCM_RIGHTS.

use anyhow::{Result, anyhow, bail};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Serialize, Deserialize, Debug)]
pub enum Msg {
    // child → parent
    /// The child is in its new user namespace: write its id maps, then answer Go.
    UserNs,
    /// The child is in its final network namespace: move `linux.netDevices` into it, then Go.
    NetDevices,
    /// The child made the container's time namespace (nothing is in it yet): write
    /// `linux.timeOffsets` to its /proc/<pid>/timens_offsets, then Go.
    TimeOffsets,
    /// The intermediate process forked the container process (host pid).
    Pid(i32),
    /// The rootfs is mounted: run prestart and createRuntime hooks now.
    RunHooks,
    /// Everything is set up; the process waits on the exec fifo. With a seccomp notify filter
    /// its listener comes with this message (SCM_RIGHTS), for `listenerPath`.
    Ready,
    /// Setup failed; the message is the reason.
    Error(String),
    // parent → child
    /// The request is done (maps written, listener sent).
    Go,
    /// Hooks ran; the container's host pid is given for the state the child hands its hooks.
    HooksDone(i32),
    /// Parent-side failure: stop.
    Abort(String),
}

pub struct Channel {
    pub fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| anyhow!("socketpair: {e}"))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Send a message without a descriptor. This uses plain write(2), not sendmsg(2): the child
    /// still reports `Ready` (or its error) after a seccomp profile without noNewPrivileges is
    /// loaded, and allow-list profiles permit write far more often than sendmsg (runc's init
    /// also only writes to its sync pipe). A packet is still one message (SOCK_SEQPACKET).
    pub fn send(&self, m: &Msg) -> Result<()> {
        let data = serde_json::to_vec(m)?;
        loop {
            match nix::unistd::write(&self.fd, &data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => bail!("sync socket: short write ({n} of {} bytes)", data.len()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("sync socket: sending: {e}"),
            }
        }
    }

    pub fn send_with_fd(&self, m: &Msg, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(m)?;
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                &cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("sync socket: sending: {e}"),
            }
        }
    }

    /// Receive one message; `Ok(None)` when the other side is gone.
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        loop {
            // The packet's length first (MSG_TRUNC returns it; the packet stays queued, no
            // descriptor is taken): a buffer of that size, not 64 KiB zeroed for a message of
            // ~10 bytes (16 page faults, in a process whose pages were just shared by a fork).
            let len = match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut [IoSliceMut::new(&mut [])],
                None,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(m) => m.bytes,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("sync socket: receiving: {e}"),
            };
            let mut buf = vec![0u8; len.max(1)];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let msg = match r {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("sync socket: receiving: {e}"),
            };
            if msg.bytes == 0 {
                return Ok(None);
            }
            let mut fd = None;
            if let Ok(cms) = msg.cmsgs() {
                for c in cms {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            let o = crate::sys::take_fd(f);
                            if fd.is_none() {
                                fd = Some(o);
                            }
                        }
                    }
                }
            }
            let n = msg.bytes;
            let m: Msg = serde_json::from_slice(&buf[..n])
                .map_err(|e| anyhow!("sync socket: bad message: {e}"))?;
            return Ok(Some((m, fd)));
        }
    }
}
