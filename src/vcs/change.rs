//! A change the upper layer makes to the mounted commit, as git would record it: the entry
//! types the scan produces and status, diff and commit consume, and their JSON form.

use serde::Serialize;

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
