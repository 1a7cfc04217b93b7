//! Platforms (`os/architecture/variant`, Go's names): the host's, `--platform` strings, and
//! containerd's rules for which images a platform can run.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{null_default, FormatError};

/// A platform as an index entry or an image config names it: Go's `GOOS` / `GOARCH` names plus
/// a CPU variant (`v7`, `v8`), and for Windows the OS version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// CPU features (Docker manifest lists only, e.g. `sse4`; reserved in OCI).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl Platform {
    /// A platform from its parts, normalized (see [`Platform::normalize`]).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
            ..Platform::default()
        }
        .normalize()
    }

    /// The platform this process runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "loongarch64" => "loong64",
            // arm, s390x, riscv64, ppc64, mips64 and the rest: Go uses Rust's name.
            other => other,
        };
        Platform::new(std::env::consts::OS, architecture, None)
    }

    /// Parses a `--platform` value: `os/arch[/variant]`, or a lone `os` (with the host's
    /// architecture) or `arch` (on linux). Common aliases (`x86_64`, `aarch64`, `armhf`) are
    /// accepted and normalized.
    pub fn parse(input: &str) -> Result<Platform, FormatError> {
        let invalid = |reason: &'static str| FormatError::InvalidPlatform {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if parts.len() > 3 {
            return Err(invalid("more than os/architecture/variant"));
        }
        if parts.iter().any(|part| part.is_empty()) {
            return Err(invalid("empty component"));
        }
        if parts.iter().any(|part| {
            !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(invalid("components may only have letters, digits, '_', '-' and '.'"));
        }
        let platform = match parts[..] {
            [one] => {
                let one = one.to_ascii_lowercase();
                if KNOWN_OS.contains(&one.as_str()) {
                    Platform::new(&one, &Platform::host().architecture, None)
                } else {
                    Platform::new("linux", &one, None)
                }
            }
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => unreachable!("1 to 3 components"),
        };
        Ok(platform)
    }

    /// Lower-cases, maps aliases to Go's names and fills in the default variant: `arm64` is
    /// `v8` and `arm` is `v7` unless told otherwise; a bare variant number gets its `v`.
    pub fn normalize(mut self) -> Platform {
        self.os = match self.os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_owned(),
            os => os.to_owned(),
        };
        let variant = self
            .variant
            .take()
            .filter(|v| !v.is_empty())
            .map(|v| v.to_ascii_lowercase());
        let (architecture, variant) = match self.architecture.to_ascii_lowercase().as_str() {
            "i386" | "i686" | "x86" => ("386".to_owned(), variant),
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_owned(), variant),
            "aarch64" | "arm64" => ("arm64".to_owned(), Some(variant.unwrap_or_else(|| "v8".to_owned()))),
            "armhf" => ("arm".to_owned(), Some("v7".to_owned())),
            "armel" => ("arm".to_owned(), Some("v6".to_owned())),
            "arm" => ("arm".to_owned(), Some(variant.unwrap_or_else(|| "v7".to_owned()))),
            other => (other.to_owned(), variant),
        };
        self.architecture = architecture;
        self.variant = variant.map(|v| {
            if v.starts_with(|c: char| c.is_ascii_digit()) {
                format!("v{v}")
            } else {
                v
            }
        });
        self
    }

    /// What this platform can run, best first (containerd's `platforms.Only`).
    pub fn matcher(&self) -> PlatformMatcher {
        let wanted = self.clone().normalize();
        let mut order = vec![wanted.clone()];
        let os = wanted.os.clone();
        let lower = |arch: &str, from: u32, to: u32| -> Vec<Platform> {
            (to..from)
                .rev()
                .map(|n| Platform::new(&os, arch, Some(&format!("v{n}"))))
                .collect()
        };
        match wanted.architecture.as_str() {
            "amd64" => {
                order.extend(lower("amd64", variant_number(&wanted).unwrap_or(1), 1));
                order.push(Platform::new(&wanted.os, "386", None));
            }
            "arm" => order.extend(lower("arm", variant_number(&wanted).unwrap_or(7), 5)),
            "arm64" => {
                if variant_number(&wanted) != Some(8) {
                    order.push(Platform::new(&wanted.os, "arm64", Some("v8")));
                }
                order.push(Platform::new(&wanted.os, "arm", Some("v8")));
                order.extend(lower("arm", 8, 5));
            }
            _ => {}
        }
        PlatformMatcher { order }
    }
}

/// OS names a lone `--platform` value is read as.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

/// The major number of a `vN` or `vN.M` variant.
fn variant_number(platform: &Platform) -> Option<u32> {
    let variant = platform.variant.as_deref()?.strip_prefix('v')?;
    variant.split('.').next()?.parse().ok()
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(variant) if !variant.is_empty() => write!(f, "/{variant}"),
            _ => Ok(()),
        }
    }
}

/// The platforms one platform can run, in order of preference: itself, then compatible lower
/// variants (`arm/v7` runs `arm/v6` and `arm/v5`; `arm64` runs `arm/v8` down to `arm/v5`;
/// `amd64` runs `386`).
#[derive(Debug, Clone)]
pub struct PlatformMatcher {
    order: Vec<Platform>,
}

impl PlatformMatcher {
    /// The platform asked for.
    pub fn wanted(&self) -> &Platform {
        &self.order[0]
    }

    /// How good `candidate` is, 0 being the exact platform; `None` if it cannot run.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let candidate = candidate.clone().normalize();
        self.order.iter().position(|p| same_platform(p, &candidate))
    }

    /// Whether `candidate` can run.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }
}

/// Equality of normalized platforms, `amd64` without a variant being `v1`, and Windows OS
/// versions compared on major.minor.build when both name one.
fn same_platform(a: &Platform, b: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("amd64", None) => Some("v1".to_owned()),
        (_, v) => v.map(str::to_owned),
    };
    let os_version = match (a.os.as_str(), a.os_version.as_deref(), b.os_version.as_deref()) {
        ("windows", Some(x), Some(y)) => {
            let build = |v: &str| v.split('.').take(3).map(str::to_owned).collect::<Vec<_>>();
            build(x) == build(y)
        }
        _ => true,
    };
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b) && os_version
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_platform_strings() {
        assert_eq!(
            p("linux/amd64"),
            Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                ..Default::default()
            }
        );
        assert_eq!(p("linux/arm64/v8").variant.as_deref(), Some("v8"));
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/aarch64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("linux/arm/7"), p("linux/arm/v7"));
        assert_eq!(p("linux/armhf"), p("linux/arm/v7"));
        assert_eq!(p("Linux/X86_64"), p("linux/amd64"));
        assert_eq!(p("arm64"), p("linux/arm64/v8"));
        assert_eq!(p("windows").os, "windows");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/s390x").architecture, "s390x");
    }

    #[test]
    fn bad_platform_strings_say_why() {
        for (input, reason) in [
            ("", "empty component"),
            ("linux//v7", "empty component"),
            ("linux/arm/v7/extra", "more than os/architecture/variant"),
            (
                "linux/amd 64",
                "components may only have letters, digits, '_', '-' and '.'",
            ),
        ] {
            let err = Platform::parse(input).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid platform {input:?}: {reason}"));
        }
    }

    #[test]
    fn host_uses_go_names() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        let expected = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(host.architecture, expected);
        if host.architecture == "arm64" {
            assert_eq!(host.variant.as_deref(), Some("v8"));
        }
    }

    #[test]
    fn lower_variants_are_compatible_and_ranked_after() {
        let arm7 = p("linux/arm/v7").matcher();
        assert_eq!(arm7.rank(&p("linux/arm/v7")), Some(0));
        assert_eq!(arm7.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(arm7.rank(&p("linux/arm/v5")), Some(2));
        assert!(!arm7.matches(&p("linux/arm/v8")));
        assert!(!arm7.matches(&p("linux/arm64")));

        let arm64 = p("linux/arm64").matcher();
        assert_eq!(arm64.rank(&p("linux/arm64/v8")), Some(0));
        // An entry without a variant is the default v8.
        let bare = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            ..Default::default()
        };
        assert_eq!(arm64.rank(&bare), Some(0));
        assert!(arm64.rank(&p("linux/arm/v7")) > arm64.rank(&p("linux/arm/v8")));
        assert!(!arm64.matches(&p("linux/amd64")));

        let amd64 = p("linux/amd64").matcher();
        assert_eq!(amd64.rank(&p("linux/amd64/v1")), Some(0));
        assert_eq!(amd64.rank(&p("linux/386")), Some(1));
        assert!(!amd64.matches(&p("linux/amd64/v3")));
        let amd64v3 = p("linux/amd64/v3").matcher();
        assert_eq!(amd64v3.rank(&p("linux/amd64/v2")), Some(1));
        assert_eq!(amd64v3.rank(&p("linux/amd64")), Some(2));
        assert!(!amd64.matches(&p("windows/amd64")));
    }

    #[test]
    fn windows_os_version_compares_the_build() {
        let mut want = p("windows/amd64");
        want.os_version = Some("10.0.17763.5122".into());
        let mut same_build = want.clone();
        same_build.os_version = Some("10.0.17763.1".into());
        let mut other_build = want.clone();
        other_build.os_version = Some("10.0.20348.1".into());
        assert!(want.matcher().matches(&same_build));
        assert!(!want.matcher().matches(&other_build));
    }

    #[test]
    fn serde_names() {
        let json = r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5122","os.features":null}"#;
        let platform: Platform = serde_json::from_str(json).unwrap();
        assert_eq!(platform.os_version.as_deref(), Some("10.0.17763.5122"));
        assert!(platform.os_features.is_empty());
        assert_eq!(
            serde_json::to_string(&platform).unwrap(),
            r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5122"}"#
        );
    }
}
