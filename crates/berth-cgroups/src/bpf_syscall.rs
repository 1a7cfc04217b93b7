//! The bpf(2) syscall, for loading and attaching cgroup device programs (the only unsafe code).
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Errors of bpf(2) calls.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("opening cgroup directory {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loading device cgroup eBPF program ({insns} instructions), verifier log: {log:?}")]
    Load {
        insns: usize,
        log: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} device cgroup eBPF program on {path}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialized #[repr(C)] bpf_attr prefix of the size passed, living for
    // the call; every pointer inside it points at memory that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(raw: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw as i32) }
}

/// Open a cgroup2 directory for attaching programs.
pub fn open_cgroup(dir: &Path) -> Result<File, BpfError> {
    File::open(dir).map_err(|source| BpfError::Open {
        path: dir.to_path_buf(),
        source,
    })
}

/// Load a BPF_PROG_TYPE_CGROUP_DEVICE program.
pub fn load_device_prog(insns: &[Insn]) -> Result<OwnedFd, BpfError> {
    let license = b"Apache\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(_) => {
            // Load again with the verifier log for the error message (the
            // buffer only now: the common path touches no extra pages).
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let source = match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => return Ok(owned_fd(fd)),
                Err(e) => e,
            };
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(BpfError::Load {
                insns: insns.len(),
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
                source,
            })
        }
    }
}

/// Attach a device program to a cgroup with BPF_F_ALLOW_MULTI.
pub fn attach_device_prog(cgroup: &File, prog: &OwnedFd, path: &Path) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| BpfError::Cgroup {
        op: "attaching",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Ids of the device programs attached directly to a cgroup.
pub fn query_device_progs(cgroup: &File, path: &Path) -> Result<Vec<u32>, BpfError> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| BpfError::Cgroup {
        op: "querying",
        path: path.to_path_buf(),
        source,
    })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Detach the device program with the given id from a cgroup.
pub fn detach_device_prog_id(cgroup: &File, id: u32, path: &Path) -> Result<(), BpfError> {
    let err = |op| {
        move |source| BpfError::Cgroup {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut get = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    let prog = owned_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut get).map_err(err("getting"))?);
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map_err(err("detaching"))?;
    Ok(())
}
