//! The attach protocol on a monitor's unix socket: frames of
//! `[kind: u8][length: u32, big-endian][payload]` both ways.
//!
//! A client first sends [`HELLO`] with the streams it wants ([`WANT_STDIN`],
//! [`WANT_STDOUT`], [`WANT_STDERR`]) and waits for the monitor's [`HELLO`]
//! back: from then on it gets every byte of output (the engine starts a
//! container only after that, so `run` misses none); it then sends stdin data, a stdin close,
//! terminal sizes, or a note that a user is stopping the container. The
//! monitor sends output frames and, once the container has exited, one
//! [`EXIT`] frame with the exit code; then it closes the connection. A
//! client that asks for no stream is a waiter: it gets only [`EXIT`].

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub const HELLO: u8 = 0;
pub const STDIN: u8 = 1;
pub const STDIN_CLOSE: u8 = 2;
/// Payload: rows and columns, u16 big-endian each.
pub const RESIZE: u8 = 3;
/// A user stops or kills the container: the restart policy does not apply.
pub const STOPPING: u8 = 4;
/// The client records the exit itself (a foreground `run`): if it is still
/// connected when the container exits, the monitor skips its exit command.
pub const CLEANS_UP: u8 = 8;
pub const STDOUT: u8 = 5;
pub const STDERR: u8 = 6;
/// Payload: the exit code, i32 big-endian.
pub const EXIT: u8 = 7;

pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// Frames larger than this are refused (a broken or hostile peer).
pub const MAX_FRAME: usize = 1 << 20;

/// One frame, encoded.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Splits a byte stream into frames.
#[derive(Default, Debug)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("attach frame of {len} bytes (at most {MAX_FRAME})"),
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

/// How long [`Client::connect`] waits for the monitor's greeting.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// A client connection to a monitor, blocking.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    dec: Decoder,
}

/// What a client reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
}

impl Client {
    /// Connects to the monitor at `socket`, asks for `want` streams and
    /// waits until the monitor has registered them.
    pub fn connect(socket: &Path, want: u8) -> io::Result<Client> {
        let mut stream = UnixStream::connect(socket)?;
        stream.write_all(&encode(HELLO, &[want]))?;
        // A monitor that binds its socket but does not serve yet (still creating its
        // container) or any more would leave the caller waiting for ever.
        stream.set_read_timeout(Some(GREETING_TIMEOUT))?;
        let mut c = Client {
            stream,
            dec: Decoder::default(),
        };
        let mut buf = [0u8; 64];
        loop {
            match c.dec.next_frame()? {
                Some((HELLO, _)) => {
                    c.stream.set_read_timeout(None)?;
                    return Ok(c);
                }
                Some((kind, _)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("attach: expected the monitor's greeting, got frame kind {kind}"),
                    ))
                }
                None => {}
            }
            // Frames after the greeting stay in the decoder for `read`.
            let n = match c.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("attach: no greeting from the monitor within {GREETING_TIMEOUT:?}"),
                    ))
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "attach: the monitor closed the connection",
                ));
            }
            c.dec.push(&buf[..n]);
        }
    }

    /// Bounds each read (`None`: wait for ever).
    pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(d)
    }

    /// A second handle on the connection, for writing from another thread.
    pub fn writer(&self) -> io::Result<Writer> {
        Ok(Writer(self.stream.try_clone()?))
    }

    /// The next output frame; `None` when the monitor closed the connection
    /// without an exit code (it died).
    pub fn read(&mut self) -> io::Result<Option<Output>> {
        let mut buf = [0u8; 32 * 1024];
        loop {
            if let Some((kind, payload)) = self.dec.next_frame()? {
                match kind {
                    STDOUT => return Ok(Some(Output::Stdout(payload))),
                    STDERR => return Ok(Some(Output::Stderr(payload))),
                    EXIT if payload.len() == 4 => {
                        return Ok(Some(Output::Exit(i32::from_be_bytes([
                            payload[0], payload[1], payload[2], payload[3],
                        ]))))
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unexpected attach frame kind {kind}"),
                        ))
                    }
                }
            }
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(None);
            }
            self.dec.push(&buf[..n]);
        }
    }

    /// Waits for the exit code, discarding output.
    pub fn wait(&mut self) -> io::Result<Option<i32>> {
        loop {
            match self.read()? {
                Some(Output::Exit(code)) => return Ok(Some(code)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }
}

/// The writing half of a [`Client`].
#[derive(Debug)]
pub struct Writer(UnixStream);

impl Writer {
    pub fn stdin(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_FRAME) {
            self.0.write_all(&encode(STDIN, chunk))?;
        }
        Ok(())
    }

    pub fn close_stdin(&mut self) -> io::Result<()> {
        self.0.write_all(&encode(STDIN_CLOSE, &[]))
    }

    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        self.0.write_all(&encode(RESIZE, &p))
    }

    /// Ends the connection both ways (a reader of the client wakes up).
    pub fn shutdown(&self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Both)
    }

    pub fn cleans_up(&mut self) -> io::Result<()> {
        self.0.write_all(&encode(CLEANS_UP, &[]))
    }

    pub fn stopping(&mut self) -> io::Result<()> {
        self.0.write_all(&encode(STOPPING, &[]))
    }
}

/// Tells the monitor at `socket` that a user is stopping its container, so
/// it does not restart it. No monitor listening: nothing to tell.
pub fn notify_stopping(socket: &Path) -> io::Result<()> {
    match Client::connect(socket, 0) {
        Ok(c) => c.writer()?.stopping(),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads() {
        let mut bytes = encode(STDOUT, b"hello");
        bytes.extend(encode(EXIT, &7i32.to_be_bytes()));
        let mut d = Decoder::default();
        for b in &bytes[..3] {
            d.push(&[*b]);
            assert_eq!(d.next_frame().unwrap(), None);
        }
        d.push(&bytes[3..]);
        assert_eq!(d.next_frame().unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(d.next_frame().unwrap(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut d = Decoder::default();
        d.push(&[STDIN, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().unwrap_err().to_string().contains("attach frame"));
    }
}
