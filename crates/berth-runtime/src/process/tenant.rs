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
use crate::sys::prctl;

pub struct TenantArgs<'a> {
    pub process: &'a Process,
    /// Namespaces of the container's init, user first, mount last; pid and
    /// time were joined by the runtime before the fork.
    pub namespaces: &'a [(LinuxNamespaceType, File, PathBuf)],
    pub channel: &'a Channel,
    pub console: Option<RawFd>,
    pub preserve_fds: u32,
    pub in_userns: bool,
}

pub fn run(args: TenantArgs) -> ! {
    super::child_main(args.channel, || setup_and_exec(&args))
}

fn setup_and_exec(a: &TenantArgs) -> Result<Infallible> {
    // Until execve nothing in the container may open /proc/<us>/exe, which
    // is the runtime binary (CVE-2019-5736).
    prctl::set_dumpable(false).map_err(|e| Error::sys("making exec process non-dumpable", e))?;
    a.channel.expect(Message::Continue)?;
    for (typ, file, path) in a.namespaces {
        namespaces::enter(*typ, file, path)?;
    }
    let process = a.process;
    if process.terminal() == Some(true) {
        let sock = a
            .console
            .ok_or_else(|| Error::Invalid("terminal requested but no console socket".into()))?;
        exec_console(sock, process)?;
    }
    setup::rlimits(process)?;
    setup::scheduling(process)?;
    setup::identity(process, !a.in_userns)?;
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).map_err(|e| Error::Child(format!("chdir to cwd ({cwd:?}) failed: {e}")))?;
    setup::no_new_privs(process)?;
    let exe = setup::find_executable(process)?;
    a.channel.send(&Message::Ready)?;
    setup::reset_signals()?;
    super::init::hand_over_fds(a.preserve_fds)?;
    Err(setup::exec(&exe, process))
}

/// A pty for the exec'd process, made inside the container's devpts.
fn exec_console(sock: RawFd, process: &Process) -> Result<()> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use std::os::fd::AsRawFd;
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("opening /dev/ptmx", e))?;
    grantpt(&master).map_err(|e| Error::sys("grantpt", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| Error::sys("ptsname", e))?;
    if let Some(sz) = process.console_size() {
        let _ = crate::sys::tty::set_window_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("opening {name}"), e))?;
    crate::tty::send_fd(sock, master.as_raw_fd(), name.as_bytes())?;
    drop(master);
    nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
    for t in 0..3 {
        crate::sys::fds::dup2(slave.as_raw_fd(), t).map_err(|e| Error::sys("dup2 pty onto stdio", e))?;
    }
    crate::sys::tty::set_controlling_terminal(0).map_err(|e| Error::sys("setting controlling terminal", e))
}
