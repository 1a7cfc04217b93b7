//! `LinuxSeccomp` to a classic BPF program.
//!
//! ```text
//!   ld arch; jeq <audit arch> -> section ...; ret KILL_PROCESS
//! section (one per audit arch):
//!   ld nr; binary search over number ranges, each ending in
//!   `ret <action>` or `ja <body>`
//! body (one per distinct list of rules with conditions):
//!   rule 1: test args, ret action; rule 2: ...; ret default
//! ```
//!
//! The number ranges cover all 2^32 numbers of an audit arch: syscalls with
//! rules, runs of the default action between them, ENOSYS (or the default)
//! past the table's end and KILL_PROCESS for an ABI that shares the audit
//! arch but is not listed (x32 under x86_64). Adjacent ranges with the same
//! return are merged, so Docker's profile takes about 8 comparisons a call.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag};
use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator as Op};

use crate::bpf::{Asm, Label, JEQ_K, JGE_K, JGT_K};
use crate::program::*;
use crate::tables::{self, Abi};
use crate::{Error, Program};

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

struct Rule<'a> {
    names: &'a [String],
    ret: u32,
    args: &'a [LinuxSeccompArg],
}

#[derive(Clone, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// Indices of the rules to try in order, the first one having arguments.
    Body(Vec<usize>),
}

/// Compiles `spec` for the ABIs this host's kernel can present.
pub fn compile(spec: &LinuxSeccomp) -> Result<Program, Error> {
    let host = tables::host();
    if host.is_empty() {
        return Err(Error::UnsupportedHost(std::env::consts::ARCH));
    }
    if spec.default_action() == Action::ScmpActNotify {
        return Err(Error::NotifyDefault);
    }
    let default = ret_value(spec.default_action(), spec.default_errno_ret());
    let beyond = match spec.default_action() {
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace => default,
        _ => RET_ERRNO | libc::ENOSYS as u32,
    };
    let rules = rules(spec, default)?;
    let mut flags = load_flags(spec);
    if rules.iter().any(|r| r.ret == RET_USER_NOTIF) {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            // The kernel refuses TSYNC with a listener unless told to report
            // a thread that cannot sync as ESRCH (libseccomp does the same).
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else {
        // Meaningless without a listener, and refused by the kernel.
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }
    let selected = selected(spec, host);

    let mut asm = Asm::default();
    let mut sections = Vec::new();
    asm.load(OFFSET_ARCH);
    // One section per audit arch, named by the ABI that starts at number 0.
    for abi in selected.iter().filter(|abi| abi.first == 0) {
        let label = asm.label();
        asm.jump(JEQ_K, abi.audit, Some(label), None);
        let mut ranges = Vec::new();
        for shared in host.iter().filter(|h| h.audit == abi.audit) {
            if selected.iter().any(|s| s.arch == shared.arch) {
                ranges.extend(abi_ranges(shared, &rules, default, beyond));
            } else {
                ranges.push((shared.first, Outcome::Ret(RET_KILL_PROCESS)));
            }
        }
        ranges.dedup_by(|b, a| a.1 == b.1);
        // 32-bit ABIs (no __AUDIT_ARCH_64BIT) pass 32-bit arguments:
        // compare the low words only, as libseccomp does.
        let narrow = abi.audit & 0x8000_0000 == 0;
        sections.push((label, ranges, narrow));
    }
    asm.ret(RET_KILL_PROCESS);

    let mut bodies: HashMap<(Vec<usize>, bool), Label> = HashMap::new();
    let mut order = Vec::new();
    for (label, ranges, narrow) in sections {
        asm.bind(label);
        asm.load(OFFSET_NR);
        search(&mut asm, &ranges, &mut |asm: &mut Asm, list: &[usize]| {
            let body = *bodies.entry((list.to_vec(), narrow)).or_insert_with(|| {
                order.push((list.to_vec(), narrow));
                asm.label()
            });
            asm.ja(body);
        });
    }
    for key in order {
        asm.bind(bodies[&key]);
        body(&mut asm, &rules, &key.0, default, key.1);
    }
    Ok(Program::new(asm.finish()?, flags))
}

/// The value a filter returns for `action`; `errno` is the ERRNO errno or
/// the TRACE message data, EPERM when the spec gives none.
fn ret_value(action: Action, errno: Option<u32>) -> u32 {
    let data = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    match action {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | data,
        Action::ScmpActTrace => RET_TRACE | data,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActNotify => RET_USER_NOTIF,
        Action::ScmpActAllow => RET_ALLOW,
    }
}

fn load_flags(spec: &LinuxSeccomp) -> u32 {
    let flag = |f: &Flag| match f {
        Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
        Flag::SeccompFilterFlagLog => FLAG_LOG,
        Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
    };
    spec.flags().iter().flatten().map(flag).fold(0, |a, b| a | b)
}

/// The profile's rules, as runc hands them to libseccomp: a rule whose
/// action is the default one is dropped (it would only shadow later rules
/// for the same syscall), and a rule with several conditions on the same
/// argument becomes one rule per condition (they are ORed, not ANDed).
fn rules(spec: &LinuxSeccomp, default: u32) -> Result<Vec<Rule<'_>>, Error> {
    let mut rules = Vec::new();
    for (i, syscall) in spec.syscalls().iter().flatten().enumerate() {
        let names = syscall.names().as_slice();
        let Some(first) = names.first() else {
            return Err(Error::NoNames { rule: i });
        };
        let args = syscall.args().as_deref().unwrap_or_default();
        if let Some(arg) = args.iter().find(|a| a.index() > 5) {
            return Err(Error::ArgIndex {
                index: arg.index(),
                syscall: first.clone(),
            });
        }
        let ret = ret_value(syscall.action(), syscall.errno_ret());
        if ret == default {
            continue;
        }
        let mut per_index = [0usize; 6];
        for a in args {
            per_index[a.index()] += 1;
        }
        if per_index.iter().any(|&n| n > 1) {
            for a in args {
                rules.push(Rule {
                    names,
                    ret,
                    args: std::slice::from_ref(a),
                });
            }
        } else {
            rules.push(Rule { names, ret, args });
        }
    }
    Ok(rules)
}

/// The host ABIs to filter: the native one always (libseccomp's filters start
/// with it), plus those listed that this host can present. Listed ABIs it
/// cannot present are skipped.
fn selected<'a>(spec: &LinuxSeccomp, host: &'a [Abi]) -> Vec<&'a Abi> {
    let native = host[0].arch;
    let listed: Vec<Arch> = spec
        .architectures()
        .iter()
        .flatten()
        .map(|&a| if a == Arch::ScmpArchNative { native } else { a })
        .collect();
    host.iter()
        .filter(|abi| abi.arch == native || listed.contains(&abi.arch))
        .collect()
}

/// Ranges covering `abi.first..=abi.last`, each given by its first number.
fn abi_ranges(abi: &Abi, rules: &[Rule], default: u32, beyond: u32) -> Vec<(u32, Outcome)> {
    let mut by_nr: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, rule) in rules.iter().enumerate() {
        for nr in rule.names.iter().filter_map(|name| abi.number(name)) {
            let list = by_nr.entry(nr).or_default();
            // Rules after one without conditions can never be reached.
            if !list.contains(&i) && list.last().is_none_or(|&last| !rules[last].args.is_empty()) {
                list.push(i);
            }
        }
    }
    let mut ranges = vec![(abi.first, Outcome::Ret(default))];
    for (nr, list) in by_nr {
        let outcome = match rules[list[0]].args {
            [] => Outcome::Ret(rules[list[0]].ret),
            _ => Outcome::Body(list),
        };
        if ranges.last().is_some_and(|r| r.0 == nr) {
            ranges.pop();
        }
        ranges.push((nr, outcome));
        if nr < abi.last {
            ranges.push((nr + 1, Outcome::Ret(default)));
        }
    }
    let max = abi.max();
    if max < abi.last {
        // Drop a default run starting past the end before adding ENOSYS.
        if ranges.last().is_some_and(|r| r.0 == max + 1) {
            ranges.pop();
        }
        ranges.push((max + 1, Outcome::Ret(beyond)));
    }
    ranges.dedup_by(|b, a| a.1 == b.1);
    ranges
}

/// Binary search over `ranges` (sorted by first number) on the syscall
/// number in A; each leaf returns or jumps to the body `body_jump` emits.
fn search(asm: &mut Asm, ranges: &[(u32, Outcome)], body_jump: &mut impl FnMut(&mut Asm, &[usize])) {
    if let [(_, outcome)] = ranges {
        match outcome {
            Outcome::Ret(ret) => asm.ret(*ret),
            Outcome::Body(list) => body_jump(asm, list),
        }
        return;
    }
    let mid = ranges.len() / 2;
    let upper = asm.label();
    asm.jump(JGE_K, ranges[mid].0, Some(upper), None);
    search(asm, &ranges[..mid], body_jump);
    asm.bind(upper);
    search(asm, &ranges[mid..], body_jump);
}

/// The rules of one syscall tried in order; the default when none matches.
fn body(asm: &mut Asm, rules: &[Rule], list: &[usize], default: u32, narrow: bool) {
    for &i in list {
        let next = asm.label();
        for arg in rules[i].args {
            condition(asm, arg, next, narrow);
        }
        asm.ret(rules[i].ret);
        asm.bind(next);
    }
    if list.last().is_some_and(|&i| !rules[i].args.is_empty()) {
        asm.ret(default);
    }
}

/// Falls through when the 64-bit argument compares true, jumps to `fail`
/// otherwise. The halves are compared high word first; seccomp_data holds
/// the low word first (little-endian hosts only).
fn condition(asm: &mut Asm, arg: &LinuxSeccompArg, fail: Label, narrow: bool) {
    let lo = OFFSET_ARGS + 8 * arg.index() as u32;
    let hi = lo + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (v_hi, v_lo) = split(arg.value());
    let pass = asm.label();
    let f = Some(fail);
    let p = Some(pass);
    if narrow {
        // Only the low word exists; the value is truncated to it.
        asm.load(lo);
        match arg.op() {
            Op::ScmpCmpEq => asm.jump(JEQ_K, v_lo, None, f),
            Op::ScmpCmpNe => asm.jump(JEQ_K, v_lo, f, None),
            Op::ScmpCmpGt => asm.jump(JGT_K, v_lo, None, f),
            Op::ScmpCmpGe => asm.jump(JGE_K, v_lo, None, f),
            Op::ScmpCmpLt => asm.jump(JGE_K, v_lo, f, None),
            Op::ScmpCmpLe => asm.jump(JGT_K, v_lo, f, None),
            Op::ScmpCmpMaskedEq => {
                asm.and(v_lo);
                asm.jump(JEQ_K, arg.value_two().unwrap_or(0) as u32, None, f);
            }
        }
        asm.bind(pass);
        return;
    }
    match arg.op() {
        Op::ScmpCmpEq => {
            asm.load(hi);
            asm.jump(JEQ_K, v_hi, None, f);
            asm.load(lo);
            asm.jump(JEQ_K, v_lo, None, f);
        }
        Op::ScmpCmpNe => {
            asm.load(hi);
            asm.jump(JEQ_K, v_hi, None, p);
            asm.load(lo);
            asm.jump(JEQ_K, v_lo, f, None);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            asm.load(hi);
            asm.jump(JGT_K, v_hi, p, None);
            asm.jump(JEQ_K, v_hi, None, f);
            asm.load(lo);
            asm.jump(if arg.op() == Op::ScmpCmpGt { JGT_K } else { JGE_K }, v_lo, None, f);
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            asm.load(hi);
            asm.jump(JGT_K, v_hi, f, None);
            asm.jump(JEQ_K, v_hi, None, p);
            asm.load(lo);
            asm.jump(if arg.op() == Op::ScmpCmpLt { JGE_K } else { JGT_K }, v_lo, f, None);
        }
        Op::ScmpCmpMaskedEq => {
            let (want_hi, want_lo) = split(arg.value_two().unwrap_or(0));
            asm.load(hi);
            asm.and(v_hi);
            asm.jump(JEQ_K, want_hi, None, f);
            asm.load(lo);
            asm.and(v_lo);
            asm.jump(JEQ_K, want_lo, None, f);
        }
    }
    asm.bind(pass);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::interp::{check, run, run_counting, Data};
    use crate::tables::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

    const X86_64: usize = 0;
    const I386: usize = 1;
    const X32: usize = 2;
    const EPERM: u32 = RET_ERRNO | 1;
    const ENOSYS: u32 = RET_ERRNO | 38;

    fn spec(value: Value) -> LinuxSeccomp {
        serde_json::from_value(value).unwrap()
    }

    fn build(value: Value) -> Program {
        let prog = compile(&spec(value)).unwrap();
        check(prog.instructions());
        prog
    }

    fn nr(abi: usize, name: &str) -> u32 {
        tables::host()[abi].number(name).unwrap()
    }

    fn audit(abi: usize) -> u32 {
        tables::host()[abi].audit
    }

    /// Runs syscall `name` of `abi` with `args`.
    fn call(prog: &Program, abi: usize, name: &str, args: &[u64]) -> u32 {
        let mut data = Data::new(audit(abi), nr(abi, name));
        data.args[..args.len()].copy_from_slice(args);
        run(prog.instructions(), &data)
    }

    #[test]
    fn every_action_has_its_kernel_value() {
        let cases = [
            ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
            ("SCMP_ACT_TRAP", None, RET_TRAP),
            ("SCMP_ACT_ERRNO", None, EPERM),
            ("SCMP_ACT_ERRNO", Some(13), RET_ERRNO | 13),
            ("SCMP_ACT_ERRNO", Some(0x1_0005), RET_ERRNO | 5),
            ("SCMP_ACT_TRACE", None, RET_TRACE | 1),
            ("SCMP_ACT_TRACE", Some(0x1234), RET_TRACE | 0x1234),
            ("SCMP_ACT_LOG", None, RET_LOG),
            ("SCMP_ACT_NOTIFY", None, RET_USER_NOTIF),
            ("SCMP_ACT_ALLOW", None, RET_ALLOW),
        ];
        for (action, errno, want) in cases {
            let prog = build(json!({
                "defaultAction": "SCMP_ACT_KILL_PROCESS",
                "syscalls": [{"names": ["getpid"], "action": action, "errnoRet": errno}]
            }));
            assert_eq!(call(&prog, X86_64, "getpid", &[]), want, "{action} {errno:?}");
            assert_eq!(call(&prog, X86_64, "getppid", &[]), RET_KILL_PROCESS);
        }
    }

    #[test]
    fn default_action_and_errno() {
        for (action, errno, want) in [
            ("SCMP_ACT_ERRNO", None, EPERM),
            ("SCMP_ACT_ERRNO", Some(38), ENOSYS),
            ("SCMP_ACT_TRACE", Some(9), RET_TRACE | 9),
            ("SCMP_ACT_LOG", None, RET_LOG),
            ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
        ] {
            let prog = build(json!({
                "defaultAction": action,
                "defaultErrnoRet": errno,
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
            }));
            assert_eq!(call(&prog, X86_64, "getppid", &[]), want, "{action}");
            assert_eq!(call(&prog, X86_64, "getpid", &[]), RET_ALLOW);
        }
    }

    fn compare(op: Op, arg: u64, value: u64) -> bool {
        match op {
            Op::ScmpCmpNe => arg != value,
            Op::ScmpCmpLt => arg < value,
            Op::ScmpCmpLe => arg <= value,
            Op::ScmpCmpEq => arg == value,
            Op::ScmpCmpGe => arg >= value,
            Op::ScmpCmpGt => arg > value,
            Op::ScmpCmpMaskedEq => unreachable!(),
        }
    }

    const SAMPLES: [u64; 12] = [
        0,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0004,
        0x1_0000_0005,
        0x1_0000_0006,
        0x1_ffff_ffff,
        0x2_0000_0005,
        0x8000_0000_0000_0005,
        u64::MAX,
    ];

    #[test]
    fn comparisons_use_both_halves() {
        let ops = [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
        ];
        for op_name in ops {
            let op: Op = op_name.parse().unwrap();
            for value in SAMPLES {
                let prog = build(json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 3, "value": value, "op": op_name}]}]
                }));
                for arg in SAMPLES {
                    let want = if compare(op, arg, value) { EPERM } else { RET_ALLOW };
                    assert_eq!(
                        call(&prog, X86_64, "getpid", &[0, 0, 0, arg]),
                        want,
                        "{arg:#x} {op_name} {value:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn masked_eq() {
        let (mask, want) = (0x0000_ff00_0000_00ffu64, 0x0000_1200_0000_0034u64);
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": mask, "valueTwo": want, "op": "SCMP_CMP_MASKED_EQ"}]}]
        }));
        for arg in SAMPLES
            .into_iter()
            .chain([0x1234, 0x1200_0000_0034, 0xab12_cd00_ef34, 0x1200_0000_0035])
        {
            let expected = if arg & mask == want { EPERM } else { RET_ALLOW };
            assert_eq!(call(&prog, X86_64, "clone", &[arg]), expected, "{arg:#x}");
        }
    }

    #[test]
    fn conditions_on_several_arguments_are_anded() {
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 5, "op": "SCMP_CMP_GE"},
                {"index": 5, "value": 0, "op": "SCMP_CMP_NE"}
            ]}]
        }));
        for a0 in [0, 1] {
            for a2 in [4, 5, 9, 10, 0x1_0000_0007] {
                for a5 in [0, 1, 0x1_0000_0000] {
                    let hit = a0 == 1 && a2 >= 5 && a5 != 0;
                    let want = if hit { EPERM } else { RET_ALLOW };
                    assert_eq!(
                        call(&prog, X86_64, "getpid", &[a0, 0, a2, 0, 0, a5]),
                        want,
                        "{a0} {a2} {a5}"
                    );
                }
            }
        }
    }

    #[test]
    fn several_conditions_on_one_argument_are_ored_as_in_runc() {
        // socket(AF_NETLINK) or socket(AF_PACKET) denied.
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}
            ]}]
        }));
        assert_eq!(call(&prog, X86_64, "getpid", &[16, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&prog, X86_64, "getpid", &[17, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&prog, X86_64, "getpid", &[2, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn i386_arguments_compare_on_their_low_word() {
        // AT_FDCWD (-100) as the profile writes it, as a 64-bit value; an
        // i386 process passes the 32-bit value, zero-extended.
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 18446744073709551516u64, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert_eq!(call(&prog, I386, "getpid", &[0xffff_ff9c, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&prog, I386, "getpid", &[5, 0, 0, 0, 0, 0]), RET_ALLOW);
        // On x86_64 all 64 bits count.
        assert_eq!(call(&prog, X86_64, "getpid", &[0xffff_ff9c, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&prog, X86_64, "getpid", &[u64::MAX - 99, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn rules_with_the_default_action_do_not_shadow_later_ones() {
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        assert_eq!(call(&prog, X86_64, "getpid", &[0; 6]), RET_ALLOW);
    }

    #[test]
    fn first_matching_rule_wins() {
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getppid", "getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_LT"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4, "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}
            ]
        }));
        assert_eq!(call(&prog, X86_64, "getpid", &[1]), RET_ERRNO | 1);
        assert_eq!(call(&prog, X86_64, "getpid", &[3]), RET_ERRNO | 2);
        assert_eq!(call(&prog, X86_64, "getpid", &[7]), RET_ERRNO | 3);
        assert_eq!(call(&prog, X86_64, "getppid", &[3]), RET_ERRNO | 2);
        assert_eq!(call(&prog, X86_64, "getppid", &[7]), RET_ERRNO | 5);
        assert_eq!(call(&prog, X86_64, "gettid", &[1]), RET_ALLOW);
    }

    #[test]
    fn unknown_names_are_skipped_per_abi() {
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["no_such_call", "chown32", "arch_prctl", "getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        assert_eq!(call(&prog, X86_64, "getpid", &[]), RET_ALLOW);
        assert_eq!(call(&prog, X86_64, "arch_prctl", &[]), RET_ALLOW);
        assert_eq!(call(&prog, I386, "chown32", &[]), RET_ALLOW);
        assert_eq!(call(&prog, I386, "getpid", &[]), RET_ALLOW);
        assert_eq!(call(&prog, I386, "chown", &[]), EPERM);
    }

    #[test]
    fn unlisted_abis_are_killed() {
        let prog = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}));
        assert_eq!(call(&prog, X86_64, "getpid", &[]), RET_ALLOW);
        assert_eq!(call(&prog, I386, "getpid", &[]), RET_KILL_PROCESS);
        assert_eq!(call(&prog, X32, "getpid", &[]), RET_KILL_PROCESS);
        for arch in [0, 0xc000_00b7, 0x4000_0028, AUDIT_ARCH_X86_64 ^ 1] {
            assert_eq!(
                run(prog.instructions(), &Data::new(arch, 1)),
                RET_KILL_PROCESS,
                "{arch:#x}"
            );
        }
        // Listed ABIs this host cannot present are accepted and skipped; the
        // native one is always filtered.
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_S390X", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
        }));
        assert_eq!(call(&prog, X86_64, "getpid", &[]), EPERM);
        assert_eq!(call(&prog, I386, "getpid", &[]), EPERM);
        assert_eq!(call(&prog, X32, "getpid", &[]), RET_KILL_PROCESS);
        assert_eq!(run(prog.instructions(), &Data::new(0xc000_00b7, 1)), RET_KILL_PROCESS);
    }

    #[test]
    fn x32() {
        let profile = |arches: Value| {
            build(json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": arches,
                "syscalls": [{"names": ["write", "rt_sigaction"], "action": "SCMP_ACT_ALLOW"}]
            }))
        };
        let without = profile(json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(call(&without, X86_64, "write", &[]), RET_ALLOW);
        assert_eq!(call(&without, X32, "write", &[]), RET_KILL_PROCESS);
        assert_eq!(
            run(without.instructions(), &Data::new(AUDIT_ARCH_X86_64, u32::MAX)),
            RET_KILL_PROCESS
        );

        let with = profile(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]));
        assert_eq!(call(&with, X32, "write", &[]), RET_ALLOW);
        assert_eq!(nr(X32, "rt_sigaction"), X32_SYSCALL_BIT + 512);
        assert_eq!(call(&with, X32, "rt_sigaction", &[]), RET_ALLOW);
        assert_eq!(call(&with, X32, "getpid", &[]), EPERM);
        // x86_64's rt_sigaction (13) is not x32's: with the bit, 13 is a hole.
        assert_eq!(
            run(with.instructions(), &Data::new(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 13)),
            EPERM
        );
        assert_eq!(call(&with, X86_64, "rt_sigaction", &[]), RET_ALLOW);
        let past = tables::host()[X32].max() + 1;
        assert_eq!(run(with.instructions(), &Data::new(AUDIT_ARCH_X86_64, past)), ENOSYS);
        assert_eq!(
            run(with.instructions(), &Data::new(AUDIT_ARCH_X86_64, u32::MAX)),
            ENOSYS
        );
    }

    #[test]
    fn numbers_past_the_table_get_enosys() {
        let max = |abi: usize| tables::host()[abi].max();
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let at = |arch: u32, nr: u32| run(prog.instructions(), &Data::new(arch, nr));
        for (arch, abi) in [(AUDIT_ARCH_X86_64, X86_64), (AUDIT_ARCH_I386, I386)] {
            assert_eq!(at(arch, max(abi)), EPERM);
            assert_eq!(at(arch, max(abi) + 1), ENOSYS);
            assert_eq!(at(arch, 5000), ENOSYS);
        }
        assert_eq!(at(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT - 1), ENOSYS);
        assert_eq!(at(AUDIT_ARCH_I386, u32::MAX), ENOSYS);
        // A hole inside the table (x86_64 has nothing between 335 and 423)
        // takes the default.
        assert!(!tables::host()[X86_64].table.iter().any(|&(_, nr)| nr == 400));
        assert_eq!(at(AUDIT_ARCH_X86_64, 400), EPERM);

        for (default, past) in [
            ("SCMP_ACT_ALLOW", RET_ALLOW),
            ("SCMP_ACT_LOG", RET_LOG),
            ("SCMP_ACT_KILL_PROCESS", ENOSYS),
        ] {
            let prog = build(json!({"defaultAction": default}));
            assert_eq!(
                run(prog.instructions(), &Data::new(AUDIT_ARCH_X86_64, 1000)),
                past,
                "{default}"
            );
        }
    }

    /// Every x86_64 and i386 syscall in one of 50 rules, each rule with its
    /// own condition, plus a rule with 120 conditions (ORed, as several sit
    /// on each argument): trees and bodies far longer than a conditional
    /// jump reaches.
    #[test]
    fn large_profiles_keep_every_jump_in_range() {
        let mut rules: Vec<Value> = Vec::new();
        let mut args = Vec::new();
        for i in 0..120u64 {
            args.push(json!({"index": i % 6, "value": 1000 + i, "op": "SCMP_CMP_EQ"}));
        }
        rules.push(json!({"names": ["getpid"], "action": "SCMP_ACT_TRAP", "args": args}));
        let mut names: Vec<&str> = [X86_64, I386]
            .iter()
            .flat_map(|&abi| tables::host()[abi].table)
            .map(|e| e.0)
            .collect();
        names.sort();
        names.dedup();
        let mut groups: Vec<Vec<&str>> = vec![Vec::new(); 50];
        for (i, name) in names.into_iter().enumerate() {
            groups[i % 50].push(name);
        }
        for (i, names) in groups.iter().enumerate() {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                              "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]}));
        }
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": rules
        }));
        let insns = prog.instructions();
        println!("large profile: {} instructions", insns.len());
        assert!(insns.len() > 2000);
        assert!(insns.iter().any(|i| i.code == crate::bpf::JA));

        let mut steps = 0;
        for abi in [X86_64, I386] {
            for &(name, nr) in tables::host()[abi].table {
                if name == "getpid" {
                    continue;
                }
                let group = groups.iter().position(|g| g.contains(&name)).unwrap() as u64;
                let base = Data::new(audit(abi), nr);
                let (hit, n) = run_counting(insns, &base.arg(0, group));
                steps = steps.max(n);
                assert_eq!(hit, RET_ERRNO | (group as u32 + 1), "{name}");
                assert_eq!(run(insns, &base.arg(0, group + 1)), RET_ALLOW, "{name}");
            }
        }
        println!("large profile: at most {steps} instructions run for a plain syscall");
        let getpid = |args: [u64; 6]| {
            run(
                insns,
                &Data {
                    arch: AUDIT_ARCH_X86_64,
                    nr: nr(X86_64, "getpid"),
                    args,
                },
            )
        };
        // Match the first, the 117th and the last condition; then none.
        assert_eq!(getpid([1000, 0, 0, 0, 0, 0]), RET_TRAP);
        assert_eq!(getpid([0, 0, 1116, 0, 0, 0]), RET_TRAP);
        assert_eq!(getpid([0, 0, 0, 0, 0, 1119]), RET_TRAP);
        assert_eq!(getpid([0; 6]), RET_ALLOW);
        assert_eq!(getpid([0, 1002, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(getpid([(1 << 32) + 1000, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn too_large_profiles_are_refused() {
        let mut rules = Vec::new();
        for abi in [X86_64, I386, X32] {
            for (i, (name, _)) in tables::host()[abi].table.iter().enumerate() {
                rules.push(
                    json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": i, "args": [
                        {"index": 0, "value": i, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": i, "op": "SCMP_CMP_NE"}
                    ]}),
                );
            }
        }
        let profile = spec(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules
        }));
        let err = compile(&profile).unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { instructions } if instructions > 4096),
            "{err}"
        );
        assert!(err.to_string().ends_with("over the kernel's limit of 4096"), "{err}");
    }

    #[test]
    fn bad_input() {
        let err = |value: Value| compile(&spec(value)).unwrap_err().to_string();
        assert_eq!(
            err(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                       "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]})
            ),
            r#"seccomp: argument index 7 out of range (0-5) for syscall "clone""#
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
            "seccomp: SCMP_ACT_NOTIFY cannot be the default action"
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": [], "action": "SCMP_ACT_ERRNO"}]})),
            "seccomp: rule 1 names no syscalls"
        );
        // Names the OCI types cannot hold are refused when the spec is read
        // (and by the docker module, with the rule named).
        let unknown = serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_FOO"}));
        assert!(unknown.is_err());
    }

    #[test]
    fn flags() {
        let prog = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
        }));
        assert_eq!(prog.flags(), 7);
        assert!(!prog.needs_listener());
        let prog =
            build(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
        assert_eq!(prog.flags(), 0);
        let notify = |flags: Value| {
            build(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": flags,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
            }))
        };
        assert_eq!(notify(json!([])).flags(), FLAG_NEW_LISTENER);
        assert!(notify(json!([])).needs_listener());
        let tsync = notify(json!([
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ]));
        assert_eq!(
            tsync.flags(),
            FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV
        );
    }

    #[test]
    fn docker_default_profile() {
        let Some(json) = crate::docker::docker_reference() else {
            return;
        };
        let caps = crate::docker::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let target = crate::docker::Target {
            arch: Arch::ScmpArchX86_64,
            caps,
            kernel: (6, 1),
        };
        let profile = crate::docker::convert(&json, &target).unwrap();
        let prog = compile(&profile).unwrap();
        check(prog.instructions());
        let mut steps = 0;
        for abi in [X86_64, I386, X32] {
            for &(_, nr) in tables::host()[abi].table {
                steps = steps.max(run_counting(prog.instructions(), &Data::new(audit(abi), nr)).1);
            }
        }
        println!(
            "docker default profile: {} instructions, at most {steps} run",
            prog.instructions().len()
        );
        for abi in [X86_64, I386, X32] {
            assert_eq!(call(&prog, abi, "getpid", &[]), RET_ALLOW);
            assert_eq!(call(&prog, abi, "write", &[]), RET_ALLOW);
            assert_eq!(call(&prog, abi, "reboot", &[]), EPERM);
            assert_eq!(call(&prog, abi, "clone", &[0x0001_0000]), RET_ALLOW);
            assert_eq!(call(&prog, abi, "clone", &[libc::CLONE_NEWUSER as u64]), EPERM);
            assert_eq!(call(&prog, abi, "personality", &[0xffff_ffff]), RET_ALLOW);
            assert_eq!(call(&prog, abi, "personality", &[0x0040000]), EPERM);
        }
        assert_eq!(call(&prog, X86_64, "clone3", &[]), ENOSYS);
        assert_eq!(call(&prog, I386, "socketcall", &[]), RET_ALLOW);
        assert_eq!(call(&prog, X86_64, "arch_prctl", &[]), RET_ALLOW);
        assert_eq!(run(prog.instructions(), &Data::new(AUDIT_ARCH_X86_64, 1000)), ENOSYS);
    }
}
