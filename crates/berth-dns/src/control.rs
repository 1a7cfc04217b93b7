//! What the engine calls: start a network's server and know it serves, find it, stop it.
//!
//! A server is known by its pid file: [`running`] trusts the pid in it only while
//! `/proc/PID/cmdline` is `berth-dns … --pid-file <that file>`, so a pid the kernel gave to
//! another process since is never signalled.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long [`stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting {}: {source}", bin.display())]
    Exec { bin: PathBuf, source: std::io::Error },
    #[error("starting {} for {}: {message}", bin.display(), config.display())]
    Failed {
        bin: PathBuf,
        config: PathBuf,
        message: String,
    },
    #[error("reading pid file {}: {source}", path.display())]
    PidFile { path: PathBuf, source: std::io::Error },
    #[error("signalling berth-dns {pid}: {source}")]
    Signal { pid: i32, source: nix::Error },
    #[error("berth-dns {pid} did not exit after SIGKILL")]
    Stuck { pid: i32 },
}

/// Starts `bin --config CONFIG --daemonize --pid-file PID_FILE` and returns the server's pid
/// once it serves (its sockets are bound). A failure (address in use, bad configuration)
/// is an error with the server's own message.
pub fn spawn(bin: &Path, config: &Path, pid_file: &Path) -> Result<i32, Error> {
    let exec = |source| Error::Exec {
        bin: bin.to_owned(),
        source,
    };
    let config = std::path::absolute(config).map_err(exec)?;
    let pid_path = std::path::absolute(pid_file).map_err(exec)?;
    let out = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("--daemonize")
        .arg("--pid-file")
        .arg(&pid_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(exec)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let text = text.trim();
        let message = text.strip_prefix("berth-dns: ").unwrap_or(text);
        return Err(Error::Failed {
            bin: bin.to_owned(),
            message: if message.is_empty() {
                out.status.to_string()
            } else {
                message.to_string()
            },
            config,
        });
    }
    read_pid(&pid_path)
}

/// The pid of the server `pid_file` names, if it runs.
pub fn running(pid_file: &Path) -> Option<i32> {
    let pid = read_pid(pid_file).ok()?;
    let pid_path = std::path::absolute(pid_file).ok()?;
    is_server(pid, &pid_path).then_some(pid)
}

/// Stops the server of `pid_file` (SIGTERM, then SIGKILL after a grace period) and waits until
/// it is gone. `Ok(false)` when none ran; a stale pid file is removed either way.
pub fn stop(pid_file: &Path) -> Result<bool, Error> {
    let Some(pid) = running(pid_file) else {
        remove_if_present(pid_file)?;
        return Ok(false);
    };
    let pid_path = std::path::absolute(pid_file).map_err(|source| Error::PidFile {
        path: pid_file.to_owned(),
        source,
    })?;
    for (signal, grace) in [(Signal::SIGTERM, STOP_GRACE), (Signal::SIGKILL, STOP_GRACE)] {
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) => {}
            Err(nix::errno::Errno::ESRCH) => break,
            Err(source) => return Err(Error::Signal { pid, source }),
        }
        let until = Instant::now() + grace;
        while is_server(pid, &pid_path) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        if !is_server(pid, &pid_path) {
            remove_if_present(pid_file)?;
            return Ok(true);
        }
    }
    if is_server(pid, &pid_path) {
        return Err(Error::Stuck { pid });
    }
    remove_if_present(pid_file)?;
    Ok(true)
}

fn read_pid(pid_file: &Path) -> Result<i32, Error> {
    let err = |source| Error::PidFile {
        path: pid_file.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(pid_file).map_err(err)?;
    text.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{text:?} is not a pid"),
        ))
    })
}

fn remove_if_present(pid_file: &Path) -> Result<(), Error> {
    match std::fs::remove_file(pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::PidFile {
            path: pid_file.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Whether `pid` is a live (not zombie) berth-dns serving with this pid file.
fn is_server(pid: i32, pid_file: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie's cmdline reads empty.
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_bin = args
        .first()
        .is_some_and(|a| Path::new(OsStr::from_bytes(a)).file_name() == Some(OsStr::new("berth-dns")));
    let want = pid_file.as_os_str().as_bytes();
    is_bin && args.windows(2).any(|w| w[0] == b"--pid-file" && w[1] == want)
}
