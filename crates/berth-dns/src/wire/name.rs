//! Domain names (RFC 1035 §3.1, §4.1.4): read with compression pointers, written with them.

use std::fmt;

use super::WireError;

/// The longest name in wire form, length bytes and the root's 0 included (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// The longest label.
pub const MAX_LABEL: usize = 63;
/// How far a name may jump through compression pointers; each jump must go backwards, so
/// this only bounds the work a hostile message can ask for.
const MAX_JUMPS: usize = 64;

/// A domain name in uncompressed wire form: each label with its length byte, then the root's
/// 0. Compared case-insensitively (ASCII), as DNS compares names.
#[derive(Clone, Debug)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name (`.`).
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Parses presentation form: `web`, `web.mynet`, `web.mynet.` (`""` and `"."` are the
    /// root). No escapes: configured names are plain.
    pub fn from_dotted(text: &str) -> Result<Name, WireError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        let mut wire = Vec::with_capacity(text.len() + 2);
        if !text.is_empty() {
            for label in text.split('.') {
                if label.is_empty() || label.len() > MAX_LABEL {
                    return Err(WireError::BadLabel);
                }
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
        }
        wire.push(0);
        if wire.len() > MAX_NAME {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// Builds a name from labels (each 1–63 bytes).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Name, WireError> {
        let mut wire = Vec::new();
        for label in labels {
            if label.is_empty() || label.len() > MAX_LABEL {
                return Err(WireError::BadLabel);
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        if wire.len() > MAX_NAME {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// The name in uncompressed wire form.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, leftmost first (none for the root).
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// The name as a lookup key: lower case, dot-separated, no trailing dot (`""` for the
    /// root). `None` when a label holds a dot, a space or a byte outside printable ASCII,
    /// which no configured name can match.
    pub fn key(&self) -> Option<String> {
        let mut key = String::with_capacity(self.wire.len());
        for label in self.labels() {
            if label.iter().any(|b| !b.is_ascii_graphic() || *b == b'.') {
                return None;
            }
            if !key.is_empty() {
                key.push('.');
            }
            key.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        }
        Some(key)
    }

    /// Reads the name at `pos` of `msg`, following compression pointers. Returns the name
    /// and the offset just past it where it starts (past the first pointer if there is one).
    pub fn read(msg: &[u8], pos: usize) -> Result<(Name, usize), WireError> {
        let mut wire = Vec::new();
        let mut at = pos;
        let mut end = None;
        let mut jumps = 0;
        loop {
            let len = *msg.get(at).ok_or(WireError::Truncated)? as usize;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    wire.push(0);
                    return Ok((Name { wire }, end.unwrap_or(at + 1)));
                }
                0x00 => {
                    let label = msg.get(at + 1..at + 1 + len).ok_or(WireError::Truncated)?;
                    // The label, and at least the root's 0 after it.
                    if wire.len() + 1 + len + 1 > MAX_NAME {
                        return Err(WireError::NameTooLong);
                    }
                    wire.push(len as u8);
                    wire.extend_from_slice(label);
                    at += 1 + len;
                }
                0xC0 => {
                    let low = *msg.get(at + 1).ok_or(WireError::Truncated)? as usize;
                    let target = ((len & 0x3F) << 8) | low;
                    end.get_or_insert(at + 2);
                    jumps += 1;
                    // Strictly backwards, so a chain of pointers always ends.
                    if target >= at || jumps > MAX_JUMPS {
                        return Err(WireError::BadPointer);
                    }
                    at = target;
                }
                // 0x40 and 0x80: extended label types (RFC 6891 deprecates them).
                _ => return Err(WireError::BadLabel),
            }
        }
    }

    /// Appends the name to `out`, pointing at an earlier copy of its longest known suffix
    /// (`names` holds what was written before) and remembering the suffixes it writes.
    pub(crate) fn write(&self, out: &mut Vec<u8>, names: &mut Compression) {
        let mut rest = &self.wire[..];
        while rest[0] != 0 {
            if let Some(offset) = names.find(rest) {
                out.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                return;
            }
            names.remember(rest, out.len());
            let len = rest[0] as usize;
            out.extend_from_slice(&rest[..1 + len]);
            rest = &rest[1 + len..];
        }
        out.push(0);
    }

    /// Whether `self` is `suffix` or below it (`web.mynet` is below `mynet`).
    pub fn ends_with(&self, suffix: &Name) -> bool {
        let mut rest = &self.wire[..];
        loop {
            if rest.len() == suffix.wire.len() {
                return rest.eq_ignore_ascii_case(&suffix.wire);
            }
            if rest.len() < suffix.wire.len() || rest[0] == 0 {
                return false;
            }
            rest = &rest[1 + rest[0] as usize..];
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

/// Presentation form with a trailing dot; dots, backslashes and unprintable bytes inside
/// labels escaped as RFC 4343 does.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wire == [0] {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    b if b.is_ascii_graphic() => write!(f, "{}", b as char)?,
                    b => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// The labels of a [`Name`].
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.rest.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = &self.rest[1..1 + len];
        self.rest = &self.rest[1 + len..];
        Some(label)
    }
}

/// The names a message being built holds so far, for compression: each suffix written, in
/// wire form, with its offset (only offsets a pointer can reach, below 0x4000).
#[derive(Default)]
pub(crate) struct Compression {
    suffixes: Vec<(Vec<u8>, u16)>,
}

impl Compression {
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.suffixes
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(suffix))
            .map(|(_, at)| *at)
    }

    fn remember(&mut self, suffix: &[u8], offset: usize) {
        if offset < 0x4000 {
            self.suffixes.push((suffix.to_vec(), offset as u16));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_forms_are_one_name() {
        let a = Name::from_dotted("Web.MyNet").unwrap();
        let b = Name::from_dotted("web.mynet.").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.wire(), b"\x03Web\x05MyNet\x00");
        assert_eq!(a.key().unwrap(), "web.mynet");
        assert_eq!(a.to_string(), "Web.MyNet.");
        assert_eq!(Name::from_dotted(".").unwrap(), Name::root());
        assert_eq!(Name::root().key().unwrap(), "");
        assert_eq!(Name::root().to_string(), ".");
        assert!(Name::from_dotted("a..b").is_err());
        assert!(Name::from_dotted(&"x".repeat(64)).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(Name::from_dotted(&long).unwrap_err(), WireError::NameTooLong);
    }

    #[test]
    fn odd_labels_have_no_key_and_print_escaped() {
        let n = Name::from_labels([&b"a.b"[..], b"c\x01"]).unwrap();
        assert_eq!(n.key(), None);
        assert_eq!(n.to_string(), "a\\.b.c\\001.");
    }

    #[test]
    fn reads_compression_pointers() {
        // 12 bytes of padding, then "mynet" at 12, "web" + pointer to 12 at 19.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x05mynet\x00");
        msg.extend_from_slice(b"\x03web\xC0\x0C");
        let (n, end) = Name::read(&msg, 19).unwrap();
        assert_eq!(n.key().unwrap(), "web.mynet");
        assert_eq!(end, 25);
        let (n, end) = Name::read(&msg, 12).unwrap();
        assert_eq!(n.key().unwrap(), "mynet");
        assert_eq!(end, 19);
    }

    #[test]
    fn rejects_loops_forward_pointers_and_overruns() {
        // A pointer to itself.
        assert_eq!(Name::read(b"\xC0\x00", 0).unwrap_err(), WireError::BadPointer);
        // Two pointers at each other: the second points forward.
        assert_eq!(Name::read(b"\xC0\x02\xC0\x00", 0).unwrap_err(), WireError::BadPointer);
        assert_eq!(Name::read(b"\x05ab", 0).unwrap_err(), WireError::Truncated);
        assert_eq!(Name::read(b"\x01a", 0).unwrap_err(), WireError::Truncated);
        assert_eq!(Name::read(b"\xC0", 0).unwrap_err(), WireError::Truncated);
        assert_eq!(Name::read(b"\x40", 0).unwrap_err(), WireError::BadLabel);
        assert_eq!(Name::read(b"", 0).unwrap_err(), WireError::Truncated);
        // 128 labels "a" reached through pointers: longer than 255 bytes in all.
        let mut msg = Vec::new();
        msg.extend_from_slice(b"\x01a\x00");
        for i in 0..127u16 {
            let prev = if i == 0 { 0 } else { 3 + (i - 1) * 4 };
            msg.extend_from_slice(b"\x01a");
            msg.extend_from_slice(&(0xC000 | prev).to_be_bytes());
        }
        let last = msg.len() - 4;
        assert!(Name::read(&msg, last).is_err());
    }

    #[test]
    fn writes_pointers_to_known_suffixes() {
        let mut out = vec![0u8; 12];
        let mut names = Compression::default();
        Name::from_dotted("web.mynet").unwrap().write(&mut out, &mut names);
        Name::from_dotted("DB.MYNET").unwrap().write(&mut out, &mut names);
        Name::from_dotted("web.mynet").unwrap().write(&mut out, &mut names);
        assert_eq!(&out[12..], b"\x03web\x05mynet\x00\x02DB\xC0\x10\xC0\x0C");
        let (n, _) = Name::read(&out, 23).unwrap();
        assert_eq!(n.to_string(), "DB.mynet.");
    }

    #[test]
    fn suffixes() {
        let n = Name::from_dotted("a.web.mynet").unwrap();
        assert!(n.ends_with(&Name::from_dotted("MYNET").unwrap()));
        assert!(n.ends_with(&Name::from_dotted("web.mynet").unwrap()));
        assert!(n.ends_with(&n));
        assert!(n.ends_with(&Name::root()));
        assert!(!n.ends_with(&Name::from_dotted("eb.mynet").unwrap()));
        assert!(!Name::from_dotted("mynet").unwrap().ends_with(&n));
    }
}
