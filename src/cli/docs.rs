//! Man pages and shell completions, generated from the clap definitions (never written by hand,
//! so they cannot drift from the command line): `berth __generate-docs DIR` in a build with the
//! `docs` feature (hack/install.sh runs it), and the unit tests below. Not in the release
//! binary: clap_mangen and clap_complete would only make it bigger.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// Where each kind of file goes, relative to the install prefix.
pub const MAN_DIR: &str = "share/man/man8";
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "share/bash-completion/completions/berth"),
    (Shell::Zsh, "share/zsh/vendor-completions/_berth"),
    (Shell::Fish, "share/fish/vendor_completions.d/berth.fish"),
];

/// The whole command tree with every subcommand's arguments built (the CLI defers them until a
/// subcommand is used), without clap's `help` subcommand (no page of its own, as in runc).
fn command() -> clap::Command {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The commands that get a page: berth itself and every visible subcommand, at any depth.
fn pages(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, out);
    }
}

/// Writes the man pages (`berth.8`, `berth-create.8`, ...) and the completions under `out`, laid
/// out as under an install prefix. Returns the files' paths relative to `out`, sorted: the list
/// that `make install` installs and `make uninstall` removes.
pub fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    let source = format!("berth {}", env!("CARGO_PKG_VERSION"));
    let mut cmds = vec![];
    pages(&command(), &mut cmds);
    for cmd in cmds {
        let man = clap_mangen::Man::new(cmd)
            .section("8")
            .source(source.as_str())
            .manual("berth");
        let rel = Path::new(MAN_DIR).join(man.get_filename());
        let mut text = vec![];
        man.render(&mut text)?;
        write(out, &rel, &text)?;
        files.push(rel);
    }
    for (shell, rel) in COMPLETIONS {
        let mut text = vec![];
        clap_complete::generate(shell, &mut super::Cli::command(), "berth", &mut text);
        write(out, Path::new(rel), &text)?;
        files.push(rel.into());
    }
    files.sort();
    Ok(files)
}

fn write(out: &Path, rel: &Path, text: &[u8]) -> Result<()> {
    let path = out.join(rel);
    std::fs::create_dir_all(path.parent().unwrap())
        .and_then(|()| std::fs::write(&path, text))
        .with_context(|| format!("writing {}", path.display()))
}

/// `berth __generate-docs DIR` (only in a `docs` build): writes the files and prints their
/// relative paths, one a line. None when berth was called for anything else.
#[cfg(feature = "docs")]
pub fn main_if_asked() -> Option<Result<i32>> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != "__generate-docs" {
        return None;
    }
    let Some(dir) = args.next() else {
        return Some(Err(anyhow::anyhow!("usage: berth __generate-docs DIR")));
    };
    Some(generate(Path::new(&dir)).map(|files| {
        for f in files {
            println!("{}", f.display());
        }
        0
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of the test's own, removed even when the test fails.
    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tempdir(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("berth-docs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The options `berth CMD --help` shows: the parser's own view of the command (its
    /// deferred arguments built the way a real invocation builds them), independent of the
    /// tree the generator walks.
    fn help_options(path: &[&str]) -> Vec<String> {
        let mut argv = vec!["berth"];
        argv.extend_from_slice(path);
        argv.push("--help");
        let err = match super::super::Cli::command().try_get_matches_from(argv) {
            Ok(_) => panic!("{path:?} --help did not print help"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let mut help = err.render().to_string();
        // Visible aliases ("[alias: --cpu-shares]") are not options of their own: clap_mangen
        // does not list them.
        while let Some(i) = help.find("[alias") {
            let end = help[i..].find(']').map_or(help.len(), |j| i + j + 1);
            help.replace_range(i..end, "");
        }
        let mut opts: Vec<String> = help
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
            .filter(|w| w.starts_with('-') && w.len() > 1 && w != &"--")
            .map(|w| {
                w.trim_end_matches(|c: char| !c.is_alphanumeric())
                    .to_string()
            })
            .filter(|w| w.len() > 1)
            .collect();
        opts.sort();
        opts.dedup();
        opts
    }

    /// Man pages escape '-' as "\-".
    fn roff(opt: &str) -> String {
        opt.replace('-', "\\-")
    }

    #[test]
    fn every_command_has_a_page_with_every_option() {
        let dir = tempdir("pages");
        let files = generate(&dir.0).unwrap();
        let top = command();
        let subs: Vec<&clap::Command> =
            top.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        assert!(subs.len() >= 15, "only {} commands", subs.len());
        // Exactly the pages of the commands and the three completions: what install installs
        // and uninstall removes.
        let mut want: Vec<PathBuf> = subs
            .iter()
            .map(|s| Path::new(MAN_DIR).join(format!("berth-{}.8", s.get_name())))
            .chain([Path::new(MAN_DIR).join("berth.8")])
            .chain(COMPLETIONS.iter().map(|(_, p)| PathBuf::from(p)))
            .collect();
        want.sort();
        assert_eq!(files, want);

        let page = |name: &str| std::fs::read_to_string(dir.0.join(MAN_DIR).join(name)).unwrap();
        let main = page("berth.8");
        assert!(main.contains("\n.TH berth 8 "), "{main}");
        for opt in help_options(&[]) {
            assert!(main.contains(&roff(&opt)), "berth.8 lacks {opt}");
        }
        let mut checked = 0;
        for sub in &subs {
            let name = sub.get_name();
            let text = page(&format!("berth-{name}.8"));
            assert!(text.contains(&format!("\n.TH berth-{name} 8 ")), "{text}");
            assert!(
                main.contains(&roff(&format!("berth-{name}(8)"))),
                "berth.8 does not list {name}"
            );
            // Every option of the command, as its --help shows it.
            for opt in help_options(&[name]) {
                assert!(text.contains(&roff(&opt)), "berth-{name}.8 lacks {opt}");
                checked += 1;
            }
            if let Some(about) = sub.get_about() {
                let first = about.to_string();
                let word = first.split_whitespace().next().unwrap();
                assert!(text.contains(word), "berth-{name}.8 lacks its description");
            }
        }
        // Not vacuous: the deferred arguments were there (create alone has several).
        let create = page("berth-create.8");
        for opt in ["--bundle", "--pid-file", "--console-socket"] {
            assert!(create.contains(&roff(opt)), "berth-create.8 lacks {opt}");
        }
        assert!(checked > 40, "only {checked} options checked");
    }

    #[test]
    fn completions_know_every_command() {
        let dir = tempdir("completions");
        generate(&dir.0).unwrap();
        let top = command();
        for (shell, rel) in COMPLETIONS {
            let text = std::fs::read_to_string(dir.0.join(rel)).unwrap();
            for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
                assert!(
                    text.contains(sub.get_name()),
                    "{shell} completion lacks {}",
                    sub.get_name()
                );
            }
            assert!(text.contains("bundle"), "{shell}: no create --bundle");
        }
        // The bash script parses (the other shells may not be installed here).
        let st = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.0.join(COMPLETIONS[0].1))
            .status()
            .unwrap();
        assert!(st.success());
    }
}
