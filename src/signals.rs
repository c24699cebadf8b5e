//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `kill`, `9`.

use anyhow::{Result, bail};
use nix::sys::signal::Signal;
use std::str::FromStr;

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return match Signal::try_from(n) {
            Ok(sig) => Ok(sig),
            Err(_) => bail!("unknown signal {s:?}"),
        };
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    match Signal::from_str(&name) {
        Ok(sig) => Ok(sig),
        Err(_) => bail!("unknown signal {s:?} (use a name such as TERM, KILL, HUP or a number)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }
}
