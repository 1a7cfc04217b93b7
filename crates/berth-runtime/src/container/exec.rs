//! `exec`: run another process inside a running container.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::error::{Error, IoContext, Result};
use crate::namespaces;
use crate::process::channel::{self, Message};
use crate::process::tenant::{self, TenantArgs};
use crate::state::{Root, State, Status};
use crate::sys::clone::{fork_with_namespaces, Forked};

#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub detach: bool,
    /// The process's stdin, stdout and stderr; by default it inherits ours.
    pub stdio: Option<Stdio>,
}

/// Descriptors that become an exec process's fds 0, 1 and 2.
#[derive(Clone, Debug)]
pub struct Stdio {
    pub stdin: std::sync::Arc<OwnedFd>,
    pub stdout: std::sync::Arc<OwnedFd>,
    pub stderr: std::sync::Arc<OwnedFd>,
}

/// A started exec process.
pub struct Execed {
    pub pid: Pid,
    /// The pty master when the caller proxies the terminal.
    pub console: Option<OwnedFd>,
}

/// The container's process settings, for building an exec process from
/// command-line flags.
pub fn base_process(root: &Root, id: &str) -> Result<Process> {
    let state = root.load(id)?;
    state
        .config
        .process()
        .clone()
        .ok_or_else(|| Error::Invalid("container has no process".into()))
}

pub fn exec(root: &Root, id: &str, process: &Process, opts: &ExecOptions) -> Result<Execed> {
    let state = root.load(id)?;
    match state.status(root) {
        Status::Running | Status::Created => {}
        Status::Paused => return Err(Error::State("cannot exec in a paused container".into())),
        _ => return Err(Error::State("cannot exec in a stopped container".into())),
    }
    crate::lsm::check(process, None, crate::lsm::Host::for_labels(process, None)).map_err(Error::Invalid)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid("args must not be empty".into()));
    }
    let terminal = process.terminal() == Some(true);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(Error::Invalid(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    let (in_userns, mut joins, pid_ns, time_ns) = container_namespaces(&state)?;
    let (console_child, console_parent) = crate::tty::console_endpoints(opts.console_socket.as_deref(), terminal)?;
    // pid and time namespaces apply to our next child.
    for (typ, f, p) in [pid_ns, time_ns].into_iter().flatten() {
        namespaces::enter(typ, &f, &p)?;
    }
    let seccomp = crate::seccomp::prepare(&state.config)?;
    // From the host's /proc: the container cannot fake this one.
    let setgroups_denied = in_userns
        && std::fs::read_to_string(format!("/proc/{}/setgroups", state.pid)).is_ok_and(|s| s.trim() == "deny");
    let (parent_ch, child_ch) = channel::pair()?;
    let pid = match fork_with_namespaces(nix::sched::CloneFlags::empty()).op("forking exec process")? {
        Forked::Child => {
            drop(parent_ch);

            joins.sort_by_key(|(t, _, _)| match t {
                LinuxNamespaceType::User => 0,
                LinuxNamespaceType::Mount => 2,
                _ => 1,
            });
            tenant::run(TenantArgs {
                process,
                namespaces: &joins,
                channel: &child_ch,
                console: console_child.as_ref().map(|f| f.as_raw_fd()),
                preserve_fds: opts.preserve_fds,
                in_userns,
                session_keyring: (!state.no_new_keyring).then_some(state.id.as_str()),
                seccomp: seccomp.as_ref(),
                lsm: crate::lsm::Host::for_labels(process, None),
                setgroups_denied,
                stdio: opts.stdio.as_ref(),
            })
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_ch);
    drop(console_child);
    let fail = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    parent_ch.send(&Message::Continue).map_err(fail)?;
    // The process joins the namespaces while we move it into the cgroup.
    if let Some(cg) = &state.cgroup {
        cg.add_process(pid.as_raw())
            .map_err(|e| fail(parent_ch.pending_error().map_or_else(|| e.into(), Error::Child)))?;
    }
    parent_ch
        .send(&Message::CgroupJoined(state.cgroup.is_some()))
        .map_err(fail)?;
    loop {
        match parent_ch.recv().map_err(fail)? {
            Some(Message::Ready) => break,
            Some(Message::SeccompFd) => {
                let profile = crate::seccomp::section(&state.config).expect("a filter was compiled");
                let mut oci = super::oci_state(&state, Status::Running);
                oci.pid = pid.as_raw();
                crate::seccomp::forward_listener_fd(&parent_ch, profile, oci).map_err(fail)?;
            }
            Some(Message::Error(e)) => {
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(Error::Child(e));
            }
            _ => return Err(fail(Error::Child("exec process exited during setup".into()))),
        }
    }
    let console = match console_parent {
        Some(sock) => Some(crate::tty::recv_fd(sock.as_raw_fd()).map_err(fail)?),
        None => None,
    };
    if let Some(p) = &opts.pid_file {
        super::create::write_pid_file(p, pid.as_raw()).map_err(fail)?;
    }
    Ok(Execed { pid, console })
}

type NsList = Vec<(LinuxNamespaceType, File, PathBuf)>;
type NsEntry = Option<(LinuxNamespaceType, File, PathBuf)>;

/// Open init's namespaces: (in a user namespace?, to join in the child,
/// pid, time).
fn container_namespaces(state: &State) -> Result<(bool, NsList, NsEntry, NsEntry)> {
    let linux = state
        .config
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Invalid("container has no linux section".into()))?;
    let mut joins = Vec::new();
    let (mut pid_ns, mut time_ns, mut in_userns) = (None, None, false);
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let typ = ns.typ();
        let path = Path::new("/proc")
            .join(state.pid.to_string())
            .join("ns")
            .join(namespaces::proc_name(typ));
        let file = File::open(&path).at("opening namespace", &path)?;
        match typ {
            LinuxNamespaceType::Pid => pid_ns = Some((typ, file, path)),
            LinuxNamespaceType::Time => time_ns = Some((typ, file, path)),
            LinuxNamespaceType::User => {
                in_userns = true;
                joins.push((typ, file, path));
            }
            _ => joins.push((typ, file, path)),
        }
    }
    Ok((in_userns, joins, pid_ns, time_ns))
}
