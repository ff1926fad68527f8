//! Git object ids, object verification and raw tree parsing.
//!
//! Everything that arrives from a remote passes through [`verify`] before it is stored, and every
//! tree body through [`parse_tree`], which rejects entry names a filesystem must never see.

use std::fmt;

use sha1::{Digest, Sha1};

/// A git object id (SHA-1).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Oid(pub [u8; 20]);

impl Oid {
    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Result<Oid, ObjectError> {
        let mut out = [0u8; 20];
        if s.len() != 40 {
            return Err(ObjectError::BadOid(s.to_string()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| ObjectError::BadOid(s.to_string()))?;
        Ok(Oid(out))
    }

    /// The id as 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The id git gives an object of `kind` with this `body`.
    pub fn hash_object(kind: ObjectKind, body: &[u8]) -> Oid {
        let mut h = Sha1::new();
        h.update(kind.name().as_bytes());
        h.update(b" ");
        h.update(body.len().to_string().as_bytes());
        h.update([0u8]);
        h.update(body);
        Oid(h.finalize().into())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.to_hex())
    }
}

/// The git object types Scorpio stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// File content or symlink target.
    Blob,
    /// A directory listing.
    Tree,
    /// A commit.
    Commit,
}

impl ObjectKind {
    /// The type name used in the object header.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Tree => "tree",
            ObjectKind::Commit => "commit",
        }
    }
}

/// Errors about object ids and object bodies.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// A string that is not 40 hex digits.
    #[error("not a 40-hex object id: {0:?}")]
    BadOid(String),
    /// The body does not hash to the id it was asked for.
    #[error("{kind} {expected} arrived with the wrong content (hashes to {actual})")]
    Mismatch {
        /// Object type.
        kind: &'static str,
        /// The id asked for.
        expected: Oid,
        /// The id of what arrived.
        actual: Oid,
    },
    /// A tree body that does not parse.
    #[error("tree {oid} is malformed: {reason}")]
    BadTree {
        /// The tree id.
        oid: Oid,
        /// What is wrong.
        reason: String,
    },
}

/// Checks that `body` is the object `expected` of type `kind`.
pub fn verify(kind: ObjectKind, expected: Oid, body: &[u8]) -> Result<(), ObjectError> {
    let actual = Oid::hash_object(kind, body);
    if actual == expected {
        Ok(())
    } else {
        Err(ObjectError::Mismatch {
            kind: kind.name(),
            expected,
            actual,
        })
    }
}

/// What a tree entry is, from its git mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    /// 100644.
    File,
    /// 100755.
    Executable,
    /// 120000.
    Symlink,
    /// 040000.
    Dir,
    /// 160000: a submodule, shown as an empty directory.
    Submodule,
}

impl EntryKind {
    /// Maps a git tree mode; unknown modes are refused.
    pub fn from_mode(mode: u32) -> Option<EntryKind> {
        match mode {
            0o100644 | 0o100664 | 0o100600 => Some(EntryKind::File),
            0o100755 => Some(EntryKind::Executable),
            0o120000 => Some(EntryKind::Symlink),
            0o040000 => Some(EntryKind::Dir),
            0o160000 => Some(EntryKind::Submodule),
            _ => None,
        }
    }

    /// Whether the entry is shown as a directory.
    pub fn is_dir(self) -> bool {
        matches!(self, EntryKind::Dir | EntryKind::Submodule)
    }
}

/// One entry of a git tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// The entry name (never empty, `.`, `..`, and never holding `/` or NUL).
    pub name: Vec<u8>,
    /// What the entry is.
    pub kind: EntryKind,
    /// The object it names.
    pub oid: Oid,
}

/// Checks a single path component as a tree entry name.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty entry name".into());
    }
    if name == b"." || name == b".." {
        return Err(format!("entry named {:?}", String::from_utf8_lossy(name)));
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(format!(
            "entry name {:?} holds '/' or NUL",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// Parses a raw tree body (`<octal mode> SP <name> NUL <20-byte id>`*).
///
/// Entry order is not checked: Mega may serve entries out of git's order, and the bytes were
/// already verified against the id. Duplicate names are refused.
pub fn parse_tree(oid: Oid, body: &[u8]) -> Result<Vec<TreeEntry>, ObjectError> {
    let bad = |reason: String| ObjectError::BadTree { oid, reason };
    let mut entries = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("entry without a mode".into()))?;
        let mode_str =
            std::str::from_utf8(&rest[..sp]).map_err(|_| bad("mode is not ASCII".into()))?;
        let mode = u32::from_str_radix(mode_str, 8)
            .map_err(|_| bad(format!("mode {mode_str:?} is not octal")))?;
        let kind = EntryKind::from_mode(mode)
            .ok_or_else(|| bad(format!("unsupported mode {mode_str}")))?;
        rest = &rest[sp + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("entry name without NUL".into()))?;
        let name = &rest[..nul];
        check_name(name).map_err(bad)?;
        rest = &rest[nul + 1..];
        if rest.len() < 20 {
            return Err(bad("truncated object id".into()));
        }
        let mut id = [0u8; 20];
        id.copy_from_slice(&rest[..20]);
        rest = &rest[20..];
        entries.push(TreeEntry {
            name: name.to_vec(),
            kind,
            oid: Oid(id),
        });
    }
    let mut names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("duplicate entry name".into()));
    }
    Ok(entries)
}

/// The git blob id of a file's content, streamed.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<Oid> {
    hash_blob_file(&std::fs::File::open(path)?)
}

/// The git blob id of an open file's content, read from its start with `pread` (the file
/// offset does not move): how the store checks a cached object before serving it. A file whose
/// length changes while it is read is an error.
pub fn hash_blob_file(f: &std::fs::File) -> std::io::Result<Oid> {
    let len = f.metadata()?.len();
    hash_blob_at(f, len)?.ok_or_else(|| {
        std::io::Error::other(format!("{len} bytes when opened, another size when read"))
    })
}

/// The git blob id of an open file's content of `len` bytes, read from its start with `pread`;
/// `None` when the file does not hold exactly `len` bytes (it changed while read).
pub fn hash_blob_at(f: &std::fs::File, len: u64) -> std::io::Result<Option<Oid>> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = 0u64;
    loop {
        let n = match f.read_at(&mut buf, seen) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        seen += n as u64;
        h.update(&buf[..n]);
    }
    Ok((seen == len).then(|| Oid(h.finalize().into())))
}

/// The kind and blob id git would record for the file or symlink at `path`; `None` for any
/// other type.
pub fn git_identity(path: &std::path::Path) -> std::io::Result<Option<(EntryKind, Oid)>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        let oid = Oid::hash_object(ObjectKind::Blob, target.as_os_str().as_bytes());
        Ok(Some((EntryKind::Symlink, oid)))
    } else if ft.is_file() {
        let kind = if meta.permissions().mode() & 0o100 != 0 {
            EntryKind::Executable
        } else {
            EntryKind::File
        };
        Ok(Some((kind, hash_file(path)?)))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: &str, name: &[u8], id: u8) -> Vec<u8> {
        let mut v = format!("{mode} ").into_bytes();
        v.extend_from_slice(name);
        v.push(0);
        v.extend_from_slice(&[id; 20]);
        v
    }

    #[test]
    fn hash_matches_git() {
        // `git hash-object -t blob /dev/null`
        assert_eq!(
            Oid::hash_object(ObjectKind::Blob, b"").to_hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            Oid::hash_object(ObjectKind::Blob, b"hello\n").to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty tree.
        assert_eq!(
            Oid::hash_object(ObjectKind::Tree, b"").to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn hash_of_an_open_file_matches_git_and_ignores_its_offset() {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello\n").unwrap();
        f.seek(SeekFrom::Start(3)).unwrap();
        assert_eq!(
            hash_blob_file(&f).unwrap().to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn verify_detects_mismatch() {
        let id = Oid::hash_object(ObjectKind::Blob, b"abc");
        assert!(verify(ObjectKind::Blob, id, b"abc").is_ok());
        assert!(matches!(
            verify(ObjectKind::Blob, id, b"abd"),
            Err(ObjectError::Mismatch { .. })
        ));
        assert!(verify(ObjectKind::Tree, id, b"abc").is_err());
    }

    #[test]
    fn oid_hex_round_trip_and_rejects() {
        let s = "ce013625030ba8dba906f756967f9e9ca394464a";
        assert_eq!(Oid::from_hex(s).unwrap().to_hex(), s);
        assert!(Oid::from_hex("xyz").is_err());
        assert!(Oid::from_hex(&"g".repeat(40)).is_err());
    }

    #[test]
    fn parses_all_modes() {
        let mut body = entry("100644", b"a.txt", 1);
        body.extend(entry("100755", b"run", 2));
        body.extend(entry("120000", b"link", 3));
        body.extend(entry("40000", b"dir", 4));
        body.extend(entry("160000", b"sub", 5));
        let t = parse_tree(Oid([0; 20]), &body).unwrap();
        let kinds: Vec<_> = t.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EntryKind::File,
                EntryKind::Executable,
                EntryKind::Symlink,
                EntryKind::Dir,
                EntryKind::Submodule
            ]
        );
        assert_eq!(t[2].oid, Oid([3; 20]));
    }

    #[test]
    fn rejects_dangerous_names() {
        for name in [&b"."[..], b"..", b"a/b", b"a\0b", b""] {
            let body = entry("100644", name, 1);
            assert!(
                parse_tree(Oid([0; 20]), &body).is_err(),
                "{name:?} accepted"
            );
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        let good = entry("100644", b"a", 1);
        assert!(parse_tree(Oid([0; 20]), &good[..good.len() - 1]).is_err());
        assert!(parse_tree(Oid([0; 20]), &entry("100999", b"a", 1)).is_err());
        assert!(parse_tree(Oid([0; 20]), b"100644 a").is_err());
        let mut dup = entry("100644", b"a", 1);
        dup.extend(entry("100644", b"a", 2));
        assert!(parse_tree(Oid([0; 20]), &dup).is_err());
    }

    #[test]
    fn accepts_unsorted_entries() {
        let mut body = entry("100644", b"z", 1);
        body.extend(entry("100644", b"a", 2));
        assert_eq!(parse_tree(Oid([0; 20]), &body).unwrap().len(), 2);
    }
}
