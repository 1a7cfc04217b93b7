//! berth-runtime: an OCI runtime library. It turns a bundle (config.json +
//! rootfs) into a running container and back: namespaces, mounts,
//! pivot_root, devices, cgroups, capabilities, rlimits, seccomp, hooks, terminals,
//! exec, pause/resume and state.
//!
//! It is single-threaded and never re-executes itself: the container's init
//! is a `clone` of the calling process that sets itself up and then execs
//! the user's program. All raw system calls live in [`sys`].

#![deny(unsafe_code)]

pub mod caps;
pub mod config;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod tty;

pub use error::{Error, Result};
pub use oci_spec;
pub use state::{OciState, Root, State, Status};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth-runc";
