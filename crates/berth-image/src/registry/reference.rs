//! Image references as Docker writes them: `[registry/]repository[:tag][@digest]`, normalized the
//! way `docker pull` does (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::store::Digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The tag of a reference that names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (registry included), as in Docker.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag.
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

/// A normalized image reference: registry, repository and a tag and/or a digest.
///
/// A reference without tag or digest gets the tag `latest`; one with a digest only has no tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `input` like Docker's `ParseNormalizedNamed` + `TagNameOnly`: the first path
    /// component is a registry when it contains `.` or `:`, is `localhost`, or has upper-case
    /// letters; otherwise the registry is `docker.io`, where one-component names are under
    /// `library/`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: String| ReferenceError {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty reference".into()));
        }
        if input.len() == 64 && input.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err("a 64-digit hex string is an image ID, not a repository name".into()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| err(format!("bad digest: {e}")))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last `:` only when it is after the last `/` (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| err(format!("bad tag {tag:?}: {reason}")))?;
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            validate_registry(registry).map_err(|reason| err(format!("bad registry {registry:?}: {reason}")))?;
        }
        if path.is_empty() {
            return Err(err("empty repository name".into()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(format!("repository name {path:?} must be lowercase")));
        }
        for component in path.split('/') {
            validate_path_component(component).map_err(|reason| {
                err(format!(
                    "bad repository name {path:?}: component {component:?} {reason}"
                ))
            })?;
        }
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(err(format!(
                "repository name is {} characters long; at most {NAME_TOTAL_LENGTH_MAX} are allowed",
                name.len()
            )));
        }
        let registry = match registry {
            None | Some("index.docker.io") => DOCKER_HUB.to_owned(),
            Some(registry) => registry.to_owned(),
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as written in references (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) the registry API is reached at: Docker Hub's is `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The repository within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What the manifest URL names: the digest when there is one, else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same reference pinned to `digest` (the tag is kept: `name:tag@digest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with tag `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag).map_err(|reason| ReferenceError {
            input: tag.to_owned(),
            reason: format!("bad tag: {reason}"),
        })?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// The host serving `registry`'s API (`docker.io` → `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Splits the registry off `name` when its first component is one (Docker's rule).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `[\w][\w.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes() {
        [] => Err("empty".into()),
        _ if tag.len() > TAG_LENGTH_MAX => Err(format!("longer than {TAG_LENGTH_MAX} characters")),
        [first, ..] if !word(*first) => Err("must start with a letter, digit or `_`".into()),
        bytes => match bytes.iter().find(|&&b| !(word(b) || b == b'.' || b == b'-')) {
            Some(&b) => Err(format!(
                "has {:?}; only letters, digits, `_`, `.` and `-` are allowed",
                b as char
            )),
            None => Ok(()),
        },
    }
}

/// A host name (components of letters, digits and inner `-`, joined by `.`) or a bracketed IPv6
/// address, with an optional numeric port.
fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or("unclosed `[`")?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("{addr:?} is not an IPv6 address"));
        }
        if after.is_empty() {
            return Ok(());
        }
        (None, Some(after.strip_prefix(':').ok_or("junk after `]`")?))
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        for component in host.split('.') {
            let bytes = component.as_bytes();
            let ok = !bytes.is_empty()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-';
            if !ok {
                return Err(format!("host component {component:?} is not a valid name"));
            }
        }
    }
    match port {
        Some(port) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("port {port:?} is not a number"))
        }
        _ => Ok(()),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn validate_path_component(component: &str) -> Result<(), &'static str> {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err("is empty");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("must start and end with a lower-case letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &bytes[start..i] {
            b"." | b"_" | b"__" => {}
            sep if sep.iter().all(|&b| b == b'-') => {}
            _ => return Err("has a separator other than `.`, `_`, `__` or dashes"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(input: &str) -> String {
        Reference::parse(input).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("someone/app:v1"), "docker.io/someone/app:v1");
        assert_eq!(norm("index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("localhost/a"), "localhost/a:latest");
        assert_eq!(norm("localhost:5000/a/b:tag"), "localhost:5000/a/b:tag");
        assert_eq!(norm("quay.io/org/x-y__z.w"), "quay.io/org/x-y__z.w:latest");
        assert_eq!(norm("[::1]:5000/a"), "[::1]:5000/a:latest");
        assert_eq!(norm("Registry/a"), "Registry/a:latest");
        assert_eq!(norm("a--b/c"), "docker.io/a--b/c:latest");

        let r = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.object(), format!("sha256:{HEX}"));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@sha256:{HEX}"));

        let r = Reference::parse(&format!("localhost:5000/x:v2@sha256:{HEX}")).unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("localhost:5000", "x", Some("v2"))
        );
        assert_eq!(r.object(), format!("sha256:{HEX}"));

        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.object(), "latest");
        assert_eq!(r.name(), "docker.io/library/busybox");
        let pinned = r.with_digest(Digest::of(b""));
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/busybox:latest@sha256:{HEX}")
        );
        assert_eq!(
            Reference::parse("localhost:5000/a").unwrap().api_host(),
            "localhost:5000"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |input: &str| Reference::parse(input).unwrap_err().reason;
        assert_eq!(reason("Busybox"), "repository name \"Busybox\" must be lowercase");
        assert_eq!(
            reason("localhost:5000/Foo"),
            "repository name \"Foo\" must be lowercase"
        );
        assert!(
            reason("busybox:-x").starts_with("bad tag \"-x\": must start"),
            "{}",
            reason("busybox:-x")
        );
        assert!(reason("busybox:a+b").contains("'+'"), "{}", reason("busybox:a+b"));
        assert!(reason(&format!("busybox:{}", "a".repeat(129))).contains("longer than 128"));
        assert!(reason("busybox:").starts_with("bad tag \"\": empty"));
        assert!(
            reason("busybox@sha256:abc").starts_with("bad digest: "),
            "{}",
            reason("busybox@sha256:abc")
        );
        assert!(reason(&format!("busybox@md5:{HEX}")).contains("only sha256"));
        assert!(reason("a//b").contains("component \"\" is empty"), "{}", reason("a//b"));
        assert!(reason("a/-b").contains("must start and end"), "{}", reason("a/-b"));
        assert!(reason("a/b..c").contains("separator"), "{}", reason("a/b..c"));
        assert!(
            reason("host-:5000/a").contains("bad registry"),
            "{}",
            reason("host-:5000/a")
        );
        assert!(
            reason("host:port/a").contains("port \"port\""),
            "{}",
            reason("host:port/a")
        );
        assert!(reason(HEX).contains("image ID"));
        assert_eq!(reason(""), "empty reference");
        assert!(reason(&format!("a/{}", "b".repeat(260))).contains("at most 255"));
        let err = Reference::parse("Busybox").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference \"Busybox\": repository name \"Busybox\" must be lowercase"
        );
    }
}
