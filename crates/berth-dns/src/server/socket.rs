//! The server's sockets, made with the options std does not offer: listening sockets that
//! bind an address the host does not have yet (IP_FREEBIND: the network's bridge may get its
//! gateway address after the server starts, and an IPv6 one is unusable until duplicate
//! address detection ends), and TCP connections to upstreams that do not block.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;

use rustix::net::{self, sockopt, AddressFamily, SocketFlags, SocketType};

fn socket(addr: &SocketAddr, kind: SocketType) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    Ok(net::socket_with(
        family,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?)
}

/// A non-blocking socket bound to `addr`, which need not be configured on the host yet.
fn bound(addr: &SocketAddr, kind: SocketType) -> io::Result<OwnedFd> {
    let fd = socket(addr, kind)?;
    if addr.is_ipv4() {
        sockopt::set_ip_freebind(&fd, true)?;
    } else {
        sockopt::set_ipv6_freebind(&fd, true)?;
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    if kind == SocketType::STREAM {
        // As std does for listeners: a restarted server binds while old connections linger.
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    net::bind(&fd, addr)?;
    Ok(fd)
}

pub(super) fn listen_udp(addr: &SocketAddr) -> io::Result<UdpSocket> {
    Ok(UdpSocket::from(bound(addr, SocketType::DGRAM)?))
}

pub(super) fn listen_tcp(addr: &SocketAddr) -> io::Result<TcpListener> {
    let fd = bound(addr, SocketType::STREAM)?;
    net::listen(&fd, 128)?;
    Ok(TcpListener::from(fd))
}

/// A non-blocking socket of its own for one forwarded try: connecting picks a random source
/// port, and the kernel drops datagrams from anyone but the upstream.
pub(super) fn connect_udp(upstream: &SocketAddr) -> io::Result<UdpSocket> {
    let fd = socket(upstream, SocketType::DGRAM)?;
    net::connect(&fd, upstream)?;
    Ok(UdpSocket::from(fd))
}

/// Starts a non-blocking connection; it is up when the socket is writable without error.
pub(super) fn connect_tcp(upstream: &SocketAddr) -> io::Result<TcpStream> {
    let fd = socket(upstream, SocketType::STREAM)?;
    match net::connect(&fd, upstream) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}
