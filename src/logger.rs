//! Logging, the one place where berth's messages are rendered, for every command.
//!
//! - stderr: one line per message, `berth: <level>: <what>: <why>` (`berth: error: ...`,
//!   `berth: warning: ...`, `berth: debug: ...`). Errors always go to stderr; warnings and debug
//!   lines only when there is no `--log` file (as runc).
//! - `--log FILE`: JSON lines (`{"level":"error","msg":...,"time":...}`, `--log-format json`,
//!   what containerd reads: it shows its user the last error line) or logrus text
//!   (`time="..." level=error msg="..."`), as runc writes them. Errors go there too.
//! - Every message's errno texts are written the way Go prints them (see `go_errno_texts`):
//!   engines recognise runtime errors by these texts (docker maps "no such file or directory"
//!   to exit status 127 and "permission denied" to 126).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Set up logging. A log file that cannot be opened is an error: the caller asked for it.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> anyhow::Result<()> {
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("opening log file {}: {e}", p.display()))?,
        ),
        None => None,
    };
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn debug_enabled() -> bool {
    LOGGER
        .lock()
        .map(|l| l.as_ref().is_some_and(|l| l.debug))
        .unwrap_or(false)
}

pub fn error(msg: &str) {
    write("error", msg);
}
pub fn warn(msg: &str) {
    write("warning", msg);
}
pub fn debug(msg: &str) {
    if debug_enabled() {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let msg = &*go_errno_texts(msg);
    let mut guard = match LOGGER.lock() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    };
    let file = guard.as_mut().and_then(|l| l.file.as_mut()).is_some();
    if level == "error" || !file {
        let _ = std::io::stderr().write_all(format!("berth: {level}: {msg}\n").as_bytes());
    }
    if !file {
        return;
    }
    let time = rfc3339_now();
    let line = match guard.as_ref().map(|l| l.format).unwrap_or(Format::Text) {
        Format::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", quote(msg)),
    };
    if let Some(f) = guard.as_mut().and_then(|l| l.file.as_mut()) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The errno texts of Rust's std::io::Error (`No such file or directory (os error 2)`) and of
/// nix's Errno (`ENOENT: No such file or directory`), rewritten as Go prints syscall.Errno
/// (`no such file or directory`): the C library's strerror with the first letter lowered
/// unless the second is a capital ("RPC struct is bad" stays), which is how Go's errno table
/// was generated. Built from the errno table itself, so exactly these texts change and
/// nothing else. Messages without either form (almost all) are returned as they are.
pub fn go_errno_texts(msg: &str) -> std::borrow::Cow<'_, str> {
    if !msg.contains("(os error ") && !msg.contains(": ") {
        return msg.into();
    }
    let mut out = String::new();
    let mut rest = msg;
    'scan: while !rest.is_empty() {
        // Rust's form: "<strerror> (os error N)".
        if let Some(i) = rest.find(" (os error ") {
            let tail = &rest[i + " (os error ".len()..];
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && tail[digits..].starts_with(')') {
                let n: i32 = tail[..digits].parse().unwrap_or(0);
                let text = strerror(n);
                if !text.is_empty() && rest[..i].ends_with(&text) {
                    let head = &rest[..i - text.len()];
                    out.push_str(&nix_form_to_go(head));
                    out.push_str(&lower_first(&text));
                    rest = &tail[digits + 1..];
                    continue 'scan;
                }
            }
            // Not an errno text after all: keep it as it is up to the parenthesis.
            let cut = i + " (os error ".len();
            out.push_str(&nix_form_to_go(&rest[..cut]));
            rest = &rest[cut..];
            continue;
        }
        out.push_str(&nix_form_to_go(rest));
        break;
    }
    out.into()
}

/// Rewrite nix's `EFOO: <nix's description>` (for any errno nix knows) as Go's text.
fn nix_form_to_go(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(": ") {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('E') {
        let word_start = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let name_len = rest[i..]
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .count();
        let name = &rest[i..i + name_len];
        let after = &rest[i + name_len..];
        if word_start
            && name_len > 1
            && after.starts_with(": ")
            && let Some(e) = errno_named(name)
        {
            let desc = e.desc();
            if after[2..].starts_with(desc) {
                out.push_str(&rest[..i]);
                out.push_str(&lower_first(&strerror(e as i32)));
                rest = &after[2 + desc.len()..];
                continue;
            }
        }
        out.push_str(&rest[..i + name_len.max(1)]);
        rest = &rest[i + name_len.max(1)..];
    }
    out.push_str(rest);
    out.into()
}

/// The Errno whose name (as nix's Debug prints it) is `name`.
fn errno_named(name: &str) -> Option<nix::errno::Errno> {
    (1..200)
        .map(nix::errno::Errno::from_raw)
        .find(|e| *e != nix::errno::Errno::UnknownErrno && format!("{e:?}") == name)
}

/// The C library's message for errno `n` (std::io::Error prints it, followed by
/// " (os error N)"), "" when unknown.
/// One errno as Go prints it (`no such file or directory`), for messages built by hand.
pub fn errno_text(e: nix::errno::Errno) -> String {
    match strerror(e as i32) {
        t if t.is_empty() => format!("errno {}", e as i32),
        t => lower_first(&t),
    }
}

/// An I/O error as Go prints it: its errno's text, or the error itself if it has none.
pub fn io_errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

fn strerror(n: i32) -> String {
    let s = std::io::Error::from_raw_os_error(n).to_string();
    match s.strip_suffix(&format!(" (os error {n})")) {
        Some(t) if !t.starts_with("Unknown error") => t.to_string(),
        _ => String::new(),
    }
}

/// Go's errno table: the first letter lowered when the second is lower case.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), s.chars().nth(1)) {
        (Some(f), Some(second)) if f.is_ascii_uppercase() && !second.is_ascii_uppercase() => {
            f.to_ascii_lowercase().to_string() + c.as_str()
        }
        _ => s.to_string(),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// Current UTC time as RFC 3339 with nanoseconds (the form Go's time.RFC3339Nano prints).
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::go_errno_texts as go;

    #[test]
    fn single_errno_texts_are_gos() {
        use nix::errno::Errno;
        assert_eq!(
            super::errno_text(Errno::ENOENT),
            "no such file or directory"
        );
        assert_eq!(super::errno_text(Errno::EACCES), "permission denied");
        // Go keeps the capital where the second letter is one too.
        assert_eq!(super::errno_text(Errno::EDOTDOT), "RFS specific error");
        let e = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(super::io_errno_text(&e), "operation not permitted");
        let e = std::io::Error::other("no errno here");
        assert_eq!(super::io_errno_text(&e), "no errno here");
    }

    #[test]
    fn errno_texts_become_gos() {
        let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            go(&format!("process.args[0]: /x: {enoent}")),
            "process.args[0]: /x: no such file or directory"
        );
        assert_eq!(
            go(&format!("mounting: {}", nix::errno::Errno::EACCES)),
            "mounting: permission denied"
        );
        assert_eq!(
            go(&format!("a: {} b: {}", nix::errno::Errno::EPERM, enoent)),
            "a: operation not permitted b: no such file or directory"
        );
        // Every errno, both forms, as Go prints it (lower-case first letter of strerror).
        for n in 1..134 {
            let io = std::io::Error::from_raw_os_error(n).to_string();
            let want = super::lower_first(&super::strerror(n));
            if want.is_empty() {
                continue; // no such errno (41, 58): glibc's "Unknown error N" is left as it is
            }
            assert_eq!(go(&format!("x: {io}")), format!("x: {want}"), "errno {n}");
            let e = nix::errno::Errno::from_raw(n);
            if e != nix::errno::Errno::UnknownErrno {
                assert_eq!(
                    go(&format!("x: {e}: y")),
                    format!("x: {want}: y"),
                    "errno {n}"
                );
            }
        }
        assert_eq!(super::lower_first("RPC struct is bad"), "RPC struct is bad");
        // Nothing else changes.
        for s in [
            "ENOENT alone",
            "EFOO: Bar",
            "linux.namespaces[0]: ENOSPC is the limit",
            "(os error 2)",
            "Something (os error 99999)",
            "process.cwd: /: Is a directory",
        ] {
            assert_eq!(go(s), s);
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            super::rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
