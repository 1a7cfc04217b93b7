//! The steps that turn a forked runtime process into the container's
//! process: rlimits, scheduling, identity, capabilities, no_new_privs, and
//! the final execve. Shared by the init process and `exec`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process};

use crate::caps::{self, CapSets};
use crate::error::{Error, IoContext, Result};
use crate::sys::{capset, prctl, sched};

fn resource(t: PosixRlimitType) -> (Resource, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (Resource::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (Resource::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (Resource::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (Resource::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (Resource::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (Resource::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (Resource::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (Resource::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (Resource::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (Resource::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (Resource::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (Resource::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (Resource::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (Resource::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Set every rlimit of the process. Raising a hard limit needs
/// CAP_SYS_RESOURCE: say so instead of a bare EPERM.
pub fn rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().as_deref().unwrap_or_default() {
        let (res, name) = resource(rl.typ());
        if let Err(e) = setrlimit(res, rl.soft(), rl.hard()) {
            let msg = match (e, getrlimit(res)) {
                (nix::errno::Errno::EPERM, Ok((_, cur_hard))) if rl.hard() > cur_hard => format!(
                    "setting rlimit {name} to soft {} hard {}: the current hard limit is {cur_hard} and raising it needs CAP_SYS_RESOURCE, which this runtime does not have",
                    rl.soft(),
                    rl.hard()
                ),
                (e, _) if rl.soft() > rl.hard() => format!("setting rlimit {name}: soft limit {} is above hard limit {}: {e}", rl.soft(), rl.hard()),
                (e, _) => format!("setting rlimit {name} to soft {} hard {}: {e}", rl.soft(), rl.hard()),
            };
            return Err(Error::Invalid(msg));
        }
    }
    Ok(())
}

/// I/O priority and CPU scheduler, where the spec asks for them.
pub fn scheduling(process: &Process) -> Result<()> {
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        prctl::ioprio_set(class, io.priority().clamp(0, 7) as u32).op("setting I/O priority")?;
    }
    if let Some(s) = process.scheduler() {
        let policy = match s.policy() {
            LinuxSchedulerPolicy::SchedOther => 0,
            LinuxSchedulerPolicy::SchedFifo => 1,
            LinuxSchedulerPolicy::SchedRr => 2,
            LinuxSchedulerPolicy::SchedBatch => 3,
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => 5,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        };
        let mut flags = 0u64;
        for f in s.flags().as_deref().unwrap_or_default() {
            flags |= match f {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            };
        }
        sched::sched_setattr(sched::SchedAttr {
            sched_policy: policy,
            sched_flags: flags,
            sched_nice: s.nice().unwrap_or(0),
            sched_priority: s.priority().unwrap_or(0) as u32,
            sched_runtime: s.runtime().unwrap_or(0),
            sched_deadline: s.deadline().unwrap_or(0),
            sched_period: s.period().unwrap_or(0),
            ..Default::default()
        })
        .op("setting scheduler")?;
    }
    Ok(())
}

/// Become the spec's user with the spec's capabilities, in runc's order:
/// bounding set, groups, gid, uid (keeping caps), then the other sets.
/// `setgroups_allowed` is false in a user namespace whose gid map an
/// unprivileged runtime wrote itself (setgroups denied there).
pub fn identity(process: &Process, setgroups_allowed: bool) -> Result<()> {
    let sets = CapSets::from_spec(process.capabilities().as_ref());
    caps::apply_bounding(&sets)?;
    let user = process.user();
    let additional = user.additional_gids().as_deref().unwrap_or_default();
    if !setgroups_allowed && !additional.is_empty() {
        return Err(Error::Invalid(format!(
            "cannot set additional gids {additional:?}: setgroups is denied in this user namespace (a rootless runtime without newgidmap maps only its own gid)"
        )));
    }
    if setgroups_allowed {
        let groups: Vec<Gid> = user
            .additional_gids()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).op("setting supplementary groups")?;
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).op(format!("setting gid to {}", user.gid()))?;
    capset::set_keep_caps(true).op("keeping capabilities across setuid")?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).op(format!("setting uid to {}", user.uid()))?;
    capset::set_keep_caps(false).op("resetting keep-caps")?;
    caps::apply_sets(&sets)?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// Change into the process's cwd and check that it lies inside the
/// container. A cwd reached through a descriptor of the host (say
/// `/proc/self/fd/N` naming a directory fd the caller leaked to us) would
/// hand the process the host's file system (CVE-2024-21626 class); the
/// kernel reports such a cwd as unreachable and getcwd(3) fails.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd)
        .map_err(|e| Error::Child(format!("chdir to cwd ({cwd:?}) set in config.json failed: {e}")))?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => Err(Error::Child(format!(
            "cwd {cwd:?} resolves to {p:?}, outside the container's root filesystem: refusing to run there"
        ))),
        Err(e) => Err(Error::Child(format!(
            "cwd {cwd:?} is outside the container's root filesystem ({e}): refusing to run there"
        ))),
    }
}

/// no_new_privs, if asked for.
pub fn no_new_privs(process: &Process) -> Result<()> {
    if process.no_new_privileges() == Some(true) {
        nix::sys::prctl::set_no_new_privs().op("setting no_new_privs")?;
    }
    Ok(())
}

/// Find the executable as execvp would, with the process's own PATH; the
/// error text is runc's.
pub fn find_executable(process: &Process) -> Result<PathBuf> {
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let not_found = || Error::Child(format!("exec: {arg0:?}: executable file not found in $PATH"));
    if arg0.contains('/') {
        use std::os::unix::fs::PermissionsExt;
        let p = if Path::new(&arg0).is_absolute() {
            PathBuf::from(&arg0)
        } else {
            process.cwd().join(&arg0)
        };
        return match std::fs::metadata(&p) {
            // Go's exec.LookPath (runc's): a file without an execute bit is
            // refused here, before the container starts (Docker's 126).
            Ok(md) if md.is_file() && md.permissions().mode() & 0o111 == 0 => {
                Err(Error::Child(format!("exec: {arg0:?}: permission denied")))
            }
            Ok(md) if md.is_file() => Ok(PathBuf::from(arg0)),
            Ok(_) => Err(Error::Child(format!("exec: {arg0:?}: is a directory"))),
            Err(e) => Err(Error::Child(format!("exec: {arg0:?}: {e}"))),
        };
    }
    let path_var = process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(&arg0);
        if let Ok(md) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(not_found())
}

/// Replace the process image. Returns only on failure.
pub fn exec(path: &Path, process: &Process) -> Error {
    let cpath = match CString::new(path.as_os_str().as_bytes()) {
        Ok(c) => c,
        Err(_) => return Error::Invalid(format!("executable path {path:?} contains a NUL byte")),
    };
    let args: Vec<CString> = process
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let env: Vec<CString> = process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let err = nix::unistd::execve(&cpath, &args, &env).unwrap_err();
    Error::Child(format!("exec {}: {err}", path.display()))
}

/// Unblock every signal and restore default dispositions before handing
/// over to the container process (the runtime may have blocked some).
pub fn reset_signals() -> Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    // The runtime's callers are Rust programs, which ignore SIGPIPE; the
    // container's program must get the default (a shell pipeline's writer
    // dies when the reader goes, as under runc).
    crate::sys::signal::default_action(libc::SIGPIPE).op("restoring SIGPIPE's default action")?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).op("resetting signal mask")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_lookup_uses_process_path() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","args":["sh"],"env":["PATH=/nonexistent:/bin"],"user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        assert_eq!(find_executable(&p).unwrap(), Path::new("/bin/sh"));
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","args":["no-such-binary"],"env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        assert_eq!(
            find_executable(&p).unwrap_err().to_string(),
            "exec: \"no-such-binary\": executable file not found in $PATH"
        );
        // By path: a plain file without an execute bit is refused as runc refuses it.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        let by_path = |arg0: &Path| -> Process {
            serde_json::from_value(serde_json::json!({
                "cwd": "/", "args": [arg0], "user": {"uid": 0, "gid": 0}
            }))
            .unwrap()
        };
        let err = find_executable(&by_path(&file)).unwrap_err().to_string();
        assert_eq!(err, format!("exec: {:?}: permission denied", file.to_str().unwrap()));
        assert!(find_executable(&by_path(dir.path()))
            .unwrap_err()
            .to_string()
            .ends_with("is a directory"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(find_executable(&by_path(&file)).unwrap(), file);
    }

    #[test]
    fn rlimit_names_cover_all_types() {
        assert_eq!(resource(PosixRlimitType::RlimitNofile).1, "RLIMIT_NOFILE");
    }
}
