//! clone3(2) (with CLONE_INTO_CGROUP when a cgroup2 fd is given), clone(2) as the fallback.
//! Used like fork: the child continues on a copy of the caller's stack. berth is
//! single-threaded here, so the child may allocate and take locks freely.

use anyhow::{Result, anyhow};
use nix::errno::Errno;
use std::os::fd::RawFd;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub enum Forked {
    Child,
    Parent(i32),
}

/// Clone with namespace `flags`, into the cgroup `cgroup_fd` if given. When clone3 is not
/// available (ENOSYS) or refuses the cgroup (the caller then places the child itself),
/// `placed` tells whether the child is in its cgroup already.
pub fn clone(flags: libc::c_int, cgroup_fd: Option<RawFd>) -> Result<(Forked, bool)> {
    let mut args = CloneArgs {
        flags: flags as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork: the child returns here with 0 on a
    // copy of our address space. No other threads exist (checked by the caller's design).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok((
            if r == 0 {
                Forked::Child
            } else {
                Forked::Parent(r as i32)
            },
            cgroup_fd.is_some(),
        ));
    }
    let e = Errno::last();
    if cgroup_fd.is_some() && e != Errno::ENOSYS {
        // E.g. a cgroup that does not take processes: retry without, the caller places it.
        if let Ok((f, _)) = clone(flags, None) {
            return Ok((f, false));
        }
    }
    if e != Errno::ENOSYS && e != Errno::E2BIG {
        return Err(anyhow!("clone3: {e}"));
    }
    // SAFETY: the raw clone syscall with a null stack is fork with namespace flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok((Forked::Child, false)),
        r if r > 0 => Ok((Forked::Parent(r as i32), false)),
        _ => Err(anyhow!("clone: {}", Errno::last())),
    }
}

/// Can this kernel clone3 (into the cgroup `cgroup_fd`, if given)? A child is created and exits
/// at once (it runs nothing), and is reaped. Err: clone3's errno (ENOSYS: no clone3).
pub fn probe(cgroup_fd: Option<RawFd>) -> Result<(), Errno> {
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: as in `clone`; the child only calls _exit.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        0 => crate::sys::exit_now(0),
        r if r > 0 => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(r as i32), None);
            Ok(())
        }
        _ => Err(Errno::last()),
    }
}

/// A fork whose child is the caller's sibling (CLONE_PARENT): the caller's parent can wait for
/// it. clone3 refuses CLONE_PARENT with an exit signal; the old clone takes the parent's, so
/// this is clone(2). Ok(0) in the child, Ok(pid) in the caller.
pub fn fork_sibling() -> nix::Result<i32> {
    // SAFETY: the raw clone syscall with a null stack is fork; the caller is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    Errno::result(r).map(|r| r as i32)
}

/// Plain fork (for the second fork into a pid or time namespace).
pub fn fork() -> Result<Forked> {
    clone(0, None).map(|(f, _)| f)
}
