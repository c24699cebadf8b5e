//! Checkpoint and restore with CRIU (`berth checkpoint`, `berth restore`).
//!
//! CRIU does the work; berth tells it what it cannot find out by itself — which mounts come
//! from outside the container (config.json's bind mounts, the cgroup binds, masked files,
//! devices), which namespaces were joined by path, which cgroup to restore into, where the
//! descriptors 0-2 of the container's process lead — and keeps berth's own state right:
//! a checkpointed container is gone (or still running, with --leave-running), a restored one
//! is a container like any other whose init is the restored process.
//!
//! berth talks to CRIU over its RPC protocol (`criu swrk`, as runc does) so answers and
//! notifications come back as messages: `rpc` is the protocol, `swrk` the process. None of
//! this runs outside these two commands (nothing is added to create or any other path).

pub mod dump;
pub mod ext;
pub mod image;
pub mod restore;
pub mod rpc;
pub mod swrk;

use std::path::{Path, PathBuf};

/// The criu binary to use: `--criu` (a name looked up in PATH, or a path), default "criu".
pub fn binary(flag: Option<&Path>) -> Result<PathBuf, String> {
    swrk::find_binary(flag.unwrap_or(Path::new("criu")))
}

/// Errno texts as Go prints them ("no such file or directory"), as everywhere in berth.
pub use crate::logger::{errno_text, io_errno_text};

/// The reasons CRIU gives in a log or on stderr: the text of its `Error (file:line): ...`
/// lines, in order, without repeats and without the closing "Dumping FAILED." summary.
pub fn error_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for line in text.lines() {
        let Some(i) = line.find("Error") else {
            continue;
        };
        let rest = &line[i + 5..];
        let msg = match rest.trim_start().strip_prefix('(') {
            Some(r) => r.split_once("): ").map(|(_, m)| m).unwrap_or(r),
            None => rest.trim_start_matches([':', ' ']),
        }
        .trim()
        .trim_end_matches('.');
        if msg.is_empty()
            || msg.ends_with("FAILED")
            || msg.starts_with("Root task logs above")
            || out.iter().any(|o| o == msg)
        {
            continue;
        }
        out.push(msg.to_string());
    }
    out
}

/// At most `n` reasons, joined for a one-line message.
pub fn join_reasons(r: &[String], n: usize) -> String {
    let mut s = r.iter().take(n).cloned().collect::<Vec<_>>().join("; ");
    if r.len() > n {
        s.push_str("; ...");
    }
    s
}

/// Does CRIU work on this host? Runs `criu check` (what `berth check` reports too) and
/// returns CRIU's version, or the one-line reason why not, in CRIU's own words.
pub fn probe(criu: &Path) -> Result<String, String> {
    let version = std::process::Command::new(criu)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {}", criu.display(), io_errno_text(&e)))?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "of unknown version".into());
    let out = std::process::Command::new(criu)
        .arg("check")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {}", criu.display(), io_errno_text(&e)))?;
    if out.status.success() {
        return Ok(version);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let reasons = error_lines(&text);
    let why = if reasons.is_empty() {
        text.lines().last().unwrap_or("").trim().to_string()
    } else {
        join_reasons(&reasons, 2)
    };
    Err(format!(
        "`{} check` (CRIU {version}) fails: {why}",
        criu.display()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_lines_of_a_criu_log() {
        let log = "(00.001) Version: 3.17.1\n\
                   (00.002) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
                   (00.002) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n\
                   (00.003) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
                   (00.004) Error (criu/cr-dump.c:2053): Dumping FAILED.\n";
        let r = super::error_lines(log);
        assert_eq!(
            r,
            [
                "vdso: Failed to fill self vdso symtable",
                "kerndat_vdso_fill_symtable failed when initializing kerndat"
            ]
        );
        assert_eq!(
            super::join_reasons(&r, 1),
            "vdso: Failed to fill self vdso symtable; ..."
        );
        assert_eq!(
            super::errno_text(nix::errno::Errno::ENOENT),
            "no such file or directory"
        );
    }
}
