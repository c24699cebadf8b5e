//! The part of CRIU's RPC protocol (`criu swrk`, images/rpc.proto in CRIU's tree) berth speaks:
//! requests are `criu_req` messages, answers `criu_resp`, one protobuf message per
//! SOCK_SEQPACKET packet. Written by hand: berth needs a dozen fields of three messages, and
//! protobuf's wire format for them is varints and length-prefixed bytes (see the module tests).
//! Field numbers are those of rpc.proto (proto2; unknown fields of an answer are skipped, and
//! an older CRIU skips request fields it does not know).

/// `criu_req_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqType {
    Dump = 1,
    Restore = 2,
    Check = 3,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

impl ReqType {
    fn from(v: u64) -> Option<ReqType> {
        Some(match v {
            1 => ReqType::Dump,
            2 => ReqType::Restore,
            3 => ReqType::Check,
            4 => ReqType::PreDump,
            6 => ReqType::Notify,
            9 => ReqType::FeatureCheck,
            10 => ReqType::Version,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ReqType::Dump => "dump",
            ReqType::Restore => "restore",
            ReqType::Check => "check",
            ReqType::PreDump => "pre-dump",
            ReqType::Notify => "notify",
            ReqType::FeatureCheck => "feature check",
            ReqType::Version => "version",
        }
    }
}

/// `criu_cg_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
    /// CRIU's own default (soft), or what its configuration file says.
    Default = 6,
}

impl CgMode {
    /// The values of runc's `--manage-cgroups-mode`.
    pub fn parse(s: &str) -> Option<CgMode> {
        Some(match s {
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => return None,
        })
    }
}

/// The `criu_opts` fields berth sets (None/empty: not sent).
#[derive(Default, Debug)]
pub struct Opts {
    pub images_dir_fd: i32,
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    /// Skip TCP connections still being set up (in flight) instead of failing the dump.
    pub tcp_skip_in_flight: bool,
    /// Link files that were deleted but are still open back into place for the dump.
    pub link_remap: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub log_level: Option<i32>,
    pub log_file: Option<String>,
    /// Page server address and port (`criu_page_server_info`).
    pub page_server: Option<(String, i32)>,
    pub notify_scripts: bool,
    pub root: Option<String>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub work_dir_fd: Option<i32>,
    /// (key, value): at dump mountpoint → name, at restore name → host path.
    pub ext_mnt: Vec<(String, String)>,
    pub manage_cgroups: bool,
    /// (controller or None for all, path).
    pub cg_root: Vec<(Option<String>, String)>,
    pub rst_sibling: bool,
    /// (key, descriptor number in the criu process).
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: Option<CgMode>,
    pub external: Vec<String>,
    pub empty_ns: u32,
    /// (namespace type, path of the namespace file).
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<String>,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub orphan_pts_master: bool,
    pub config_file: Option<String>,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// `criu_features` (FEATURE_CHECK question and answer).
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub mem_track: Option<bool>,
    pub lazy_pages: Option<bool>,
}

/// A request.
pub struct Req<'a> {
    pub typ: ReqType,
    pub opts: Option<&'a Opts>,
    pub notify_success: Option<bool>,
    pub features: Option<Features>,
}

/// What berth reads of a `criu_resp`.
#[derive(Default, Debug)]
pub struct Resp {
    pub typ: Option<ReqType>,
    /// The raw `type` (for an error about an unknown one).
    pub typ_raw: u64,
    pub success: bool,
    /// `dump.restored`: the dump was made by a process restored from it (self-dump).
    pub restored: bool,
    /// `restore.pid`: the restored tree's root, as seen from the caller.
    pub restore_pid: Option<i32>,
    pub notify_script: Option<String>,
    pub notify_pid: Option<i32>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    /// (major, minor, sublevel, gitid).
    pub version: Option<(i32, i32, i32, Option<String>)>,
}

// ---- encoding ----

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, (field << 3) | wire);
}

/// An int32 field (negative values are sign-extended to 64 bits, as protobuf does).
fn put_i32(out: &mut Vec<u8>, field: u64, v: i32) {
    put_key(out, field, VARINT);
    put_varint(out, v as i64 as u64);
}

fn put_u32(out: &mut Vec<u8>, field: u64, v: u32) {
    put_key(out, field, VARINT);
    put_varint(out, v as u64);
}

fn put_bool(out: &mut Vec<u8>, field: u64, v: bool) {
    put_key(out, field, VARINT);
    out.push(v as u8);
}

/// A bool field sent only when set (false is CRIU's default for all of them).
fn put_flag(out: &mut Vec<u8>, field: u64, v: bool) {
    if v {
        put_bool(out, field, true);
    }
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_str(out: &mut Vec<u8>, field: u64, s: &str) {
    put_bytes(out, field, s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, field: u64, s: &Option<String>) {
    if let Some(s) = s {
        put_str(out, field, s);
    }
}

/// A two-string message (ext_mount_map, join_namespace without extra_opt).
fn put_pair(out: &mut Vec<u8>, field: u64, a: &str, b: &str) {
    let mut m = Vec::with_capacity(a.len() + b.len() + 4);
    put_str(&mut m, 1, a);
    put_str(&mut m, 2, b);
    put_bytes(out, field, &m);
}

fn encode_opts(o: &Opts) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    put_i32(&mut m, 1, o.images_dir_fd);
    if let Some(p) = o.pid {
        put_i32(&mut m, 2, p);
    }
    put_flag(&mut m, 3, o.leave_running);
    put_flag(&mut m, 4, o.ext_unix_sk);
    put_flag(&mut m, 5, o.tcp_established);
    put_flag(&mut m, 6, o.evasive_devices);
    put_flag(&mut m, 7, o.shell_job);
    put_flag(&mut m, 8, o.file_locks);
    if let Some(l) = o.log_level {
        put_i32(&mut m, 9, l);
    }
    put_opt_str(&mut m, 10, &o.log_file);
    if let Some((addr, port)) = &o.page_server {
        let mut ps = vec![];
        put_str(&mut ps, 1, addr);
        put_i32(&mut ps, 2, *port);
        put_bytes(&mut m, 11, &ps);
    }
    put_flag(&mut m, 12, o.notify_scripts);
    put_opt_str(&mut m, 13, &o.root);
    put_opt_str(&mut m, 14, &o.parent_img);
    put_flag(&mut m, 15, o.track_mem);
    put_flag(&mut m, 16, o.auto_dedup);
    if let Some(fd) = o.work_dir_fd {
        put_i32(&mut m, 17, fd);
    }
    put_flag(&mut m, 18, o.link_remap);
    for (k, v) in &o.ext_mnt {
        put_pair(&mut m, 23, k, v);
    }
    put_flag(&mut m, 24, o.manage_cgroups);
    for (ctrl, path) in &o.cg_root {
        let mut c = vec![];
        if let Some(ctrl) = ctrl {
            put_str(&mut c, 1, ctrl);
        }
        put_str(&mut c, 2, path);
        put_bytes(&mut m, 25, &c);
    }
    put_flag(&mut m, 26, o.rst_sibling);
    for (key, fd) in &o.inherit_fd {
        let mut c = vec![];
        put_str(&mut c, 1, key);
        put_i32(&mut c, 2, *fd);
        put_bytes(&mut m, 27, &c);
    }
    if let Some(mode) = o.manage_cgroups_mode {
        put_u32(&mut m, 34, mode as u32);
    }
    for e in &o.external {
        put_str(&mut m, 37, e);
    }
    if o.empty_ns != 0 {
        put_u32(&mut m, 38, o.empty_ns);
    }
    for (ns, file) in &o.join_ns {
        put_pair(&mut m, 39, ns, file);
    }
    put_flag(&mut m, 46, o.tcp_skip_in_flight);
    put_opt_str(&mut m, 44, &o.freeze_cgroup);
    put_flag(&mut m, 48, o.lazy_pages);
    if let Some(fd) = o.status_fd {
        put_i32(&mut m, 49, fd);
    }
    put_flag(&mut m, 50, o.orphan_pts_master);
    put_opt_str(&mut m, 51, &o.config_file);
    put_opt_str(&mut m, 53, &o.lsm_profile);
    put_opt_str(&mut m, 63, &o.lsm_mount_context);
    m
}

fn encode_features(f: &Features) -> Vec<u8> {
    let mut m = vec![];
    if let Some(v) = f.mem_track {
        put_bool(&mut m, 1, v);
    }
    if let Some(v) = f.lazy_pages {
        put_bool(&mut m, 2, v);
    }
    m
}

impl Req<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(300);
        put_u32(&mut out, 1, self.typ as u32);
        if let Some(o) = self.opts {
            put_bytes(&mut out, 2, &encode_opts(o));
        }
        if let Some(s) = self.notify_success {
            put_bool(&mut out, 3, s);
        }
        if let Some(f) = &self.features {
            put_bytes(&mut out, 5, &encode_features(f));
        }
        out
    }
}

// ---- decoding ----

struct Reader<'a> {
    b: &'a [u8],
}

enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .b
                .split_first()
                .ok_or_else(|| "truncated varint".to_string())?;
            self.b = rest;
            v |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("truncated field".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    /// The next (field number, value); fixed-width values are skipped (None).
    fn field(&mut self) -> Result<Option<(u64, Option<Val<'a>>)>, String> {
        if self.b.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        let v = match wire {
            VARINT => Some(Val::Int(self.varint()?)),
            LEN => {
                let n = self.varint()? as usize;
                Some(Val::Bytes(self.take(n)?))
            }
            FIXED64 => {
                self.take(8)?;
                None
            }
            FIXED32 => {
                self.take(4)?;
                None
            }
            w => return Err(format!("unsupported wire type {w} (field {field})")),
        };
        Ok(Some((field, v)))
    }
}

fn each_field<'a>(
    b: &'a [u8],
    mut f: impl FnMut(u64, Val<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let mut r = Reader { b };
    while let Some((n, v)) = r.field()? {
        if let Some(v) = v {
            f(n, v)?;
        }
    }
    Ok(())
}

fn int(v: &Val) -> Option<u64> {
    match v {
        Val::Int(i) => Some(*i),
        Val::Bytes(_) => None,
    }
}

fn text(v: &Val) -> Option<String> {
    match v {
        Val::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Val::Int(_) => None,
    }
}

fn decode_features(b: &[u8]) -> Result<Features, String> {
    let mut f = Features::default();
    each_field(b, |n, v| {
        match n {
            1 => f.mem_track = int(&v).map(|i| i != 0),
            2 => f.lazy_pages = int(&v).map(|i| i != 0),
            _ => {}
        }
        Ok(())
    })?;
    Ok(f)
}

impl Resp {
    pub fn decode(b: &[u8]) -> Result<Resp, String> {
        let mut r = Resp::default();
        each_field(b, |n, v| {
            match (n, &v) {
                (1, _) => {
                    r.typ_raw = int(&v).unwrap_or(0);
                    r.typ = ReqType::from(r.typ_raw);
                }
                (2, _) => r.success = int(&v).is_some_and(|i| i != 0),
                (3, Val::Bytes(m)) => each_field(m, |n, v| {
                    if n == 1 {
                        r.restored = int(&v).is_some_and(|i| i != 0);
                    }
                    Ok(())
                })?,
                (4, Val::Bytes(m)) => each_field(m, |n, v| {
                    if n == 1 {
                        r.restore_pid = int(&v).map(|i| i as i32);
                    }
                    Ok(())
                })?,
                (5, Val::Bytes(m)) => each_field(m, |n, v| {
                    match n {
                        1 => r.notify_script = text(&v),
                        2 => r.notify_pid = int(&v).map(|i| i as i32),
                        _ => {}
                    }
                    Ok(())
                })?,
                (7, _) => r.cr_errno = int(&v).map(|i| i as i32),
                (8, Val::Bytes(m)) => r.features = Some(decode_features(m)?),
                (9, _) => r.cr_errmsg = text(&v),
                (10, Val::Bytes(m)) => {
                    let (mut maj, mut min, mut sub, mut git) = (0, 0, 0, None);
                    each_field(m, |n, v| {
                        match n {
                            1 => maj = int(&v).unwrap_or(0) as i32,
                            2 => min = int(&v).unwrap_or(0) as i32,
                            3 => git = text(&v),
                            4 => sub = int(&v).unwrap_or(0) as i32,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    r.version = Some((maj, min, sub, git));
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_protobuf_writes_them() {
        let mut v = vec![];
        put_varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut v = vec![];
        put_i32(&mut v, 1, -1);
        // Key 0x08, then -1 as ten bytes.
        assert_eq!(v.len(), 11);
        assert_eq!(v[0], 0x08);
        assert_eq!(v[10], 0x01);
        let mut r = Reader { b: &v[1..] };
        assert_eq!(r.varint().unwrap() as i64 as i32, -1);
    }

    #[test]
    fn version_request_is_what_criu_expects() {
        // `criu_req { type: VERSION }`: field 1, varint 10.
        let r = Req {
            typ: ReqType::Version,
            opts: None,
            notify_success: None,
            features: None,
        };
        assert_eq!(r.encode(), [0x08, 10]);
    }

    #[test]
    fn decodes_a_version_answer() {
        // What criu 3.17.1 answers to VERSION (captured from `criu swrk`).
        let b = b"\x08\n\x10\x01R\x06\x08\x03\x10\x11 \x01";
        let r = Resp::decode(b).unwrap();
        assert_eq!(r.typ, Some(ReqType::Version));
        assert!(r.success);
        assert_eq!(r.version, Some((3, 17, 1, None)));
    }

    #[test]
    fn encodes_nested_messages_and_decodes_notify() {
        let o = Opts {
            images_dir_fd: 5,
            ext_mnt: vec![("/a".into(), "/b".into())],
            cg_root: vec![(None, "/x".into())],
            inherit_fd: vec![("pipe:[7]".into(), 1)],
            ..Default::default()
        };
        let b = encode_opts(&o);
        // images_dir_fd, then ext_mnt {key "/a", val "/b"}, cg_root {path "/x"}, inherit_fd.
        assert_eq!(&b[..2], &[0x08, 5]);
        assert_eq!(&b[2..5], &[0xba, 0x01, 8]);
        assert!(b.windows(2).any(|w| w == [0x0a, 2]));
        let mut notify = vec![];
        put_u32(&mut notify, 1, ReqType::Notify as u32);
        put_bool(&mut notify, 2, true);
        let mut n = vec![];
        put_str(&mut n, 1, "post-restore");
        put_i32(&mut n, 2, 4242);
        put_bytes(&mut notify, 5, &n);
        let r = Resp::decode(&notify).unwrap();
        assert_eq!(r.typ, Some(ReqType::Notify));
        assert_eq!(r.notify_script.as_deref(), Some("post-restore"));
        assert_eq!(r.notify_pid, Some(4242));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(Resp::decode(&[0x08]).is_err());
        assert!(Resp::decode(&[0x2a, 0x05, 0x01]).is_err());
        assert!(Resp::decode(&[0x0f]).is_err());
    }
}
