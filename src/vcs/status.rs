//! `status`: what the upper layer changes relative to the mounted commit.
//!
//! Promises: a file copied up but byte-identical to the commit (same mode) is not a change;
//! whiteouts are deletions; an opaque directory replaces the commit's directory (its old entries
//! are deleted); type changes (file, symlink, directory) and exec-bit changes are reported;
//! a rename shows as a deletion and an addition.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::VcsError;
use crate::dicfuse::Dicfuse;
pub use crate::remote::object::hash_file;
use crate::remote::{EntryKind, Oid};

/// An entry as git records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GitEntry {
    /// File, executable, symlink (or directory/submodule for deletions).
    #[serde(serialize_with = "ser_kind")]
    pub kind: EntryKind,
    /// The object.
    #[serde(serialize_with = "ser_oid")]
    pub oid: Oid,
}

fn ser_oid<S: serde::Serializer>(o: &Oid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&o.to_hex())
}

fn ser_kind<S: serde::Serializer>(k: &EntryKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match k {
        EntryKind::File => "file",
        EntryKind::Executable => "executable",
        EntryKind::Symlink => "symlink",
        EntryKind::Dir => "directory",
        EntryKind::Submodule => "submodule",
    })
}

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New.
    Added,
    /// Content, type or mode changed.
    Modified,
    /// Gone (for a directory: everything under it).
    Deleted,
}

/// One change, at a repository path.
///
/// JSON (see [`super::names`]): `kind`, `path` (UTF-8, lossy), `path_b64` (the exact bytes,
/// only when `path` is not valid UTF-8), `old` and `new` when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// Repository path, as bytes (git allows any byte in a name but NUL and `/`).
    pub path: Vec<u8>,
    /// The commit's entry.
    pub old: Option<GitEntry>,
    /// The new entry (files and symlinks only).
    pub new: Option<GitEntry>,
}

impl Change {
    /// The deletion of the commit's entry `old` at `path`.
    pub fn deleted(path: Vec<u8>, old: Option<GitEntry>) -> Change {
        Change {
            kind: ChangeKind::Deleted,
            path,
            old,
            new: None,
        }
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("path", &String::from_utf8_lossy(&self.path))?;
        if std::str::from_utf8(&self.path).is_err() {
            m.serialize_entry("path_b64", &super::names::b64_encode(&self.path))?;
        }
        if let Some(o) = &self.old {
            m.serialize_entry("old", o)?;
        }
        if let Some(n) = &self.new {
            m.serialize_entry("new", n)?;
        }
        m.end()
    }
}

/// The entry an upper file or symlink would be in git; `None` for what git cannot hold.
pub fn upper_entry(path: &Path) -> std::io::Result<Option<GitEntry>> {
    Ok(crate::remote::object::git_identity(path)?.map(|(kind, oid)| GitEntry { kind, oid }))
}

/// The changes the upper layer `upper` makes to the commit's directory `lower` (a Dicfuse inode;
/// `None` when the commit has no such directory), reported under repository path `prefix`,
/// sorted by path. Entries that vanish while scanned are not there (see [`super::scan`]).
pub async fn status(
    dic: &Arc<Dicfuse>,
    upper: &Path,
    lower: Option<u64>,
    prefix: &str,
) -> Result<Vec<Change>, VcsError> {
    let (dic, upper, prefix) = (dic.clone(), upper.to_path_buf(), prefix.to_string());
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        super::scan::walk(
            &dic,
            &rt,
            &upper,
            lower,
            prefix.as_bytes(),
            &mut super::scan::ListOnly,
        )
    })
    .await
    .map_err(|e| VcsError::Lower(format!("the scan of the upper layer failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn hash_file_matches_git() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        assert_eq!(
            hash_file(&p).unwrap().to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            upper_entry(&p).unwrap().unwrap().kind,
            EntryKind::Executable
        );
        std::os::unix::fs::symlink("target", dir.path().join("l")).unwrap();
        let l = upper_entry(&dir.path().join("l")).unwrap().unwrap();
        assert_eq!(l.kind, EntryKind::Symlink);
        assert_eq!(
            l.oid,
            Oid::hash_object(crate::remote::ObjectKind::Blob, b"target")
        );
    }
}
