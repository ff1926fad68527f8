//! `status`: what the upper layer changes relative to the mounted commit.
//!
//! Promises: a file copied up but byte-identical to the commit (same mode) is not a change;
//! whiteouts are deletions; an opaque directory replaces the commit's directory (its old entries
//! are deleted); type changes (file, symlink, directory) and exec-bit changes are reported;
//! a rename shows as a deletion and an addition.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use super::ManagerError;
use crate::dicfuse::Dicfuse;
use crate::overlay::whiteout;
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// Repository path.
    pub path: String,
    /// The commit's entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<GitEntry>,
    /// The new entry (files and symlinks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<GitEntry>,
}

/// The entry an upper file or symlink would be in git; `None` for what git cannot hold.
pub fn upper_entry(path: &Path) -> std::io::Result<Option<GitEntry>> {
    Ok(crate::remote::object::git_identity(path)?.map(|(kind, oid)| GitEntry { kind, oid }))
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The changes the upper layer `upper` makes to the commit's directory `lower` (a Dicfuse inode;
/// `None` when the commit has no such directory), reported under repository path `prefix`.
pub async fn status(
    dic: &Dicfuse,
    upper: &Path,
    lower: Option<u64>,
    prefix: &str,
) -> Result<Vec<Change>, ManagerError> {
    let mut out = Vec::new();
    // Depth-first with an explicit stack: (upper dir, lower dir, repository path).
    let mut stack = vec![(upper.to_path_buf(), lower, prefix.to_string())];
    while let Some((dir, lower, rel)) = stack.pop() {
        let dir_fd = std::fs::File::open(&dir)?;
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let os = OsStr::from_bytes(&name);
            let path = dir.join(os);
            let repo_path = join(&rel, &name);
            let base = match lower {
                Some(l) => dic.lower_lookup(l, &name).await?,
                None => None,
            };
            let old = base.as_ref().map(|(_, n)| GitEntry {
                kind: n.kind,
                oid: n.oid.unwrap_or(Oid([0; 20])),
            });
            let meta = std::fs::symlink_metadata(&path)?;
            let st = rustix::fs::statat(&dir_fd, os, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .map_err(std::io::Error::from)?;
            if whiteout::is_whiteout(&dir_fd, os, &st) {
                if old.is_some() {
                    out.push(Change {
                        kind: ChangeKind::Deleted,
                        path: repo_path,
                        old,
                        new: None,
                    });
                }
                continue;
            }
            if meta.is_dir() {
                let opaque = whiteout::is_opaque(&dir_fd, os);
                let merged = match &base {
                    Some((ino, n)) if n.kind == EntryKind::Dir && !opaque => Some(*ino),
                    _ => None,
                };
                if merged.is_none() && old.is_some() {
                    // The commit's entry (a file, or a directory now replaced) is gone.
                    out.push(Change {
                        kind: ChangeKind::Deleted,
                        path: repo_path.clone(),
                        old,
                        new: None,
                    });
                }
                stack.push((path, merged, repo_path));
                continue;
            }
            let Some(new) = upper_entry(&path)? else {
                tracing::warn!(path = repo_path, "git cannot hold this file type; left out");
                continue;
            };
            match old {
                Some(o) if o == new => {}
                Some(o) if o.kind.is_dir() => {
                    out.push(Change {
                        kind: ChangeKind::Deleted,
                        path: repo_path.clone(),
                        old: Some(o),
                        new: None,
                    });
                    out.push(Change {
                        kind: ChangeKind::Added,
                        path: repo_path,
                        old: None,
                        new: Some(new),
                    });
                }
                Some(o) => out.push(Change {
                    kind: ChangeKind::Modified,
                    path: repo_path,
                    old: Some(o),
                    new: Some(new),
                }),
                None => out.push(Change {
                    kind: ChangeKind::Added,
                    path: repo_path,
                    old: None,
                    new: Some(new),
                }),
            }
        }
    }
    out.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then((a.kind as u8).cmp(&(b.kind as u8)))
    });
    Ok(out)
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
