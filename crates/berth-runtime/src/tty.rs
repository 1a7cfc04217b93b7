//! Terminals: the container's pty (master sent over the console socket with
//! SCM_RIGHTS, as runc does) and the foreground proxy between our stdio and
//! a pty master.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use oci_spec::runtime::Box as ConsoleSize;

use crate::error::{Error, IoContext, Result};
use crate::sys::{fds, tty};

/// Connect to a console socket given on the command line.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let stream = std::os::unix::net::UnixStream::connect(path).at("connecting to console socket", path)?;
    Ok(stream.into())
}

/// Where a container process sends its pty master, as (child end, our end):
/// the caller's console socket, or, when we proxy the terminal ourselves
/// (foreground `run`/`exec`), one end of a socketpair we keep the other of.
pub fn console_endpoints(console_socket: Option<&Path>, terminal: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    Ok(match (console_socket, terminal) {
        (Some(p), true) => (Some(connect_console_socket(p)?), None),
        (None, true) => {
            let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .op("creating console socketpair")?;
            (Some(theirs), Some(ours))
        }
        _ => (None, None),
    })
}

/// In the container (after pivot_root): make a pty in the container's
/// devpts, send its master over `socket`, and make the slave our stdio and
/// controlling terminal. For init (`bind_console`) the slave is also
/// bind-mounted over /dev/console.
pub fn setup_console(socket: RawFd, size: Option<ConsoleSize>, bind_console: bool) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).op("opening /dev/ptmx")?;
    grantpt(&master).op("grantpt")?;
    unlockpt(&master).op("unlockpt")?;
    let name = ptsname_r(&master).op("ptsname")?;
    if let Some(sz) = size {
        tty::set_window_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16).op("setting console size")?;
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .at("opening", &name)?;
    if bind_console {
        let console = Path::new("/dev/console");
        crate::rootfs::create_file(console)?;
        nix::mount::mount(
            Some(name.as_str()),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .at("bind-mounting pty on", console)?;
    }
    send_fd(socket, master.as_raw_fd(), name.as_bytes())?;
    drop(master);
    nix::unistd::setsid().op("setsid")?;
    for target in 0..3 {
        fds::dup2(slave.as_raw_fd(), target).op("dup2 pty onto stdio")?;
    }
    tty::set_controlling_terminal(0).op("setting controlling terminal")?;
    Ok(())
}

/// Send one descriptor with a name as payload.
pub fn send_fd(socket: RawFd, fd: RawFd, name: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name)];
    sendmsg::<UnixAddr>(socket, &iov, &cmsg, MsgFlags::empty(), None).op("sending pty master over console socket")?;
    Ok(())
}

/// Receive one descriptor sent by `send_fd`.
pub fn recv_fd(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .op("receiving pty master")?;
    for c in msg.cmsgs().op("reading control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(fds::adopt(*fd));
            }
        }
    }
    Err(Error::Invalid("console socket message carried no descriptor".into()))
}
