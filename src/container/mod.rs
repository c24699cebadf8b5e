//! A container as the state directory `<root>/<id>/` describes it: state, locking, status.

pub mod lifecycle;
pub mod state;

pub use state::{Container, State, Status};

use anyhow::{Result, bail};

pub const MAX_ID_LEN: usize = 200;

/// Container ids as runc accepts them: not empty, no `/`, not `.` or `..`, printable, bounded.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: must not be empty");
    }
    // The id names the state directory (and the `.creating-<id>-<pid>` one it is built in) and,
    // without linux.cgroupsPath, a cgroup directory: it must fit a file name (255 bytes).
    if id.len() > MAX_ID_LEN {
        bail!(
            "invalid container id: {} characters, at most {MAX_ID_LEN} are allowed",
            id.len()
        );
    }
    if id == "." || id == ".." || id.contains('/') || id.contains("..") {
        bail!("invalid container id {id:?}: must not contain \"/\" or \"..\"");
    }
    if id.starts_with('.') {
        bail!("invalid container id {id:?}: must not start with \".\"");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.' | ':' | '@'))
    {
        bail!("invalid container id {id:?}: use letters, digits and _ + - . : @");
    }
    Ok(())
}
