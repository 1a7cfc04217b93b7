//! `clone(2)` used as a fork that also creates namespaces.
#![allow(unsafe_code)]

use std::io;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// Which side of the fork we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fork the calling process, creating the namespaces in `flags` for the child.
///
/// Works like `fork(2)` (the child runs on a copy of the parent's stack) but
/// takes namespace flags, so a new user namespace belongs to the child only
/// and the parent can still write its id maps.
///
/// The caller must be single-threaded: the runtime never starts threads.
pub fn fork_with_namespaces(flags: CloneFlags) -> io::Result<Forked> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack pointer the kernel runs the child on a
    // copy-on-write copy of our stack, exactly as fork(2) does; the process is
    // single-threaded so no lock held by another thread is copied locked.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Leave the process immediately, without running atexit handlers or
/// flushing stdio buffers that belong to the parent.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}
