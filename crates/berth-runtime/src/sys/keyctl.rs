//! The session keyring, through `keyctl(2)`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_DESCRIBE: libc::c_long = 6;

/// Join (creating it if needed) the session keyring named `name`; returns its serial.
pub fn join_session_keyring(name: &CStr) -> io::Result<i32> {
    // SAFETY: the name is a valid NUL-terminated string that outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// The key's description, "type;uid;gid;perm;description" (perm in hex).
pub fn describe(key: i32) -> io::Result<String> {
    let mut buf = [0u8; 512];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            key as libc::c_long,
            buf.as_mut_ptr(),
            buf.len() as libc::c_long,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (ret as usize).min(buf.len());
    let text = CStr::from_bytes_until_nul(&buf[..len])
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&buf[..len]).into_owned());
    Ok(text)
}

/// Set the key's permission mask.
pub fn set_perm(key: i32, perm: u32) -> io::Result<()> {
    // SAFETY: KEYCTL_SETPERM takes two integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            key as libc::c_long,
            perm as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
