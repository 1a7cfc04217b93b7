//! A process exec'd into a running container (`exec`): it joins the
//! container's namespaces, takes the process settings, and execs.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::RawFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::channel::{Channel, Message};
use super::setup;
use crate::error::{Error, Result};
use crate::namespaces;
use crate::seccomp::{self, LoadPoint};

pub struct TenantArgs<'a> {
    pub process: &'a Process,
    /// Namespaces of the container's init, user first, mount last; pid and
    /// time were joined by the runtime before the fork.
    pub namespaces: &'a [(LinuxNamespaceType, File, PathBuf)],
    pub channel: &'a Channel,
    pub console: Option<RawFd>,
    pub preserve_fds: u32,
    pub in_userns: bool,
    /// The host's AppArmor/SELinux state (labels are applied where enabled).
    pub lsm: crate::lsm::Host,
    /// The container's seccomp filter, if it has one.
    pub seccomp: Option<&'a crate::seccomp::SeccompProgram>,
    /// setgroups(2) is denied in the container's user namespace (read by the
    /// runtime from the host's /proc, never from the container's).
    pub setgroups_denied: bool,
    /// Join the container's session keyring `_ses.<id>`.
    pub session_keyring: Option<&'a str>,
    /// Descriptors to install as fds 0-2 (otherwise the runtime's are kept).
    pub stdio: Option<&'a crate::container::exec::Stdio>,
}

pub fn run(args: TenantArgs) -> ! {
    super::child_main(args.channel, || setup_and_exec(&args))
}

fn setup_and_exec(a: &TenantArgs) -> Result<Infallible> {
    super::make_non_dumpable()?;
    a.channel.expect(Message::Continue)?;
    if let Some(io) = a.stdio {
        nix::unistd::dup2_stdin(&*io.stdin)
            .and_then(|_| nix::unistd::dup2_stdout(&*io.stdout))
            .and_then(|_| nix::unistd::dup2_stderr(&*io.stderr))
            .map_err(|e| Error::Invalid(format!("setting up the exec process's stdio: {e}")))?;
    }
    for (typ, file, path) in a.namespaces {
        namespaces::enter(*typ, file, path)?;
    }
    if let Some(id) = a.session_keyring {
        super::init::join_session_keyring(id, a.in_userns)?;
    }
    let process = a.process;
    if process.terminal() == Some(true) {
        let sock = a
            .console
            .ok_or_else(|| Error::Invalid("terminal requested but no console socket".into()))?;
        crate::tty::setup_console(sock, process.console_size(), false)?;
    }
    setup::rlimits(process)?;
    setup::scheduling(process)?;
    // In the container's cgroup before anything of the container runs.
    match a.channel.recv()? {
        Some(Message::CgroupJoined(_)) => {}
        Some(Message::Error(e)) => return Err(Error::Child(e)),
        other => {
            return Err(Error::Invalid(format!(
                "unexpected sync message {other:?}, wanted CgroupJoined"
            )))
        }
    }
    let nnp = process.no_new_privileges() == Some(true);
    seccomp::load_at(a.seccomp, nnp, LoadPoint::BeforeIdentity, a.channel)?;
    setup::identity(process, !a.setgroups_denied)?;
    // Only stdio, the preserved descriptors and the channel stay open.
    crate::sys::fds::close_from_except(3 + a.preserve_fds, &[a.channel.raw()])
        .map_err(|e| Error::sys("closing the runtime's descriptors", e))?;
    let cwd = process.cwd();
    setup::enter_cwd(cwd)?;
    setup::no_new_privs(process)?;
    crate::lsm::set_exec_labels(process, a.lsm)
        .map_err(|e| Error::sys("setting the AppArmor/SELinux exec label", e))?;
    let exe = setup::find_executable(process)?;
    seccomp::load_at(a.seccomp, nnp, LoadPoint::BeforeReady, a.channel)?;
    a.channel.send(&Message::Ready)?;
    setup::reset_signals()?;
    super::init::hand_over_fds(a.preserve_fds)?;
    Err(setup::exec(&exe, process))
}
