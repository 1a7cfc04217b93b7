//! The seccomp(2) system call: the crate's only unsafe code. It runs in a
//! freshly cloned child, so it does not allocate. (no_new_privs is the
//! runtime's to set, through nix.)

use std::os::fd::{FromRawFd, OwnedFd};

use crate::{Error, Program, SockFilter};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// Installs `program` on the calling thread (all threads with
/// SECCOMP_FILTER_FLAG_TSYNC). Returns the notification listener when the
/// program has SCMP_ACT_NOTIFY rules. Does not allocate, so it is safe in a
/// child cloned from a multi-threaded process.
pub fn load(program: &Program) -> Result<Option<OwnedFd>, Error> {
    let filter = program.instructions();
    // A Program holds at most 4096 instructions (compile and from_bytes
    // check), so the length fits.
    let fprog = SockFprog {
        len: filter.len() as u16,
        filter: filter.as_ptr(),
    };
    // SAFETY: fprog and the instructions it points to are alive for the whole
    // call; the kernel copies them and keeps no pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(program.flags()),
            &fprog as *const SockFprog,
        )
    };
    if ret < 0 {
        return Err(Error::Load(last_errno()));
    }
    if !program.needs_listener() {
        return Ok(None);
    }
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a new
    // file descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Real kernel tests: each filter is loaded in a forked child that makes only
/// raw system calls and reports through its exit code.
#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use super::*;

    /// no_new_privs for the test children (the runtime sets it through nix).
    fn set_no_new_privs() -> Result<(), ()> {
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only and touches no memory.
        match unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } {
            0 => Ok(()),
            _ => Err(()),
        }
    }
    use crate::compile;
    use crate::docker::{self, Target};

    /// Runs `child` in a forked process; returns its exit code, or 128 +
    /// the signal that killed it.
    fn in_child(child: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child runs only `child`, which makes raw system calls
        // without allocating or taking locks, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = child();
            // SAFETY: ends the forked child without running anything of the
            // parent's (destructors, atexit handlers, the test harness).
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; status is a valid out pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        }
    }

    /// A raw system call: Ok(return value) or Err(errno).
    fn raw(nr: libc::c_long, args: [libc::c_long; 4]) -> Result<libc::c_long, i32> {
        // SAFETY: the tests pass only integer arguments, null pointers or
        // pointers to live memory, as each call expects.
        let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3]) };
        if ret < 0 {
            Err(last_errno())
        } else {
            Ok(ret)
        }
    }

    fn spec(json: serde_json::Value) -> oci_spec::runtime::LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn denied_syscall_returns_its_errno_and_others_work() {
        let prog = compile(&spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG}]
        })))
        .unwrap();
        let code = in_child(|| {
            if set_no_new_privs().is_err() {
                return 1;
            }
            match load(&prog) {
                Ok(None) => {}
                _ => return 2,
            }
            if raw(libc::SYS_getppid, [0; 4]) != Err(libc::ENOMSG) {
                return 3;
            }
            if !matches!(raw(libc::SYS_getpid, [0; 4]), Ok(pid) if pid > 0) {
                return 4;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn notify_rule_returns_a_listener() {
        let prog = compile(&spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .unwrap();
        assert!(prog.needs_listener());
        let code = in_child(|| {
            if set_no_new_privs().is_err() {
                return 1;
            }
            match load(&prog) {
                Ok(Some(fd)) if fd.as_raw_fd() >= 0 => 0,
                Ok(_) => 2,
                Err(_) => 3,
            }
        });
        assert_eq!(code, 0);
    }

    /// About 1,800 instructions with long jumps through `ja`: the kernel's
    /// checker must take it and the far rules must still match.
    #[test]
    fn large_program_loads() {
        let names = [
            "getppid", "getuid", "getgid", "geteuid", "getegid", "gettid", "getpgrp", "getsid",
        ];
        let mut rules: Vec<_> = (0..60u64)
            .map(|i| {
                serde_json::json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1, "args": [
                {"index": 0, "value": i << 32 | 7, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": i, "op": "SCMP_CMP_GE"},
                {"index": 2, "value": i, "op": "SCMP_CMP_LE"}]})
            })
            .collect();
        rules.push(serde_json::json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}));
        let prog = compile(&spec(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}),
        ))
        .unwrap();
        println!("large program: {} instructions", prog.instructions().len());
        assert!(prog.instructions().len() > 1000);
        let code = in_child(|| {
            if set_no_new_privs().is_err() || load(&prog).is_err() {
                return 1;
            }
            if raw(libc::SYS_getppid, [59 << 32 | 7, 59, 59, 0]) != Err(60) {
                return 2;
            }
            if raw(libc::SYS_getppid, [59 << 32 | 7, 59, 60, 0]) != Err(99) {
                return 3;
            }
            if !matches!(raw(libc::SYS_getpid, [0; 4]), Ok(pid) if pid > 0) {
                return 4;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn docker_default_profile_in_kernel() {
        let Some(json) = docker::docker_reference() else { return };
        let caps: Vec<String> = docker::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let prog = compile(&docker::convert(&json, &Target::host(caps).unwrap()).unwrap()).unwrap();
        let null = File::options().write(true).open("/dev/null").unwrap();
        let null = null.as_raw_fd() as libc::c_long;
        let byte = b"x".as_ptr() as libc::c_long;
        const ADDR_NO_RANDOMIZE: libc::c_long = 0x0040000;
        // Without the filter, the personality below is allowed.
        assert_eq!(
            in_child(|| if raw(libc::SYS_personality, [ADDR_NO_RANDOMIZE, 0, 0, 0]).is_ok() {
                0
            } else {
                1
            }),
            0
        );
        let code = in_child(|| {
            if set_no_new_privs().is_err() || load(&prog).is_err() {
                return 1;
            }
            if !matches!(raw(libc::SYS_getpid, [0; 4]), Ok(pid) if pid > 0) {
                return 2;
            }
            if raw(libc::SYS_write, [null, byte, 1, 0]) != Ok(1) {
                return 3;
            }
            // Bad magic numbers and flags: if the filter let them through the
            // kernel would answer EINVAL, never reboot or load anything.
            if raw(libc::SYS_reboot, [0, 0, 0, 0]) != Err(libc::EPERM) {
                return 4;
            }
            if raw(libc::SYS_kexec_load, [0, 0, 0, 0x7fff_0000]) != Err(libc::EPERM) {
                return 5;
            }
            if raw(libc::SYS_personality, [ADDR_NO_RANDOMIZE, 0, 0, 0]) != Err(libc::EPERM) {
                return 6;
            }
            if raw(libc::SYS_personality, [0xffff_ffff, 0, 0, 0]).is_err() {
                return 7;
            }
            0
        });
        assert_eq!(code, 0);
    }

    /// berth's built-in profile, for Docker's default capabilities, in the
    /// kernel: ordinary calls work, fork works through clone, namespaces and
    /// the rest are refused, clone3 says ENOSYS.
    #[test]
    fn builtin_default_profile_in_kernel() {
        let caps: Vec<String> = docker::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let prog = compile(&docker::default_seccomp(&Target::host(caps).unwrap()).unwrap()).unwrap();
        let null = File::options().write(true).open("/dev/null").unwrap();
        let null = null.as_raw_fd() as libc::c_long;
        let byte = b"x".as_ptr() as libc::c_long;
        let sigchld = libc::SIGCHLD as libc::c_long;
        let code = in_child(|| {
            if set_no_new_privs().is_err() || load(&prog).is_err() {
                return 1;
            }
            if !matches!(raw(libc::SYS_getpid, [0; 4]), Ok(pid) if pid > 0) {
                return 2;
            }
            if raw(libc::SYS_write, [null, byte, 1, 0]) != Ok(1) {
                return 3;
            }
            // fork through clone: the grandchild leaves at once.
            match raw(libc::SYS_clone, [sigchld, 0, 0, 0]) {
                // SAFETY: the forked grandchild ends without running anything else.
                Ok(0) => unsafe { libc::_exit(0) },
                Ok(pid) => {
                    let mut status = 0;
                    // SAFETY: waits for the grandchild just forked; status is a valid out pointer.
                    if unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) } != pid as libc::pid_t {
                        return 4;
                    }
                }
                Err(_) => return 5,
            }
            // The test runs as root, so without the filter each of these
            // would go ahead (or fail on its bad arguments with EFAULT or
            // EINVAL).
            match raw(libc::SYS_clone, [libc::CLONE_NEWNS as libc::c_long | sigchld, 0, 0, 0]) {
                // SAFETY: as above.
                Ok(0) => unsafe { libc::_exit(0) },
                Err(libc::EPERM) => {}
                _ => return 6,
            }
            if raw(libc::SYS_unshare, [libc::CLONE_NEWUSER as libc::c_long, 0, 0, 0]) != Err(libc::EPERM) {
                return 7;
            }
            if raw(libc::SYS_mount, [0; 4]) != Err(libc::EPERM) {
                return 8;
            }
            if raw(libc::SYS_clone3, [0; 4]) != Err(libc::ENOSYS) {
                return 9;
            }
            if raw(libc::SYS_keyctl, [0x7fff, 0, 0, 0]) != Err(libc::EPERM) {
                return 10;
            }
            if raw(libc::SYS_io_uring_setup, [0; 4]) != Err(libc::EPERM) {
                return 11;
            }
            if raw(
                libc::SYS_socket,
                [libc::AF_VSOCK as libc::c_long, libc::SOCK_STREAM as libc::c_long, 0, 0],
            ) != Err(libc::EPERM)
            {
                return 12;
            }
            let inet = [libc::AF_INET as libc::c_long, libc::SOCK_DGRAM as libc::c_long, 0, 0];
            match raw(libc::SYS_socket, inet) {
                Ok(fd) if raw(libc::SYS_close, [fd, 0, 0, 0]) == Ok(0) => {}
                _ => return 13,
            }
            if raw(libc::SYS_personality, [0x0040000, 0, 0, 0]) != Err(libc::EPERM) {
                return 14;
            }
            0
        });
        assert_eq!(code, 0);
    }
}
