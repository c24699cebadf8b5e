//! A small synchronous D-Bus client, for the systemd cgroup driver: one unix socket, EXTERNAL
//! authentication, the wire format (marshalling of every basic and container type), method
//! calls, their replies and signals. No threads, no event loop, no library.
//!
//! Why hand-written: berth forks without re-exec and must be single-threaded at that moment,
//! and the driver needs a handful of calls. zbus's blocking API runs an executor thread; the
//! `dbus` crate links libdbus-1 (and through Debian's build libsystemd, liblzma, libzstd,
//! libgcrypt ...), which every berth command would load at start even without
//! `--systemd-cgroup`, and which a static build (`make static`) cannot easily link; rustbus is
//! pure Rust but brings a generic framework several times the size of what is used here. This
//! client is ~700 lines, costs nothing when the driver is off, and lets berth pipeline its
//! requests: the authentication, `Hello`, `AddMatch` and the version query go out in one write
//! before the container's process is even cloned, and their replies are read later.
//!
//! The wire format is the D-Bus specification's ("Message Protocol"): a 16-byte fixed header,
//! the header fields as `a(yv)`, padding to 8, then the body, every value aligned to its size
//! from the start of the message (of the body, which itself starts 8-aligned).

use anyhow::{Result, anyhow, bail};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, connect, recv, send, socket,
};
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A D-Bus value. Arrays carry their element signature (an empty array still has a type).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        let mut s = String::new();
        self.write_sig(&mut s);
        s
    }

    fn write_sig(&self, out: &mut String) {
        match self {
            Value::Byte(_) => out.push('y'),
            Value::Bool(_) => out.push('b'),
            Value::I16(_) => out.push('n'),
            Value::U16(_) => out.push('q'),
            Value::I32(_) => out.push('i'),
            Value::U32(_) => out.push('u'),
            Value::I64(_) => out.push('x'),
            Value::U64(_) => out.push('t'),
            Value::Double(_) => out.push('d'),
            Value::Str(_) => out.push('s'),
            Value::Path(_) => out.push('o'),
            Value::Sig(_) => out.push('g'),
            Value::Array(elem, _) => {
                out.push('a');
                out.push_str(elem);
            }
            Value::Struct(items) => {
                out.push('(');
                for i in items {
                    i.write_sig(out);
                }
                out.push(')');
            }
            Value::DictEntry(k, v) => {
                out.push('{');
                k.write_sig(out);
                v.write_sig(out);
                out.push('}');
            }
            Value::Variant(_) => out.push('v'),
        }
    }

    /// A string, object path or signature; through a variant.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            Value::Variant(v) => v.as_u32(),
            _ => None,
        }
    }
}

/// An `a(sv)` entry: a property name and its value (systemd's unit properties).
pub fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
}

/// Alignment of the type a signature starts with.
fn align_of(sig: &[u8]) -> usize {
    match sig.first() {
        Some(b'n' | b'q') => 2,
        Some(b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h') => 4,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => 1,
    }
}

/// The length of the first complete type in `sig`.
fn one_type(sig: &[u8]) -> Result<usize> {
    fn walk(sig: &[u8], at: usize, depth: u32) -> Result<usize> {
        if depth > 64 {
            bail!("D-Bus signature nested too deeply");
        }
        match sig.get(at) {
            Some(b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o')
            | Some(b'g' | b'v' | b'h') => Ok(at + 1),
            Some(b'a') => walk(sig, at + 1, depth + 1),
            Some(b'(') => {
                let mut p = at + 1;
                while sig.get(p) != Some(&b')') {
                    if p >= sig.len() {
                        bail!("D-Bus signature: unclosed struct");
                    }
                    p = walk(sig, p, depth + 1)?;
                }
                if p == at + 1 {
                    bail!("D-Bus signature: empty struct");
                }
                Ok(p + 1)
            }
            Some(b'{') => {
                let p = walk(sig, at + 1, depth + 1)?;
                let p = walk(sig, p, depth + 1)?;
                if sig.get(p) != Some(&b'}') {
                    bail!("D-Bus signature: a dict entry holds two types");
                }
                Ok(p + 1)
            }
            Some(c) => bail!("D-Bus signature: unknown type code {:?}", *c as char),
            None => bail!("D-Bus signature ends inside a type"),
        }
    }
    walk(sig, 0, 0)
}

/// Check that `sig` is a sequence of complete types.
pub fn check_signature(sig: &str) -> Result<()> {
    let b = sig.as_bytes();
    let mut at = 0;
    while at < b.len() {
        at += one_type(&b[at..])?;
    }
    Ok(())
}

// ---- marshalling ----

#[derive(Default)]
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn pad(&mut self, a: usize) {
        while !self.buf.len().is_multiple_of(a) {
            self.buf.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::I32(x) => {
                self.pad(4);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Double(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // The padding to the first element is not part of the array's length.
                self.pad(align_of(elem.as_bytes()));
                let start = self.buf.len();
                for i in items {
                    self.value(i);
                }
                let n = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&n.to_le_bytes());
            }
            Value::Struct(items) => {
                self.pad(8);
                for i in items {
                    self.value(i);
                }
            }
            Value::DictEntry(k, v) => {
                self.pad(8);
                self.value(k);
                self.value(v);
            }
            Value::Variant(inner) => {
                self.value(&Value::Sig(inner.signature()));
                self.value(inner);
            }
        }
    }
}

/// The values a body holds, in order, as one byte string (aligned from its start).
pub fn marshal(body: &[Value]) -> Vec<u8> {
    let mut e = Enc::default();
    for v in body {
        e.value(v);
    }
    e.buf
}

struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Dec<'a> {
    fn align(&mut self, a: usize) -> Result<()> {
        let p = self.pos.next_multiple_of(a);
        if p > self.b.len() {
            bail!("D-Bus message truncated");
        }
        self.pos = p;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.b.len() {
            bail!("D-Bus message truncated");
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        if self.big {
            a.reverse();
        }
        // Now little-endian.
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.fixed::<4>()?))
    }
    fn text(&mut self, len: usize) -> Result<String> {
        let s = self.take(len)?;
        if self.take(1)? != [0] {
            bail!("D-Bus string without its NUL");
        }
        String::from_utf8(s.to_vec()).map_err(|_| anyhow!("D-Bus string is not UTF-8"))
    }
    /// One value of the single complete type `sig`.
    fn value(&mut self, sig: &[u8], depth: u32) -> Result<Value> {
        if depth > 64 {
            bail!("D-Bus value nested too deeply");
        }
        Ok(match sig[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.fixed()?)),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.text(n)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            b'v' => {
                let n = self.take(1)?[0] as usize;
                let s = self.text(n)?;
                let sb = s.as_bytes();
                if sb.is_empty() || one_type(sb)? != sb.len() {
                    bail!("D-Bus variant signature {s:?} is not one type");
                }
                Value::Variant(Box::new(self.value(sb, depth + 1)?))
            }
            b'a' => {
                let n = self.u32()? as usize;
                let elem = &sig[1..1 + one_type(&sig[1..])?];
                self.align(align_of(elem))?;
                let end = self.pos + n;
                if end > self.b.len() {
                    bail!("D-Bus array longer than its message");
                }
                let mut items = vec![];
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.pos != end {
                    bail!("D-Bus array length does not match its elements");
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' => {
                self.align(8)?;
                let inner = &sig[1..one_type(sig)? - 1];
                let mut items = vec![];
                let mut at = 0;
                while at < inner.len() {
                    let n = one_type(&inner[at..])?;
                    items.push(self.value(&inner[at..at + n], depth + 1)?);
                    at += n;
                }
                Value::Struct(items)
            }
            b'{' => {
                self.align(8)?;
                let k = one_type(&sig[1..])?;
                let key = self.value(&sig[1..1 + k], depth + 1)?;
                let v = one_type(&sig[1 + k..])?;
                let val = self.value(&sig[1 + k..1 + k + v], depth + 1)?;
                Value::DictEntry(Box::new(key), Box::new(val))
            }
            c => bail!("D-Bus: unknown type code {:?}", c as char),
        })
    }
    /// Values of the signature `sig` (any number of complete types).
    fn values(&mut self, sig: &str) -> Result<Vec<Value>> {
        let b = sig.as_bytes();
        let mut out = vec![];
        let mut at = 0;
        while at < b.len() {
            let n = one_type(&b[at..])?;
            out.push(self.value(&b[at..at + n], 0)?);
            at += n;
        }
        Ok(out)
    }
}

/// Decode a body marshalled with signature `sig` (little-endian).
#[cfg(test)]
pub fn unmarshal(buf: &[u8], sig: &str) -> Result<Vec<Value>> {
    let mut d = Dec {
        b: buf,
        pos: 0,
        big: false,
    };
    let v = d.values(sig)?;
    if d.pos != buf.len() {
        bail!("D-Bus body longer than its signature");
    }
    Ok(v)
}

// ---- messages ----

/// A received message (the header fields berth looks at, and the body).
#[derive(Debug, Default, Clone)]
pub struct Msg {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub sender: Option<String>,
    pub signature: String,
    pub body: Vec<Value>,
}

/// An error reply, as systemd or the bus sent it.
#[derive(Debug)]
pub struct DbusError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{} ({})", self.message, self.name)
        }
    }
}

impl std::error::Error for DbusError {}

/// Is `e` a D-Bus error reply with this name?
pub fn is_error(e: &anyhow::Error, name: &str) -> bool {
    e.downcast_ref::<DbusError>()
        .is_some_and(|d| d.name == name)
}

/// A method call, marshalled.
pub struct Call<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub body: Vec<Value>,
    /// NO_REPLY_EXPECTED.
    pub no_reply: bool,
}

impl Call<'_> {
    pub fn encode(&self, serial: u32) -> Vec<u8> {
        let body = marshal(&self.body);
        let sig: String = self.body.iter().map(|v| v.signature()).collect();
        let field = |code: u8, v: Value| {
            Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))])
        };
        let mut fields = vec![
            field(1, Value::Path(self.path.into())),
            field(2, Value::Str(self.interface.into())),
            field(3, Value::Str(self.member.into())),
        ];
        if let Some(d) = self.destination {
            fields.push(field(6, Value::Str(d.into())));
        }
        if !sig.is_empty() {
            fields.push(field(8, Value::Sig(sig)));
        }
        let mut e = Enc::default();
        e.buf
            .extend_from_slice(&[b'l', METHOD_CALL, self.no_reply as u8, 1]);
        e.u32(body.len() as u32);
        e.u32(serial);
        e.value(&Value::Array("(yv)".into(), fields));
        e.pad(8);
        e.buf.extend_from_slice(&body);
        e.buf
    }
}

/// The length of the first complete message in `buf`, if it is all there.
fn message_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let big = match buf[0] {
        b'l' => false,
        b'B' => true,
        c => bail!("D-Bus: bad endianness byte {c:#x} (not a D-Bus stream?)"),
    };
    let rd = |at: usize| {
        let a: [u8; 4] = buf[at..at + 4].try_into().unwrap_or([0; 4]);
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let body = rd(4) as usize;
    let fields = rd(12) as usize;
    if body > 1 << 27 || fields > 1 << 26 {
        bail!("D-Bus message too large");
    }
    let total = (16 + fields).next_multiple_of(8) + body;
    Ok((buf.len() >= total).then_some(total))
}

/// Decode one complete message.
pub fn decode(buf: &[u8]) -> Result<Msg> {
    let big = buf[0] == b'B';
    let mut d = Dec {
        b: buf,
        pos: 4,
        big,
    };
    let body_len = d.u32()? as usize;
    let _serial = d.u32()?;
    let mut m = Msg {
        kind: buf[1],
        ..Default::default()
    };
    let Value::Array(_, fields) = d.value(b"a(yv)", 0)? else {
        bail!("D-Bus: bad header fields");
    };
    for f in fields {
        let Value::Struct(f) = f else { continue };
        let (Some(Value::Byte(code)), Some(v)) = (f.first(), f.get(1)) else {
            continue;
        };
        let s = v.as_str().map(String::from);
        match code {
            1 => m.path = s,
            2 => m.interface = s,
            3 => m.member = s,
            4 => m.error_name = s,
            5 => m.reply_serial = v.as_u32(),
            7 => m.sender = s,
            8 => m.signature = s.unwrap_or_default(),
            _ => {}
        }
    }
    d.align(8)?;
    let start = d.pos;
    if start + body_len != buf.len() {
        bail!("D-Bus: message length mismatch");
    }
    let mut bd = Dec {
        b: &buf[start..],
        pos: 0,
        big,
    };
    m.body = bd.values(&m.signature)?;
    Ok(m)
}

// ---- the connection ----

/// Which systemd instance to talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// The system instance (PID 1): the system bus, else /run/systemd/private.
    System,
    /// The calling user's instance (rootless): the session bus, else
    /// $XDG_RUNTIME_DIR/systemd/private.
    User,
}

/// Where to connect, in order: (address for messages, is a message bus).
fn endpoints(bus: Bus) -> Vec<(String, bool)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut out = vec![];
    match bus {
        Bus::System => {
            let a = env("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".into());
            out.extend(a.split(';').map(|a| (a.to_string(), true)));
            out.push(("unix:path=/run/systemd/private".into(), false));
        }
        Bus::User => {
            let rt = env("XDG_RUNTIME_DIR")
                .unwrap_or_else(|| format!("/run/user/{}", crate::rootless::outer_euid()));
            let a =
                env("DBUS_SESSION_BUS_ADDRESS").unwrap_or_else(|| format!("unix:path={rt}/bus"));
            out.extend(a.split(';').map(|a| (a.to_string(), true)));
            out.push((format!("unix:path={rt}/systemd/private"), false));
        }
    }
    out
}

/// `unix:path=...` or `unix:abstract=...` (other keys such as guid are ignored).
fn unix_addr(address: &str) -> Result<(UnixAddr, String)> {
    let rest = address
        .strip_prefix("unix:")
        .ok_or_else(|| anyhow!("D-Bus address {address:?}: only unix: addresses are supported"))?;
    for kv in rest.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = unescape_addr(v);
        match k {
            "path" => return Ok((UnixAddr::new(v.as_bytes())?, v)),
            "abstract" => return Ok((UnixAddr::new_abstract(v.as_bytes())?, format!("@{v}"))),
            _ => {}
        }
    }
    bail!("D-Bus address {address:?} has no path= or abstract=")
}

fn unescape_addr(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// A connection. Requests may be pipelined: `send` returns the serial, `reply` waits for it.
pub struct Conn {
    fd: OwnedFd,
    /// Through a message bus (needs Hello, match rules, destinations) or straight to the peer.
    pub via_bus: bool,
    /// Where it is connected (for messages).
    pub endpoint: String,
    serial: u32,
    rbuf: Vec<u8>,
    authed: bool,
    /// Received and not consumed yet (replies to pipelined calls, signals).
    queue: VecDeque<Msg>,
    /// Messages sent, and the answers berth had to block for (round trips, for --debug).
    pub sent: u32,
    pub waits: u32,
    /// The current wait blocked at least once.
    blocked: bool,
    pub timeout: Duration,
}

impl Conn {
    /// Connect to `bus`'s first endpoint that accepts the connection. Authentication (and on a
    /// bus, `Hello`) are sent at once; their answers are read with the first reply.
    pub fn connect(bus: Bus) -> Result<Conn> {
        let mut tried = vec![];
        for (addr, via_bus) in endpoints(bus) {
            match Conn::connect_to(&addr, via_bus) {
                Ok(c) => return Ok(c),
                Err(e) => tried.push(format!("{e:#}")),
            }
        }
        bail!("{}", tried.join("; "))
    }

    /// Connect to one address (`unix:path=...`): through a message bus, or to a peer.
    pub fn connect_to(addr: &str, via_bus: bool) -> Result<Conn> {
        let (ua, shown) = unix_addr(addr)?;
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| anyhow!("D-Bus: socket: {e}"))?;
        connect(fd.as_raw_fd(), &ua)
            .map_err(|e| anyhow!("{shown}: {}", crate::logger::errno_text(e)))?;
        let mut c = Conn {
            fd,
            via_bus,
            endpoint: shown,
            serial: 0,
            rbuf: vec![],
            authed: false,
            queue: VecDeque::new(),
            sent: 0,
            waits: 0,
            blocked: false,
            timeout: Duration::from_secs(30),
        };
        // EXTERNAL: the server takes our uid from the socket; the initial response is the uid
        // in decimal, hex-encoded — as the server sees it, which in a user namespace (rootless
        // podman) is the uid outside. BEGIN is pipelined (sd-bus does the same).
        let uid = crate::rootless::outer_euid().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let mut out = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes();
        if via_bus {
            out.extend(c.encode(&Call {
                destination: Some(BUS_NAME),
                path: BUS_PATH,
                interface: BUS_NAME,
                member: "Hello",
                body: vec![],
                no_reply: false,
            }));
        }
        c.write_all(&out)?;
        Ok(c)
    }

    fn encode(&mut self, call: &Call) -> Vec<u8> {
        self.serial += 1;
        self.sent += 1;
        call.encode(self.serial)
    }

    fn write_all(&mut self, mut b: &[u8]) -> Result<()> {
        while !b.is_empty() {
            match send(self.fd.as_raw_fd(), b, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => b = &b[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!(
                    "D-Bus: writing to {}: {}",
                    self.endpoint,
                    crate::logger::errno_text(e)
                ),
            }
        }
        Ok(())
    }

    /// Send calls without waiting (one write); their serials, in order.
    pub fn send(&mut self, calls: &[Call]) -> Result<Vec<u32>> {
        let mut out = vec![];
        let mut serials = vec![];
        for c in calls {
            out.extend(self.encode(c));
            serials.push(self.serial);
        }
        self.write_all(&out)?;
        Ok(serials)
    }

    /// A call and its reply.
    pub fn call(&mut self, c: Call) -> Result<Msg> {
        let s = self.send(&[c])?[0];
        self.reply(s)
    }

    /// The reply to the call with this serial (an error reply is an `Err(DbusError)`).
    pub fn reply(&mut self, serial: u32) -> Result<Msg> {
        if let Some(i) = self
            .queue
            .iter()
            .position(|m| m.reply_serial == Some(serial))
        {
            let m = self.queue.remove(i).unwrap_or_default();
            return as_result(m);
        }
        let deadline = Instant::now() + self.timeout;
        self.blocked = false;
        let m = loop {
            let m = self.recv(deadline)?;
            if m.reply_serial == Some(serial) && matches!(m.kind, METHOD_RETURN | ERROR) {
                break m;
            }
            self.queue.push_back(m);
        };
        self.waits += self.blocked as u32;
        as_result(m)
    }

    /// Wait for a signal `want` accepts (signals that arrived earlier count); other signals
    /// are dropped, replies kept.
    pub fn signal(&mut self, timeout: Duration, want: impl Fn(&Msg) -> bool) -> Result<Msg> {
        if let Some(i) = self.queue.iter().position(|m| m.kind == SIGNAL && want(m)) {
            return Ok(self.queue.remove(i).unwrap_or_default());
        }
        self.queue.retain(|m| m.kind != SIGNAL);
        let deadline = Instant::now() + timeout;
        self.blocked = false;
        let m = loop {
            let m = self.recv(deadline)?;
            if m.kind == SIGNAL {
                if want(&m) {
                    break m;
                }
            } else {
                self.queue.push_back(m);
            }
        };
        self.waits += self.blocked as u32;
        Ok(m)
    }

    /// The next message of any kind (those queued first).
    #[cfg(test)]
    pub fn next(&mut self, timeout: Duration) -> Result<Msg> {
        if let Some(m) = self.queue.pop_front() {
            return Ok(m);
        }
        self.recv(Instant::now() + timeout)
    }

    /// Read the next message.
    fn recv(&mut self, deadline: Instant) -> Result<Msg> {
        loop {
            if !self.authed {
                self.auth_line()?;
            }
            if self.authed
                && let Some(n) = message_len(&self.rbuf)?
            {
                let m = decode(&self.rbuf[..n]);
                self.rbuf.drain(..n);
                return m;
            }
            self.fill(deadline)?;
        }
    }

    /// The server's answer to the authentication, once a whole line is in.
    fn auth_line(&mut self) -> Result<()> {
        let Some(end) = self.rbuf.windows(2).position(|w| w == b"\r\n") else {
            if self.rbuf.len() > 512 {
                bail!("D-Bus: {} sent no authentication answer", self.endpoint);
            }
            return Ok(());
        };
        let line = String::from_utf8_lossy(&self.rbuf[..end]).into_owned();
        self.rbuf.drain(..end + 2);
        if line.starts_with("OK ") {
            self.authed = true;
            return Ok(());
        }
        bail!(
            "D-Bus: {} refused the authentication (uid {}): {line:?}",
            self.endpoint,
            crate::rootless::outer_euid()
        )
    }

    fn fill(&mut self, deadline: Instant) -> Result<()> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "D-Bus: no answer from {} within {} s",
                self.endpoint,
                self.timeout.as_secs()
            );
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        // An answer already in the socket costs no round trip.
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            self.blocked = true;
        }
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(()),
            Ok(_) => {}
            Err(e) => bail!("D-Bus: poll: {e}"),
        }
        let mut chunk = [0u8; 4096];
        match recv(self.fd.as_raw_fd(), &mut chunk, MsgFlags::empty()) {
            Ok(0) => bail!("D-Bus: {} closed the connection", self.endpoint),
            Ok(n) => {
                self.rbuf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => bail!(
                "D-Bus: reading from {}: {}",
                self.endpoint,
                crate::logger::errno_text(e)
            ),
        }
    }

    /// Ask the bus to route the signals `rule` matches to us (no-op when not on a bus: a peer
    /// such as systemd's private socket sends its signals to every direct connection).
    pub fn add_match_call(rule: &str) -> Call<'static> {
        Call {
            destination: Some(BUS_NAME),
            path: BUS_PATH,
            interface: BUS_NAME,
            member: "AddMatch",
            body: vec![Value::Str(rule.into())],
            no_reply: false,
        }
    }
}

/// An errno as Go (and so runc, whose messages engines parse) writes it: "no such file or
/// directory".
fn as_result(m: Msg) -> Result<Msg> {
    if m.kind == ERROR {
        return Err(DbusError {
            name: m.error_name.clone().unwrap_or_default(),
            message: m
                .body
                .first()
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        }
        .into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_type() {
        let v = vec![
            Value::Byte(7),
            Value::Bool(true),
            Value::I16(-3),
            Value::U16(9),
            Value::I32(-70000),
            Value::U32(1 << 31),
            Value::I64(-1),
            Value::U64(u64::MAX),
            Value::Double(1.5),
            Value::Str("héllo".into()),
            Value::Path("/org/x".into()),
            Value::Sig("a(sv)".into()),
            Value::Array("t".into(), vec![]),
            Value::Array("(sv)".into(), vec![prop("MemoryMax", Value::U64(64 << 20))]),
            Value::Array(
                "{sv}".into(),
                vec![Value::DictEntry(
                    Box::new(Value::Str("k".into())),
                    Box::new(Value::Variant(Box::new(Value::Array(
                        "y".into(),
                        vec![Value::Byte(1), Value::Byte(2)],
                    )))),
                )],
            ),
            Value::Array(
                "(sa(sv))".into(),
                vec![Value::Struct(vec![
                    Value::Str("x".into()),
                    Value::Array("(sv)".into(), vec![]),
                ])],
            ),
        ];
        let sig: String = v.iter().map(|x| x.signature()).collect();
        assert_eq!(sig, "ybnqiuxtdsogata(sv)a{sv}a(sa(sv))");
        let bytes = marshal(&v);
        assert_eq!(unmarshal(&bytes, &sig).unwrap(), v);
    }

    #[test]
    fn layout_matches_the_specification() {
        // A byte, then a uint64 at offset 8; an empty array of uint64 still pads to 8 after
        // its length, and that padding is not counted.
        let b = marshal(&[Value::Byte(1), Value::U64(2)]);
        assert_eq!(b.len(), 16);
        assert_eq!(b[8], 2);
        let b = marshal(&[Value::Array("t".into(), vec![])]);
        assert_eq!(b, vec![0, 0, 0, 0, 0, 0, 0, 0]);
        let b = marshal(&[Value::Variant(Box::new(Value::Str("ab".into())))]);
        assert_eq!(b, vec![1, b's', 0, 0, 2, 0, 0, 0, b'a', b'b', 0]);
    }

    #[test]
    fn a_call_decodes_as_sent() {
        let c = Call {
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
            body: vec![Value::Str("a.scope".into()), Value::Str("replace".into())],
            no_reply: false,
        };
        let b = c.encode(5);
        assert_eq!(message_len(&b).unwrap(), Some(b.len()));
        assert_eq!(message_len(&b[..b.len() - 1]).unwrap(), None);
        let m = decode(&b).unwrap();
        assert_eq!(m.member.as_deref(), Some("StopUnit"));
        assert_eq!(m.signature, "ss");
        assert_eq!(m.body[1], Value::Str("replace".into()));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(check_signature("a").is_err());
        assert!(check_signature("(").is_err());
        assert!(check_signature("{ss").is_err());
        assert!(check_signature("z").is_err());
        assert!(check_signature("a{sv}(ii)").is_ok());
        assert!(unmarshal(&[1, 0, 0], "u").is_err());
        assert!(unmarshal(&[9, 0, 0, 0, b'a'], "s").is_err());
        // An array claiming more than there is.
        assert!(unmarshal(&[200, 0, 0, 0, 1], "ay").is_err());
    }

    /// A private dbus-daemon (Debian's dbus-daemon, installed by hack/deps.sh) on a socket of
    /// its own, stopped by its pid at the end.
    struct Daemon {
        child: std::process::Child,
        dir: std::path::PathBuf,
        addr: String,
    }

    impl Daemon {
        fn start(name: &str) -> Daemon {
            let dir =
                std::env::temp_dir().join(format!("berth-dbus-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let sock = dir.join("bus");
            let addr = format!("unix:path={}", sock.display());
            let child = std::process::Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile"])
                .arg(format!("--address={addr}"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("running dbus-daemon (Debian package dbus-daemon, see hack/deps.sh)");
            let d = Daemon { child, dir, addr };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !sock.exists() {
                assert!(
                    Instant::now() < deadline,
                    "dbus-daemon did not make {sock:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            d
        }
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn bus_call(member: &str, body: Vec<Value>) -> Call<'_> {
        Call {
            destination: Some(BUS_NAME),
            path: BUS_PATH,
            interface: BUS_NAME,
            member,
            body,
            no_reply: false,
        }
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn talks_to_a_real_bus() {
        let d = Daemon::start("talk");
        let mut c = Conn::connect_to(&d.addr, true).unwrap();
        // Hello went out with the authentication, as serial 1.
        let me = c.reply(1).unwrap().body[0].as_str().unwrap().to_string();
        assert!(me.starts_with(':'), "{me}");
        // Two calls in one write; the replies taken in the other order.
        let s = c
            .send(&[bus_call("GetId", vec![]), bus_call("ListNames", vec![])])
            .unwrap();
        let names = c.reply(s[1]).unwrap();
        let id = c.reply(s[0]).unwrap();
        assert_eq!(id.body[0].as_str().unwrap().len(), 32, "{id:?}");
        let Value::Array(_, names) = &names.body[0] else {
            panic!("{names:?}")
        };
        assert!(names.contains(&Value::Str(me.clone())), "{names:?}");
        assert!(names.contains(&Value::Str(BUS_NAME.into())), "{names:?}");
        // The bus told us our name with a signal after Hello's reply.
        let sig = c
            .signal(T, |m| m.member.as_deref() == Some("NameAcquired"))
            .unwrap();
        assert_eq!(sig.body[0].as_str(), Some(me.as_str()));
        // An error reply is an error, with its name.
        let e = c.call(bus_call("NoSuchMethod", vec![])).unwrap_err();
        assert!(
            is_error(&e, "org.freedesktop.DBus.Error.UnknownMethod"),
            "{e:#}"
        );
        // And the connection still works after it.
        c.call(bus_call("GetId", vec![])).unwrap();
    }

    #[test]
    fn signals_and_calls_between_connections() {
        let d = Daemon::start("two");
        let mut a = Conn::connect_to(&d.addr, true).unwrap();
        a.reply(1).unwrap();
        a.call(Conn::add_match_call(
            "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
        ))
        .unwrap();
        let mut b = Conn::connect_to(&d.addr, true).unwrap();
        let bname = b.reply(1).unwrap().body[0].as_str().unwrap().to_string();
        // The match rule routes b's arrival to a.
        let sig = a
            .signal(T, |m| {
                m.member.as_deref() == Some("NameOwnerChanged")
                    && m.body.first().and_then(|v| v.as_str()) == Some(bname.as_str())
            })
            .unwrap();
        assert_eq!(sig.signature, "sss");
        // A call from a to b with a body like StartTransientUnit's: the bus validates every
        // message it routes (and drops the sender of a malformed one), b decodes it.
        let body = vec![
            Value::Str("berth-x.scope".into()),
            Value::Str("replace".into()),
            Value::Array(
                "(sv)".into(),
                vec![
                    prop("Delegate", Value::Bool(true)),
                    prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                    prop("MemoryMax", Value::U64(u64::MAX)),
                    prop(
                        "AllowedCPUs",
                        Value::Array("y".into(), vec![Value::Byte(3)]),
                    ),
                    prop(
                        "DeviceAllow",
                        Value::Array(
                            "(ss)".into(),
                            vec![Value::Struct(vec![
                                Value::Str("/dev/char/1:3".into()),
                                Value::Str("rwm".into()),
                            ])],
                        ),
                    ),
                    prop("CPUWeight", Value::U64(0)),
                    prop("X", Value::Double(0.25)),
                    prop("Y", Value::I16(-2)),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        a.send(&[Call {
            destination: Some(&bname),
            path: "/test",
            interface: "org.example.Test",
            member: "Echo",
            body: body.clone(),
            no_reply: true,
        }])
        .unwrap();
        let m = loop {
            let m = b.next(T).unwrap();
            if m.kind == METHOD_CALL {
                break m;
            }
        };
        assert_eq!(m.member.as_deref(), Some("Echo"));
        assert_eq!(m.signature, "ssa(sv)a(sa(sv))");
        assert_eq!(m.body, body);
        // a is still connected: the bus found nothing wrong.
        a.call(bus_call("GetId", vec![])).unwrap();
    }

    #[test]
    fn no_socket_is_a_clear_error() {
        let e = match Conn::connect_to("unix:path=/nonexistent/berth-test/bus", true) {
            Err(e) => format!("{e:#}"),
            Ok(_) => panic!("connected to nothing"),
        };
        assert_eq!(e, "/nonexistent/berth-test/bus: no such file or directory");
    }

    #[test]
    fn addresses() {
        assert!(unix_addr("unix:path=/run/dbus/system_bus_socket").is_ok());
        assert_eq!(
            unix_addr("unix:guid=12,path=/tmp/a%20b").unwrap().1,
            "/tmp/a b"
        );
        assert_eq!(unix_addr("unix:abstract=x").unwrap().1, "@x");
        assert!(unix_addr("tcp:host=x").is_err());
    }
}
