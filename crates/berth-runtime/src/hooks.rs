//! OCI hooks: run with the container state on stdin, with an optional
//! timeout, and fail with the hook's path and what went wrong.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("running {kind} hook {path}")]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} exited with {status}{stderr}")]
    Failed {
        kind: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook {path} timed out after {secs}s")]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

/// Run each hook in order; stop at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run(kind, h, state_json))
}

/// Run one hook: argv from `args` (argv[0] included, as the spec says), the
/// environment exactly `env`, the state JSON on stdin.
pub fn run(kind: &'static str, hook: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some(arg0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(arg0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE).
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let mut nap = Duration::from_micros(50);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(spawn_err)? {
            break st;
        }
        if let Some((secs, at)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout { kind, path, secs });
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        stderr: if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}"]}}"#,
            out.display()
        ));
        run("prestart", &h, b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"id\":\"x\"}");
    }

    #[test]
    fn failing_hook_reports_status_and_stderr() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo boom >&2; exit 3"]}"#);
        let err = run("poststop", &h, b"{}").unwrap_err().to_string();
        assert!(err.contains("exit status: 3") && err.contains("boom"), "{err}");
    }

    #[test]
    fn hook_timeout_kills() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let t = Instant::now();
        let err = run("createRuntime", &h, b"{}").unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn hook_env_is_exactly_the_spec_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","env > {}"],"env":["A=1"]}}"#,
            out.display()
        ));
        run("poststart", &h, b"{}").unwrap();
        let env = std::fs::read_to_string(out).unwrap();
        assert!(env.contains("A=1") && !env.contains("HOME="), "{env}");
    }
}
