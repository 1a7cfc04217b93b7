//! berth-monitor: the parent of one running container, in the role of conmon
//! or containerd-shim. The engine starts one per container (`berth-monitor
//! <monitor.json>`); it creates the container through berth-runtime, holds
//! its stdio (pipes, or the pty master), writes the logs in Docker's
//! json-file format, serves attach clients on a unix socket, reaps the exit
//! status into `status.json`, applies the restart policy, and finally runs
//! the engine's exit command so the store catches up at once.
//!
//! This library holds what the engine shares with the binary: the
//! configuration and status documents ([`config`]), the attach protocol
//! ([`proto`]) and the log format ([`jsonlog`]).

#![deny(unsafe_code)]

pub mod config;
pub mod jsonlog;
pub mod proto;

pub use config::{MonitorConfig, Restart, Status};
