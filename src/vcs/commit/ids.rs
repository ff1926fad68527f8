//! Conversions between Scorpio's object ids and entry kinds and git2's.

use crate::remote::{EntryKind, Oid};
use crate::vcs::error::VcsError;

/// The git2 id of our id.
pub(super) fn git_oid(o: Oid) -> Result<git2::Oid, VcsError> {
    git2::Oid::from_bytes(&o.0).map_err(|e| VcsError::Lower(e.to_string()))
}

/// Our id of a git2 id.
pub fn our_oid(o: git2::Oid) -> Oid {
    let mut b = [0u8; 20];
    b.copy_from_slice(o.as_bytes());
    Oid(b)
}

/// The git tree mode of an entry of `kind`.
pub fn mode(kind: EntryKind) -> i32 {
    match kind {
        EntryKind::File => 0o100644,
        EntryKind::Executable => 0o100755,
        EntryKind::Symlink => 0o120000,
        EntryKind::Dir => 0o040000,
        EntryKind::Submodule => 0o160000,
    }
}
