//! Cgroup management for the berth OCI runtime: cgroup v1, hybrid and v2 behind one interface.
//!
//! Every operation takes its roots from a [`Layout`] (the host's cgroup mounts), so tests can point
//! one at fixture directories.
#![deny(unsafe_code)]

mod apply;
pub mod bpf_syscall;
pub mod cgroup;
pub mod fs;
pub mod layout;
pub mod resolve;
pub mod stats;
pub mod v1;
pub mod v2;

pub use cgroup::{Cgroup, FreezerState};
pub use layout::{Layout, Mode, V1Hierarchy};
pub use stats::Stats;

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    #[error(transparent)]
    Fs(#[from] fs::FsError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Memory(#[from] v1::memory::MemoryError),
    #[error(transparent)]
    Cpu(#[from] v2::cpu::CpuError),
    #[error(transparent)]
    Hugetlb(#[from] v1::hugetlb::HugetlbError),
    #[error(transparent)]
    FreezerV1(#[from] v1::freezer::FreezerError),
    #[error(transparent)]
    FreezerV2(#[from] v2::freezer::FreezerError),
    #[error(transparent)]
    Bpf(#[from] bpf_syscall::BpfError),
}
