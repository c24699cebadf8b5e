//! CVE-2019-5736 defence. berth forks without re-exec, so the process that execs the container's
//! program is a copy of the berth binary: while it runs, `/proc/self/exe` is the host's berth,
//! and a container program that is `/proc/self/exe` (or a script whose `#!` names it) would run
//! berth inside the container, where it can reopen its exe for writing once no berth is busy.
//!
//! So the container's program is not exec'd from berth: berth execs a 200-byte static trampoline
//! from a sealed memfd, and the trampoline execs the program. During that last exec
//! `/proc/self/exe` is the sealed memfd — running it runs the trampoline again, writing to it
//! fails — and the host binary is never reachable. The memfd is made once per command before the
//! fork (~10 µs); the extra exec of a tiny static ELF costs tens of µs, not the ~1 ms of
//! re-executing berth (see README, Design).
//!
//! Not used (the program is exec'd directly) when an LSM exec label is set — the label applies
//! to the next exec, which must be the program's — or on architectures without a trampoline.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};

/// The trampoline's code (x86_64): `execve(argv[1], &argv[2], envp)` when there are at least
/// two arguments after its name, else (and when execve fails) `exit_group(127)`. The argument
/// check ends a `#!/proc/self/exe` script loop (the kernel runs us with only the script's path).
/// Assembled from:
///     mov (%rsp),%rax; cmp $3,%rax; jl 1f
///     mov 16(%rsp),%rdi; lea 24(%rsp),%rsi; lea 16(%rsp,%rax,8),%rdx; mov $59,%eax; syscall
///     1: mov $127,%edi; mov $231,%eax; syscall
#[cfg(target_arch = "x86_64")]
const CODE: [u8; 44] = [
    0x48, 0x8b, 0x04, 0x24, 0x48, 0x83, 0xf8, 0x03, 0x7c, 0x16, 0x48, 0x8b, 0x7c, 0x24, 0x10, 0x48,
    0x8d, 0x74, 0x24, 0x18, 0x48, 0x8d, 0x54, 0xc4, 0x10, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
];

/// A static ELF64 executable: header, a PT_LOAD (r-x) of the whole file, a PT_GNU_STACK (rw-),
/// then the code.
#[cfg(target_arch = "x86_64")]
fn elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HDRS: u64 = 64 + 2 * 56;
    let total = HDRS + CODE.len() as u64;
    let mut e = Vec::with_capacity(total as usize);
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + HDRS).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    e.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    e.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    e.extend_from_slice(&2u16.to_le_bytes()); // phnum
    e.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    let phdr = |e: &mut Vec<u8>, typ: u32, flags: u32, size: u64, vaddr: u64, align: u64| {
        e.extend_from_slice(&typ.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&0u64.to_le_bytes()); // offset
        e.extend_from_slice(&vaddr.to_le_bytes());
        e.extend_from_slice(&vaddr.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&align.to_le_bytes());
    };
    phdr(&mut e, 1, 5, total, BASE, 0x1000); // PT_LOAD, R|X
    phdr(&mut e, 0x6474_e551, 6, 0, 0, 16); // PT_GNU_STACK, R|W
    e.extend_from_slice(&CODE);
    e
}

#[cfg(not(target_arch = "x86_64"))]
fn elf() -> Vec<u8> {
    Vec::new()
}

/// The sealed memfd holding the trampoline (close-on-exec), or None where it cannot be made
/// (no trampoline for this architecture, no memfd, or exec from memfds forbidden).
pub fn prepare() -> Option<OwnedFd> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let code = elf();
    if code.is_empty() {
        return None;
    }
    // MFD_EXEC (Linux 6.3) asks for an executable memfd where vm.memfd_noexec would refuse it.
    const MFD_EXEC: u32 = 0x10;
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let fd = memfd_create(c"berth-exec", base | MFdFlags::from_bits_retain(MFD_EXEC))
        .or_else(|_| memfd_create(c"berth-exec", base))
        .ok()?;
    if nix::unistd::write(&fd, &code).ok()? != code.len() {
        return None;
    }
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).ok()?;
    Some(fd)
}

/// The execs that start the container's program, prepared before the last steps of the setup
/// (`sys::PreparedExec`): through the trampoline when there is one, else (or if that fails) the
/// program directly.
pub struct Exec<'a> {
    tramp: Option<(crate::sys::PreparedExec, &'a OwnedFd)>,
    direct: crate::sys::PreparedExec,
}

impl<'a> Exec<'a> {
    pub fn new(
        tramp: Option<&'a OwnedFd>,
        exe: &CStr,
        args: &[CString],
        envp: &[CString],
    ) -> Exec<'a> {
        let tramp = tramp.map(|t| {
            let mut targv: Vec<CString> = Vec::with_capacity(args.len() + 2);
            targv.push(c"berth-exec".to_owned());
            targv.push(exe.to_owned());
            targv.extend(args.iter().cloned());
            // execve(2) through /proc/self/fd, not execveat(2): a profile that lets the
            // container run programs allows execve; execveat is the fallback where /proc is
            // not mounted.
            let path = CString::new(format!("/proc/self/fd/{}", t.as_raw_fd())).unwrap_or_default();
            (crate::sys::PreparedExec::new(path, targv, envp.to_vec()), t)
        });
        Exec {
            tramp,
            direct: crate::sys::PreparedExec::new(exe.to_owned(), args.to_vec(), envp.to_vec()),
        }
    }

    /// The program, for messages.
    pub fn name(&self) -> String {
        self.direct.path().to_string_lossy().into_owned()
    }

    /// Exec; returns only on failure. If the trampoline itself cannot be exec'd (a seccomp
    /// profile, a noexec policy), the program is exec'd directly. On the way that works, the
    /// only system call is one execve.
    pub fn exec(&self) -> nix::errno::Errno {
        if let Some((t, fd)) = &self.tramp {
            let e = t.exec();
            if e == nix::errno::Errno::ENOENT {
                let targv: Vec<&CStr> = t.args().iter().map(|a| a.as_c_str()).collect();
                let envp: Vec<&CStr> = t.env().iter().map(|e| e.as_c_str()).collect();
                let Err(_) = nix::unistd::execveat(
                    fd,
                    c"",
                    &targv,
                    &envp,
                    nix::fcntl::AtFlags::AT_EMPTY_PATH,
                );
            }
        }
        self.direct.exec()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn trampoline_runs_the_program_with_its_argv() {
        use std::ffi::CString;
        let t = super::prepare().expect("a trampoline memfd");
        // Sealed: no write, no growth.
        assert!(nix::unistd::write(&t, b"x").is_err());
        let out = std::env::temp_dir().join(format!("berth-tramp-{}", std::process::id()));
        // The child only builds its argv and execs (or _exits): nothing of the test harness's
        // other threads is needed there.
        match crate::spawn::clone::fork().unwrap() {
            crate::spawn::clone::Forked::Child => {
                let sh = CString::new("/bin/sh").unwrap();
                let args = [
                    CString::new("sh").unwrap(),
                    CString::new("-c").unwrap(),
                    CString::new(format!("echo \"$0 $1 $X\" > {}", out.display())).unwrap(),
                    CString::new("one").unwrap(),
                    CString::new("uno").unwrap(),
                ];
                let env = [CString::new("X=two").unwrap()];
                super::Exec::new(Some(&t), &sh, &args, &env).exec();
                crate::sys::exit_now(99)
            }
            crate::spawn::clone::Forked::Parent(pid) => {
                let child = nix::unistd::Pid::from_raw(pid);
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        let got = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(got.trim(), "one uno two");
    }
}
