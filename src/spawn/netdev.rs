//! `linux.netDevices`: move host network interfaces into the container's network namespace
//! (renamed as asked), keep their permanent global addresses and bring them up, as
//! config-linux.md says. rtnetlink is spoken directly: a few fixed-layout messages, so no
//! netlink crate (and its async runtime) is pulled in.
//!
//! The container's network namespace may be new or joined by path (`linux.namespaces`): the
//! devices go into whichever the container's process is in once it has joined or made it.
//!
//! The runtime-spec forbids moving devices back on delete: when the namespace goes away the
//! kernel returns physical devices to the host and destroys virtual ones (a joined namespace
//! keeps them as long as it lives).

use anyhow::{Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Check one entry of `linux.netDevices` (no side effect): interface names are at most 15
/// bytes, not "." or "..", without '/', ':' or white space.
pub fn validate_name(field: &str, name: &str, template_ok: bool) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if bad {
        bail!(
            "{field}: {name:?} is not a valid interface name (1-15 bytes, no '/', ':' or spaces)"
        );
    }
    if name.contains('%') && (!template_ok || name.matches("%d").count() != 1) {
        bail!("{field}: {name:?}: only one \"%d\" template is allowed in the new name");
    }
    Ok(())
}

/// Index of a host interface, or an error naming the field.
pub fn host_index(host: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(host).map_err(|e| {
        anyhow!("linux.netDevices[{host:?}]: no such network interface on the host ({e})")
    })
}

// ---------------------------------------------------------------- netlink messages

const NLMSG_HDRLEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

struct Nl {
    fd: OwnedFd,
    seq: u32,
}

/// One message under construction: header, fixed part, attributes (4-byte aligned).
struct Msg(Vec<u8>);

impl Msg {
    fn new(typ: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut v = vec![0u8; NLMSG_HDRLEN];
        v[4..6].copy_from_slice(&typ.to_ne_bytes());
        v[6..8].copy_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        v.extend_from_slice(fixed);
        Msg(v)
    }
    fn attr(mut self, typ: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&typ.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
}

/// struct ifinfomsg.
fn ifinfo(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v[0] = libc::AF_UNSPEC as u8;
    v[4..8].copy_from_slice(&index.to_ne_bytes());
    v[8..12].copy_from_slice(&flags.to_ne_bytes());
    v[12..16].copy_from_slice(&change.to_ne_bytes());
    v
}

/// Attributes of a message body after its fixed part: (type, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((typ, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

/// A permanent global address of a device, as dumped (replayed in the container).
struct Addr {
    /// struct ifaddrmsg without the index.
    family: u8,
    prefixlen: u8,
    flags: u8,
    scope: u8,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Nl {
    fn open() -> Result<Nl> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| anyhow!("netlink socket: {e}"))?;
        Ok(Nl { fd, seq: 0 })
    }

    /// Send a request and collect the bodies (type, bytes after the header) of its answer:
    /// up to the ack (NLM_F_ACK) or NLMSG_DONE (dump). A netlink error becomes Err(errno).
    fn call(&mut self, mut m: Msg) -> std::result::Result<Vec<(u16, Vec<u8>)>, nix::errno::Errno> {
        self.seq += 1;
        let len = m.0.len() as u32;
        m.0[0..4].copy_from_slice(&len.to_ne_bytes());
        m.0[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        let dump = u16::from_ne_bytes([m.0[6], m.0[7]]) & libc::NLM_F_DUMP as u16 != 0;
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &m.0,
            nix::sys::socket::MsgFlags::empty(),
        )?;
        let mut out = vec![];
        let mut buf = vec![0u8; 65536];
        loop {
            let n = nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )?;
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let typ = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(nix::errno::Errno::EBADMSG);
                }
                let body = &b[NLMSG_HDRLEN..len];
                b = &b[len.next_multiple_of(4).min(b.len())..];
                if seq != self.seq {
                    continue;
                }
                match typ as i32 {
                    libc::NLMSG_ERROR => {
                        let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                        if code != 0 {
                            return Err(nix::errno::Errno::from_raw(-code));
                        }
                        return Ok(out);
                    }
                    libc::NLMSG_DONE => return Ok(out),
                    _ => {
                        out.push((typ, body.to_vec()));
                        if !dump {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    fn addresses(&mut self, index: u32) -> std::result::Result<Vec<Addr>, nix::errno::Errno> {
        let m = Msg::new(libc::RTM_GETADDR, libc::NLM_F_DUMP as u16, &[0u8; 8]);
        let mut out = vec![];
        for (typ, body) in self.call(m)? {
            if typ != libc::RTM_NEWADDR || body.len() < 8 {
                continue;
            }
            let idx = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            if idx != index {
                continue;
            }
            let list: Vec<(u16, Vec<u8>)> = attrs(&body[8..])
                .into_iter()
                .map(|(t, d)| (t, d.to_vec()))
                .collect();
            // IFA_FLAGS (32 bits) supersedes the 8-bit ifa_flags when present.
            let flags = list
                .iter()
                .find(|(t, d)| *t == IFA_FLAGS && d.len() == 4)
                .map(|(_, d)| u32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
                .unwrap_or(body[2] as u32);
            if flags & IFA_F_PERMANENT == 0 || body[3] != RT_SCOPE_UNIVERSE {
                continue;
            }
            out.push(Addr {
                family: body[0],
                prefixlen: body[1],
                flags: body[2],
                scope: body[3],
                attrs: list
                    .into_iter()
                    .filter(|(t, _)| {
                        matches!(
                            *t,
                            libc::IFA_ADDRESS | libc::IFA_LOCAL | libc::IFA_BROADCAST
                        ) || *t == IFA_FLAGS
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The index of interface `name`, if it exists in this socket's namespace.
    fn index_of(&mut self, name: &str) -> Option<u32> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let m = Msg::new(libc::RTM_GETLINK, 0, &ifinfo(0, 0, 0)).attr(IFLA_IFNAME, &n);
        let ans = self.call(m).ok()?;
        ans.iter()
            .find(|(t, _)| *t == libc::RTM_NEWLINK)
            .and_then(|(_, b)| b.get(4..8))
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The name of interface `index`, if it exists in this socket's namespace.
    fn link_name(&mut self, index: u32) -> Option<String> {
        let m = Msg::new(libc::RTM_GETLINK, 0, &ifinfo(index, 0, 0));
        let ans = self.call(m).ok()?;
        let (_, body) = ans.into_iter().find(|(t, _)| *t == libc::RTM_NEWLINK)?;
        attrs(body.get(16..)?)
            .into_iter()
            .find(|(t, _)| *t == IFLA_IFNAME)
            .map(|(_, d)| {
                String::from_utf8_lossy(d)
                    .trim_end_matches('\0')
                    .to_string()
            })
    }
}

/// A netlink socket in the network namespace `ns`. This process is single-threaded here, so
/// entering the namespace for the socket() call and leaving it again affects nothing else.
fn socket_in(ns: &File) -> Result<Nl> {
    let home = File::open("/proc/self/ns/net").map_err(|e| anyhow!("/proc/self/ns/net: {e}"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow!("entering the container's network namespace: {e}"))?;
    let s = Nl::open();
    if let Err(e) = setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
        // Carrying on in the wrong namespace would misdirect everything after this.
        crate::logger::error(&format!("cannot return to its own network namespace: {e}"));
        crate::sys::exit_now(1)
    }
    s
}

/// Bring up the loopback device of the calling process's (new) network namespace, as runc and
/// crun do: a new network namespace starts with `lo` down, so 127.0.0.1 and ::1 are unusable.
/// `lo` is interface 1 in every network namespace.
pub fn loopback_up() -> Result<()> {
    let up = libc::IFF_UP as u32;
    let m = Msg::new(
        libc::RTM_NEWLINK,
        libc::NLM_F_ACK as u16,
        &ifinfo(1, up, up),
    );
    Nl::open()
        .and_then(|mut nl| nl.call(m).map_err(|e| anyhow!("{e}")))
        .map(drop)
        .map_err(|e| {
            anyhow!("linux.namespaces: bringing up lo in the new network namespace: {e:#}")
        })
}

/// Move each (host name, name in the container) into the network namespace of `pid`.
pub fn move_all(devices: &[(String, String)], pid: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let ns = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| anyhow!("linux.netDevices: the container's network namespace: {e}"))?;
    let mut host = Nl::open()?;
    let mut inside = socket_in(&ns)?;
    // The kernel applies a new name after the move, so a taken name would fail only once the
    // device is already inside: check every name first.
    for (from, to) in devices {
        if !to.contains('%') && inside.index_of(to).is_some() {
            bail!(
                "linux.netDevices[{from:?}].name: {to:?} already exists in the container's \
                 network namespace"
            );
        }
    }
    for (from, to) in devices {
        let field = format!("linux.netDevices[{from:?}]");
        let index = host_index(from)?;
        let addrs = host
            .addresses(index)
            .map_err(|e| anyhow!("{field}: reading its addresses: {e}"))?;
        // Namespace and name change in one request: the kernel does both or neither.
        let mut name = to.as_bytes().to_vec();
        name.push(0);
        let m = Msg::new(
            libc::RTM_NEWLINK,
            libc::NLM_F_ACK as u16,
            &ifinfo(index, 0, 0),
        )
        .attr(IFLA_NET_NS_FD, &(ns.as_raw_fd() as u32).to_ne_bytes())
        .attr(IFLA_IFNAME, &name);
        host.call(m).map_err(|e| {
            let why = if e == nix::errno::Errno::EEXIST {
                format!("{to:?} already exists in the container's network namespace")
            } else {
                format!("{e}")
            };
            anyhow!("{field}: moving it into the container as {to:?}: {why}")
        })?;
        // The kernel keeps the index unless the namespace already uses it.
        let new_index = match inside.link_name(index) {
            Some(n) if to.contains('%') || n == *to => index,
            _ => inside
                .index_of(to)
                .ok_or_else(|| anyhow!("{field}: {to:?} not found in the container"))?,
        };
        for a in &addrs {
            let mut fixed = vec![a.family, a.prefixlen, a.flags, a.scope];
            fixed.extend_from_slice(&new_index.to_ne_bytes());
            let mut m = Msg::new(
                libc::RTM_NEWADDR,
                (libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
                &fixed,
            );
            for (t, d) in &a.attrs {
                m = m.attr(*t, d);
            }
            inside
                .call(m)
                .map_err(|e| anyhow!("{field}: restoring an address in the container: {e}"))?;
        }
        let up = libc::IFF_UP as u32;
        let m = Msg::new(
            libc::RTM_NEWLINK,
            libc::NLM_F_ACK as u16,
            &ifinfo(new_index, up, up),
        );
        inside
            .call(m)
            .map_err(|e| anyhow!("{field}: setting {to:?} up: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("f", "eth0", false).is_ok());
        assert!(validate_name("f", "ctr%d", true).is_ok());
        assert!(validate_name("f", "ctr%d", false).is_err());
        assert!(validate_name("f", "a/b", true).is_err());
        assert!(validate_name("f", "0123456789abcdef", true).is_err());
        assert!(validate_name("f", "", true).is_err());
    }

    #[test]
    fn attribute_round_trip() {
        let m = Msg::new(1, 0, &[])
            .attr(3, b"abc\0")
            .attr(28, &7u32.to_ne_bytes());
        let a = attrs(&m.0[NLMSG_HDRLEN..]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (3, &b"abc\0"[..]));
        assert_eq!(a[1].0, 28);
    }
}
