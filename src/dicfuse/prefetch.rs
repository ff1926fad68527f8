//! What a prefetch asks of the view: a directory listed now, a file's blob fetched now, each
//! saying whether the remote was asked or the store already had it.
//!
//! Both go the way every reader's request goes (the same locks, the same verification), so a
//! prefetch and a reader of the same entry share one fetch. A fetched blob's size is recorded
//! in the inode table, so a later `stat` of the file does not ask the remote for it.

use std::sync::Arc;

use super::{DicError, Dicfuse};
use crate::remote::EntryKind;
use crate::store::{Child, Node};

/// What a prefetch of one blob did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobPrefetch {
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it came from the remote (`false`: it was on disk already).
    pub fetched: bool,
}

impl Dicfuse {
    /// The entries of directory `ino`, listing it from the remote unless the inode table has
    /// it; `true` with them when the remote was asked.
    pub async fn prefetch_dir(&self, ino: u64) -> Result<(Arc<Vec<Child>>, bool), DicError> {
        let node = self.node(ino)?;
        let fetched = node.kind == EntryKind::Dir && !self.store.inodes.is_loaded(ino)?;
        Ok((self.children(ino).await?, fetched))
    }

    /// Makes the blob of file or symlink `ino` (whose node is `node`) readable without the
    /// remote: fetched and verified unless stored, and its size recorded.
    pub async fn prefetch_blob(&self, ino: u64, node: &Node) -> Result<BlobPrefetch, DicError> {
        if node.kind.is_dir() {
            return Err(DicError::IsDir);
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        let fetched = self.store.stored_size(oid).is_none();
        self.store.ensure_blob(oid).await?;
        let bytes = match self.store.stored_size(oid).or(node.size) {
            Some(b) => b,
            // Evicted at once by a tiny disk bound: its size costs one question.
            None => self.size_of(ino, node).await?,
        };
        if node.size.is_none() && !self.learn_sizes(node.parent).await? {
            let _epoch = self.lister.epoch.read().await;
            // A rebase in between may have given the inode another blob.
            if self.store.inodes.get(ino)?.and_then(|n| n.oid) == Some(oid) {
                self.store.inodes.set_size(ino, bytes)?;
            }
            // The cached listing holds the node without its size.
            self.lister.listings.invalidate(&node.parent);
        }
        Ok(BlobPrefetch { bytes, fetched })
    }
}
