//! [`Metered`]: any remote, with each request counted and timed by kind (`commit`, `tree`,
//! `blob`, `size`, `cl`), its failures counted, and the bytes it brought added up.
//!
//! [`from_config`](super::from_config) wraps every remote it builds in this, so the store,
//! the version control and Antares are all measured at the one door they share. Retries happen
//! inside a request (the `mega` remote's backoff loop) and are counted there, by the same kinds
//! ([`kind_of_path`]).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ClChange, CommitInfo, Listing, Oid, Remote, RemoteError};

/// `remote`, measured.
pub struct Metered(pub Arc<dyn Remote>);

/// Counts one request of `kind` that started at `started`; `bytes` is what its answer brought.
fn record<T>(
    kind: &'static str,
    started: Instant,
    r: &Result<T, RemoteError>,
    bytes: impl Fn(&T) -> u64,
) {
    let got = r.as_ref().map_or(0, bytes);
    crate::metrics::global().remote_request(kind, started.elapsed(), got, r.is_err());
}

/// The size of a listing as the git tree object it stands for (`<mode> <name>\0<20-byte id>`
/// per entry): the same count whichever remote, or API, brought it.
fn tree_bytes(l: &Listing) -> u64 {
    l.entries
        .iter()
        .map(|e| {
            let mode = if e.entry.kind.is_dir() { 5 } else { 6 };
            (mode + 1 + e.entry.name.len() + 1 + 20) as u64
        })
        .sum()
}

/// The kind of a Mega API request, by its method and path (for retries, counted inside one).
pub fn kind_of_path(head: bool, path: &str) -> &'static str {
    if path.starts_with("/api/v1/file/blob") {
        if head {
            "size"
        } else {
            "blob"
        }
    } else if path.starts_with("/api/v1/file/tree") || path.starts_with("/api/v1/tree") {
        "tree"
    } else if path.starts_with("/api/v1/latest-commit") {
        "commit"
    } else {
        "cl"
    }
}

#[async_trait]
impl Remote for Metered {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    async fn resolve(&self, refname: Option<&str>) -> Result<CommitInfo, RemoteError> {
        let started = Instant::now();
        let r = self.0.resolve(refname).await;
        record("commit", started, &r, |_| 0);
        r
    }

    async fn list_tree(
        &self,
        commit: &CommitInfo,
        path: &str,
        oid: Option<Oid>,
    ) -> Result<Listing, RemoteError> {
        let started = Instant::now();
        let r = self.0.list_tree(commit, path, oid).await;
        record("tree", started, &r, tree_bytes);
        r
    }

    async fn blob(&self, oid: Oid) -> Result<Bytes, RemoteError> {
        let started = Instant::now();
        let r = self.0.blob(oid).await;
        record("blob", started, &r, |b| b.len() as u64);
        r
    }

    async fn blob_size(&self, oid: Oid) -> Result<u64, RemoteError> {
        let started = Instant::now();
        let r = self.0.blob_size(oid).await;
        record("size", started, &r, |_| 0);
        r
    }

    fn sizes_in_bulk(&self) -> bool {
        self.0.sizes_in_bulk()
    }

    async fn blob_sizes(&self, oids: &[Oid]) -> Result<Vec<u64>, RemoteError> {
        let started = Instant::now();
        let r = self.0.blob_sizes(oids).await;
        record("size", started, &r, |_| 0);
        r
    }

    fn ahead_concurrency(&self) -> usize {
        self.0.ahead_concurrency()
    }

    fn pack_unit(&self, path: &str) -> Option<super::PackUnit> {
        self.0.pack_unit(path)
    }

    async fn pack(
        &self,
        unit: &super::PackUnit,
        max_bytes: u64,
        sink: tokio::sync::mpsc::Sender<super::PackObject>,
    ) -> Result<super::PackSummary, RemoteError> {
        let started = Instant::now();
        let r = self.0.pack(unit, max_bytes, sink).await;
        record("pack", started, &r, |s| s.bytes);
        r
    }

    async fn cl_changes(
        &self,
        cl: &str,
        base: &CommitInfo,
        at: &str,
    ) -> Result<Vec<ClChange>, RemoteError> {
        let started = Instant::now();
        let r = self.0.cl_changes(cl, base, at).await;
        record("cl", started, &r, |_| 0);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{EntryKind, ListedEntry, TreeEntry};

    #[test]
    fn a_listing_counts_as_its_git_tree_object() {
        let entry = |name: &[u8], kind| ListedEntry {
            entry: TreeEntry {
                name: name.to_vec(),
                kind,
                oid: Oid([1; 20]),
            },
            size: None,
        };
        let l = Listing {
            entries: vec![
                entry(b"a.txt", EntryKind::File),
                entry(b"d", EntryKind::Dir),
            ],
            exact_modes: true,
        };
        // git writes `100644 a.txt\0<id>40000 d\0<id>`.
        assert_eq!(tree_bytes(&l), (6 + 1 + 5 + 1 + 20) + (5 + 1 + 1 + 1 + 20));
    }

    #[test]
    fn mega_paths_name_their_kind() {
        assert_eq!(kind_of_path(false, "/api/v1/file/blob/ab"), "blob");
        assert_eq!(kind_of_path(true, "/api/v1/file/blob/ab"), "size");
        assert_eq!(kind_of_path(false, "/api/v1/file/tree"), "tree");
        assert_eq!(kind_of_path(false, "/api/v1/tree/content-hash"), "tree");
        assert_eq!(kind_of_path(false, "/api/v1/latest-commit"), "commit");
        assert_eq!(kind_of_path(false, "/api/v1/cl/files-list/x"), "cl");
    }
}
