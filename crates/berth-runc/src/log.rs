//! runc-style logging: `time=".." level=error msg=".."` on stderr, and to
//! the `--log` file in text or JSON (containerd reads the JSON form).

use std::io::Write;
use std::sync::OnceLock;

use crate::cli::Global;

struct Logger {
    file: Option<std::path::PathBuf>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(g: &Global) {
    let _ = LOGGER.set(Logger {
        file: g.log.clone().filter(|p| !p.as_os_str().is_empty()),
        json: g.log_format == "json",
        debug: g.debug,
    });
}

fn now() -> String {
    berth_runtime::state::now_rfc3339()
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    if level == "debug" && !l.debug {
        return;
    }
    let text = format!("time={:?} level={level} msg={:?}\n", now(), msg);
    if let Some(path) = &l.file {
        let line = if l.json {
            format!("{}\n", serde_json::json!({"level": level, "msg": msg, "time": now()}))
        } else {
            text.clone()
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}
