//! cgroup v1 controllers: file formats of the legacy hierarchies.

pub mod blkio;
pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod memory;
pub mod net;
pub mod pids;
