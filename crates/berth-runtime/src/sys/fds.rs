//! File-descriptor plumbing: dup2 onto fixed numbers and close_range.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// `dup2(2)` onto a fixed descriptor number (stdio set-up). The new
/// descriptor does not have close-on-exec set.
pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; an invalid fd is
    // reported as EBADF.
    if unsafe { libc::dup2(old, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Mark every descriptor from `first` upwards close-on-exec, so nothing of
/// the runtime leaks into the container process (CVE-2024-21626 class).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on
    // descriptors; it touches no memory.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd instead.
    let dir = std::fs::read_dir("/proc/self/fd")?;
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a possibly stale fd is harmless (EBADF).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Clear close-on-exec on one descriptor (for --preserve-fds).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD only changes descriptor flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take ownership of a descriptor the kernel just handed us (SCM_RIGHTS).
pub fn adopt(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller got `fd` from the kernel in a control message; it is
    // open and nothing else in the process owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
