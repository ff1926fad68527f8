//! Dicfuse: the read-only view of one commit of the remote.
//!
//! A directory is listed from the remote the first time it is looked into and then lives in the
//! inode table; a file's content is fetched on first read. Entries of a commit never change, so
//! the kernel is told to cache them for a long time (entries, attributes, pages and listings).

mod moves;
mod ops;
mod prefetch;

pub use moves::MovePlan;
pub use prefetch::BlobPrefetch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfuse3::raw::reply::FileAttr;
use rfuse3::{FileType, Timestamp};

use crate::remote::{CommitInfo, EntryKind};
use crate::store::{Child, Node, Store, StoreError};

/// How long the kernel may trust lower-layer entries and attributes: they never change.
pub const LOWER_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The read-only filesystem of one commit.
pub struct Dicfuse {
    store: Arc<Store>,
    /// The commit shown; moves only by [`Dicfuse::rebase`] after a push.
    commit: std::sync::RwLock<CommitInfo>,
    /// Held shared while a listing or a size is written to the inode table, exclusively while a
    /// rebase rewrites it, so that nothing read from the old commit lands after the rebase.
    epoch: tokio::sync::RwLock<()>,
    /// Every entry's times: those of the commit first shown.
    time: i64,
    uid: u32,
    gid: u32,
    dir_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    listings: moka::sync::Cache<u64, Arc<Vec<Child>>>,
}

impl Dicfuse {
    /// A view of `commit` (already bound in the store's inode table) owned by `uid:gid`.
    pub fn new(store: Arc<Store>, commit: CommitInfo, uid: u32, gid: u32) -> Dicfuse {
        Dicfuse {
            store,
            time: commit.time,
            commit: std::sync::RwLock::new(commit),
            epoch: tokio::sync::RwLock::new(()),
            uid,
            gid,
            dir_locks: Mutex::new(HashMap::new()),
            listings: moka::sync::Cache::new(16_384),
        }
    }

    /// The store behind the view.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The user and group every entry shows as owner.
    pub fn owner(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// The commit shown.
    pub fn commit(&self) -> CommitInfo {
        self.commit
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Moves the view to `commit` in place (after a push or a pull): `updates` are the directories
    /// that differ from the shown commit, with their new entries, parents first. Entries that
    /// stay keep their inodes; returns those whose identity changed, for the kernel to forget.
    /// Entry times stay those of the commit first shown, so nothing the kernel cached about the
    /// untouched rest goes stale.
    pub async fn rebase(
        &self,
        commit: CommitInfo,
        updates: &[(String, Vec<crate::remote::ListedEntry>)],
    ) -> Result<Vec<crate::store::Touched>, DicError> {
        let _exclusive = self.epoch.write().await;
        let old = self.commit();
        let commit = CommitInfo {
            time: old.time,
            ..commit
        };
        let touched = self.store.inodes.rebase(&commit, updates)?;
        *self.commit.write().unwrap_or_else(|p| p.into_inner()) = commit;
        self.listings.invalidate_all();
        Ok(touched)
    }

    /// The node of `ino`, or ENOENT.
    fn node(&self, ino: u64) -> Result<Node, DicError> {
        self.store.inodes.get(ino)?.ok_or(DicError::NoEntry)
    }

    /// Lists directory `ino` from the remote unless the inode table already has it.
    async fn ensure_loaded(&self, ino: u64, node: &Node) -> Result<(), DicError> {
        if node.kind == EntryKind::Submodule || self.store.inodes.is_loaded(ino)? {
            return Ok(());
        }
        let lock = {
            let mut locks = self.dir_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(ino).or_default().clone()
        };
        let _guard = lock.lock().await;
        let _epoch = self.epoch.read().await;
        if self.store.inodes.is_loaded(ino)? {
            return Ok(());
        }
        let path = self.store.inodes.path(ino)?;
        let listing = self
            .store
            .remote()
            .list_tree(&self.commit(), &path, node.oid)
            .await
            .map_err(StoreError::from)?;
        tracing::debug!(
            path,
            entries = listing.entries.len(),
            exact_modes = listing.exact_modes,
            "directory listed"
        );
        self.store.inodes.insert_children(ino, &listing.entries)?;
        self.dir_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ino);
        Ok(())
    }

    /// The children of a directory, listing it first if needed.
    async fn children(&self, ino: u64) -> Result<Arc<Vec<Child>>, DicError> {
        if let Some(c) = self.listings.get(&ino) {
            return Ok(c);
        }
        let node = self.node(ino)?;
        if !node.kind.is_dir() {
            return Err(DicError::NotDir);
        }
        self.ensure_loaded(ino, &node).await?;
        let _epoch = self.epoch.read().await;
        let children = Arc::new(self.store.inodes.children(ino)?);
        self.listings.insert(ino, children.clone());
        Ok(children)
    }

    /// The size of a file or symlink node, learning it from the remote once.
    async fn size_of(&self, ino: u64, node: &Node) -> Result<u64, DicError> {
        if node.kind.is_dir() {
            return Ok(4096);
        }
        if let Some(s) = node.size {
            return Ok(s);
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        let own = self.store.blob_size(oid);
        // A stat of one file of a directory mostly comes with stats of the others.
        self.store.sizes_ahead(node.parent);
        let size = own.await?;
        let _epoch = self.epoch.read().await;
        // A rebase in between may have given the inode another blob.
        if self.store.inodes.get(ino)?.and_then(|n| n.oid) == Some(oid) {
            self.store.inodes.set_size(ino, size)?;
        }
        // The cached listing holds the node without its size.
        self.listings.invalidate(&node.parent);
        Ok(size)
    }

    /// Attributes of a node whose size is known (or `size` for unknown ones).
    fn attr_with(&self, ino: u64, node: &Node, size: u64) -> FileAttr {
        let (kind, perm, nlink) = match node.kind {
            EntryKind::Dir | EntryKind::Submodule => (FileType::Directory, 0o755, 2),
            EntryKind::File => (FileType::RegularFile, 0o644, 1),
            EntryKind::Executable => (FileType::RegularFile, 0o755, 1),
            EntryKind::Symlink => (FileType::Symlink, 0o777, 1),
        };
        let t = Timestamp::new(self.time.max(0), 0);
        FileAttr {
            ino,
            size,
            // In 512-byte units, allocated in 4 KiB blocks as on a local disk (so `du` agrees).
            blocks: size.div_ceil(4096) * 8,
            atime: t,
            mtime: t,
            ctime: t,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
        }
    }

    /// Full attributes of `ino`, fetching the size if it is not known yet.
    async fn attr(&self, ino: u64, node: &Node) -> Result<FileAttr, DicError> {
        let size = self.size_of(ino, node).await?;
        Ok(self.attr_with(ino, node, size))
    }
}

/// Why a Dicfuse operation failed; mapped to an errno at the FUSE edge.
#[derive(Debug, thiserror::Error)]
pub enum DicError {
    /// No such entry.
    #[error("no such entry")]
    NoEntry,
    /// Not a directory.
    #[error("not a directory")]
    NotDir,
    /// A directory where a file was needed.
    #[error("is a directory")]
    IsDir,
    /// Not a symlink.
    #[error("not a symlink")]
    NotLink,
    /// The lower layer is read-only.
    #[error("read-only")]
    ReadOnly,
    /// The store or the remote failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DicError {
    /// The errno the kernel gets. Failures to fetch are EIO (ENOSPC on a full disk), never ENOENT.
    pub fn errno(&self) -> i32 {
        match self {
            DicError::NoEntry => libc::ENOENT,
            DicError::NotDir => libc::ENOTDIR,
            DicError::IsDir => libc::EISDIR,
            DicError::NotLink => libc::EINVAL,
            DicError::ReadOnly => libc::EROFS,
            DicError::Store(e) => {
                tracing::error!(error = %e, "lower layer failed");
                e.errno()
            }
        }
    }
}

impl From<DicError> for rfuse3::Errno {
    fn from(e: DicError) -> Self {
        e.errno().into()
    }
}

/// The lower-layer interface the overlay uses: entries by inode, never by path of a caller.
impl Dicfuse {
    /// The child `name` of directory `parent`, if the commit has one.
    pub async fn lower_lookup(
        &self,
        parent: u64,
        name: &[u8],
    ) -> Result<Option<(u64, Node)>, DicError> {
        let children = self.children(parent).await?;
        Ok(children
            .binary_search_by(|c| c.name.as_slice().cmp(name))
            .ok()
            .map(|i| (children[i].ino, children[i].node.clone())))
    }

    /// The entries of directory `ino`, sorted by name.
    pub async fn lower_children(&self, ino: u64) -> Result<Arc<Vec<Child>>, DicError> {
        self.children(ino).await
    }

    /// The node of `ino`.
    pub fn lower_node(&self, ino: u64) -> Result<Node, DicError> {
        self.node(ino)
    }

    /// Attributes of `ino`, with its exact size.
    pub async fn lower_attr(&self, ino: u64) -> Result<FileAttr, DicError> {
        let node = self.node(ino)?;
        self.attr(ino, &node).await
    }

    /// A readable file with the content of `ino` (fetched and verified first if needed).
    pub async fn lower_open(&self, ino: u64) -> Result<std::fs::File, DicError> {
        let node = self.node(ino)?;
        if node.kind.is_dir() {
            return Err(DicError::IsDir);
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        self.open_blob_of(&node, oid).await
    }

    /// Opens the blob of file `node`; a blob not stored yet has the others of its directory
    /// fetched ahead (a read of one file of a directory mostly comes with reads of the others).
    async fn open_blob_of(
        &self,
        node: &Node,
        oid: crate::remote::Oid,
    ) -> Result<std::fs::File, DicError> {
        if !self.store.has_blob(oid) {
            self.store.blobs_ahead(node.parent);
        }
        Ok(self.store.open_blob(oid).await?)
    }

    /// The target of symlink `ino`.
    pub async fn lower_readlink(&self, ino: u64) -> Result<bytes::Bytes, DicError> {
        let node = self.node(ino)?;
        if node.kind != EntryKind::Symlink {
            return Err(DicError::NotLink);
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        Ok(self.store.blob_bytes(oid).await?)
    }

    /// What the `/`-separated repository path `path` (`""` is the root) names.
    pub async fn resolve_path(&self, path: &str) -> Result<PathLookup, DicError> {
        let mut ino = crate::store::ROOT_INO;
        let mut walked: Vec<&str> = Vec::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            // A file or a symlink on the way: the repository has nothing beneath it (a symlink
            // is never followed, as git would not).
            if !self.node(ino)?.kind.is_dir() {
                return Ok(PathLookup::NotADirectory(walked.join("/")));
            }
            match self.lower_lookup(ino, part.as_bytes()).await? {
                Some((child, _)) => ino = child,
                None => return Ok(PathLookup::Missing),
            }
            walked.push(part);
        }
        Ok(PathLookup::Found(ino))
    }
}

/// What a repository path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathLookup {
    /// The entry, by inode.
    Found(u64),
    /// Nothing: a component does not exist.
    Missing,
    /// The path goes through a file or a symlink (named here): nothing can be beneath it.
    NotADirectory(String),
}

/// A view of the HEAD of the git repository at `repo`, with its store at `store` (the daemon's
/// user owns every file): what unit tests above Dicfuse mount or assemble over, with no FUSE.
#[cfg(test)]
pub(crate) async fn test_view(repo: &std::path::Path, store: &std::path::Path) -> Arc<Dicfuse> {
    let remote: Arc<dyn crate::remote::Remote> =
        Arc::new(crate::remote::local::LocalRemote::open(repo).expect("remote"));
    let store = Store::open(store, remote.clone(), 1 << 24, 1 << 30).expect("store");
    let commit = remote.resolve(None).await.expect("resolve");
    store.inodes.bind("test", &commit).expect("bind");
    Arc::new(Dicfuse::new(store, commit, 0, 0))
}
