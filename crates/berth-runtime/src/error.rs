//! The runtime's error type. Messages are lower-case, name the object that
//! failed, and never repeat their source's text.

use std::io;
use std::path::PathBuf;

/// Everything a runtime operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("container does not exist")]
    NotFound(String),
    #[error("container with given ID already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: only letters, digits, '_', '+', '-' and '.' are allowed")]
    InvalidId(String),
    /// The container is in a state that does not allow the operation; the
    /// message is runc's wording.
    #[error("{0}")]
    State(String),
    /// A failure reported by a process of the container (init or exec), sent
    /// back across the fork as text.
    #[error("{0}")]
    Child(String),
    #[error("{op} {path}")]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn path(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }

    /// The whole chain, "outer: inner: innermost", as users read it.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Helper to attach an operation and path to io errors.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
    fn op(self, op: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::path(op, path, e.into()))
    }
    fn op(self, op: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::sys(op, e))
    }
}

/// Any error with its sources, as one line; a source whose text the line
/// already ends with (an error that repeats its cause) is not added again.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
