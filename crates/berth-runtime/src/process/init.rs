//! The container's init process, from the fork to the execve of the user's
//! program. It runs in the new namespaces; the runtime drives it through the
//! channel: Continue -> (mounts) -> MountsReady -> HooksDone -> Ready, then it
//! blocks on the exec fifo until `start`.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use berth_cgroups::{Cgroup, Layout};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{Channel, Message};
use super::setup;
use crate::error::{Error, IoContext, Result};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, devices, paths, RootfsContext};
use crate::seccomp::{self, LoadPoint};
use crate::sys::fds;

/// Everything init needs, prepared by the runtime before the fork.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub channel: &'a Channel,
    /// O_PATH descriptor of the exec fifo.
    pub fifo_fd: RawFd,
    /// Where to send the pty master when `process.terminal` is set.
    pub console: Option<RawFd>,
    pub no_pivot: bool,
    /// The runtime denied setgroups(2) in the user namespace (rootless, own
    /// gid mapped directly): no supplementary groups can be set.
    pub setgroups_denied: bool,
    /// Join a new session keyring `_ses.<id>` (unless `--no-new-keyring`).
    pub session_keyring: Option<&'a str>,
    pub preserve_fds: u32,
    pub cgroup: Option<&'a Cgroup>,
    pub layout: Option<&'a Layout>,
    /// The host's AppArmor/SELinux state (labels are applied where enabled).
    pub lsm: crate::lsm::Host,
    /// The runtime runs as root (it can write the id maps of a
    /// non-dumpable child).
    pub runtime_is_root: bool,
    /// The compiled seccomp filter, if the spec has one.
    pub seccomp: Option<&'a crate::seccomp::SeccompProgram>,
    /// Idmapped mount trees, by mount index (see rootfs::idmap).
    pub idmapped: &'a [(usize, std::os::fd::OwnedFd)],
}

/// The init process's whole life. Never returns.
pub fn run(args: InitArgs) -> ! {
    super::child_main(args.channel, || setup_and_exec(&args))
}

fn setup_and_exec(a: &InitArgs) -> Result<Infallible> {
    let spec = a.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process is required".into()))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Invalid("linux section is required".into()))?;
    // A root runtime can write the id maps of a non-dumpable process: no
    // window at all then. An unprivileged one cannot, so it waits for them.
    if a.runtime_is_root {
        super::make_non_dumpable()?;
    }
    a.channel.expect(Message::Continue)?;
    if !a.runtime_is_root {
        super::make_non_dumpable()?;
    }

    if a.plan.new_user {
        // The runtime has written our id maps: become root of the namespace.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .op("setting gid 0 in user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .op("setting uid 0 in user namespace")?;
    }
    if a.plan.unshare_ipc {
        nix::sched::unshare(CloneFlags::CLONE_NEWIPC).op("creating ipc namespace")?;
    }
    for j in &a.plan.join {
        // pid and time apply to children only; the runtime joined those before forking us.
        if !matches!(j.typ, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
            namespaces::enter(j.typ, &j.file, &j.path)?;
        }
    }
    // Wait for the runtime to put us in the container's cgroup only where
    // it matters: before a cgroup namespace is made (its root is our cgroup
    // then) or a cgroup file system mounted, and at the latest after the
    // mounts.
    let joined: std::cell::Cell<Option<bool>> = std::cell::Cell::new(None);
    let cgroup_ready = || -> Result<bool> {
        if let Some(have) = joined.get() {
            return Ok(have);
        }
        let have = match a.channel.recv()? {
            Some(Message::CgroupJoined(have)) => have,
            Some(Message::Error(e)) => return Err(Error::Child(e)),
            other => {
                return Err(Error::Invalid(format!(
                    "unexpected sync message {other:?}, wanted CgroupJoined"
                )))
            }
        };
        joined.set(Some(have));
        if a.plan.new_cgroup {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).op("creating cgroup namespace")?;
        }
        Ok(have)
    };
    if let Some(id) = a.session_keyring {
        join_session_keyring(id, a.plan.has(LinuxNamespaceType::User))?;
    }

    let in_userns = a.plan.has(LinuxNamespaceType::User);
    let ctx = RootfsContext {
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        cgroup: a.cgroup,
        layout: a.layout,
        new_cgroupns: a.plan.new_cgroup,
        in_userns,
        idmapped: a.idmapped,
        cgroup_ready: &cgroup_ready,
        lsm: a.lsm,
    };
    rootfs::prepare(&ctx)?;
    rootfs::mount_all(&ctx)?;
    cgroup_ready()?;
    if !rootfs::dev_is_bind_mounted(spec) {
        let mut nodes = devices::default_nodes();
        for d in linux.devices().as_deref().unwrap_or_default() {
            let n = devices::node_from_spec(d)?;
            nodes.retain(|x| x.path != n.path);
            nodes.push(n);
        }
        devices::create_nodes(a.rootfs, &nodes, in_userns)?;
        devices::create_symlinks(a.rootfs)?;
    }

    // The cwd is made while the rootfs is still a directory of ours, and
    // resolved inside it: no path it names can create anything elsewhere.
    paths::InRoot::open(a.rootfs)
        .and_then(|r| r.create(process.cwd(), false))
        .at("creating cwd", process.cwd())?;
    a.channel.send(&Message::MountsReady)?;
    let state_json = match a.channel.recv()? {
        Some(Message::HooksDone(s)) => s,
        Some(Message::Error(e)) => return Err(Error::Child(e)),
        other => return Err(Error::Invalid(format!("unexpected sync message {other:?}"))),
    };
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.create_container().as_ref()) {
        hooks::run_all("createContainer", h, state_json.as_bytes())?;
    }

    // Take hold of the fifo while still root and still on the host's /proc:
    // after pivot_root /proc is the container's, which it could have
    // replaced with something else.
    let fifo = open_fifo(a.fifo_fd)?;
    rootfs::pivot(a.rootfs, a.no_pivot)?;
    if process.terminal() == Some(true) {
        let sock = a
            .console
            .ok_or_else(|| Error::Invalid("terminal requested but no console socket".into()))?;
        crate::tty::setup_console(sock, process.console_size(), true)?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).op(format!("setting hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        std::fs::write("/proc/sys/kernel/domainname", d).op(format!("setting domainname {d:?}"))?;
    }
    if let Some(sysctl) = linux.sysctl() {
        for (k, v) in sysctl {
            rootfs::write_sysctl(k, v)?;
        }
    }
    // After the sysctls, as runc does: readonlyPaths usually holds /proc/sys
    // (Docker's specs do, and set net.ipv4.ping_group_range).
    rootfs::readonly_paths(linux.readonly_paths().as_deref().unwrap_or_default())?;
    rootfs::mask_paths(linux.masked_paths().as_deref().unwrap_or_default())?;
    if let Some(p) = linux.rootfs_propagation().as_deref().filter(|p| !p.is_empty()) {
        if let Some(flags) = rootfs::options::propagation_for(p) {
            nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).op("setting rootfs propagation")?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        rootfs::readonly_root()?;
    }
    if let Some(p) = linux.personality() {
        let persona = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
            _ => 0,
        };
        crate::sys::prctl::personality(persona).op("setting personality")?;
    }

    setup::rlimits(process)?;
    setup::scheduling(process)?;
    let cwd = process.cwd();
    let nnp = process.no_new_privileges() == Some(true);
    seccomp::load_at(a.seccomp, nnp, LoadPoint::BeforeIdentity, a.channel)?;
    setup::identity(process, !a.setgroups_denied)?;
    // Only stdio, the preserved descriptors, the channel and the fifo stay
    // open from here: nothing the caller leaked (nor our own idmapped
    // trees or console socket) can be reached through /proc/self/fd.
    fds::close_from_except(3 + a.preserve_fds, &[a.channel.raw(), fifo.as_raw_fd()])
        .op("closing the runtime's descriptors")?;
    setup::enter_cwd(cwd)?;
    setup::no_new_privs(process)?;
    crate::lsm::set_exec_labels(process, a.lsm).op("setting the AppArmor/SELinux exec label")?;
    let exe = setup::find_executable(process)?;
    seccomp::load_at(a.seccomp, nnp, LoadPoint::BeforeReady, a.channel)?;

    a.channel.send(&Message::Ready)?;
    // Keep `fifo` open until execve closes it (close-on-exec): `start`
    // waits for that to know the program runs, then runs poststart hooks.
    wait_for_start(&fifo)?;
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.start_container().as_ref()) {
        hooks::run_all("startContainer", h, state_json.as_bytes())?;
    }
    setup::reset_signals()?;
    hand_over_fds(a.preserve_fds)?;
    if crate::config::wants_init(spec) {
        // The reaper must not hold the fifo: `start` waits for its close.
        drop(fifo);
        super::reaper::fork_program().op("forking the program under --init")?;
    }
    Err(setup::exec(&exe, process))
}

/// A keyring of the container's own, so it does not share the caller's
/// session keys. Kernels without keyrings (ENOSYS) are fine, as in runc.
pub(crate) fn join_session_keyring(id: &str, in_userns: bool) -> Result<()> {
    use crate::sys::keyctl;
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| Error::Invalid(format!("container id {id:?} contains a NUL byte")))?;
    let key = match keyctl::join_session_keyring(&name) {
        Ok(k) => k,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("joining session keyring {name:?}"), e)),
    };
    // Let the container's root search it: "other" search in a user
    // namespace (the owner's uid is not mapped), "user" search otherwise.
    let search = if in_userns { 0x8 } else { 0x8_0000 };
    let desc = keyctl::describe(key).map_err(|e| Error::sys(format!("describing session keyring {name:?}"), e))?;
    let perm = desc
        .split(';')
        .nth(3)
        .and_then(|p| u32::from_str_radix(p, 16).ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unexpected key description {desc:?} of session keyring {name:?}"
            ))
        })?;
    keyctl::set_perm(key, perm | search)
        .map_err(|e| Error::sys(format!("setting permissions of session keyring {name:?}"), e))
}

/// Open the exec fifo read-write: that never blocks, and as we hold a
/// writer ourselves, reading blocks until `start` writes its byte.
fn open_fifo(fifo_fd: RawFd) -> Result<std::fs::File> {
    let path = format!("/proc/self/fd/{fifo_fd}");
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .at("opening exec fifo", &path)
}

/// Block until `start` writes to the fifo.
fn wait_for_start(mut fifo: &std::fs::File) -> Result<()> {
    use std::io::Read;
    let mut b = [0u8; 1];
    loop {
        match fifo.read(&mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Child("exec fifo closed before start".into())),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys("reading exec fifo", e)),
        }
    }
}

/// Only stdio and the preserved descriptors survive the execve.
pub(crate) fn hand_over_fds(preserve: u32) -> Result<()> {
    fds::cloexec_from(3 + preserve).op("closing the runtime's descriptors")?;
    for fd in 3..3 + preserve as RawFd {
        fds::clear_cloexec(fd).op(format!("preserving fd {fd}"))?;
    }
    Ok(())
}
