//! Classic BPF instructions and a small assembler with forward labels.
//!
//! Conditional jumps carry 8-bit offsets; the assembler lets code jump to any
//! later label and, where a target is more than 255 instructions away, routes
//! the branch through an unconditional `ja` (32-bit offset) placed right
//! after the jump. Layout code therefore never counts distances.

use crate::Error;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

enum Item {
    Stmt(u16, u32),
    Jump { code: u16, k: u32, jt: Label, jf: Label },
    Ja(Label),
    Bind(Label),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` before the next instruction emitted.
    pub fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt(LD_W_ABS, offset));
    }

    pub fn and(&mut self, mask: u32) {
        self.items.push(Item::Stmt(AND_K, mask));
    }

    pub fn ret(&mut self, action: u32) {
        self.items.push(Item::Stmt(RET_K, action));
    }

    pub fn ja(&mut self, to: Label) {
        self.items.push(Item::Ja(to));
    }

    /// `if A <op> k goto jt else goto jf`; `None` means the next instruction.
    pub fn jump(&mut self, code: u16, k: u32, jt: Option<Label>, jf: Option<Label>) {
        let next = self.label();
        self.items.push(Item::Jump {
            code,
            k,
            jt: jt.unwrap_or(next),
            jf: jf.unwrap_or(next),
        });
        self.bind(next);
    }

    fn count(&self) -> usize {
        self.items.iter().filter(|i| !matches!(i, Item::Bind(_))).count()
    }

    /// Resolves every label into offsets. Labels must be bound after every
    /// jump to them, and every path must end in `ret`.
    pub fn finish(mut self) -> Result<Vec<SockFilter>, Error> {
        loop {
            // Trampolines only ever add instructions, so a program already
            // over the limit cannot come back under it.
            let count = self.count();
            if count > MAX_INSNS {
                return Err(Error::TooLarge { instructions: count });
            }
            let pos = self.positions();
            let mut items = Vec::with_capacity(self.items.len() + 16);
            let mut far = false;
            let mut n = 0;
            for item in std::mem::take(&mut self.items) {
                let Item::Jump { code, k, jt, jf } = item else {
                    n += !matches!(item, Item::Bind(_)) as usize;
                    items.push(item);
                    continue;
                };
                n += 1;
                let (jt, via_t) = self.route(&pos, n, jt);
                let (jf, via_f) = self.route(&pos, n, jf);
                items.push(Item::Jump { code, k, jt, jf });
                for (via, to) in [via_t, via_f].into_iter().flatten() {
                    items.push(Item::Bind(via));
                    items.push(Item::Ja(to));
                    far = true;
                }
            }
            self.items = items;
            if !far {
                break;
            }
        }
        let pos = self.positions();
        let mut out = Vec::with_capacity(self.count());
        for item in &self.items {
            let n = out.len() + 1;
            let insn = match *item {
                Item::Bind(_) => continue,
                Item::Stmt(code, k) => SockFilter { code, jt: 0, jf: 0, k },
                Item::Ja(to) => SockFilter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (pos[to.0] - n) as u32,
                },
                Item::Jump { code, k, jt, jf } => SockFilter {
                    code,
                    jt: (pos[jt.0] - n) as u8,
                    jf: (pos[jf.0] - n) as u8,
                    k,
                },
            };
            out.push(insn);
        }
        Ok(out)
    }

    /// The label a conditional jump at instruction `n - 1` should name to
    /// reach `to`: `to` itself when near, else a new label for a trampoline
    /// `ja to`, returned as `(trampoline, to)` for the caller to place.
    fn route(&mut self, pos: &[usize], n: usize, to: Label) -> (Label, Option<(Label, Label)>) {
        if pos[to.0] - n <= 255 {
            return (to, None);
        }
        let via = self.label();
        (via, Some((via, to)))
    }

    /// Instruction index of every bound label. Panics on a label jumped to
    /// backwards or never bound: both are bugs in the layout code.
    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Bind(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        let mut n = 0;
        for item in &self.items {
            let targets = match item {
                Item::Bind(_) => continue,
                Item::Stmt(..) => [None, None],
                Item::Ja(to) => [Some(*to), None],
                Item::Jump { jt, jf, .. } => [Some(*jt), Some(*jf)],
            };
            n += 1;
            for to in targets.into_iter().flatten() {
                assert!(
                    pos[to.0] != usize::MAX && pos[to.0] >= n,
                    "bpf: label {to:?} not bound after its jump"
                );
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_jumps_are_direct() {
        let mut asm = Asm::default();
        let out = asm.label();
        asm.load(0);
        asm.jump(JEQ_K, 7, Some(out), None);
        asm.ret(1);
        asm.bind(out);
        asm.ret(2);
        let prog = asm.finish().unwrap();
        assert_eq!(prog.len(), 4);
        assert_eq!(
            prog[1],
            SockFilter {
                code: JEQ_K,
                jt: 1,
                jf: 0,
                k: 7
            }
        );
    }

    #[test]
    fn far_jumps_go_through_ja() {
        let mut asm = Asm::default();
        let far = asm.label();
        asm.jump(JEQ_K, 7, Some(far), None);
        for i in 0..300 {
            asm.ret(i);
        }
        asm.bind(far);
        asm.ret(1000);
        let prog = asm.finish().unwrap();
        assert_eq!(prog.len(), 303);
        assert_eq!(
            prog[0],
            SockFilter {
                code: JEQ_K,
                jt: 0,
                jf: 1,
                k: 7
            }
        );
        assert_eq!(
            prog[1],
            SockFilter {
                code: JA,
                jt: 0,
                jf: 0,
                k: 300
            }
        );
        assert_eq!(prog[302].k, 1000);
    }

    #[test]
    fn too_large() {
        let mut asm = Asm::default();
        for i in 0..=MAX_INSNS as u32 {
            asm.ret(i);
        }
        assert!(matches!(asm.finish(), Err(Error::TooLarge { instructions: 4097 })));
    }
}
