//! The terminal side of an attached container or exec: stdin to the
//! container, its output to ours, signals forwarded, the terminal in raw
//! mode and its size followed, and Docker's detach keys (ctrl-p ctrl-q).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use berth_engine::Engine;
use berth_monitor::proto::{Client, Output};
use berth_runtime::container::wait::RawMode;
use nix::sys::signal::{SigSet, Signal};

pub struct Options {
    pub stdin: bool,
    pub tty: bool,
    pub sig_proxy: bool,
    pub detach_keys: Vec<u8>,
}

/// How an attached session ended.
pub enum Outcome {
    /// The container exited with this code.
    Exited(i32),
    /// The user detached; the container runs on.
    Detached,
    /// The monitor went away without a code.
    Lost,
}

/// Docker's `--detach-keys` (`ctrl-p,ctrl-q` by default; `ctrl-<c>` or a
/// single character each; empty: no detaching).
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    let spec = spec.unwrap_or("ctrl-p,ctrl-q");
    let mut out = Vec::new();
    for k in spec.split(',').filter(|k| !k.is_empty()) {
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("invalid detach keys {spec:?}: unknown key {k:?}"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("invalid detach keys {spec:?}: unknown key {k:?}");
        }
    }
    Ok(out)
}

fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Streams between our stdio and the container until it exits or the user
/// detaches.
pub fn stream(engine: &Engine, id: &str, mut client: Client, opts: &Options) -> Result<Outcome> {
    let signals = forwarded();
    signals.thread_block()?;
    // The terminal's settings before raw mode, for the signal thread to restore.
    let container = ContainerSignals::new(engine, id);
    let raw = if opts.tty { RawMode::enter() } else { None };
    let detached = Arc::new(AtomicBool::new(false));
    if opts.tty {
        if let Some((rows, cols)) = berth_runtime::sys::tty::window_size(std::io::stdin().as_raw_fd()) {
            let _ = client.writer()?.resize(rows, cols);
        }
    }
    {
        let mut w = client.writer()?;
        let sig_proxy = opts.sig_proxy;
        std::thread::spawn(move || loop {
            let Ok(sig) = signals.wait() else { return };
            if sig == Signal::SIGWINCH {
                if let Some((rows, cols)) = berth_runtime::sys::tty::window_size(std::io::stdin().as_raw_fd()) {
                    let _ = w.resize(rows, cols);
                }
            } else if sig_proxy {
                container.send(sig);
            } else if matches!(sig, Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP) {
                // Not proxied: we go, the container stays.
                container.restore_terminal();
                std::process::exit(128 + sig as i32);
            }
        });
    }
    if opts.stdin {
        let mut w = client.writer()?;
        let keys = opts.detach_keys.clone();
        let detached = detached.clone();
        let shut = client.writer()?;
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 32 * 1024];
            let mut matched = 0;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = w.close_stdin();
                        return;
                    }
                    Ok(n) => n,
                };
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !keys.is_empty() && b == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            let _ = w.stdin(&out);
                            detached.store(true, Ordering::SeqCst);
                            let _ = shut.shutdown();
                            return;
                        }
                        continue;
                    }
                    out.extend_from_slice(&keys[..matched]);
                    matched = 0;
                    out.push(b);
                }
                if w.stdin(&out).is_err() {
                    return;
                }
            }
        });
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let outcome = loop {
        match client.read() {
            Ok(Some(Output::Stdout(d))) => {
                let mut o = stdout.lock();
                let _ = o.write_all(&d);
                let _ = o.flush();
            }
            Ok(Some(Output::Stderr(d))) => {
                let mut o = stderr.lock();
                let _ = o.write_all(&d);
                let _ = o.flush();
            }
            Ok(Some(Output::Exit(code))) => break Outcome::Exited(code),
            Ok(None) | Err(_) => {
                break if detached.load(Ordering::SeqCst) {
                    Outcome::Detached
                } else {
                    Outcome::Lost
                }
            }
        }
    };
    drop(raw);
    Ok(outcome)
}

/// What the signal thread needs: the container's runtime state root and id,
/// to send signals without the (single-threaded) database connection, and
/// the terminal's settings from before raw mode.
struct ContainerSignals {
    runtime: berth_runtime::Root,
    id: String,
    saved: Option<nix::sys::termios::Termios>,
}

impl ContainerSignals {
    fn new(engine: &Engine, id: &str) -> ContainerSignals {
        ContainerSignals {
            runtime: engine.runtime_root(),
            id: id.to_owned(),
            saved: nix::sys::termios::tcgetattr(std::io::stdin().as_fd()).ok(),
        }
    }

    fn send(&self, sig: Signal) {
        let _ = berth_runtime::container::kill::kill(&self.runtime, &self.id, sig, false);
    }

    fn restore_terminal(&self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

/// `exec`: runs the process in the container; in the foreground, proxies
/// the terminal and signals and returns its exit code.
pub fn exec(
    engine: &Engine,
    id: &str,
    process: &berth_runtime::oci_spec::runtime::Process,
    detach: bool,
    interactive: bool,
) -> Result<i32> {
    let null = std::fs::File::options().read(true).write(true).open("/dev/null")?;
    if detach {
        for fd in 0..3 {
            berth_runtime::sys::fds::dup2(null.as_raw_fd(), fd)?;
        }
    } else if !interactive {
        berth_runtime::sys::fds::dup2(null.as_raw_fd(), 0)?;
    }
    let old = if detach {
        None
    } else {
        Some(berth_runtime::container::wait::block_signals()?)
    };
    let started = match engine.exec(id, process, detach) {
        Ok(s) => s,
        // Docker's status for any process exec could not start, found or
        // not (run tells 126 from 127; exec does not).
        Err(e) => return Err(crate::container_cmds::exit_error(126, e)),
    };
    if detach {
        return Ok(0);
    }
    let code = berth_runtime::container::wait::wait_foreground(started.pid, started.console)?;
    if let Some(old) = old {
        let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker() {
        assert_eq!(detach_keys(None).unwrap(), [16, 17]);
        assert_eq!(detach_keys(Some("ctrl-a,x")).unwrap(), [1, b'x']);
        assert!(detach_keys(Some("ctrl-1")).is_err());
        assert!(detach_keys(Some("")).unwrap().is_empty());
    }
}
