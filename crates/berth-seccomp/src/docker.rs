//! Docker's seccomp profile format, turned into an OCI `LinuxSeccomp` for one
//! container, so `--security-opt seccomp=profile.json` takes the profiles
//! people already have.
//!
//! The format is the OCI one plus a choice of rules per container:
//!
//! - `archMap` lists, per native architecture, the sub-architectures it runs
//!   (x86_64: x86 and x32); the entry for the target's architecture gives the
//!   spec's `architectures`. The older `architectures` list is taken as is;
//!   a profile may use one of the two, not both.
//! - each `syscalls` entry names its syscalls with `names` (or the older
//!   single `name`) and applies only if its `includes` all hold (every cap
//!   listed is held, the target's architecture is listed, the kernel is at
//!   least `minKernel`) and none of its `excludes` does (a cap listed is
//!   held, the architecture is listed, the kernel is at least `minKernel`).
//!   Architectures are named as Go does (`amd64`, `arm64`, ...); kernels as
//!   `"<kernel>.<major>"`.
//!
//! Action, operator, architecture and flag names are checked here, with the
//! rule they appear in, since the OCI types cannot hold unknown ones.
//!
//! [`default_profile`] is berth's own default profile in this format, and
//! [`default_seccomp`] converts it for a container.

use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use serde::Deserialize;

use crate::{tables, Error};

/// The container a profile is converted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The native architecture, e.g. `Arch::ScmpArchX86_64`.
    pub arch: Arch,
    /// Capabilities in the container's bounding set, as `CAP_SYS_ADMIN` or
    /// `SYS_ADMIN`.
    pub caps: Vec<String>,
    /// The running kernel's version and major revision, e.g. `(6, 1)`.
    pub kernel: (u32, u32),
}

impl Target {
    /// This host: its own architecture and running kernel, with `caps`.
    pub fn host(caps: Vec<String>) -> Result<Target, Error> {
        let arch = tables::native().ok_or(Error::UnsupportedHost(std::env::consts::ARCH))?;
        let path = "/proc/sys/kernel/osrelease";
        let release = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let kernel = kernel_release(release.trim()).ok_or_else(|| Error::KernelVersion(release.trim().to_string()))?;
        Ok(Target { arch, caps, kernel })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMap>>,
    syscalls: Option<Vec<Syscall>>,
    flags: Option<Vec<String>>,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Arg>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// berth's built-in default profile, in Docker's format (the text of
/// `src/default-profile.json`), for containers that name no profile of their
/// own.
///
/// Its policy is that of Docker's default profile, written out for berth:
///
/// - every syscall not allowed fails with EPERM;
/// - the architectures are the native one plus those it runs (x86_64: x86
///   and x32; aarch64: arm; mips64: mips and n32; s390x: s390);
/// - a long list of ordinary syscalls is allowed: file I/O, memory, signals,
///   processes and threads, sockets, time, IPC, polling and the old AIO
///   interface, but not io_uring;
/// - `socket` is refused for AF_VSOCK, `personality` takes only the usual
///   personalities, and `clone` without CAP_SYS_ADMIN only when it creates no
///   namespace; `clone3`, whose flags the filter cannot see, then reports
///   ENOSYS so that libc falls back to `clone`;
/// - `ptrace` and `process_vm_readv`/`_writev` are allowed on kernels 4.8
///   and later;
/// - the syscalls of a privileged job are allowed only with the capability
///   for it: CAP_SYS_ADMIN (mount, umount2, unshare, setns, pivot_root, the
///   new mount API, sethostname, bpf, ...), CAP_SYS_PTRACE, CAP_SYS_MODULE,
///   CAP_SYS_BOOT, CAP_SYS_TIME, CAP_SYS_RAWIO, CAP_SYS_CHROOT, CAP_SYS_NICE
///   (NUMA memory policy), CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG, CAP_SYSLOG,
///   CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (open_by_handle_at);
/// - whatever no container should do stays refused whatever it holds: the
///   keyring (keyctl, add_key, request_key), kexec_load, userfaultfd, swapon,
///   the obsolete calls and io_uring among them.
pub fn default_profile() -> &'static [u8] {
    include_bytes!("default-profile.json")
}

/// The built-in [`default_profile`] converted for `target`.
pub fn default_seccomp(target: &Target) -> Result<LinuxSeccomp, Error> {
    convert(default_profile(), target)
}

/// Converts the Docker profile `json` into the OCI section for `target`.
pub fn convert(json: &[u8], target: &Target) -> Result<LinuxSeccomp, Error> {
    let profile: Profile = serde_json::from_slice(json).map_err(Error::DockerJson)?;
    let mut spec = LinuxSeccomp::default();
    let default_action = profile
        .default_action
        .parse()
        .map_err(|_| Error::UnknownDefaultAction(profile.default_action))?;
    spec.set_default_action(default_action);
    spec.set_default_errno_ret(profile.default_errno_ret);

    let architectures = architectures(profile.architectures, profile.arch_map, target.arch)?;
    if !architectures.is_empty() {
        spec.set_architectures(Some(architectures));
    }
    if let Some(flags) = profile.flags {
        let parse = |f: String| f.parse::<LinuxSeccompFilterFlag>().map_err(|_| Error::UnknownFlag(f));
        spec.set_flags(Some(flags.into_iter().map(parse).collect::<Result<_, _>>()?));
    }
    spec.set_listener_path(profile.listener_path);
    spec.set_listener_metadata(profile.listener_metadata);

    let mut syscalls = Vec::new();
    for syscall in profile.syscalls.into_iter().flatten() {
        if let Some(syscall) = rule(syscall, target)? {
            syscalls.push(syscall);
        }
    }
    spec.set_syscalls(Some(syscalls));
    Ok(spec)
}

fn architectures(list: Option<Vec<String>>, map: Option<Vec<ArchMap>>, native: Arch) -> Result<Vec<Arch>, Error> {
    let (list, map) = (list.unwrap_or_default(), map.unwrap_or_default());
    if !list.is_empty() && !map.is_empty() {
        return Err(Error::DockerConflict("architectures", "archMap"));
    }
    let mut out: Vec<Arch> = list.iter().map(|a| arch(a)).collect::<Result<_, _>>()?;
    for entry in map {
        let subs: Vec<Arch> = entry
            .sub_architectures
            .iter()
            .flatten()
            .map(|a| arch(a))
            .collect::<Result<_, _>>()?;
        if arch(&entry.architecture)? == native {
            out.push(native);
            out.extend(subs);
        }
    }
    Ok(out)
}

fn arch(name: &str) -> Result<Arch, Error> {
    name.parse().map_err(|_| Error::UnknownArch(name.to_string()))
}

/// The OCI rule for one entry, or None when its filters leave it out.
fn rule(syscall: Syscall, target: &Target) -> Result<Option<LinuxSyscall>, Error> {
    let mut names = syscall.names.unwrap_or_default();
    if let Some(name) = syscall.name.filter(|n| !n.is_empty()) {
        if !names.is_empty() {
            return Err(Error::DockerConflict("name", "names"));
        }
        names.push(name);
    }
    let first = names.first().cloned().unwrap_or_default();
    let action: LinuxSeccompAction = syscall.action.parse().map_err(|_| Error::UnknownAction {
        action: syscall.action,
        syscall: first.clone(),
    })?;
    let mut args = Vec::new();
    for a in syscall.args.into_iter().flatten() {
        let op: LinuxSeccompOperator = a.op.parse().map_err(|_| Error::UnknownOperator {
            op: a.op.clone(),
            syscall: first.clone(),
        })?;
        let mut arg = LinuxSeccompArgBuilder::default().index(a.index).value(a.value).op(op);
        if let Some(value_two) = a.value_two {
            arg = arg.value_two(value_two);
        }
        args.push(arg.build().expect("every LinuxSeccompArg field has a default"));
    }
    let includes = syscall.includes.unwrap_or_default();
    let excludes = syscall.excludes.unwrap_or_default();
    if !includes.applies(target, true)? || excludes.applies(target, false)? {
        return Ok(None);
    }
    let mut rule = LinuxSyscall::default();
    rule.set_names(names)
        .set_action(action)
        .set_errno_ret(syscall.errno_ret);
    if !args.is_empty() {
        rule.set_args(Some(args));
    }
    Ok(Some(rule))
}

impl Filter {
    /// For `includes` (`all`): every condition given holds. For `excludes`:
    /// some condition given holds.
    fn applies(&self, target: &Target, all: bool) -> Result<bool, Error> {
        let mut results = Vec::new();
        if let Some(caps) = self.caps.as_ref().filter(|c| !c.is_empty()) {
            let held = |cap: &String| target.caps.iter().any(|t| cap_name(t) == cap_name(cap));
            results.push(if all {
                caps.iter().all(held)
            } else {
                caps.iter().any(held)
            });
        }
        if let Some(arches) = self.arches.as_ref().filter(|a| !a.is_empty()) {
            let go = go_arch(target.arch);
            results.push(arches.iter().any(|a| Some(a.as_str()) == go));
        }
        if let Some(min) = self.min_kernel.as_deref().filter(|m| !m.is_empty()) {
            results.push(target.kernel >= min_kernel(min)?);
        }
        Ok(if all {
            results.iter().all(|&r| r)
        } else {
            results.iter().any(|&r| r)
        })
    }
}

fn cap_name(cap: &str) -> String {
    let cap = cap.to_ascii_uppercase();
    cap.strip_prefix("CAP_").map(str::to_string).unwrap_or(cap)
}

/// Docker names architectures in filters as Go's GOARCH does.
fn go_arch(arch: Arch) -> Option<&'static str> {
    let name = match arch {
        Arch::ScmpArchX86_64 => "amd64",
        Arch::ScmpArchX86 => "386",
        Arch::ScmpArchAarch64 => "arm64",
        Arch::ScmpArchArm => "arm",
        Arch::ScmpArchMips => "mips",
        Arch::ScmpArchMipsel => "mipsle",
        Arch::ScmpArchMips64 => "mips64",
        Arch::ScmpArchMipsel64 => "mips64le",
        Arch::ScmpArchMips64n32 => "mips64p32",
        Arch::ScmpArchMipsel64n32 => "mips64p32le",
        Arch::ScmpArchPpc64 => "ppc64",
        Arch::ScmpArchPpc64le => "ppc64le",
        Arch::ScmpArchS390 => "s390",
        Arch::ScmpArchS390x => "s390x",
        Arch::ScmpArchRiscv64 => "riscv64",
        Arch::ScmpArchLoongarch64 => "loong64",
        _ => return None,
    };
    Some(name)
}

/// `"<kernel>.<major>"` from a profile.
fn min_kernel(version: &str) -> Result<(u32, u32), Error> {
    let bad = || Error::KernelVersion(version.to_string());
    let (kernel, major) = version.split_once('.').ok_or_else(bad)?;
    let parsed = (kernel.parse().map_err(|_| bad())?, major.parse().map_err(|_| bad())?);
    if parsed == (0, 0) {
        return Err(bad());
    }
    Ok(parsed)
}

/// Version and major revision of a kernel release such as "6.1.0-18-amd64"
/// or "3.12-rc5": minor revisions and suffixes do not count.
fn kernel_release(release: &str) -> Option<(u32, u32)> {
    let (kernel, rest) = release.split_once('.')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    Some((kernel.parse().ok()?, rest[..digits].parse().ok()?))
}

/// Docker's own default profile, where Debian's
/// golang-github-docker-docker-dev puts it; BERTH_DOCKER_SECCOMP_PROFILE
/// overrides it.
#[cfg(test)]
pub(crate) fn docker_reference() -> Option<Vec<u8>> {
    let path = std::env::var("BERTH_DOCKER_SECCOMP_PROFILE")
        .unwrap_or_else(|_| "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json".into());
    let profile = std::fs::read(&path).ok();
    if profile.is_none() {
        println!("skipping: {path} not found");
    }
    profile
}

/// The capabilities `docker run` gives by default (the set its default
/// profile's capability conditions are usually evaluated against).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn amd64(caps: &[&str], kernel: (u32, u32)) -> Target {
        Target {
            arch: Arch::ScmpArchX86_64,
            caps: caps.iter().map(|c| c.to_string()).collect(),
            kernel,
        }
    }

    fn names(spec: &LinuxSeccomp) -> Vec<String> {
        spec.syscalls().iter().flatten().map(|s| s.names().join(",")).collect()
    }

    fn convert_json(profile: serde_json::Value, target: &Target) -> Result<LinuxSeccomp, Error> {
        convert(&serde_json::to_vec(&profile).unwrap(), target)
    }

    #[test]
    fn filters_by_caps_arch_and_kernel() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": {}, "excludes": {}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["acct"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["SYS_PACCT", "CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"]}},
                {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
                {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.16"}},
                {"name": "open", "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        });
        let spec = convert_json(profile.clone(), &amd64(&["SYS_ADMIN"], (5, 10))).unwrap();
        assert_eq!(
            names(&spec),
            ["read", "mount", "arch_prctl", "clone", "bpf", "futex_waitv", "open"]
        );
        assert_eq!(spec.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(spec.default_errno_ret(), Some(38));
        let open = spec.syscalls().as_ref().unwrap().last().unwrap();
        assert_eq!(open.errno_ret(), Some(13));
        let arg = open.args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two(), arg.op()),
            (1, 3, Some(1), LinuxSeccompOperator::ScmpCmpMaskedEq)
        );

        let spec = convert_json(profile, &amd64(&["CAP_SYS_PACCT"], (6, 1))).unwrap();
        assert_eq!(names(&spec), ["read", "ptrace", "arch_prctl", "clone", "bpf", "open"]);
    }

    #[test]
    fn arch_map_picks_the_native_entry() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": []
        });
        let spec = convert_json(profile.clone(), &amd64(&[], (6, 1))).unwrap();
        let x86 = [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
        assert_eq!(spec.architectures().as_deref(), Some(&x86[..]));
        let arm64 = Target {
            arch: Arch::ScmpArchAarch64,
            ..amd64(&[], (6, 1))
        };
        let spec = convert_json(profile.clone(), &arm64).unwrap();
        assert_eq!(
            spec.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        let riscv = Target {
            arch: Arch::ScmpArchRiscv64,
            ..amd64(&[], (6, 1))
        };
        assert_eq!(convert_json(profile, &riscv).unwrap().architectures(), &None);

        let old = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "syscalls": null});
        let spec = convert_json(old, &amd64(&[], (6, 1))).unwrap();
        assert_eq!(spec.architectures().as_deref(), Some(&[Arch::ScmpArchX86][..]));
    }

    #[test]
    fn flags_and_listener_pass_through() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "x",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        let spec = convert_json(profile, &amd64(&[], (6, 1))).unwrap();
        assert_eq!(
            spec.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        assert_eq!(
            spec.listener_path().as_deref(),
            Some(std::path::Path::new("/run/agent.sock"))
        );
    }

    #[test]
    fn bad_profiles() {
        let target = amd64(&[], (6, 1));
        let err = |profile: serde_json::Value| convert_json(profile, &target).unwrap_err().to_string();
        let rule = |rule: serde_json::Value| err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}));
        assert_eq!(
            rule(json!({"names": ["read"], "action": "SCMP_ACT_FOO"})),
            r#"seccomp: unknown action "SCMP_ACT_FOO" in rule for syscall "read""#
        );
        assert_eq!(
            rule(
                json!({"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]})
            ),
            r#"seccomp: unknown operator "SCMP_CMP_ABOUT" in rule for syscall "read""#
        );
        assert_eq!(
            rule(json!({"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"})),
            r#"seccomp: docker profile sets both "name" and "names""#
        );
        assert_eq!(
            rule(json!({"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5"}})),
            r#"seccomp: invalid kernel version "5", expected "<kernel>.<major>""#
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_NOPE"})),
            r#"seccomp: unknown default action "SCMP_ACT_NOPE""#
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})),
            r#"seccomp: unknown architecture "SCMP_ARCH_VAX""#
        );
        assert_eq!(
            err(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_Z80"]}]})
            ),
            r#"seccomp: unknown architecture "SCMP_ARCH_Z80""#
        );
        assert_eq!(
            err(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                       "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})
            ),
            r#"seccomp: docker profile sets both "architectures" and "archMap""#
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]})),
            r#"seccomp: unknown flag "SECCOMP_FILTER_FLAG_FAST""#
        );
        assert_eq!(err(json!({"syscalls": []})), "seccomp: invalid docker profile");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_release("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(kernel_release("3.12-rc5"), Some((3, 12)));
        assert_eq!(kernel_release("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_release("garbage"), None);
        assert_eq!(min_kernel("4.8").unwrap(), (4, 8));
        assert!(min_kernel("0.0").is_err());
        assert!(min_kernel("4.8.1").is_err());
        assert!(Target::host(vec![]).is_ok());
    }

    /// Every capability the built-in profile names, and then some.
    pub(super) const ALL_CAPS: &[&str] = &[
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_MODULE",
        "CAP_SYS_BOOT",
        "CAP_SYS_TIME",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_NICE",
        "CAP_SYS_PACCT",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYSLOG",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_DAC_READ_SEARCH",
        "CAP_NET_ADMIN",
        "CAP_IPC_LOCK",
    ];

    /// The errno of the first rule for `name`, if it is an ERRNO rule.
    fn errno_of(spec: &LinuxSeccomp, name: &str) -> Option<u32> {
        let rule = spec
            .syscalls()
            .iter()
            .flatten()
            .find(|r| r.names().iter().any(|n| n == name))?;
        (rule.action() == LinuxSeccompAction::ScmpActErrno).then(|| rule.errno_ret().unwrap_or(1))
    }

    #[test]
    fn default_profile_converts_on_every_mapped_arch() {
        let profile: serde_json::Value = serde_json::from_slice(default_profile()).unwrap();
        let map = profile["archMap"].as_array().unwrap();
        assert!(map.len() >= 8, "{map:?}");
        let mut natives = Vec::new();
        for entry in map {
            let native = arch(entry["architecture"].as_str().unwrap()).unwrap();
            let subs: Vec<Arch> = entry["subArchitectures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| arch(a.as_str().unwrap()).unwrap())
                .collect();
            natives.push(native);
            let mips = matches!(
                native,
                Arch::ScmpArchMips64 | Arch::ScmpArchMips64n32 | Arch::ScmpArchMipsel64 | Arch::ScmpArchMipsel64n32
            );
            for caps in [DEFAULT_CAPS, ALL_CAPS] {
                let target = Target {
                    arch: native,
                    ..amd64(caps, (6, 1))
                };
                let spec = default_seccomp(&target).unwrap();
                let want: Vec<Arch> = [native].into_iter().chain(subs.iter().copied()).collect();
                assert_eq!(spec.architectures().as_deref(), Some(&want[..]), "{native:?}");
                assert_eq!(spec.default_action(), LinuxSeccompAction::ScmpActErrno);
                assert_eq!(spec.default_errno_ret(), Some(1));
                let names = names(&spec);
                let count: usize = names.iter().map(|n| n.split(',').count()).sum();
                assert!(count > 300, "{native:?}: {count} names");
                let admin = caps == ALL_CAPS;
                // clone3 reports ENOSYS, which is 89 on MIPS, unless CAP_SYS_ADMIN is held.
                let enosys = if mips { 89 } else { 38 };
                assert_eq!(
                    errno_of(&spec, "clone3"),
                    (!admin).then_some(enosys),
                    "{native:?} {caps:?}"
                );
                let has = |name: &str| names.iter().any(|n| n.split(',').any(|n| n == name));
                assert_eq!(has("arch_prctl"), native == Arch::ScmpArchX86_64, "{native:?}");
                assert_eq!(has("set_tls"), native == Arch::ScmpArchAarch64, "{native:?}");
                assert_eq!(has("riscv_flush_icache"), native == Arch::ScmpArchRiscv64, "{native:?}");
                assert_eq!(has("mount"), admin, "{native:?}");
                assert!(has("read") && has("socket") && !has("keyctl") && !has("io_uring_setup"));
            }
        }
        // No architecture twice.
        let mut sorted = natives.clone();
        sorted.sort_by_key(|a| *a as u32);
        sorted.dedup();
        assert_eq!(sorted.len(), natives.len());
        // A native architecture the map leaves out converts too, filtered alone.
        let parisc = Target {
            arch: Arch::ScmpArchParisc64,
            ..amd64(DEFAULT_CAPS, (6, 1))
        };
        assert_eq!(default_seccomp(&parisc).unwrap().architectures(), &None);
    }

    #[test]
    fn docker_default_profile_converts() {
        let Some(json) = docker_reference() else { return };
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let spec = convert(
            &json,
            &Target {
                arch: Arch::ScmpArchX86_64,
                caps,
                kernel: (6, 1),
            },
        )
        .unwrap();
        let x86 = [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
        assert_eq!(spec.architectures().as_deref(), Some(&x86[..]));
        let names = names(&spec);
        assert!(names.contains(&"ptrace".to_string()));
        assert!(names.contains(&"arch_prctl".to_string()));
        assert!(names.contains(&"chroot".to_string()));
        assert!(!names.contains(&"reboot".to_string()));
        assert!(!names.iter().any(|n| n.contains("set_tls")));
    }
}

/// The built-in profile compiled for an x86_64 container and run through the
/// test interpreter, on all three x86 ABIs.
#[cfg(all(test, target_arch = "x86_64"))]
mod default_profile_tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::compile::{compile, RET_ALLOW, RET_ERRNO};
    use crate::interp::{check, run, Data};
    use crate::Program;

    const X86_64: usize = 0;
    const I386: usize = 1;
    const X32: usize = 2;
    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    const SIGCHLD: u64 = libc::SIGCHLD as u64;
    /// What glibc's pthread_create passes to clone.
    const THREAD: u64 = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    const NAMESPACES: [libc::c_int; 7] = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ];
    const AF_VSOCK: u64 = libc::AF_VSOCK as u64;
    const ADDR_NO_RANDOMIZE: u64 = 0x0040000;

    /// Refused whatever the container holds.
    const NEVER: &[&str] = &[
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "kexec_file_load",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "swapon",
        "swapoff",
        "uselib",
        "_sysctl",
        "create_module",
        "nfsservctl",
        "vm86",
    ];

    fn target(caps: &[&str], kernel: (u32, u32)) -> Target {
        Target {
            arch: Arch::ScmpArchX86_64,
            caps: caps.iter().map(|c| c.to_string()).collect(),
            kernel,
        }
    }

    fn program(json: &[u8], caps: &[&str], kernel: (u32, u32)) -> Program {
        let prog = compile(&convert(json, &target(caps, kernel)).unwrap()).unwrap();
        check(prog.instructions());
        prog
    }

    /// The built-in profile for Docker's default capabilities plus `extra`.
    fn builtin(extra: &[&str]) -> Program {
        let caps: Vec<&str> = DEFAULT_CAPS.iter().chain(extra).copied().collect();
        program(default_profile(), &caps, (6, 1))
    }

    /// Runs syscall `name` of `abi` with `args`.
    fn call(prog: &Program, abi: usize, name: &str, args: &[u64]) -> u32 {
        let abi = &tables::host()[abi];
        let nr = abi
            .number(name)
            .unwrap_or_else(|| panic!("no {name} on {:?}", abi.arch));
        let mut data = Data::new(abi.audit, nr);
        data.args[..args.len()].copy_from_slice(args);
        run(prog.instructions(), &data)
    }

    #[test]
    fn default_capabilities() {
        let prog = builtin(&[]);
        for abi in [X86_64, I386, X32] {
            let on = |name: &str, args: &[u64]| call(&prog, abi, name, args);
            for name in [
                "read",
                "write",
                "openat",
                "close",
                "execve",
                "futex",
                "mmap",
                "brk",
                "exit_group",
                "getpid",
                "rt_sigaction",
                "wait4",
                "epoll_wait",
                "nanosleep",
                "setuid",
                "chroot",
                "ptrace",
            ] {
                assert_eq!(on(name, &[]), RET_ALLOW, "{name} on ABI {abi}");
            }
            assert_eq!(on("clone", &[SIGCHLD]), RET_ALLOW, "fork");
            assert_eq!(on("clone", &[THREAD]), RET_ALLOW, "thread");
            for ns in NAMESPACES {
                assert_eq!(on("clone", &[ns as u64 | SIGCHLD]), EPERM, "clone {ns:#x}");
                assert_eq!(on("unshare", &[ns as u64]), EPERM, "unshare {ns:#x}");
            }
            assert_eq!(on("clone3", &[]), ENOSYS);
            for name in [
                "mount",
                "umount2",
                "setns",
                "pivot_root",
                "sethostname",
                "bpf",
                "perf_event_open",
            ] {
                assert_eq!(on(name, &[]), EPERM, "{name} on ABI {abi}");
            }
            for name in NEVER {
                if tables::host()[abi].number(name).is_some() {
                    assert_eq!(on(name, &[]), EPERM, "{name} on ABI {abi}");
                }
            }
            for family in [
                libc::AF_UNIX,
                libc::AF_INET,
                libc::AF_INET6,
                libc::AF_NETLINK,
                libc::AF_PACKET,
            ] {
                assert_eq!(on("socket", &[family as u64]), RET_ALLOW, "socket({family})");
            }
            assert_eq!(on("socket", &[AF_VSOCK]), EPERM);
            for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
                assert_eq!(on("personality", &[persona]), RET_ALLOW, "personality({persona:#x})");
            }
            assert_eq!(on("personality", &[ADDR_NO_RANDOMIZE]), EPERM);
        }
        assert_eq!(call(&prog, X86_64, "arch_prctl", &[]), RET_ALLOW);
        assert_eq!(call(&prog, I386, "socketcall", &[]), RET_ALLOW);
        // Syscalls past the end of a table: ENOSYS, as for any profile.
        assert_eq!(
            run(prog.instructions(), &Data::new(tables::host()[0].audit, 1000)),
            ENOSYS
        );
        // ptrace only from 4.8, when seccomp learnt to recheck a traced call.
        let old = program(default_profile(), DEFAULT_CAPS, (4, 4));
        assert_eq!(call(&old, X86_64, "ptrace", &[]), EPERM);
        assert_eq!(call(&old, X86_64, "process_vm_readv", &[]), EPERM);
    }

    #[test]
    fn sys_admin() {
        let prog = builtin(&["CAP_SYS_ADMIN"]);
        for abi in [X86_64, I386, X32] {
            let on = |name: &str, args: &[u64]| call(&prog, abi, name, args);
            for name in [
                "mount",
                "umount2",
                "setns",
                "pivot_root",
                "sethostname",
                "clone3",
                "fsopen",
                "bpf",
            ] {
                assert_eq!(on(name, &[]), RET_ALLOW, "{name} on ABI {abi}");
            }
            for ns in NAMESPACES {
                assert_eq!(on("clone", &[ns as u64 | SIGCHLD]), RET_ALLOW, "clone {ns:#x}");
                assert_eq!(on("unshare", &[ns as u64]), RET_ALLOW, "unshare {ns:#x}");
            }
            for name in ["keyctl", "kexec_load", "io_uring_setup", "reboot", "init_module"] {
                assert_eq!(on(name, &[]), EPERM, "{name} on ABI {abi}");
            }
        }
    }

    #[test]
    fn capability_groups() {
        let groups: &[(&str, &[&str])] = &[
            ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
            ("CAP_SYS_MODULE", &["init_module", "finit_module", "delete_module"]),
            ("CAP_SYS_BOOT", &["reboot"]),
            ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
            ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
            ("CAP_SYS_CHROOT", &["chroot"]),
            ("CAP_SYS_NICE", &["mbind", "get_mempolicy", "set_mempolicy"]),
            ("CAP_SYS_PACCT", &["acct"]),
            ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
            ("CAP_SYSLOG", &["syslog"]),
            ("CAP_BPF", &["bpf"]),
            ("CAP_PERFMON", &["perf_event_open"]),
            ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
        ];
        let none = program(default_profile(), &[], (6, 1));
        for (cap, names) in groups {
            let with = program(default_profile(), &[cap], (6, 1));
            for name in *names {
                assert_eq!(call(&none, X86_64, name, &[]), EPERM, "{name} without {cap}");
                assert_eq!(call(&with, X86_64, name, &[]), RET_ALLOW, "{name} with {cap}");
            }
            // The capability opens its own group only.
            assert_eq!(call(&with, X86_64, "mount", &[]), EPERM, "mount with {cap}");
        }
        // Holding every one of them still leaves these out.
        let caps: Vec<&str> = groups.iter().map(|g| g.0).chain(["CAP_SYS_ADMIN"]).collect();
        let all = program(default_profile(), &caps, (6, 1));
        for name in NEVER {
            for abi in [X86_64, I386, X32] {
                if tables::host()[abi].number(name).is_some() {
                    assert_eq!(call(&all, abi, name, &[]), EPERM, "{name} on ABI {abi}");
                }
            }
        }
    }

    /// Every name in the profile is a syscall: one of an x86 table's, or one
    /// the tables here lack (other architectures' and newer than the tables).
    #[test]
    fn names_are_syscalls() {
        const ELSEWHERE: &[&str] = &[
            // arm, powerpc, s390, riscv
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "swapcontext",
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
            "riscv_flush_icache",
            "send",
            "recv",
            // newer than the tables
            "cachestat",
            "fchmodat2",
            "futex_wake",
            "futex_wait",
            "futex_requeue",
            "map_shadow_stack",
            "mseal",
            "uretprobe",
            "getxattrat",
            "setxattrat",
            "listxattrat",
            "removexattrat",
        ];
        let profile: serde_json::Value = serde_json::from_slice(default_profile()).unwrap();
        let mut names = BTreeSet::new();
        for rule in profile["syscalls"].as_array().unwrap() {
            for name in rule["names"].as_array().unwrap() {
                names.insert(name.as_str().unwrap().to_string());
            }
        }
        let known = |name: &str| tables::host().iter().any(|abi| abi.number(name).is_some());
        for name in &names {
            assert!(known(name) != ELSEWHERE.contains(&name.as_str()), "{name}");
        }
        let allowed = allowed(&builtin(&[]), X86_64);
        let total = tables::host()[X86_64].table.len();
        println!(
            "built-in profile: {} names; with Docker's default capabilities {} of the {total} x86_64 syscalls \
             are allowed (for some arguments)",
            names.len(),
            allowed.len()
        );
        assert!(allowed.len() > 280, "{}", allowed.len());
    }

    /// Argument 0 values that tell the profile's conditions apart.
    const SAMPLES: [u64; 10] = [
        0,
        SIGCHLD,
        libc::CLONE_NEWNS as u64 | SIGCHLD,
        libc::CLONE_NEWUSER as u64,
        libc::AF_INET as u64,
        AF_VSOCK,
        8,
        0x20008,
        0xffff_ffff,
        ADDR_NO_RANDOMIZE,
    ];

    /// What `prog` answers for each syscall of `abi` and each sample.
    fn answers(prog: &Program, abi: usize) -> Vec<(&'static str, u64, u32)> {
        let mut out = Vec::new();
        for &(name, _) in tables::host()[abi].table {
            for arg in SAMPLES {
                out.push((name, arg, call(prog, abi, name, &[arg])));
            }
        }
        out
    }

    fn allowed(prog: &Program, abi: usize) -> BTreeSet<&'static str> {
        answers(prog, abi)
            .into_iter()
            .filter(|a| a.2 == RET_ALLOW)
            .map(|a| a.0)
            .collect()
    }

    /// Against Docker's own profile (when the machine has it): for the
    /// default capabilities, each capability added and all of them, on all
    /// three ABIs, the two answer alike except for the syscalls below.
    #[test]
    fn matches_dockers_profile() {
        let Some(docker) = docker_reference() else { return };
        // Differences from the 20.10 profile Debian ships; the version
        // numbers are where later Docker profiles changed the same way, from
        // their release notes, not checked here.
        let expected: &[(&str, &str)] = &[
            // Refused by berth as by later Docker (25.x): io_uring, AF_VSOCK.
            ("io_uring_setup", "io_uring refused"),
            ("io_uring_enter", "io_uring refused"),
            ("io_uring_register", "io_uring refused"),
            ("socket", "AF_VSOCK refused"),
            // Allowed by berth, and (to our knowledge) by later Docker.
            ("process_vm_readv", "allowed from kernel 4.8 like ptrace"),
            ("process_vm_writev", "allowed from kernel 4.8 like ptrace"),
            ("pkey_alloc", "memory protection keys, the caller's own memory"),
            ("pkey_free", "memory protection keys, the caller's own memory"),
            ("pkey_mprotect", "memory protection keys, the caller's own memory"),
            ("bpf", "with CAP_BPF"),
            ("perf_event_open", "with CAP_PERFMON"),
            ("clock_settime64", "the 32-bit clock_settime, with CAP_SYS_TIME"),
            ("set_mempolicy_home_node", "with CAP_SYS_NICE like the other NUMA calls"),
            // berth's own: the kernel demands CAP_SYS_ADMIN for it anyway.
            ("pivot_root", "with CAP_SYS_ADMIN"),
        ];
        let mut sets: Vec<Vec<&str>> = vec![DEFAULT_CAPS.to_vec()];
        for cap in super::tests::ALL_CAPS {
            sets.push(DEFAULT_CAPS.iter().chain([cap]).copied().collect());
        }
        sets.push(DEFAULT_CAPS.iter().chain(super::tests::ALL_CAPS).copied().collect());
        let mut differ = BTreeSet::new();
        for caps in &sets {
            let ours = program(default_profile(), caps, (6, 1));
            let theirs = program(&docker, caps, (6, 1));
            for abi in [X86_64, I386, X32] {
                for (a, b) in answers(&ours, abi).into_iter().zip(answers(&theirs, abi)) {
                    if a != b && differ.insert(a.0) {
                        println!(
                            "differs: {} (ABI {abi}, arg {:#x}, {:?}): berth {:#x}, docker {:#x}",
                            a.0,
                            a.1,
                            &caps[DEFAULT_CAPS.len()..],
                            a.2,
                            b.2
                        );
                    }
                }
            }
        }
        let unexpected: Vec<_> = differ.iter().filter(|n| !expected.iter().any(|e| e.0 == **n)).collect();
        assert!(
            unexpected.is_empty(),
            "unexpected differences from Docker's profile: {unexpected:?}"
        );
    }
}
