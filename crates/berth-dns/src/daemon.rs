//! Becoming a daemon: `fork(2)` (the one unsafe call of the crate), a session of its own,
//! standard streams off the caller's terminal and pipes, and the pid file.
//!
//! The caller's process waits on a pipe until the daemon says it serves, then exits 0; if the
//! daemon dies first the pipe closes empty and the caller exits 1. So whoever started
//! `berth-dns --daemonize` knows, when it returns, whether the server answers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::{fork, ForkResult};

/// Which side of the fork this is.
pub enum Detached {
    /// The caller's process: exit with this code once the daemon is ready or dead.
    Parent(i32),
    /// The daemon: call [`Ready::notify`] once it serves.
    Daemon(Ready),
}

/// The daemon's end of the readiness pipe.
pub struct Ready(OwnedFd);

impl Ready {
    /// Tells the waiting caller that the server serves.
    pub fn notify(self) {
        let _ = File::from(self.0).write_all(b"R");
    }
}

/// Forks; the child starts a new session. Call it while single-threaded (as `main` is
/// before it starts anything).
pub fn detach() -> io::Result<Detached> {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the process has a single thread (berth-dns starts none), so the child holds no
    // lock another thread held at the fork and may run any code.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(write_end);
            let mut byte = [0u8; 1];
            let served = File::from(read_end).read(&mut byte).is_ok_and(|n| n == 1);
            Ok(Detached::Parent(if served { 0 } else { 1 }))
        }
        ForkResult::Child => {
            drop(read_end);
            nix::unistd::setsid()?;
            // Hold no mount or directory of the caller busy.
            std::env::set_current_dir("/")?;
            Ok(Detached::Daemon(Ready(write_end)))
        }
    }
}

/// Closes every descriptor above standard error that the caller let the process inherit
/// (a pipe of the caller's caller, say): a daemon holding one keeps its reader waiting for
/// an end of file. Call it first, before the process opens anything of its own.
pub fn close_inherited_fds() -> io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The directory's own descriptor is in the list and closed already: EBADF, ignored.
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

/// The descriptors the server may hold at once: 256 forwarded queries with up to 4 sockets
/// each, 64 TCP clients with an upstream connection each, and the listening sockets.
const FDS_NEEDED: u64 = 256 * 4 + 64 * 2 + 64;

/// Raises the soft limit on open descriptors to what the server may need (within the hard
/// limit): a 1024 default would cut the bounds short under load.
pub fn raise_fd_limit() -> io::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < FDS_NEEDED {
        setrlimit(Resource::RLIMIT_NOFILE, FDS_NEEDED.min(hard), hard)?;
    }
    Ok(())
}

/// Points standard input and output at /dev/null and standard error at `log` (appended) or
/// /dev/null, so the daemon keeps no pipe of its caller open.
pub fn quiet_stdio(log: Option<&Path>) -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    match log {
        Some(path) => nix::unistd::dup2_stderr(File::options().create(true).append(true).open(path)?)?,
        None => nix::unistd::dup2_stderr(&null)?,
    }
    Ok(())
}

/// Writes this process's pid to `path` atomically.
pub fn write_pid_file(path: &Path) -> io::Result<()> {
    crate::config::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
}

/// Removes the pid file if it still names this process (a newer server may have replaced it).
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path).is_ok_and(|s| s.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}
