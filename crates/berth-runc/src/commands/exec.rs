//! `exec`: a process from --process FILE or from the container's process
//! settings overridden by flags.

use anyhow::{bail, Context, Result};
use berth_runtime::container::exec::{base_process, exec, ExecOptions};
use berth_runtime::container::wait;
use berth_runtime::oci_spec::runtime::{Capability, Process};
use berth_runtime::Root;

use crate::cli::ExecArgs;

pub fn run(root: &Root, a: &ExecArgs) -> Result<i32> {
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading process file {}", path.display()))?;
            serde_json::from_slice::<Process>(&text)
                .with_context(|| format!("parsing process file {}", path.display()))?
        }
        None => from_flags(root, a)?,
    };
    let opts = ExecOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        detach: a.detach,
        stdio: None,
    };
    if a.detach {
        exec(root, &a.id, &process, &opts).map_err(super::chain)?;
        return Ok(0);
    }
    wait::block_signals().map_err(super::chain)?;
    let execed = exec(root, &a.id, &process, &opts).map_err(super::chain)?;
    wait::wait_foreground(execed.pid, execed.console).map_err(super::chain)
}

fn from_flags(root: &Root, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut p = base_process(root, &a.id).map_err(super::chain)?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>()?, Some(g.parse::<u32>()?)),
            None => (
                u.parse::<u32>()
                    .with_context(|| format!("invalid --user {u:?}: want uid[:gid]"))?,
                None,
            ),
        };
        let user = p.user_mut();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(a.additional_gids.clone()));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::from(c.as_str()))
                .with_context(|| format!("unknown capability {c:?}"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.ambient().clone(),
                caps.inheritable().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    3 => caps.set_ambient(Some(s)),
                    _ => caps.set_inheritable(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
