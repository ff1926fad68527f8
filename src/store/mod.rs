//! The local object store: verified objects on disk, a bounded memory cache above them, and the
//! persistent inode table.
//!
//! [`Store::ensure_blob`] is the one way a blob becomes readable: an object already on disk is
//! hashed against its id once per daemon run (a damaged one is logged, evicted and fetched
//! again), a missing one is fetched from the remote, checked against its id and written
//! atomically. Concurrent calls for the same id share one check or fetch, which runs as its own
//! task so a reader giving up does not cancel it for the others. Once verified, an object is
//! opened without further checks: a read of a cached file costs one `open`.
//!
//! A full disk is an error (ENOSPC) while it lasts and nothing more: a failed write leaves no
//! temporary file, and the database keeps space of its own (see [`reserve`]).

pub mod ahead;
pub mod inodes;
pub mod objects;
pub mod packs;
pub mod reserve;
pub mod sizes;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::metrics::{global as metrics, Cache};
use crate::remote::object::verify;
use crate::remote::{ObjectError, ObjectKind, Oid, Remote, RemoteError};
pub use inodes::{Child, InodeTable, Node, Touched, ROOT_INO};
use objects::{Check, ObjectDir};
use reserve::DbReserve;

/// Objects up to this size are kept in the memory cache too.
const MEM_OBJECT_MAX: usize = 1 << 20;

/// Errors of the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The sled database failed.
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// The object directory failed.
    #[error("object cache: {0}")]
    Io(Arc<std::io::Error>),
    /// The remote failed.
    #[error(transparent)]
    Remote(Arc<RemoteError>),
    /// An object that does not match its id.
    #[error(transparent)]
    Corrupt(#[from] ObjectError),
    /// A record in the inode table does not decode.
    #[error("inode table: {0}")]
    Decode(String),
    /// More entries than the Dicfuse inode range holds.
    #[error("the inode range of the read-only view is exhausted")]
    InodesExhausted,
}

impl StoreError {
    /// The errno a reader gets: ENOSPC or EDQUOT when the disk or quota is full (the user can
    /// act on that, and the same read works once space is freed), EIO for everything else.
    pub fn errno(&self) -> i32 {
        let io = match self {
            StoreError::Io(e) => Some(e.as_ref()),
            StoreError::Db(sled::Error::Io(e)) => Some(e),
            _ => None,
        };
        // By kind: an error wrapped with its path (as tempfile does) has lost its raw errno.
        match io.map(|e| e.kind()) {
            Some(std::io::ErrorKind::StorageFull) => libc::ENOSPC,
            Some(std::io::ErrorKind::QuotaExceeded) => libc::EDQUOT,
            _ => libc::EIO,
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(Arc::new(e))
    }
}

impl From<tokio::task::JoinError> for StoreError {
    /// A task of the store's that panicked or was cancelled.
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Io(Arc::new(std::io::Error::other(e.to_string())))
    }
}

impl From<RemoteError> for StoreError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Corrupt(o) => StoreError::Corrupt(o),
            other => StoreError::Remote(Arc::new(other)),
        }
    }
}

/// The bounds of the store's caches, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Small objects kept in memory (`cache_mem_bytes`).
    pub mem_bytes: u64,
    /// Objects kept on disk (`cache_disk_bytes`).
    pub disk_bytes: u64,
    /// The database's page cache (`cache_db_bytes`); sled's own default is 1 GiB, which a full
    /// walk of a large tree fills.
    pub db_bytes: u64,
}

impl Bounds {
    /// The bounds a loaded configuration sets.
    pub fn from_config(cfg: &crate::config::Config) -> Bounds {
        Bounds {
            mem_bytes: cfg.cache_mem_bytes,
            disk_bytes: cfg.cache_disk_bytes,
            db_bytes: cfg.cache_db_bytes,
        }
    }
}

/// How the database at `path` is opened: its page cache held to `cache_bytes`, and written to
/// disk in the background rather than at each write.
fn db_config(path: &Path, cache_bytes: u64) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(200))
}

/// Locks `m`; a panic elsewhere while it was held leaves data that is still whole (every
/// critical section of the store's maps is a single insert or remove).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One request for an object that every caller asking for it meanwhile awaits.
pub(super) type Flight<T> = Shared<BoxFuture<'static, Result<T, StoreError>>>;
/// The requests in flight, by object id (or by another key `K`).
pub(super) type Flights<T, K = Oid> = Mutex<HashMap<K, Flight<T>>>;

/// The request for `key` (an object id, or a directory) in `map` (whose lock the caller holds),
/// or `run` started as its own task and entered there: a caller giving up does not cancel it. It leaves the map once `run`
/// has ended, so what `run` records before it ends is seen by whoever then misses the map.
pub(super) fn join_or_start<T, K>(
    store: &Arc<Store>,
    map: &mut HashMap<K, Flight<T>>,
    key: K,
    flights: fn(&Store) -> &Flights<T, K>,
    run: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Flight<T>
where
    T: Clone + Send + Sync + 'static,
    K: Copy + Eq + std::hash::Hash + Send + 'static,
{
    if let Some(f) = map.get(&key) {
        return f.clone();
    }
    let store = store.clone();
    let task = tokio::spawn(async move {
        let r = run.await;
        lock(flights(&store)).remove(&key);
        r
    });
    let f = async move { task.await? }.boxed().shared();
    map.insert(key, f.clone());
    f
}

/// Objects, caches and the inode table under `store_path`.
pub struct Store {
    remote: Arc<dyn Remote>,
    objects: ObjectDir,
    mem: moka::sync::Cache<Oid, Bytes>,
    inflight: Flights<()>,
    /// Directories whose sizes are being asked for in bulk (see [`sizes`]).
    dir_sizes: Flights<(), u64>,
    db: sled::Db,
    reserve: Arc<DbReserve>,
    ahead: ahead::Ahead,
    packs: packs::Packs,
    /// The persistent inode table.
    pub inodes: InodeTable,
}

impl Store {
    /// Opens the store at `path` over `remote`, each cache within its bound.
    pub fn open(
        path: &Path,
        remote: Arc<dyn Remote>,
        bounds: Bounds,
    ) -> Result<Arc<Store>, StoreError> {
        let Bounds {
            mem_bytes,
            disk_bytes,
            db_bytes,
        } = bounds;
        std::fs::create_dir_all(path)?;
        let objects = ObjectDir::open(&path.join("objects"), disk_bytes)?;
        let db = db_config(&path.join("meta.sled"), db_bytes).open()?;
        let reserve = Arc::new(DbReserve::open(&path.join("meta.sled")));
        let inodes = InodeTable::open(&db)?.with_reserve(reserve.clone());
        let mem = moka::sync::Cache::builder()
            .weigher(|_k: &Oid, v: &Bytes| v.len().try_into().unwrap_or(u32::MAX))
            .max_capacity(mem_bytes)
            .eviction_listener(|_, _, cause| {
                // Only what the bound pushed out; an invalidated (damaged) object is not.
                if cause == moka::notification::RemovalCause::Size {
                    metrics().cache_evicted(Cache::Memory, 1);
                }
            })
            .build();
        Ok(Arc::new(Store {
            ahead: ahead::Ahead::new(remote.ahead_concurrency()),
            packs: packs::Packs::default(),
            remote,
            objects,
            mem,
            inflight: Mutex::new(HashMap::new()),
            dir_sizes: Mutex::new(HashMap::new()),
            db,
            reserve,
            inodes,
        }))
    }

    /// The remote behind the store.
    pub fn remote(&self) -> &Arc<dyn Remote> {
        &self.remote
    }

    /// Makes sure blob `oid` is on disk and verified in this run: a stored copy is hashed once,
    /// a missing or damaged one fetched (and verified) from the remote.
    pub async fn ensure_blob(self: &Arc<Self>, oid: Oid) -> Result<(), StoreError> {
        if self.objects.is_verified(oid) {
            return Ok(());
        }
        if let Some(pack) = self.pack_bringing(oid) {
            // Whatever the pack's fate, the blob is then stored or fetched below.
            let _ = pack.blobs.await;
            if self.objects.is_verified(oid) {
                return Ok(());
            }
        }
        let fut = {
            let mut map = lock(&self.inflight);
            // A check or fetch marks the blob verified before it leaves the map: one that ended
            // since the test above is seen here, under the lock, and is not repeated.
            if !map.contains_key(&oid) && self.objects.is_verified(oid) {
                return Ok(());
            }
            let store = self.clone();
            join_or_start(self, &mut map, oid, |s| &s.inflight, async move {
                store.load_blob(oid).await
            })
        };
        fut.await
    }

    /// Verifies the stored copy of `oid`, fetching the blob when there is none or it is damaged.
    async fn load_blob(self: &Arc<Self>, oid: Oid) -> Result<(), StoreError> {
        let store = self.clone();
        let checked = tokio::task::spawn_blocking(move || store.objects.check(oid)).await??;
        match checked {
            Check::Good => return Ok(()),
            Check::Missing => {}
            Check::Damaged(how) => {
                self.mem.invalidate(&oid);
                tracing::warn!(%oid, damage = %how, "cached object does not match its id; evicted, fetching it again");
            }
        }
        self.fetch_blob(oid).await
    }

    async fn fetch_blob(self: &Arc<Self>, oid: Oid) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let body = self.remote.blob(oid).await?;
        let store = self.clone();
        let len = body.len();
        let body2 = body.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            verify(ObjectKind::Blob, oid, &body2)?;
            // Whatever the object is about to take, the database's log must not lose its room.
            store.reserve.top_up();
            store.objects.insert(oid, &body2)?;
            Ok(())
        })
        .await??;
        if len <= MEM_OBJECT_MAX {
            self.mem.insert(oid, body);
        }
        tracing::debug!(%oid, bytes = len, ms = started.elapsed().as_millis() as u64, "blob fetched and verified");
        Ok(())
    }

    /// Opens blob `oid` for `pread`, fetching or verifying it first if needed.
    /// The first look counts as the disk cache's hit or miss; the looks after a fetch do not.
    pub async fn open_blob(self: &Arc<Self>, oid: Oid) -> Result<std::fs::File, StoreError> {
        if let Some(f) = self.objects.open_verified(oid)? {
            metrics().cache_hit(Cache::Disk);
            return Ok(f);
        }
        metrics().cache_miss(Cache::Disk);
        // Eviction or a removed file can race with the open; one more round settles it.
        for _ in 0..2 {
            self.ensure_blob(oid).await?;
            if let Some(f) = self.objects.open_verified(oid)? {
                return Ok(f);
            }
        }
        Err(StoreError::Io(Arc::new(std::io::Error::other(format!(
            "blob {oid} evicted while opening"
        )))))
    }

    /// The whole content of a blob (symlink targets, small files), through the memory cache.
    pub async fn blob_bytes(self: &Arc<Self>, oid: Oid) -> Result<Bytes, StoreError> {
        if let Some(b) = self.cached_bytes(oid) {
            return Ok(b);
        }
        let mut file = self.open_blob(oid).await?;
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut body)?;
        let body = Bytes::from(body);
        if body.len() <= MEM_OBJECT_MAX {
            self.mem.insert(oid, body.clone());
        }
        Ok(body)
    }

    /// A blob from the memory cache only.
    pub fn cached_bytes(&self, oid: Oid) -> Option<Bytes> {
        let got = self.mem.get(&oid);
        match got {
            Some(_) => metrics().cache_hit(Cache::Memory),
            None => metrics().cache_miss(Cache::Memory),
        }
        got
    }

    /// The size of blob `oid` when it is on disk (a prefetch counts it as kept, not fetched).
    pub fn stored_size(&self, oid: Oid) -> Option<u64> {
        self.objects.stored_size(oid)
    }

    /// Bytes of objects on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.objects.total_bytes()
    }

    /// A named tree of the store's database, for state kept beside the inode table.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Writes the database to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.reserve.top_up();
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_page_cache_is_the_configured_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = db_config(&dir.path().join("meta.sled"), 5 << 20);
        assert_eq!(cfg.cache_capacity, 5 << 20);
        // sled's own default would let a full walk of a large tree keep a gigabyte.
        assert_eq!(sled::Config::new().cache_capacity, 1 << 30);
    }

    #[test]
    fn a_full_disk_is_enospc_and_other_failures_eio() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(StoreError::from(full).errno(), libc::ENOSPC);
        // Wrapped with a path, as tempfile does: the raw errno is gone, the kind is not.
        let wrapped = std::io::Error::new(std::io::ErrorKind::StorageFull, "at path /x");
        assert_eq!(StoreError::from(wrapped).errno(), libc::ENOSPC);
        let db = sled::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(StoreError::Db(db).errno(), libc::ENOSPC);
        let eio = std::io::Error::from_raw_os_error(libc::EIO);
        assert_eq!(StoreError::from(eio).errno(), libc::EIO);
        assert_eq!(StoreError::InodesExhausted.errno(), libc::EIO);
    }
}
