//! A classic BPF interpreter for tests: runs a program on a synthetic
//! `struct seccomp_data` and returns what the filter decides, after checking
//! the program as the kernel would before accepting it.

use crate::bpf::*;

/// The parts of `struct seccomp_data` filters read (instruction_pointer is 0).
#[derive(Clone, Copy, Debug)]
pub struct Data {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

impl Data {
    pub fn new(arch: u32, nr: u32) -> Data {
        Data { arch, nr, args: [0; 6] }
    }

    pub fn arg(mut self, index: usize, value: u64) -> Data {
        self.args[index] = value;
        self
    }
}

/// What the kernel's classic BPF checker demands, plus seccomp's limits on
/// loads: at most 4096 instructions, every jump inside the program, the last
/// instruction a return, aligned loads within seccomp_data.
pub fn check(prog: &[SockFilter]) {
    assert!(!prog.is_empty() && prog.len() <= MAX_INSNS, "length {}", prog.len());
    assert_eq!(prog[prog.len() - 1].code, RET_K, "last instruction must return");
    for (i, insn) in prog.iter().enumerate() {
        let next = i + 1;
        match insn.code {
            LD_W_ABS => assert!(insn.k % 4 == 0 && insn.k < 64, "load at {}", insn.k),
            AND_K | RET_K => {}
            JA => assert!(next + (insn.k as usize) < prog.len(), "ja out of range at {i}"),
            JEQ_K | JGT_K | JGE_K => {
                assert!(next + (insn.jt as usize) < prog.len(), "jt out of range at {i}");
                assert!(next + (insn.jf as usize) < prog.len(), "jf out of range at {i}");
            }
            code => panic!("unexpected instruction {code:#x} at {i}"),
        }
    }
}

/// Runs `prog` on `data`: the filter's return value.
pub fn run(prog: &[SockFilter], data: &Data) -> u32 {
    run_counting(prog, data).0
}

/// The return value and how many instructions ran.
pub fn run_counting(prog: &[SockFilter], data: &Data) -> (u32, usize) {
    let mut mem = [0u8; 64];
    mem[0..4].copy_from_slice(&data.nr.to_le_bytes());
    mem[4..8].copy_from_slice(&data.arch.to_le_bytes());
    for (i, arg) in data.args.iter().enumerate() {
        mem[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let insn = prog[pc];
        pc += 1;
        steps += 1;
        match insn.code {
            LD_W_ABS => {
                let k = insn.k as usize;
                a = u32::from_le_bytes(mem[k..k + 4].try_into().unwrap());
            }
            AND_K => a &= insn.k,
            JA => pc += insn.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match insn.code {
                    JEQ_K => a == insn.k,
                    JGT_K => a > insn.k,
                    _ => a >= insn.k,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            RET_K => return (insn.k, steps),
            code => panic!("unexpected instruction {code:#x}"),
        }
    }
}
