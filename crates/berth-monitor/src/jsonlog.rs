//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}`,
//! with size-based rotation (`container.log`, `.1`, `.2`, … oldest last).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A line longer than this is written in pieces, as Docker does (16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// One log entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries to a log, rotating it by size.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Unterminated output per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_owned(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs output of `stream` (0 stdout, 1 stderr): whole lines now, the
    /// rest once its line ends (or grows past [`MAX_LINE`]).
    pub fn write(&mut self, stream: usize, data: &[u8], now: &str) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.partial[stream]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &buf[start..end], now)?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE], now)?;
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[stream] = buf;
        Ok(())
    }

    /// Writes what is left of unterminated lines (the container exited).
    pub fn flush_partial(&mut self, now: &str) -> io::Result<()> {
        for stream in 0..2 {
            let buf = std::mem::take(&mut self.partial[stream]);
            if !buf.is_empty() {
                self.entry(stream, &buf, now)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: usize, text: &[u8], now: &str) -> io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: now.into(),
        };
        let mut line = serde_json::to_vec(&e).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let n = self.max_files;
        if n > 1 {
            for i in (1..n - 1).rev() {
                let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The `n`th rotated file of the log at `path`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The log's files, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        v.push(rotated(path, n));
        n += 1;
    }
    v.reverse();
    if path.exists() {
        v.push(path.to_owned());
    }
    v
}

/// Reads the entries of one log file from `reader`; lines that are not
/// entries (a write cut short by a crash) are skipped.
pub fn read_entries(reader: impl io::Read, out: &mut Vec<Entry>) -> io::Result<()> {
    for line in BufReader::new(reader).split(b'\n') {
        if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
            out.push(e);
        }
    }
    Ok(())
}

/// Every entry of the log at `path`, oldest first.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in files(path) {
        match File::open(&f) {
            Ok(file) => read_entries(file, &mut out)?,
            // Rotated away meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partials_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = Writer::open(&path, 0, 1).unwrap();
        w.write(0, b"one\ntw", "t1").unwrap();
        w.write(1, b"err\n", "t2").unwrap();
        w.write(0, b"o\nthree", "t3").unwrap();
        w.flush_partial("t4").unwrap();
        let got: Vec<_> = read_all(&path)
            .unwrap()
            .into_iter()
            .map(|e| (e.log, e.stream, e.time))
            .collect();
        let want = [
            ("one\n", "stdout", "t1"),
            ("err\n", "stderr", "t2"),
            ("two\n", "stdout", "t3"),
            ("three", "stdout", "t4"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), w);
        }
    }

    #[test]
    fn long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = Writer::open(&path, 0, 1).unwrap();
        w.write(0, &vec![b'x'; MAX_LINE * 2 + 5], "t").unwrap();
        w.flush_partial("t").unwrap();
        let lens: Vec<_> = read_all(&path).unwrap().iter().map(|e| e.log.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 5]);
    }

    #[test]
    fn rotation_keeps_max_files_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = Writer::open(&path, 200, 3).unwrap();
        for i in 0..40 {
            w.write(0, format!("line {i:02}\n").as_bytes(), "t").unwrap();
        }
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let logs: Vec<_> = read_all(&path).unwrap().into_iter().map(|e| e.log).collect();
        assert_eq!(logs.last().unwrap(), "line 39\n");
        // Oldest first, consecutive, and only the newest kept.
        let first: u32 = logs[0][5..7].parse().unwrap();
        assert!(first > 0);
        for (k, l) in logs.iter().enumerate() {
            assert_eq!(l, &format!("line {:02}\n", first as usize + k));
        }
        for f in files(&path) {
            assert!(std::fs::metadata(f).unwrap().len() <= 200);
        }
    }

    #[test]
    fn torn_lines_are_skipped() {
        let mut out = Vec::new();
        read_entries(
            &b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"log\":\"b"[..],
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
    }
}
