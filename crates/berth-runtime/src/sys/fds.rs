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

/// Close every descriptor from `first` upwards except those in `keep`: what
/// the caller leaked to us and what the runtime no longer needs is gone
/// before the container's paths (cwd, executable) are resolved, so no
/// `/proc/self/fd/N` can lead back to the host (CVE-2024-21626 class).
pub fn close_from_except(first: u32, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&k| k >= first as RawFd)
        .map(|&k| k as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = first;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k > from {
            close_range(from, k - 1)?;
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; none of the ones in the
    // range is used afterwards (the caller keeps the ones it needs).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    if ret == 0 {
        return Ok(());
    }
    // Older kernels (or a filter that denies close_range): one by one.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| *fd >= first as RawFd && (*fd as u32) <= last)
        .collect();
    for fd in fds {
        // SAFETY: closing a descriptor nothing else in this process uses;
        // a stale number (the read_dir's own) gives EBADF, harmlessly.
        unsafe { libc::close(fd) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn close_from_except_keeps_only_what_it_is_told() {
        let files: Vec<std::fs::File> = (0..4).map(|_| tempfile::tempfile().unwrap()).collect();
        let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let first = fds[1] as u32;
        let keep = [fds[2]];
        // Only the numbers we opened are in range: the test harness's own
        // descriptors are below fds[0] or beyond our reach if it opens more.
        let last = *fds.iter().max().unwrap();
        close_range_checked(first, last, &keep);
        let open = |fd: RawFd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok();
        assert!(open(fds[0]) && open(fds[2]));
        assert!(!open(fds[1]) && !open(fds[3]));
        std::mem::forget(files);
    }

    fn close_range_checked(first: u32, last: RawFd, keep: &[RawFd]) {
        // Same walk as close_from_except, bounded above for the test.
        let mut from = first;
        for k in keep.iter().map(|&k| k as u32).chain([last as u32 + 1]) {
            if k > from {
                close_range(from, k - 1).unwrap();
            }
            from = k + 1;
        }
    }
}
