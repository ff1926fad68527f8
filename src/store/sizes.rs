//! Sizes asked for a whole directory at once, from a remote that answers them in bulk (see
//! [`Remote::sizes_in_bulk`](crate::remote::Remote::sizes_in_bulk)): its listings leave sizes
//! out, and the first time a size of a directory is needed, every size the directory lacks is
//! asked for in one call and recorded in one write of its listing. A `stat` of every file then
//! costs one question and one write per directory, not one of each per file.

use std::sync::Arc;

use super::{join_or_start, Store, StoreError};

impl Store {
    /// Whether sizes are learnt a directory at a time ([`Store::learn_dir_sizes`]).
    pub fn sizes_in_bulk(&self) -> bool {
        self.remote.sizes_in_bulk()
    }

    /// Learns every size directory `dir` lacks, in one call to the remote, and records them in
    /// one write. Callers at the same time share one call. The caller holds the view's epoch,
    /// and each size is recorded only while its entry still has the blob it was asked for.
    pub async fn learn_dir_sizes(self: &Arc<Self>, dir: u64) -> Result<(), StoreError> {
        let fut = {
            let mut map = super::lock(&self.dir_sizes);
            let store = self.clone();
            let run = async move {
                let missing: Vec<_> = store
                    .inodes
                    .children(dir)?
                    .into_iter()
                    .filter(|c| c.node.size.is_none() && !c.node.kind.is_dir())
                    .filter_map(|c| c.node.oid.map(|oid| (c.ino, oid)))
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                let oids: Vec<_> = missing.iter().map(|&(_, oid)| oid).collect();
                let sizes = store.remote.blob_sizes(&oids).await?;
                let learnt: Vec<_> = missing
                    .iter()
                    .zip(sizes)
                    .map(|(&(ino, oid), size)| (ino, Some(oid), size))
                    .collect();
                tracing::debug!(dir, sizes = learnt.len(), "directory sizes learnt");
                store.inodes.set_sizes(dir, &learnt)
            };
            join_or_start(self, &mut map, dir, |s| &s.dir_sizes, run)
        };
        fut.await
    }
}
