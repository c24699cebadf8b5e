//! `linux.seccomp`. The filter is compiled in berth before the fork and loaded by the container
//! process (before the user switch, or right before exec with noNewPrivileges).
//!
//! Backend: libseccomp (Debian's 2.5, through the `libseccomp` crate) builds the BPF program in
//! the parent — it knows every architecture's syscall table, builds one filter for several
//! architectures (x86_64 + x86 + x32) and supports SCMP_ACT_NOTIFY. The program is exported as
//! raw BPF, runc's "-ENOSYS stub" is put in front of it, and the child loads it with seccomp(2)
//! itself: no libseccomp calls (or allocations) after the fork, and flags that libseccomp 2.5
//! does not know (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) can still be passed.

use anyhow::{Result, anyhow, bail};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;
/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// A compiled filter, ready to load.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    /// seccomp(2) flags, NEW_LISTENER included when a rule notifies.
    flags: u32,
    notify: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("insns", &self.prog.len())
            .field("flags", &self.flags)
            .field("notify", &self.notify)
            .finish()
    }
}

fn debug(msg: &str) {
    crate::logger::debug(msg);
}

/// The libseccomp action for an OCI action and its errnoRet (EPERM when absent, as runc).
fn scmp_action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    let ret = |max: u32| -> Result<u32> {
        let e = errno.unwrap_or(libc::EPERM as u32);
        if e > max {
            bail!("{field}: errno {e} is out of range (at most {max})");
        }
        Ok(e)
    };
    let takes_errno = matches!(
        a,
        LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
    );
    if errno.is_some() && !takes_errno {
        bail!(
            "{field}: an errno return is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}"
        );
    }
    Ok(match a {
        // SCMP_ACT_KILL is libseccomp's (and the kernel's) SECCOMP_RET_KILL_THREAD.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret(4095)? as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret(0xffff)? as u16),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::native(),
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The AUDIT_ARCH_* value the kernel puts in `seccomp_data.arch` (x32 shares x86_64's).
fn audit_arch(a: ScmpArch) -> Option<u32> {
    Some(match a {
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::Riscv64 => 0xc000_00f3,
        // s390 multiplexes unknown syscalls through syscall 0; runc special-cases it. Not
        // worth it here: no stub, the profile's default applies.
        _ => return None,
    })
}

fn scmp_cmp(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value2: Option<u64>,
) -> ScmpArgCompare {
    let arg = index as u32;
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpArgCompare::new(arg, ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => ScmpArgCompare::new(arg, ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => {
            ScmpArgCompare::new(arg, ScmpCompareOp::LessOrEqual, value)
        }
        LinuxSeccompOperator::ScmpCmpEq => ScmpArgCompare::new(arg, ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => {
            ScmpArgCompare::new(arg, ScmpCompareOp::GreaterEqual, value)
        }
        LinuxSeccompOperator::ScmpCmpGt => ScmpArgCompare::new(arg, ScmpCompareOp::Greater, value),
        // runtime-spec: `value` is the mask, `valueTwo` the value compared with.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(value), value2.unwrap_or(0))
        }
    }
}

/// The actions that let unknown (newer) syscalls through anyway: no -ENOSYS stub for them.
fn permissive(a: ScmpAction) -> bool {
    matches!(
        a,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    )
}

impl Filter {
    /// Compile and validate (errors name the field).
    pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
        let default = scmp_action(
            s.default_action(),
            s.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?;
        if default == ScmpAction::Notify {
            bail!(
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action \
                 (berth's own last syscalls would wait for an agent that has no listener yet)"
            );
        }
        if s.listener_metadata().is_some() && s.listener_path().is_none() {
            bail!("linux.seccomp.listenerMetadata: set without listenerPath");
        }
        let mut ctx = ScmpFilterContext::new(default)
            .map_err(|e| anyhow!("linux.seccomp: creating the filter: {e}"))?;

        // Architectures: the native one is always in; each listed one is added.
        let mut arches = vec![ScmpArch::native()];
        for (i, a) in s.architectures().iter().flatten().enumerate() {
            let sa = scmp_arch(*a);
            if arches.contains(&sa) {
                continue;
            }
            ctx.add_arch(sa).map_err(|e| {
                anyhow!("linux.seccomp.architectures[{i}]: {a}: not supported by libseccomp: {e}")
            })?;
            arches.push(sa);
        }

        // Rules.
        let mut notify = false;
        let mut mentions_clone3 = false;
        let mut names_seen: Vec<&str> = vec![];
        for (i, sc) in s.syscalls().iter().flatten().enumerate() {
            let field = format!("linux.seccomp.syscalls[{i}]");
            let act = scmp_action(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
            if sc.names().is_empty() {
                bail!("{field}.names: at least one syscall name is required");
            }
            let args = sc.args().as_deref().unwrap_or_default();
            let mut conds = Vec::with_capacity(args.len());
            for (j, a) in args.iter().enumerate() {
                if a.index() >= 6 {
                    bail!(
                        "{field}.args[{j}].index: {} is out of range (a syscall has 6 arguments, 0-5)",
                        a.index()
                    );
                }
                conds.push(scmp_cmp(a.index(), a.op(), a.value(), a.value_two()));
            }
            // As runc: conditions on different arguments are AND'ed in one rule; several
            // conditions on the same argument make one rule each (OR), which is what libseccomp
            // can express.
            let same_index = args
                .iter()
                .enumerate()
                .any(|(j, a)| args[..j].iter().any(|b| b.index() == a.index()));
            if act == ScmpAction::Notify {
                if sc.names().iter().any(|n| n == "sendmsg") {
                    bail!(
                        "{field}.action: SCMP_ACT_NOTIFY cannot be used for sendmsg: berth \
                         hands the listener over with it"
                    );
                }
                notify = true;
            }
            for name in sc.names() {
                names_seen.push(name);
                if name == "clone3" {
                    mentions_clone3 = true;
                }
                if act == default {
                    // libseccomp refuses rules that repeat the default action; they change nothing.
                    continue;
                }
                let nr = match ScmpSyscall::from_name(name) {
                    Ok(nr) => nr,
                    Err(_) => {
                        debug(&format!(
                            "seccomp: {field}: syscall {name:?} is unknown to libseccomp, skipped"
                        ));
                        continue;
                    }
                };
                let res = if same_index {
                    conds
                        .iter()
                        .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
                } else {
                    ctx.add_rule_conditional(act, nr, &conds).map(|_| ())
                };
                res.map_err(|e| anyhow!("{field}: syscall {name:?}: {e}"))?;
            }
        }

        // glibc falls back from clone3 to clone only on ENOSYS: a profile written before clone3
        // that denies by default must not make every fork fail with EPERM.
        let enosys = ScmpAction::Errno(libc::ENOSYS);
        if !mentions_clone3 && !permissive(default) && default != enosys {
            match ScmpSyscall::from_name("clone3") {
                Ok(nr) => {
                    ctx.add_rule(enosys, nr)
                        .map_err(|e| anyhow!("linux.seccomp: clone3 -> ENOSYS rule: {e}"))?;
                }
                Err(_) => debug("seccomp: clone3 unknown to libseccomp, no ENOSYS rule"),
            }
        }

        // Flags.
        let mut flags = 0u32;
        let mut wait_killable: Option<usize> = None;
        for (i, f) in s.flags().iter().flatten().enumerate() {
            let bit = match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    wait_killable = Some(i);
                    continue;
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                    // The container process has one thread when it loads the filter.
                    debug("seccomp: SECCOMP_FILTER_FLAG_TSYNC ignored (single-threaded)");
                    continue;
                }
            };
            if !crate::sys::seccomp_accepts_flags(bit) {
                bail!("linux.seccomp.flags[{i}]: {f} is not supported by this kernel");
            }
            flags |= bit;
        }
        if notify {
            if s.listener_path().is_none() {
                bail!("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY");
            }
            flags |= FLAG_NEW_LISTENER;
            if !crate::sys::seccomp_accepts_flags(FLAG_NEW_LISTENER) {
                bail!("linux.seccomp: SCMP_ACT_NOTIFY is not supported by this kernel");
            }
        }
        if let Some(i) = wait_killable {
            if notify {
                if !crate::sys::seccomp_accepts_flags(FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV) {
                    bail!(
                        "linux.seccomp.flags[{i}]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not \
                         supported by this kernel"
                    );
                }
                flags |= FLAG_WAIT_KILLABLE_RECV;
            } else {
                // The kernel takes it only with a listener; without notify rules it means nothing.
                debug(
                    "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no SCMP_ACT_NOTIFY rule",
                );
            }
        }

        let body = export(&ctx)?;
        let mut prog = if permissive(default) || default == enosys {
            vec![]
        } else {
            enosys_stub(&arches, &names_seen)?
        };
        prog.extend(body);
        if prog.len() > MAX_INSNS {
            bail!(
                "linux.seccomp: the compiled filter has {} instructions, more than the kernel's \
                 limit of {MAX_INSNS}",
                prog.len()
            );
        }
        debug(&format!(
            "seccomp: {} BPF instructions, flags {flags:#x}, architectures {arches:?}",
            prog.len()
        ));
        Ok(Filter {
            prog,
            flags,
            notify,
        })
    }

    /// Does the filter use SCMP_ACT_NOTIFY (a listener fd comes out of `load`)?
    #[allow(dead_code)]
    pub fn wants_notify(&self) -> bool {
        self.notify
    }

    /// Load into the calling process. Returns the notify listener fd if any. Async-signal-safe
    /// apart from building an error: one seccomp(2) call on memory prepared before the fork.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        crate::sys::seccomp_set_filter(&self.prog, self.flags).map_err(|e| {
            anyhow!(
                "linux.seccomp: loading the filter (flags {:#x}): {e}",
                self.flags
            )
        })
    }
}

/// libseccomp's BPF program, read back through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    use std::io::{Read, Seek};
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| anyhow!("linux.seccomp: memfd_create: {e}"))?;
    ctx.export_bpf(&fd)
        .map_err(|e| anyhow!("linux.seccomp: exporting the filter: {e}"))?;
    let mut f = std::fs::File::from(fd);
    f.rewind()?;
    let mut raw = vec![];
    f.read_to_end(&mut raw)?;
    if raw.len() % 8 != 0 {
        bail!(
            "linux.seccomp: libseccomp exported {} bytes, not whole instructions",
            raw.len()
        );
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// A tiny BPF assembler with labels, for the stub.
enum Ins {
    /// `ld [off]` (32-bit, absolute into seccomp_data)
    Ld(u32),
    Jeq(u32, usize, usize),
    Jgt(u32, usize, usize),
    Jset(u32, usize, usize),
    Ja(usize),
    Ret(u32),
    Label(usize),
}

fn assemble(code: &[Ins]) -> Result<Vec<libc::sock_filter>> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGT_K: u16 = 0x25;
    const JSET_K: u16 = 0x45;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    let mut pos = std::collections::HashMap::new();
    let mut pc = 0usize;
    for i in code {
        match i {
            Ins::Label(l) => {
                pos.insert(*l, pc);
            }
            _ => pc += 1,
        }
    }
    let mut out = vec![];
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    for i in code {
        let pc = out.len();
        let rel = |l: &usize| -> Result<usize> {
            let t = *pos
                .get(l)
                .ok_or_else(|| anyhow!("seccomp stub: unplaced label"))?;
            t.checked_sub(pc + 1)
                .ok_or_else(|| anyhow!("seccomp stub: backward jump"))
        };
        let short = |l: &usize| -> Result<u8> {
            u8::try_from(rel(l)?).map_err(|_| anyhow!("seccomp stub: jump too long"))
        };
        match i {
            Ins::Label(_) => continue,
            Ins::Ld(off) => out.push(ins(LD_W_ABS, 0, 0, *off)),
            Ins::Jeq(k, t, f) => out.push(ins(JEQ_K, short(t)?, short(f)?, *k)),
            Ins::Jgt(k, t, f) => out.push(ins(JGT_K, short(t)?, short(f)?, *k)),
            Ins::Jset(k, t, f) => out.push(ins(JSET_K, short(t)?, short(f)?, *k)),
            Ins::Ja(l) => out.push(ins(JA, 0, 0, rel(l)? as u32)),
            Ins::Ret(k) => out.push(ins(RET_K, 0, 0, *k)),
        }
    }
    Ok(out)
}

/// runc's "-ENOSYS stub": for each architecture of the filter, a syscall number above the
/// highest one the profile names is newer than the profile and gets ENOSYS (so libc falls back
/// to older syscalls) instead of the default action. Everything else falls through to the
/// libseccomp program, which starts by loading the arch again.
fn enosys_stub(arches: &[ScmpArch], names: &[&str]) -> Result<Vec<libc::sock_filter>> {
    let max_of = |arch: ScmpArch| -> Option<u32> {
        names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(|s| s.as_raw_syscall())
            .filter(|&n| n >= 0)
            .max()
            .map(|n| {
                let n = n as u32;
                if arch == ScmpArch::X32 {
                    n | X32_SYSCALL_BIT
                } else {
                    n
                }
            })
    };
    // Group by the kernel's arch value: x86_64 and x32 share one, told apart by X32_SYSCALL_BIT.
    let mut groups: Vec<(u32, Option<u32>, Option<u32>)> = vec![];
    for &a in arches {
        let Some(audit) = audit_arch(a) else {
            debug(&format!("seccomp: no -ENOSYS stub for {a:?}"));
            continue;
        };
        let Some(max) = max_of(a) else { continue };
        let g = match groups.iter_mut().find(|g| g.0 == audit) {
            Some(g) => g,
            None => {
                groups.push((audit, None, None));
                groups.last_mut().unwrap()
            }
        };
        if a == ScmpArch::X32 {
            g.2 = Some(max);
        } else {
            g.1 = Some(max);
        }
    }
    if groups.is_empty() {
        return Ok(vec![]);
    }
    const ENOSYS: usize = 0;
    const FILTER: usize = 1;
    let mut next_label = 2;
    let mut label = || {
        next_label += 1;
        next_label
    };
    let mut code = vec![Ins::Ld(4)];
    for (audit, max, max_x32) in groups {
        let (this, next) = (label(), label());
        code.push(Ins::Jeq(audit, this, next));
        code.push(Ins::Label(this));
        code.push(Ins::Ld(0));
        if audit == AUDIT_ARCH_X86_64 {
            let (native, x32) = (label(), label());
            code.push(Ins::Jset(X32_SYSCALL_BIT, x32, native));
            code.push(Ins::Label(native));
            match max {
                Some(m) => code.push(Ins::Jgt(m, ENOSYS, FILTER)),
                None => code.push(Ins::Ja(FILTER)),
            }
            code.push(Ins::Label(x32));
            match max_x32 {
                Some(m) => code.push(Ins::Jgt(m, ENOSYS, FILTER)),
                None => code.push(Ins::Ja(FILTER)),
            }
        } else if let Some(m) = max {
            code.push(Ins::Jgt(m, ENOSYS, FILTER));
        } else {
            code.push(Ins::Ja(FILTER));
        }
        code.push(Ins::Label(next));
    }
    code.push(Ins::Ja(FILTER));
    code.push(Ins::Label(ENOSYS));
    code.push(Ins::Ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    code.push(Ins::Label(FILTER));
    assemble(&code)
}

/// Send the notify listener fd and the container state to `listenerPath` (runtime-spec
/// "seccomp notify"), from the runtime side: one message whose payload is the container process
/// state (JSON) and whose SCM_RIGHTS carry the listener, named "seccompFd" in `fds`.
pub fn send_listener(s: &LinuxSeccomp, fd: BorrowedFd, state: &serde_json::Value) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::io::Write;
    let path = s
        .listener_path()
        .as_ref()
        .ok_or_else(|| anyhow!("linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY"))?;
    let mut msg = serde_json::json!({
        "ociVersion": state.get("ociVersion").cloned().unwrap_or(crate::SPEC_VERSION.into()),
        "fds": ["seccompFd"],
        "pid": state.get("pid").cloned().unwrap_or(0.into()),
        "state": state,
    });
    if let Some(m) = s.listener_metadata()
        && !m.is_empty()
    {
        msg["metadata"] = m.as_str().into();
    }
    let body = serde_json::to_vec(&msg)?;
    let mut sock = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        anyhow!(
            "linux.seccomp.listenerPath: connecting to {}: {e}",
            path.display()
        )
    })?;
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_secs(30)));
    let fds = [fd.as_raw_fd()];
    let n = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[std::io::IoSlice::new(&body)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                break r.map_err(|e| {
                    anyhow!(
                        "linux.seccomp.listenerPath: sending to {}: {e}",
                        path.display()
                    )
                })?;
            }
        }
    };
    sock.write_all(&body[n..]).map_err(|e| {
        anyhow!(
            "linux.seccomp.listenerPath: sending to {}: {e}",
            path.display()
        )
    })?;
    Ok(())
}
