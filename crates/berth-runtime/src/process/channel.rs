//! The socketpair between the runtime and the process it forked. One small
//! message enum, sent as JSON datagrams; errors cross the fork as text.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Message {
    /// runtime -> child: ids are mapped; go on.
    Continue,
    /// runtime -> child: the cgroup is made and the child is in it (false:
    /// a rootless container without one). Sent after Continue, so that the
    /// child sets up its mounts while the runtime makes the cgroup and
    /// moves it (which can wait for an RCU grace period in the kernel).
    CgroupJoined(bool),
    /// child -> runtime: mounts are done, run prestart/createRuntime hooks.
    MountsReady,
    /// runtime -> child: those hooks ran; carries the state JSON for the
    /// hooks the container runs itself (createContainer, startContainer).
    HooksDone(String),
    /// child -> runtime: set up; about to wait for start (init) or exec.
    Ready,
    /// child -> runtime: a seccomp notify descriptor follows (SCM_RIGHTS)
    /// for the profile's listener.
    SeccompFd,
    /// child -> runtime: setting up failed.
    Error(String),
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime end, child end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .op("creating sync socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Invalid(format!("encoding message: {e}")))?;
        if let Err(e) = send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL) {
            // The other side is gone; if it said why before leaving, that
            // is the error worth reporting.
            if matches!(e, nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) {
                if let Some(why) = self.pending_error() {
                    return Err(Error::Child(why));
                }
            }
            return Err(Error::sys("sending on sync socket", e));
        }
        Ok(())
    }

    /// Next message; `None` when the other side closed (exited).
    pub fn recv(&self) -> Result<Option<Message>> {
        self.recv_flags(MsgFlags::empty())
            .map_err(|e| Error::sys("reading sync socket", e))
    }

    /// One datagram, in a buffer of its exact size (a peek with MSG_TRUNC
    /// gives the length): messages are small, and every page this process
    /// touches counts in the runtime's resident memory.
    fn recv_flags(&self, flags: MsgFlags) -> std::result::Result<Option<Message>, nix::errno::Errno> {
        loop {
            let len = match recv(
                self.fd.as_raw_fd(),
                &mut [],
                flags | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; len.max(1)];
            match recv(self.fd.as_raw_fd(), &mut buf, flags) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return Ok(serde_json::from_slice(&buf[..n]).ok().or(Some(Message::Error(format!(
                        "undecodable sync message {:?}",
                        String::from_utf8_lossy(&buf[..n.min(200)])
                    )))))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// An `Error` the other side already sent, without waiting.
    pub fn pending_error(&self) -> Option<String> {
        match self.recv_flags(MsgFlags::MSG_DONTWAIT) {
            Ok(Some(Message::Error(why))) => Some(why),
            _ => None,
        }
    }

    /// Wait for one specific message; an `Error` or EOF becomes an error.
    pub fn expect(&self, want: Message) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Message::Error(e)) => Err(Error::Child(e)),
            Some(m) => Err(Error::Invalid(format!(
                "unexpected sync message {m:?}, wanted {want:?}"
            ))),
            None => Err(Error::Child("runtime went away".into())),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_is_none() {
        let (a, b) = pair().unwrap();
        a.send(&Message::Error("mounting proc: EPERM".into())).unwrap();
        b.send(&Message::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Message::Error("mounting proc: EPERM".into())));
        assert_eq!(a.recv().unwrap(), Some(Message::Ready));
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }

    #[test]
    fn a_send_to_a_departed_child_reports_its_last_error() {
        let (a, b) = pair().unwrap();
        b.send(&Message::Error("mounting proc: EPERM".into())).unwrap();
        drop(b);
        let err = a.send(&Message::Continue).unwrap_err();
        assert_eq!(err.to_string(), "mounting proc: EPERM");
    }
}
