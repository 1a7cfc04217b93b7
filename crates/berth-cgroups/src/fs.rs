//! Small helpers for reading and writing cgroup files, with errors that name the file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors of file access in a cgroup directory.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {content:?} from {path}")]
    Parse { path: PathBuf, content: String },
    #[error("creating directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing directory {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            FsError::Write { source, .. }
            | FsError::Read { source, .. }
            | FsError::CreateDir { source, .. }
            | FsError::RemoveDir { source, .. } => source.raw_os_error(),
            FsError::Parse { .. } => None,
        }
    }
}

/// Write `value` to `dir/file` in a single write(2), without creating the file.
pub fn write(dir: &Path, file: &str, value: impl ToString) -> Result<(), FsError> {
    let path = dir.join(file);
    let value = value.to_string();
    let res = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| FsError::Write { path, value, source })
}

/// Write only if the file exists (optional kernel features).
pub fn write_if_exists(dir: &Path, file: &str, value: impl ToString) -> Result<bool, FsError> {
    if dir.join(file).exists() {
        write(dir, file, value)?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Read a whole file.
pub fn read(dir: &Path, file: &str) -> Result<String, FsError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| FsError::Read { path, source })
}

/// Read a file, `None` if it does not exist.
pub fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, FsError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FsError::Read { path, source }),
    }
}

/// Read a single unsigned number; "max" reads as `u64::MAX`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, FsError> {
    let content = read(dir, file)?;
    parse_u64(&content).ok_or_else(|| FsError::Parse {
        path: dir.join(file),
        content,
    })
}

/// Like [`read_u64`] but 0 when the file is absent.
pub fn read_u64_opt(dir: &Path, file: &str) -> Result<u64, FsError> {
    if dir.join(file).exists() {
        read_u64(dir, file)
    } else {
        Ok(0)
    }
}

/// Parse a number as found in cgroup files; "max" is `u64::MAX`, negative values are 0.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    if let Ok(v) = s.parse::<u64>() {
        return Some(v);
    }
    s.parse::<i64>().ok().map(|_| 0)
}

/// Parse "key value" lines (memory.stat, cpu.stat, cgroup.events, ...).
pub fn parse_flat_keyed(content: &str) -> Vec<(String, u64)> {
    content
        .lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Read one key of a flat-keyed file; 0 if the file or key is absent.
pub fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<u64, FsError> {
    Ok(read_opt(dir, file)?
        .map(|c| {
            parse_flat_keyed(&c)
                .into_iter()
                .find(|(k, _)| k == key)
                .map_or(0, |(_, v)| v)
        })
        .unwrap_or(0))
}

/// mkdir of one level, an existing directory being fine. A parent removed meanwhile (another
/// process removing an unused parent group) fails with ENOENT rather than being made again
/// unfilled, so the caller can start over from the top.
pub fn create_dir(path: &Path) -> Result<(), FsError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r.map_err(|source| FsError::CreateDir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// mkdir -p
pub fn create_dir_all(path: &Path) -> Result<(), FsError> {
    fs::create_dir_all(path).map_err(|source| FsError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub mod fixture {
    //! Fixture cgroup directories for unit tests (files pre-created, as the kernel would).
    use std::path::Path;

    pub fn set(dir: &Path, file: &str, content: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), content).unwrap();
    }

    pub fn get(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }
}
