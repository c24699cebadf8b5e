//! cgroup v2 device control: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE generated from
//! the device rules, loaded and attached to the container's cgroup with raw bpf(2) calls (the
//! kernel ABI: include/uapi/linux/bpf.h). No loader library: the program is a few dozen
//! instructions and the calls are four.
//!
//! The program gets `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access_type = access << 16 | type) and returns 1 to allow, 0 to deny. For each access bit
//! asked for (mknod, read, write) it walks the rules from the last to the first; the first rule
//! that matches the device and holds the bit decides. A device is allowed when every bit is.

use anyhow::{Result, anyhow, bail};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE, Rule};

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (class | op | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_AND_K: u8 = 0x57;
const JMP_JA: u8 = 0x05;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// A tiny assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: (dst & 0xf) | (src << 4),
            off,
            imm,
        });
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    /// A jump to a label (code is JA, or a conditional with an immediate).
    fn jump(&mut self, code: u8, dst: u8, imm: i32, l: usize) {
        self.fixups.push((self.insns.len(), l));
        self.emit(code, dst, 0, 0, imm);
    }
    fn ret(&mut self, v: i32) {
        self.emit(ALU64_MOV_K, 0, 0, 0, v);
        self.emit(JMP_EXIT, 0, 0, 0, 0);
    }
    fn finish(mut self) -> Result<Vec<Insn>> {
        for (at, l) in self.fixups {
            let target = self.labels[l].ok_or_else(|| anyhow!("bpf: unbound label"))?;
            let off = target as i64 - (at as i64 + 1);
            self.insns[at].off =
                i16::try_from(off).map_err(|_| anyhow!("bpf: device program too long"))?;
        }
        Ok(self.insns)
    }
}

/// Compile the rules (registers: r2 type, r3 access, r4 major, r5 minor, r6 scratch).
fn compile(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut a = Asm::default();
    a.emit(LDX_MEM_W, 2, 1, 0, 0);
    a.emit(ALU64_MOV_X, 3, 2, 0, 0);
    a.emit(ALU64_RSH_K, 3, 0, 0, 16);
    a.emit(ALU64_AND_K, 2, 0, 0, 0xffff);
    a.emit(LDX_MEM_W, 4, 1, 4, 0);
    a.emit(LDX_MEM_W, 5, 1, 8, 0);
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let next_bit = a.label();
        a.emit(ALU64_MOV_X, 6, 3, 0, 0);
        a.emit(ALU64_AND_K, 6, 0, 0, bit as i32);
        a.jump(JMP_JEQ_K, 6, 0, next_bit);
        // The verifier refuses unreachable code: after a rule that matches everything, stop.
        let mut decided = false;
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next_rule = a.label();
            match r.typ {
                'c' => a.jump(JMP_JNE_K, 2, DEV_CHAR, next_rule),
                'b' => a.jump(JMP_JNE_K, 2, DEV_BLOCK, next_rule),
                _ => {}
            }
            if let Some(m) = r.major {
                a.jump(JMP_JNE_K, 4, m as i32, next_rule);
            }
            if let Some(m) = r.minor {
                a.jump(JMP_JNE_K, 5, m as i32, next_rule);
            }
            if r.allow {
                a.jump(JMP_JA, 0, 0, next_bit);
            } else {
                a.ret(0);
            }
            a.bind(next_rule);
            if r.typ == 'a' && r.major.is_none() && r.minor.is_none() {
                decided = true;
                break;
            }
        }
        if !decided {
            a.ret(0); // no rule holds this access: denied
        }
        a.bind(next_bit);
    }
    a.ret(1);
    a.finish()
}

// bpf(2) commands, program and attach types, flags.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

// The parts of `union bpf_attr` each command reads (the kernel zero-fills the rest).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of union bpf_attr for `cmd`, and
    // its size is passed along; pointers inside it point at buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd(r: i64) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned to us, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..5].copy_from_slice(b"berth");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(r) => Ok(fd(r)),
        Err(e) => {
            // Again with the verifier's log, for the error message.
            let mut log = vec![0u8; 1 << 16];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            bail!(
                "linux.resources.devices: loading the device eBPF program: {e}{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(" (verifier: {})", tail.join(" / "))
                }
            )
        }
    }
}

/// Ids of the device programs attached to a cgroup.
fn query(cg: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)
        .map_err(|e| anyhow!("querying the cgroup's device programs: {e}"))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn prog_fd(id: u32) -> Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)
        .map(fd)
        .map_err(|e| anyhow!("opening device program {id}: {e}"))
}

/// Load the program for `rules` and make it the cgroup's device program, replacing the one
/// attached before (atomically when there is exactly one).
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = load(&compile(rules)?)?;
    let cg: OwnedFd = std::fs::File::open(dir)
        .map_err(|e| anyhow!("opening cgroup {}: {e}", dir.display()))?
        .into();
    let old = query(&cg)?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    if let [one] = old[..] {
        let oldfd = prog_fd(one)?;
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = oldfd.as_raw_fd() as u32;
        if bpf(BPF_PROG_ATTACH, &mut attr).is_ok() {
            return Ok(());
        }
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        attr.replace_bpf_fd = 0;
    }
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        anyhow!(
            "linux.resources.devices: attaching the device eBPF program to {}: {e}",
            dir.display()
        )
    })?;
    for id in old {
        let old_fd = prog_fd(id)?;
        let mut d = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut d)
            .map_err(|e| anyhow!("detaching the old device program {id}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{allows, rules};
    use super::*;

    /// A little interpreter for the subset of eBPF `compile` emits, to check the program
    /// against the reference semantics without loading it.
    fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            let mut next = pc + 1;
            let jump = |c: bool| {
                if c {
                    (pc as i64 + 1 + i.off as i64) as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1);
                    r[dst] = ctx[i.off as usize / 4] as u64
                }
                ALU64_MOV_K => r[dst] = imm,
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_RSH_K => r[dst] >>= imm,
                ALU64_AND_K => r[dst] &= imm,
                JMP_JA => next = jump(true),
                JMP_JEQ_K => next = jump(r[dst] == imm),
                JMP_JNE_K => next = jump(r[dst] != imm),
                JMP_EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
            pc = next;
        }
    }

    #[test]
    fn program_matches_rules() {
        use oci_spec::runtime::LinuxDeviceCgroup;
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"},
                {"allow":true,"type":"b","major":7,"access":"r"},
                {"allow":false,"type":"c","major":10,"minor":229,"access":"w"},
                {"allow":true,"type":"a","major":4,"access":"r"}]"#,
        )
        .unwrap();
        let rs = rules(&spec).unwrap();
        let p = compile(&rs).unwrap();
        // Every instruction reachable (the verifier's rule), every jump in range.
        let mut seen = vec![false; p.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if seen[pc] {
                continue;
            }
            seen[pc] = true;
            let i = p[pc];
            let target = (pc as i64 + 1 + i.off as i64) as usize;
            match i.code {
                JMP_EXIT => {}
                JMP_JA => todo.push(target),
                JMP_JEQ_K | JMP_JNE_K => {
                    todo.push(target);
                    todo.push(pc + 1);
                }
                _ => todo.push(pc + 1),
            }
        }
        assert!(seen.iter().all(|&s| s), "unreachable instructions");
        for (t, tc) in [(DEV_CHAR as u32, 'c'), (DEV_BLOCK as u32, 'b')] {
            for (ma, mi) in [
                (1, 3),
                (1, 5),
                (10, 229),
                (10, 200),
                (7, 0),
                (7, 3),
                (4, 1),
                (136, 4),
                (8, 0),
            ] {
                for acc in 1..8 {
                    let want = allows(&rs, tc, ma, mi, acc);
                    let got = run(&p, t, acc, ma, mi) == 1;
                    assert_eq!(got, want, "{tc} {ma}:{mi} access {acc}");
                }
            }
        }
        assert!(allows(&rs, 'c', 10, 229, ACC_READ));
        assert!(!allows(&rs, 'c', 10, 229, ACC_WRITE));
        assert!(allows(&rs, 'c', 1, 3, ACC_READ | ACC_WRITE));
        assert!(!allows(&rs, 'b', 8, 0, ACC_READ));
        assert!(allows(&rs, 'b', 8, 0, ACC_MKNOD));
    }
}
