//! Process attributes set through `prctl(2)`, `personality(2)` and friends.
#![allow(unsafe_code)]

use std::io;

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Mark the process (non-)dumpable: a non-dumpable process's /proc files,
/// /proc/<pid>/exe among them, are out of reach of unprivileged processes.
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0, 0, 0) } as libc::c_long)
}

/// Ask the kernel to send `signal` to us when our parent dies.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) } as libc::c_long)
}

/// Become the reaper of orphaned descendants.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } as libc::c_long)
}

/// `personality(2)`.
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes one integer and has no memory arguments.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    check(ret as libc::c_long)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)` for the calling process.
pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let prio = ((class << 13) | level) as libc::c_long;
    // SAFETY: ioprio_set takes three integers.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0 as libc::c_long, prio) })
}
