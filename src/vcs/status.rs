//! `status`: what the upper layer changes relative to the mounted commit.
//!
//! Promises: a file copied up but byte-identical to the commit (same mode) is not a change;
//! whiteouts are deletions; an opaque directory replaces the commit's directory (its old entries
//! are deleted); type changes (file, symlink, directory) and exec-bit changes are reported;
//! a rename shows as a deletion and an addition.

use std::path::Path;
use std::sync::Arc;

pub use super::change::{Change, ChangeKind, GitEntry};
use super::error::VcsError;
use crate::dicfuse::Dicfuse;
pub use crate::remote::object::hash_file;

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
    use crate::remote::{EntryKind, Oid};
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
