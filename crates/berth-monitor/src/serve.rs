//! The monitor's single-threaded event loop: container output to the log and
//! to attached clients, client input to the container, the exit status to
//! `status.json`, restarts, and the exit command at the end.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_monitor::proto::{self, Decoder};
use berth_monitor::{jsonlog, MonitorConfig, Status};
use berth_runtime::container::create::{create, CreateOptions};
use berth_runtime::container::{delete, start};
use berth_runtime::state::now_rfc3339;
use berth_runtime::sys::{fds, prctl, tty};
use berth_runtime::Root;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;

const SIGNALS: u64 = 0;
const LISTENER: u64 = 1;
const OUT: u64 = 2;
const ERR: u64 = 3;
const STDIN: u64 = 4;
const CLIENT_BASE: u64 = 16;

/// Output queued for a slow client beyond this drops the client.
const CLIENT_BUFFER: usize = 4 << 20;
/// Stdin queued for the container beyond this pauses reading from clients.
const STDIN_BUFFER: usize = 1 << 20;

struct Client {
    stream: UnixStream,
    dec: Decoder,
    want: u8,
    greeted: bool,
    pending: Vec<u8>,
    cleans_up: bool,
}

struct Monitor {
    cfg: MonitorConfig,
    root: Root,
    epoll: Epoll,
    sfd: SignalFd,
    listener: UnixListener,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    close_stdin_after: bool,
    stdin_paused: bool,
    log: Option<jsonlog::Writer>,
    clients: HashMap<u64, Client>,
    next_client: u64,
    status: Status,
    init: Option<Pid>,
    started: Instant,
    restart_at: Option<Instant>,
    /// When the next health probe is due, and the probe running now.
    health_at: Option<Instant>,
    health_probe: Option<Pid>,
    /// A client that records the exit itself got the exit code.
    cleaned_by_client: bool,
}

/// Serves the container; returns the monitor's exit code.
pub fn run(cfg: MonitorConfig, mut sync: Option<File>) -> i32 {
    let mut m = match Monitor::new(cfg) {
        Ok(m) => m,
        Err(e) => {
            crate::report(&mut sync, json!({ "error": e }));
            return 1;
        }
    };
    // "creating" first: a `start` or `rm` that finds it (this one's CLI killed meanwhile)
    // waits for the outcome instead of taking the half-made container apart.
    m.write_status();
    match m.first_create() {
        Ok(pid) => {
            crate::report(&mut sync, json!({ "pid": pid, "monitor": std::process::id() }));
            crate::trim::trim();
            m.serve();
            0
        }
        Err(e) => {
            m.status.state = "exited".into();
            m.status.error = e.clone();
            m.status.exit_code = 127;
            m.write_status();
            let _ = std::fs::remove_file(&m.cfg.socket);
            crate::report(&mut sync, json!({ "error": e }));
            1
        }
    }
}

fn nonblocking(fd: &impl AsFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn ctx<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

impl Monitor {
    fn new(cfg: MonitorConfig) -> Result<Monitor, String> {
        // The container's exit reaches us as SIGCHLD; signals meant to end
        // a foreground program do not end the monitor.
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGPIPE,
        ] {
            mask.add(s);
        }
        ctx("blocking signals", mask.thread_block())?;
        let sfd = ctx(
            "creating signalfd",
            SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK),
        )?;
        // Orphans of the container (a double-forking daemon in a shared pid
        // namespace) come to us to be reaped.
        let _ = prctl::set_child_subreaper();
        let epoll = ctx("creating epoll", Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC))?;
        ctx(
            "watching signals",
            epoll.add(&sfd, EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS)),
        )?;
        let _ = std::fs::remove_file(&cfg.socket);
        let listener = ctx(
            &format!("binding attach socket {}", cfg.socket.display()),
            UnixListener::bind(&cfg.socket),
        )?;
        ctx("attach socket", listener.set_nonblocking(true))?;
        ctx(
            "watching attach socket",
            epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER)),
        )?;
        let log = match &cfg.log_path {
            Some(p) => Some(ctx(
                &format!("opening log {}", p.display()),
                jsonlog::Writer::open(p, cfg.log_max_size, cfg.log_max_files),
            )?),
            None => None,
        };
        let root = Root::new(&cfg.runtime_root);
        let status = Status {
            monitor_pid: std::process::id() as i32,
            state: "creating".into(),
            ..Default::default()
        };
        Ok(Monitor {
            cfg,
            root,
            epoll,
            sfd,
            listener,
            out: None,
            err: None,
            stdin: None,
            stdin_pending: Vec::new(),
            close_stdin_after: false,
            stdin_paused: false,
            log,
            clients: HashMap::new(),
            next_client: CLIENT_BASE,
            status,
            init: None,
            started: Instant::now(),
            restart_at: None,
            health_at: None,
            health_probe: None,
            cleaned_by_client: false,
        })
    }

    /// Sets up stdio and creates the container (its init waits for `start`).
    fn first_create(&mut self) -> Result<i32, String> {
        self.status.state = "created".into();
        let null = ctx(
            "opening /dev/null",
            File::options().read(true).write(true).open("/dev/null"),
        )?;
        if self.cfg.tty {
            for fd in 0..3 {
                ctx("redirecting stdio", fds::dup2(null.as_raw_fd(), fd))?;
            }
        } else {
            // The container gets our fds 0-2; we keep them for restarts.
            if self.cfg.open_stdin {
                let (r, w) = ctx("creating stdin pipe", nix::unistd::pipe2(OFlag::O_CLOEXEC))?;
                ctx("redirecting stdin", fds::dup2(r.as_raw_fd(), 0))?;
                ctx("stdin pipe", nonblocking(&w))?;
                self.stdin = Some(w);
            } else {
                ctx("redirecting stdin", fds::dup2(null.as_raw_fd(), 0))?;
            }
            let (r, w) = ctx("creating stdout pipe", nix::unistd::pipe2(OFlag::O_CLOEXEC))?;
            ctx("redirecting stdout", fds::dup2(w.as_raw_fd(), 1))?;
            self.out = Some(r);
            let (r, w) = ctx("creating stderr pipe", nix::unistd::pipe2(OFlag::O_CLOEXEC))?;
            ctx("redirecting stderr", fds::dup2(w.as_raw_fd(), 2))?;
            self.err = Some(r);
            for (fd, token) in [(&self.out, OUT), (&self.err, ERR)] {
                let fd = fd.as_ref().expect("just set");
                ctx("output pipe", nonblocking(fd))?;
                ctx(
                    "watching output",
                    self.epoll.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token)),
                )?;
            }
        }
        self.create()
    }

    fn create(&mut self) -> Result<i32, String> {
        let opts = CreateOptions {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.clone(),
            foreground: true,
            ..Default::default()
        };
        let created = create(&self.root, &opts).map_err(|e| berth_runtime::error::chain(&e))?;
        if let Some(master) = created.console {
            ctx("pty", nonblocking(&master))?;
            if let Some(old) = self.out.take() {
                let _ = self.epoll.delete(&old);
            }
            ctx(
                "watching pty",
                self.epoll.add(&master, EpollEvent::new(EpollFlags::EPOLLIN, OUT)),
            )?;
            if self.cfg.open_stdin {
                self.stdin = Some(ctx("dup pty", master.try_clone())?);
            }
            self.out = Some(master);
        }
        let pid = created.state.pid;
        self.init = Some(Pid::from_raw(pid));
        self.status.pid = pid;
        self.started = Instant::now();
        if let Some(h) = &self.cfg.health {
            self.health_at = Some(self.started + h.next_after(Duration::ZERO));
        }
        self.write_status();
        Ok(pid)
    }

    fn write_status(&self) {
        let _ = self.status.write(&self.cfg.status_path);
    }

    fn serve(&mut self) {
        let mut events = [EpollEvent::empty(); 16];
        loop {
            let due = match (self.restart_at, self.health_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = match due {
                Some(at) => {
                    let ms = at.saturating_duration_since(Instant::now()).as_millis().min(60_000) as u16;
                    EpollTimeout::from(ms)
                }
                None => EpollTimeout::NONE,
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return self.finish(),
            };
            for ev in &events[..n] {
                match ev.data() {
                    SIGNALS => {
                        if let Some(code) = self.reap() {
                            if self.exited(code) {
                                return self.finish();
                            }
                        }
                    }
                    LISTENER => self.accept(),
                    OUT => self.output(0),
                    ERR => self.output(1),
                    STDIN => self.flush_stdin(),
                    token => self.client_event(token, ev.events()),
                }
            }
            if self.restart_at.is_some_and(|at| Instant::now() >= at) {
                self.restart_at = None;
                if self.restart().is_err() {
                    return self.finish();
                }
            }
            if self.health_at.is_some_and(|at| Instant::now() >= at) {
                self.health_at = None;
                self.probe_health();
            }
            if self.status.state == "restarting" && self.restart_at.is_none() {
                // A user stopped it while it waited to restart.
                return self.finish();
            }
        }
    }

    /// Reaps children; the container's exit code if init was among them.
    fn reap(&mut self) -> Option<i32> {
        while let Ok(Some(_)) = self.sfd.read_signal() {}
        let mut code = None;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, c)) if Some(pid) == self.init => code = Some(c),
                Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == self.init => code = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) if st.pid().is_some() && st.pid() == self.health_probe => {
                    self.health_probe = None;
                    // The next probe, unless the container is gone.
                    if let (Some(h), Some(_)) = (&self.cfg.health, self.init) {
                        self.health_at = Some(Instant::now() + h.next_after(self.started.elapsed()));
                    }
                }
                Ok(_) => {}
            }
        }
        code
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let token = self.next_client;
            self.next_client += 1;
            if self
                .epoll
                .add(
                    &stream,
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token),
                )
                .is_err()
            {
                continue;
            }
            self.clients.insert(
                token,
                Client {
                    stream,
                    dec: Decoder::default(),
                    want: 0,
                    greeted: false,
                    pending: Vec::new(),
                    cleans_up: false,
                },
            );
        }
    }

    /// Reads container output of `stream` (0 stdout, 1 stderr).
    fn output(&mut self, stream: usize) {
        let mut buf = [0u8; 32 * 1024];
        for _ in 0..16 {
            let fd = if stream == 0 { &self.out } else { &self.err };
            let Some(fd) = fd else { return };
            match nix::unistd::read(fd.as_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    // EOF (pipe) or the pty's last holder closed it.
                    let fd = if stream == 0 { self.out.take() } else { self.err.take() };
                    if let Some(fd) = fd {
                        let _ = self.epoll.delete(&fd);
                    }
                    return;
                }
                Ok(n) => self.emit(stream, &buf[..n]),
                Err(_) => return,
            }
        }
    }

    fn emit(&mut self, stream: usize, data: &[u8]) {
        if let Some(log) = &mut self.log {
            let _ = log.write(stream, data, &now_rfc3339());
        }
        let (want, kind) = if stream == 0 {
            (proto::WANT_STDOUT, proto::STDOUT)
        } else {
            (proto::WANT_STDERR, proto::STDERR)
        };
        let frame = proto::encode(kind, data);
        let mut dead = Vec::new();
        for (token, c) in &mut self.clients {
            if c.want & want != 0 && !send(c, &frame) {
                dead.push(*token);
            }
        }
        for t in dead {
            self.drop_client(t);
        }
    }

    fn client_event(&mut self, token: u64, events: EpollFlags) {
        if events.contains(EpollFlags::EPOLLOUT) {
            if let Some(c) = self.clients.get_mut(&token) {
                if !send(c, &[]) {
                    return self.drop_client(token);
                }
                if c.pending.is_empty() {
                    let _ = self.epoll.modify(
                        &c.stream,
                        &mut EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token),
                    );
                }
            }
        }
        if !events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP) {
            return;
        }
        let mut buf = [0u8; 32 * 1024];
        let Some(c) = self.clients.get_mut(&token) else { return };
        let eof = match c.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                c.dec.push(&buf[..n]);
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        loop {
            let Some(c) = self.clients.get_mut(&token) else { return };
            let frame = match c.dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return self.drop_client(token),
            };
            let want = c.want;
            match frame {
                (proto::HELLO, p) if !c.greeted => {
                    c.greeted = true;
                    c.want = p.first().copied().unwrap_or(0);
                    // The client waits for this before anything starts.
                    if !send(c, &proto::encode(proto::HELLO, &[])) {
                        return self.drop_client(token);
                    }
                }
                (proto::STDIN, data) if want & proto::WANT_STDIN != 0 => {
                    if self.stdin.is_some() {
                        self.stdin_pending.extend_from_slice(&data);
                        self.flush_stdin();
                    }
                }
                (proto::STDIN_CLOSE, _) if want & proto::WANT_STDIN != 0 => {
                    self.close_stdin_after = true;
                    self.flush_stdin();
                }
                (proto::RESIZE, p) if p.len() == 4 => {
                    if self.cfg.tty {
                        if let Some(m) = &self.out {
                            let rows = u16::from_be_bytes([p[0], p[1]]);
                            let cols = u16::from_be_bytes([p[2], p[3]]);
                            let _ = tty::set_window_size(m.as_raw_fd(), rows, cols);
                        }
                    }
                }
                (proto::CLEANS_UP, _) => c.cleans_up = true,
                (proto::STOPPING, _) => {
                    self.status.stopped_by_user = true;
                    if self.status.state == "restarting" {
                        self.restart_at = None;
                    }
                    self.write_status();
                }
                _ => return self.drop_client(token),
            }
        }
        if eof {
            let stdin_client = self
                .clients
                .get(&token)
                .is_some_and(|c| c.want & proto::WANT_STDIN != 0);
            self.drop_client(token);
            // As Docker: a client that goes away (detach keys, killed) closes
            // a pipe's stdin with `stdin_once`, never a terminal's: the shell
            // a user detached from runs on.
            if stdin_client && self.cfg.stdin_once && !self.cfg.tty {
                self.close_stdin_after = true;
                self.flush_stdin();
            }
        }
    }

    fn drop_client(&mut self, token: u64) {
        if let Some(c) = self.clients.remove(&token) {
            let _ = self.epoll.delete(&c.stream);
        }
    }

    /// Writes queued stdin to the container, without blocking.
    fn flush_stdin(&mut self) {
        let Some(w) = &self.stdin else {
            self.stdin_pending.clear();
            return;
        };
        while !self.stdin_pending.is_empty() {
            match nix::unistd::write(w, &self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    // The container closed its stdin.
                    self.stdin_pending.clear();
                    self.close_stdin_after = true;
                }
            }
        }
        let pending = !self.stdin_pending.is_empty();
        let w = self.stdin.as_ref().expect("checked");
        if pending {
            let _ = self.epoll.add(w, EpollEvent::new(EpollFlags::EPOLLOUT, STDIN));
        } else {
            let _ = self.epoll.delete(w);
        }
        if !pending && self.close_stdin_after {
            if self.cfg.tty {
                // A pty has no half-close: send the terminal's EOF character.
                if let Some(m) = &self.stdin {
                    let _ = nix::unistd::write(m, &[4]);
                }
            }
            self.stdin = None;
        }
        let over = self.stdin_pending.len() > STDIN_BUFFER;
        if over != self.stdin_paused {
            self.stdin_paused = over;
            let flags = if over {
                EpollFlags::EPOLLRDHUP
            } else {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
            };
            for (token, c) in &self.clients {
                if c.want & proto::WANT_STDIN != 0 {
                    let _ = self.epoll.modify(&c.stream, &mut EpollEvent::new(flags, *token));
                }
            }
        }
    }

    /// Starts the engine's health probe for the container (one at a time;
    /// its end, reaped with the other children, schedules the next).
    fn probe_health(&mut self) {
        if self.health_probe.is_some() || self.init.is_none() {
            return;
        }
        let Some((prog, args)) = self.cfg.health.as_ref().and_then(|h| h.command.split_first()) else {
            return;
        };
        let spawned = std::process::Command::new(prog)
            .args(args)
            .arg(&self.cfg.id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            // Reaped by `reap` through waitpid, not through the Child.
            Ok(child) => self.health_probe = Some(Pid::from_raw(child.id() as i32)),
            Err(_) => {
                if let Some(h) = &self.cfg.health {
                    self.health_at = Some(Instant::now() + h.next_after(self.started.elapsed()));
                }
            }
        }
    }

    /// The container's init exited with `code`: record it, clean up the
    /// runtime's side, and decide on a restart. True when this is the end.
    fn exited(&mut self, code: i32) -> bool {
        self.output(0);
        self.output(1);
        if let Some(log) = &mut self.log {
            let _ = log.flush_partial(&now_rfc3339());
        }
        let oom = self
            .root
            .load(&self.cfg.id)
            .ok()
            .and_then(|s| s.cgroup)
            .and_then(|cg| cg.oom_kill_count().ok())
            .is_some_and(|n| n > 0);
        let _ = delete::delete(&self.root, &self.cfg.id, true);
        self.init = None;
        self.health_at = None;
        self.status.pid = 0;
        self.status.exit_code = code;
        self.status.oom_killed = oom;
        self.status.finished_at = now_rfc3339();
        // `update --restart` rewrites the policy in our config file.
        if let Some(c) = std::fs::read(self.cfg.bundle.join("monitor.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<MonitorConfig>(&b).ok())
        {
            self.cfg.restart = c.restart;
        }
        let again = self
            .cfg
            .restart
            .applies(code, self.status.restart_count, self.status.stopped_by_user);
        if again {
            // Docker's back-off: 100 ms doubling, reset after 10 s of running.
            let ran = self.started.elapsed();
            let n = if ran >= Duration::from_secs(10) {
                0
            } else {
                self.status.restart_count.min(10)
            };
            let delay = Duration::from_millis(100 << n).min(Duration::from_secs(60));
            self.restart_at = Some(Instant::now() + delay);
            self.status.state = "restarting".into();
        } else {
            self.status.state = "exited".into();
        }
        // The report first: a client that gets the exit code reads it next.
        self.write_status();
        let frame = proto::encode(proto::EXIT, &code.to_be_bytes());
        let mut cleaner = false;
        for c in self.clients.values_mut() {
            if send(c, &frame) && flush_blocking(c) && c.cleans_up {
                cleaner = true;
            }
        }
        let tokens: Vec<u64> = self.clients.keys().copied().collect();
        for t in tokens {
            self.drop_client(t);
        }
        self.cleaned_by_client = cleaner && !again;
        !again
    }

    fn restart(&mut self) -> Result<(), String> {
        self.status.restart_count += 1;
        let r = self.create().and_then(|_| {
            start::start(&self.root, &self.cfg.id).map_err(|e| berth_runtime::error::chain(&e))?;
            Ok(())
        });
        match r {
            Ok(()) => {
                self.status.state = "running".into();
                self.status.started_at = now_rfc3339();
                self.status.error.clear();
                self.write_status();
                crate::trim::trim();
                Ok(())
            }
            Err(e) => {
                let _ = delete::delete(&self.root, &self.cfg.id, true);
                self.status.state = "exited".into();
                self.status.error = e.clone();
                self.status.exit_code = 128;
                self.write_status();
                Err(e)
            }
        }
    }

    /// The end: no more clients, run the exit command.
    fn finish(&mut self) {
        let _ = std::fs::remove_file(&self.cfg.socket);
        if self.cleaned_by_client {
            return;
        }
        if let Some((prog, args)) = self.cfg.exit_command.split_first() {
            let _ = std::process::Command::new(prog)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Queues `frame` for a client and writes what the socket takes now; false
/// when the client is gone or too far behind.
fn send(c: &mut Client, frame: &[u8]) -> bool {
    c.pending.extend_from_slice(frame);
    while !c.pending.is_empty() {
        match c.stream.write(&c.pending) {
            Ok(0) => return false,
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    c.pending.len() <= CLIENT_BUFFER
}

/// Gives a client a moment to take the last frames; whether it took them.
fn flush_blocking(c: &mut Client) -> bool {
    if c.pending.is_empty() {
        return true;
    }
    let _ = c.stream.set_nonblocking(false);
    let _ = c.stream.set_write_timeout(Some(Duration::from_secs(1)));
    let ok = c.stream.write_all(&c.pending).is_ok();
    c.pending.clear();
    ok
}
