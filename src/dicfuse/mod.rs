//! Dicfuse: the read-only view of one commit of the remote.
//!
//! A directory is listed from the remote the first time it is looked into and then lives in the
//! inode table; a file's content is fetched on first read. Entries of a commit never change, so
//! the kernel is told to cache them for a long time (entries, attributes, pages and listings).

mod ahead;
mod moves;
mod ops;
mod prefetch;

pub use moves::MovePlan;
pub use prefetch::BlobPrefetch;

use std::sync::Arc;
use std::time::Duration;

use rfuse3::raw::reply::FileAttr;
use rfuse3::{FileType, Timestamp};

use crate::remote::{CommitInfo, EntryKind};
use crate::store::{Child, Node, Store, StoreError};

/// How long the kernel may trust lower-layer entries and attributes: they never change.
pub const LOWER_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The bound of the listing cache when the caller sets none.
const DEFAULT_LISTING_BYTES: u64 = 16 << 20;

/// A cache of decoded listings weighed by what they hold in memory, so that a walk of a large
/// tree keeps at most `bytes` of them (the inode table has them all on disk). Least recently
/// used goes first: a listing written ahead of a walker is the next one read, and moka's
/// default admission (TinyLFU) turned such new entries away once the cache was full.
fn listing_cache(bytes: u64) -> moka::sync::Cache<u64, Arc<Vec<Child>>> {
    moka::sync::Cache::builder()
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .weigher(|_: &u64, v: &Arc<Vec<Child>>| listing_weight(v))
        .max_capacity(bytes)
        .build()
}

/// Approximate bytes a decoded listing holds: each child's fixed part and its name.
fn listing_weight(children: &[Child]) -> u32 {
    let fixed = std::mem::size_of::<Child>() + 16;
    let total: usize = children.iter().map(|c| fixed + c.name().len()).sum();
    u32::try_from(total + 64).unwrap_or(u32::MAX)
}

/// The read-only filesystem of one commit.
pub struct Dicfuse {
    store: Arc<Store>,
    /// The commit shown (it moves only by [`Dicfuse::rebase`]), the epoch lock, the listings
    /// from the remote, ahead of a walker too, and the cache of decoded listings.
    lister: Arc<ahead::Lister>,
    /// Every entry's times: those of the commit first shown.
    time: i64,
    uid: u32,
    gid: u32,
    /// Whether readers look files up between listings ([`LookupPressure`]).
    pressure: LookupPressure,
}

/// Tells whether a READDIRPLUS should carry the files' attributes: only when files were
/// looked up since the previous one. A walk that only lists (`find`, a glob) then makes the
/// kernel allocate no inode per file; one that opens or stats what it lists (`grep -r`, an
/// indexer, `ls -l` in turn) gets them with the listing and saves a LOOKUP per file. The
/// kernel's own READDIRPLUS_AUTO reasons alike, per directory.
#[derive(Default)]
struct LookupPressure {
    /// Files looked up so far.
    lookups: std::sync::atomic::AtomicU64,
    /// `lookups` at the last READDIRPLUS.
    at_listing: std::sync::atomic::AtomicU64,
}

impl LookupPressure {
    fn file_looked_up(&self) {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A READDIRPLUS goes out: whether files were looked up since the last one.
    fn files_wanted(&self) -> bool {
        let now = self.lookups.load(std::sync::atomic::Ordering::Relaxed);
        self.at_listing
            .swap(now, std::sync::atomic::Ordering::Relaxed)
            != now
    }
}

impl Dicfuse {
    /// A view of `commit` (already bound in the store's inode table) owned by `uid:gid`.
    pub fn new(store: Arc<Store>, commit: CommitInfo, uid: u32, gid: u32) -> Dicfuse {
        Dicfuse {
            lister: Arc::new(ahead::Lister::new(
                store.clone(),
                commit.clone(),
                0,
                listing_cache(DEFAULT_LISTING_BYTES),
            )),
            store,
            time: commit.time,
            uid,
            gid,
            pressure: LookupPressure::default(),
        }
    }

    /// The view listing at most `width` subdirectories ahead of a reader at once (`list_ahead`;
    /// 0: none). Set before the view serves anything.
    pub fn with_list_ahead(self, width: usize) -> Dicfuse {
        let listings = self.lister.listings.clone();
        self.with_lister(width, listings)
    }

    /// The view with its decoded listings held to `bytes` (`cache_listing_bytes`).
    pub fn with_listing_bytes(self, bytes: u64) -> Dicfuse {
        let width = self.lister.width();
        self.with_lister(width, listing_cache(bytes))
    }

    /// The view with a new lister of the same commit (before it serves anything).
    fn with_lister(
        self,
        width: usize,
        listings: moka::sync::Cache<u64, Arc<Vec<Child>>>,
    ) -> Dicfuse {
        let commit = self.lister.commit();
        Dicfuse {
            lister: Arc::new(ahead::Lister::new(
                self.store.clone(),
                commit,
                width,
                listings,
            )),
            ..self
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
        self.lister.commit()
    }

    /// How many directories this view has asked the remote to list.
    pub fn directories_listed(&self) -> u64 {
        self.lister.listed()
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
        let _exclusive = self.lister.epoch.write().await;
        let old = self.commit();
        let commit = CommitInfo {
            time: old.time,
            ..commit
        };
        let touched = self.store.inodes.rebase(&commit, updates)?;
        *self
            .lister
            .commit
            .write()
            .unwrap_or_else(|p| p.into_inner()) = commit;
        self.lister.listings.invalidate_all();
        Ok(touched)
    }

    /// The node of `ino`, or ENOENT.
    fn node(&self, ino: u64) -> Result<Node, DicError> {
        self.store.inodes.get(ino)?.ok_or(DicError::NoEntry)
    }

    /// The children of a directory, listing it first if needed.
    async fn children(&self, ino: u64) -> Result<Arc<Vec<Child>>, DicError> {
        if let Some(c) = self.lister.listings.get(&ino) {
            return Ok(c);
        }
        let node = self.node(ino)?;
        if !node.kind.is_dir() {
            return Err(DicError::NotDir);
        }
        if node.kind != EntryKind::Submodule {
            self.lister.ensure_loaded(ino).await?;
            // The listing just written went into the cache.
            if let Some(c) = self.lister.listings.get(&ino) {
                return Ok(c);
            }
        }
        let _epoch = self.lister.epoch.read().await;
        let children = Arc::new(self.store.inodes.children(ino)?);
        self.lister.listings.insert(ino, children.clone());
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
        if self.learn_sizes(node.parent).await? {
            if let Some(size) = self
                .store
                .inodes
                .get(ino)?
                .filter(|n| n.oid == Some(oid))
                .and_then(|n| n.size)
            {
                return Ok(size);
            }
        }
        let own = self.store.blob_size(oid);
        // A stat of one file of a directory mostly comes with stats of the others.
        self.store.sizes_ahead(node.parent);
        let size = own.await?;
        let _epoch = self.lister.epoch.read().await;
        // With this one, every size learnt meanwhile for the directory (fetched ahead, or
        // brought by a pack) in one write: the next stats there read them from the listing.
        // Each applies only while its entry has the blob it was asked for (a rebase in between
        // may have given it another).
        let mut sizes = self.store.remembered_sizes(node.parent)?;
        if !sizes.iter().any(|(i, _, _)| *i == ino) {
            sizes.push((ino, Some(oid), size));
        }
        self.store.inodes.set_sizes(node.parent, &sizes)?;
        // The cached listing holds the nodes without their sizes.
        self.lister.listings.invalidate(&node.parent);
        Ok(size)
    }

    /// From a remote that answers sizes in bulk, learns every size directory `dir` lacks;
    /// false (and nothing asked) from one that does not.
    async fn learn_sizes(&self, dir: u64) -> Result<bool, DicError> {
        if !self.store.sizes_in_bulk() {
            return Ok(false);
        }
        {
            let _epoch = self.lister.epoch.read().await;
            self.store.learn_dir_sizes(dir).await?;
        }
        // The cached listing holds the nodes without their sizes.
        self.lister.listings.invalidate(&dir);
        Ok(true)
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
            .binary_search_by(|c| c.name().cmp(name))
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

#[cfg(test)]
mod tests;

/// A view of the HEAD of the git repository at `repo`, with its store at `store` (the daemon's
/// user owns every file): what unit tests above Dicfuse mount or assemble over, with no FUSE.
#[cfg(test)]
pub(crate) async fn test_view(repo: &std::path::Path, store: &std::path::Path) -> Arc<Dicfuse> {
    let remote: Arc<dyn crate::remote::Remote> =
        Arc::new(crate::remote::local::LocalRemote::open(repo).expect("remote"));
    let bounds = crate::store::Bounds {
        mem_bytes: 1 << 24,
        disk_bytes: 1 << 30,
        db_bytes: 1 << 24,
    };
    let store = Store::open(store, remote.clone(), bounds).expect("store");
    let commit = remote.resolve(None).await.expect("resolve");
    store.inodes.bind("test", &commit).expect("bind");
    Arc::new(Dicfuse::new(store, commit, 0, 0))
}
