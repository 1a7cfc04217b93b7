//! Thin wrappers over the raw system calls the runtime needs and `nix` does
//! not offer. Every `unsafe` block of the crate lives under this module; each
//! file is named for what it wraps.

pub mod capset;
pub mod clone;
pub mod fds;
pub mod keyctl;
pub mod mount_api;
pub mod prctl;
pub mod sched;
pub mod signal;
pub mod tty;
