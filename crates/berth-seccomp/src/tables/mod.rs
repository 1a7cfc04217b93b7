//! System call numbers of the ABIs this host's kernel can present, generated
//! by `gen-tables.sh` from the kernel headers.
//!
//! An x86_64 kernel runs x86_64, i386 and x32 code; x32 shares x86_64's audit
//! arch and is told apart by bit 30 of the syscall number. On aarch64 only
//! aarch64 itself is covered: there is no 32-bit arm header to generate a
//! table from, so SCMP_ARCH_ARM counts as an ABI the host cannot present and
//! arm syscalls are killed like any unlisted ABI's.

use oci_spec::runtime::Arch;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod i386;
#[cfg(target_arch = "x86_64")]
#[allow(clippy::identity_op)]
mod x32;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// One system call ABI: what the spec calls it, what `seccomp_data.arch` says
/// for it, the syscall numbers that belong to it and its table.
pub struct Abi {
    pub arch: Arch,
    pub audit: u32,
    /// The numbers this ABI owns under its audit arch: x86_64 and x32 split
    /// AUDIT_ARCH_X86_64 at bit 30.
    pub first: u32,
    pub last: u32,
    pub table: &'static [(&'static str, u32)],
}

impl Abi {
    pub fn number(&self, name: &str) -> Option<u32> {
        let i = self.table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        Some(self.table[i].1)
    }

    /// The highest syscall number the table knows.
    pub fn max(&self) -> u32 {
        self.table.iter().map(|(_, nr)| *nr).max().unwrap_or(self.first)
    }
}

#[cfg(target_arch = "x86_64")]
static HOST: &[Abi] = &[
    Abi {
        arch: Arch::ScmpArchX86_64,
        audit: AUDIT_ARCH_X86_64,
        first: 0,
        last: X32_SYSCALL_BIT - 1,
        table: x86_64::TABLE,
    },
    Abi {
        arch: Arch::ScmpArchX86,
        audit: AUDIT_ARCH_I386,
        first: 0,
        last: u32::MAX,
        table: i386::TABLE,
    },
    Abi {
        arch: Arch::ScmpArchX32,
        audit: AUDIT_ARCH_X86_64,
        first: X32_SYSCALL_BIT,
        last: u32::MAX,
        table: x32::TABLE,
    },
];

#[cfg(target_arch = "aarch64")]
static HOST: &[Abi] = &[Abi {
    arch: Arch::ScmpArchAarch64,
    audit: AUDIT_ARCH_AARCH64,
    first: 0,
    last: u32::MAX,
    table: aarch64::TABLE,
}];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
static HOST: &[Abi] = &[];

/// The ABIs this host can present, the native one first; empty on a host
/// architecture without tables.
pub fn host() -> &'static [Abi] {
    HOST
}

/// The host's own architecture as the spec names it.
pub fn native() -> Option<Arch> {
    HOST.first().map(|abi| abi.arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for abi in host() {
            assert!(abi.table.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", abi.arch);
            assert!(abi.table.iter().all(|(_, nr)| (abi.first..=abi.last).contains(nr)));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn known_numbers() {
        let [x86_64, i386, x32] = host() else { panic!() };
        assert_eq!(x86_64.number("read"), Some(0));
        assert_eq!(x86_64.number("clone3"), Some(435));
        assert_eq!(i386.number("exit"), Some(1));
        assert_eq!(i386.number("socketcall"), Some(102));
        assert_eq!(x32.number("write"), Some(X32_SYSCALL_BIT + 1));
        assert_eq!(x86_64.number("chown32"), None);
        assert_eq!(x86_64.number("zzz"), None);
    }
}
