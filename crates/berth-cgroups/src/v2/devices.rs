//! v2 devices: OCI device rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE program.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access_type = access << 16 | type) and returns 1 to allow, 0 to deny. Rules are emitted from
//! last to first, each returning its verdict on a match, so the last matching rule wins; if none
//! matches, the device is denied. An allow rule matches when the requested access is a subset of
//! its access; a deny rule when the requested access overlaps its access (so denying "w" also
//! refuses an "rw" open), which gives the same result as runc's device-rule emulator.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::bpf_syscall::{self, Insn};

// Instruction encodings (linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

// bpf_cgroup_dev_ctx types and access bits.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;
pub const ACC_MKNOD: i32 = 1;
pub const ACC_READ: i32 = 2;
pub const ACC_WRITE: i32 = 4;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2; // type
const R3: u8 = 3; // access
const R4: u8 = 4; // major
const R5: u8 = 5; // minor

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

fn access_bits(access: Option<&str>) -> i32 {
    let a = access.filter(|a| !a.is_empty()).unwrap_or("rwm");
    let mut bits = 0;
    for c in a.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        };
    }
    bits
}

/// One rule's block: compare fields, jump past the block if any differs, else return the verdict.
/// The bool is true when the rule matches every device (no checks): nothing after it is reachable.
fn rule_block(rule: &LinuxDeviceCgroup) -> Option<(Vec<Insn>, bool)> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::P => return None, // not a device the cgroup sees
    };
    let access = access_bits(rule.access().as_deref());
    let full = ACC_READ | ACC_WRITE | ACC_MKNOD;
    // Each check is a list of instructions ending with a conditional jump to the block end.
    let mut checks: Vec<Vec<Insn>> = Vec::new();
    if let Some(t) = typ {
        checks.push(vec![insn(JMP_JNE_K, R2, 0, 0, t)]);
    }
    if access & full != full {
        let test = if rule.allow() {
            // an allow rule matches if the requested access is a subset of it: (R3 & access) == R3
            insn(JMP_JNE_X, R1, R3, 0, 0)
        } else {
            // a deny rule matches if the requested access overlaps it: (R3 & access) != 0
            insn(JMP_JEQ_K, R1, 0, 0, 0)
        };
        checks.push(vec![
            insn(ALU32_MOV_X, R1, R3, 0, 0),
            insn(ALU32_AND_K, R1, 0, 0, access),
            test,
        ]);
    }
    if let Some(m) = rule.major().filter(|m| *m >= 0) {
        checks.push(vec![insn(JMP_JNE_K, R4, 0, 0, m as i32)]);
    }
    if let Some(m) = rule.minor().filter(|m| *m >= 0) {
        checks.push(vec![insn(JMP_JNE_K, R5, 0, 0, m as i32)]);
    }
    let catch_all = checks.is_empty();
    let mut block: Vec<Insn> = checks.into_iter().flatten().collect();
    block.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(rule.allow())));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    // Fix up jump offsets: each jump goes to the first instruction after the block.
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if matches!(ins.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
            ins.off = (len - i - 1) as i16;
        }
    }
    Some((block, catch_all))
}

/// Compile the rules (in OCI order) to a device-cgroup program.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut prog = vec![
        // r2 = type, r3 = access, r4 = major, r5 = minor
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        if let Some((block, catch_all)) = rule_block(rule) {
            prog.extend(block);
            if catch_all {
                // The verifier rejects unreachable instructions.
                return prog;
            }
        }
    }
    // default deny
    prog.push(insn(ALU32_MOV_K, R0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// Load the program for `rules`, attach it to the cgroup2 directory with BPF_F_ALLOW_MULTI,
/// then detach the programs that were attached before (ours from an earlier apply).
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> crate::Result<()> {
    let prog = program(rules);
    let cgroup = bpf_syscall::open_cgroup(dir)?;
    let old = bpf_syscall::query_device_progs(&cgroup, dir)?;
    let fd = bpf_syscall::load_device_prog(&prog)?;
    bpf_syscall::attach_device_prog(&cgroup, &fd, dir)?;
    for id in old {
        bpf_syscall::detach_device_prog_id(&cgroup, id, dir)?;
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A tiny interpreter for the subset of eBPF we emit, to check the program's verdicts.
    pub fn run(prog: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u32 {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1);
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_K => r[dst] = u64::from(i.imm as u32),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JMP_JEQ_K => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JMP_JNE_X => {
                    if r[dst] != r[src] {
                        pc += i.off as usize;
                    }
                }
                JMP_EXIT => return r[0] as u32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn structure() {
        let p = program(&[]);
        assert_eq!(p.len(), 8); // prologue + default deny
        assert_eq!(p[6].code, ALU32_MOV_K);
        assert_eq!(p[6].imm, 0);
        let r = rules(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#);
        let p = program(&r);
        // type + access(3) + major + minor + verdict(2)
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6].off, 7);
        assert_eq!(p[7].code, ALU32_MOV_X);
    }

    #[test]
    fn verdicts() {
        let r = rules(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
                {"allow": true, "type": "b", "access": "m"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
                {"allow": true, "type": "c", "major": 136}]"#,
        );
        let p = program(&r);
        let (c, b) = (DEV_CHAR, DEV_BLOCK);
        let (rd, wr, mk) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        // /dev/null read allowed, write denied by the later deny rule (last match wins)
        assert_eq!(run(&p, c, rd, 1, 3), 1);
        assert_eq!(run(&p, c, wr, 1, 3), 0);
        assert_eq!(run(&p, c, rd | wr, 1, 3), 0);
        // /dev/zero read-only
        assert_eq!(run(&p, c, rd, 1, 5), 1);
        assert_eq!(run(&p, c, rd | wr, 1, 5), 0);
        // any block device: mknod only
        assert_eq!(run(&p, b, mk, 8, 0), 1);
        assert_eq!(run(&p, b, rd, 8, 0), 0);
        // wildcard minor
        assert_eq!(run(&p, c, rd | wr, 136, 7), 1);
        // unknown device denied
        assert_eq!(run(&p, c, rd, 4, 1), 0);
        // allow-all last wins over everything before
        let mut all = r.clone();
        all.extend(rules(r#"[{"allow": true, "access": "rwm"}]"#));
        let p = program(&all);
        assert_eq!(run(&p, b, rd | wr, 9, 9), 1);
        // ... and ends the program: prologue + verdict only
        assert_eq!(p.len(), 8);
        assert_eq!(p[6].imm, 1);
    }
}
