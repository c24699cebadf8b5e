// Records the git commit for `berth --version`, and picks the release link layout.
use std::path::Path;

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    // Rebuild when the commit changes. In a git worktree `.git` is a file: ask git where HEAD
    // and the branch refs really are (watching a path that does not exist reruns every build).
    for what in ["HEAD", "refs/heads"] {
        let path =
            git(&["rev-parse", "--git-path", what]).unwrap_or_else(|| format!(".git/{what}"));
        println!("cargo:rerun-if-changed={path}");
    }
    link_layout();
}

/// The trimmed output of a git command, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Release builds for x86_64 Linux lay the functions an everyday lifecycle runs (create, start,
/// state, exec, kill, delete, run; listed hot-first in hack/link/berth.order, made by
/// `make link-order`) at the start of .text. A command then faults in a few compact 64 KiB windows
/// of code instead of most of the binary: peak RSS of `create` falls by about 1 MiB. Needs rustc's
/// default linker on this target, rust-lld (rustc >= 1.90); BERTH_NO_ORDER=1 turns it off.
/// The link map is kept next to the binary (target/release/berth.map) for hack/link/ tools; the
/// unit-test harness of the bin gets the same link arguments and overwrites it (the tools check).
fn link_layout() {
    println!("cargo:rerun-if-env-changed=BERTH_NO_ORDER");
    println!("cargo:rerun-if-changed=hack/link/berth.order");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !release
        || target != "x86_64-unknown-linux-gnu"
        || std::env::var_os("BERTH_NO_ORDER").is_some()
    {
        return;
    }
    if !rustc_links_with_lld() {
        println!(
            "cargo:warning=rustc < 1.90 links with the system linker: building without the hot-first layout"
        );
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let order = Path::new(&manifest).join("hack/link/berth.order");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // Packed relative relocations (DT_RELR): the ~9000 relocations of a PIE take 3 KB instead of
    // 220 KB that ld.so reads on every start (create peak RSS -150 KB). The loader must know
    // DT_RELR (glibc >= 2.36); berth is built where it runs, so ask this machine's glibc.
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // OUT_DIR is <target>/<profile>/build/berth-<hash>/out.
    if let Some(dir) = std::env::var_os("OUT_DIR")
        .as_ref()
        .and_then(|o| Path::new(o).ancestors().nth(3))
    {
        println!(
            "cargo:rustc-link-arg-bin=berth=-Wl,-Map={}",
            dir.join("berth.map").display()
        );
    }
}

/// rustc 1.90 made the bundled rust-lld the default linker for x86_64-unknown-linux-gnu.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    version_at_least(std::process::Command::new(rustc).arg("--version"), (1, 90))
}

/// `getconf GNU_LIBC_VERSION` says e.g. "glibc 2.36".
fn glibc_at_least(major: u32, minor: u32) -> bool {
    version_at_least(
        std::process::Command::new("getconf").arg("GNU_LIBC_VERSION"),
        (major, minor),
    )
}

/// Whether the second word a command prints ("rustc 1.95.0 ...", "glibc 2.36") is >= `want`.
fn version_at_least(cmd: &mut std::process::Command, want: (u32, u32)) -> bool {
    let Ok(out) = cmd.output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut nums = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0)) >= want
}
