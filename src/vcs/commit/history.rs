//! The local commit history of a workspace (in sled): the last local commit on a base, and how
//! many commits are ahead of it.

use crate::remote::Oid;
use crate::vcs::error::VcsError;

/// The local commit history of a workspace: where it stands relative to its base.
pub struct History {
    tree: sled::Tree,
}

impl History {
    /// The history kept in `tree`.
    pub fn new(tree: sled::Tree) -> History {
        History { tree }
    }

    /// The last local commit and how many commits are ahead of `base`; `(base, 0)` when none.
    pub fn head(&self, base: Oid) -> (Oid, u64) {
        let get = |k: &str| self.tree.get(k).ok().flatten();
        match (get("base"), get("head"), get("ahead")) {
            (Some(b), Some(h), Some(a)) if b.as_ref() == base.0 => {
                let mut hb = [0u8; 20];
                hb.copy_from_slice(&h[..20]);
                let mut ab = [0u8; 8];
                ab.copy_from_slice(&a[..8]);
                (Oid(hb), u64::from_be_bytes(ab))
            }
            _ => (base, 0),
        }
    }

    /// Records `commit` as the new local head on `base`, all at once; when it cannot be made
    /// durable, the previous head is put back.
    pub fn advance(&self, base: Oid, commit: Oid) -> Result<u64, VcsError> {
        let (_, ahead) = self.head(base);
        let ahead = ahead + 1;
        let keys = ["base", "head", "ahead"];
        let before: Vec<Option<sled::IVec>> = keys
            .iter()
            .map(|k| self.tree.get(k).ok().flatten())
            .collect();
        let mut batch = sled::Batch::default();
        batch.insert("base", &base.0[..]);
        batch.insert("head", &commit.0[..]);
        batch.insert("ahead", &ahead.to_be_bytes()[..]);
        let r = self
            .tree
            .apply_batch(batch)
            .and_then(|()| self.tree.flush().map(|_| ()));
        if let Err(e) = r {
            let mut undo = sled::Batch::default();
            for (k, v) in keys.iter().zip(before) {
                match v {
                    Some(v) => undo.insert(*k, v),
                    None => undo.remove(*k),
                }
            }
            let _ = self.tree.apply_batch(undo);
            return Err(match e {
                sled::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
                    VcsError::NoSpace(format!("recording the commit: {io}"))
                }
                e => VcsError::Lower(format!("recording the commit: {e}")),
            });
        }
        Ok(ahead)
    }
}
