//! Content-addressed objects on disk (`objects/ab/cdef...`), bounded by size.
//!
//! Objects are written to a temporary file and renamed into place, so a reader sees a whole
//! object or nothing. They are not synced: one lost or torn by a crash is found by the check
//! every object passes at its first use in the next run, and fetched again. What is on disk is still not trusted: a byte can rot, a user can
//! truncate or swap files. So the index also knows which objects this daemon run has verified
//! (written from verified bytes, or hashed once and found right); only those are served by
//! [`ObjectDir::open_verified`], and anything else goes through [`ObjectDir::check`] first.
//! When the total passes the bound, the least recently used objects are removed; an open file
//! keeps working after its object is evicted (Linux unlink).
//!
//! The directories themselves may vanish under a running daemon (`rm -rf objects`): a write that
//! finds its directory gone makes it again, and the index forgets the objects whose files went
//! with it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::remote::object::hash_blob_file;
use crate::remote::Oid;

/// What the index knows about one object on disk.
struct Entry {
    size: u64,
    /// Tick of last use.
    tick: u64,
    /// Hashed to its id during this run (or written from bytes that were).
    verified: bool,
}

/// Access order, sizes and verification of the objects on disk.
#[derive(Default)]
struct Index {
    entries: HashMap<Oid, Entry>,
    /// tick -> oid, oldest first.
    order: BTreeMap<u64, Oid>,
    total: u64,
    tick: u64,
}

impl Index {
    fn touch(&mut self, oid: Oid) -> bool {
        let Some(e) = self.entries.get_mut(&oid) else {
            return false;
        };
        self.order.remove(&e.tick);
        self.tick += 1;
        e.tick = self.tick;
        self.order.insert(self.tick, oid);
        true
    }

    /// Records `oid` as stored with `size` bytes (the size of a known entry is corrected).
    fn add(&mut self, oid: Oid, size: u64, verified: bool) {
        if let Some(e) = self.entries.get_mut(&oid) {
            self.total = self.total - e.size + size;
            e.size = size;
            e.verified |= verified;
            self.touch(oid);
            return;
        }
        self.tick += 1;
        self.entries.insert(
            oid,
            Entry {
                size,
                tick: self.tick,
                verified,
            },
        );
        self.order.insert(self.tick, oid);
        self.total += size;
    }

    fn remove(&mut self, oid: &Oid) {
        if let Some(e) = self.entries.remove(oid) {
            self.order.remove(&e.tick);
            self.total -= e.size;
        }
    }
}

/// The outcome of [`ObjectDir::check`].
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The object is on disk and hashes to its id.
    Good,
    /// The object is not on disk.
    Missing,
    /// The file was damaged (the reason says how); it has been removed.
    Damaged(String),
}

/// Creates `dir` and its parents with an explicit mode (whatever the daemon's umask).
fn mkdir_p(dir: &Path) -> std::io::Result<()> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
        .create(dir)
}

/// Removes whatever is at an object's path, even a directory someone put there.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(_) if path.is_dir() => std::fs::remove_dir_all(path),
        r => r,
    }
}

/// The on-disk object cache.
pub struct ObjectDir {
    root: PathBuf,
    tmp: PathBuf,
    cap: u64,
    index: Mutex<Index>,
}

impl ObjectDir {
    /// The bound on the bytes kept.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Opens (creating) `root`, indexing what is there, oldest-written first. Nothing found is
    /// verified yet: each object is hashed at its first use.
    pub fn open(root: &Path, cap: u64) -> std::io::Result<ObjectDir> {
        let tmp = root.join("tmp");
        mkdir_p(&tmp)?;
        // Leftovers of writes interrupted by a crash are never valid objects.
        for e in std::fs::read_dir(&tmp)?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        let mut found = Vec::new();
        for fan in std::fs::read_dir(root)?.flatten() {
            let fan_name = fan.file_name().to_string_lossy().into_owned();
            if fan_name.len() != 2 || !fan.path().is_dir() {
                continue;
            }
            for obj in std::fs::read_dir(fan.path())?.flatten() {
                let hex = format!("{fan_name}{}", obj.file_name().to_string_lossy());
                let (Ok(oid), Ok(meta)) = (Oid::from_hex(&hex), obj.metadata()) else {
                    continue;
                };
                let when = meta.modified().ok();
                found.push((when, oid, meta.len()));
            }
        }
        found.sort_by_key(|(when, _, _)| *when);
        let mut index = Index::default();
        for (_, oid, size) in found {
            index.add(oid, size, false);
        }
        tracing::debug!(
            objects = index.entries.len(),
            bytes = index.total,
            "object cache indexed"
        );
        Ok(ObjectDir {
            root: root.to_path_buf(),
            tmp,
            cap,
            index: Mutex::new(index),
        })
    }

    fn path(&self, oid: Oid) -> PathBuf {
        let hex = oid.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens an object this run has verified, marking it used; `None` if it is not stored or
    /// not verified yet (then [`ObjectDir::check`] or a fetch comes first). This is the path of
    /// every read of a cached file: one lock and one `open`, no hashing.
    pub fn open_verified(&self, oid: Oid) -> std::io::Result<Option<File>> {
        {
            let mut idx = self.index();
            if !idx.entries.get(&oid).is_some_and(|e| e.verified) {
                return Ok(None);
            }
            idx.touch(oid);
        }
        match File::open(self.path(oid)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Removed behind our back: forget it, so it is fetched again.
                self.index().remove(&oid);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the object is stored and verified in this run (as far as the index knows).
    pub fn is_verified(&self, oid: Oid) -> bool {
        self.index().entries.get(&oid).is_some_and(|e| e.verified)
    }

    /// The size of `oid` when it is on disk (verified in this run or not).
    pub fn stored_size(&self, oid: Oid) -> Option<u64> {
        self.index().entries.get(&oid).map(|e| e.size)
    }

    /// Hashes the stored file of `oid` against its id (blocking: reads the whole file). A right
    /// one is marked verified; a damaged or unreadable one is removed from disk and index.
    pub fn check(&self, oid: Oid) -> std::io::Result<Check> {
        let path = self.path(oid);
        let damage = match File::open(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.index().remove(&oid);
                return Ok(Check::Missing);
            }
            Err(e) => format!("cannot be opened: {e}"),
            Ok(f) => match (f.metadata(), hash_blob_file(&f)) {
                (Ok(meta), Ok(actual)) if actual == oid => {
                    self.index().add(oid, meta.len(), true);
                    return Ok(Check::Good);
                }
                (Ok(meta), Ok(actual)) => {
                    format!("{} bytes that hash to {actual}", meta.len())
                }
                (Err(e), _) | (_, Err(e)) => format!("cannot be read: {e}"),
            },
        };
        self.evict(oid)?;
        Ok(Check::Damaged(damage))
    }

    /// Removes an object from disk and index.
    pub fn evict(&self, oid: Oid) -> std::io::Result<()> {
        self.index().remove(&oid);
        remove_any(&self.path(oid))
    }

    /// Stores an object whose bytes were verified, atomically, then evicts down to the bound.
    /// A directory of the cache found missing is made again and the write tried once more.
    pub fn insert(&self, oid: Oid, body: &[u8]) -> std::io::Result<()> {
        let dest = self.path(oid);
        match self.write_object(&dest, body, false) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::warn!(
                    dir = %self.root.display(),
                    "a directory of the object cache is gone; making it again"
                );
                self.forget_missing();
                self.write_object(&dest, body, true)?;
            }
            r => r?,
        }
        let victims = {
            let mut idx = self.index();
            idx.add(oid, body.len() as u64, true);
            let mut victims = Vec::new();
            while idx.total > self.cap {
                let Some((_, &old)) = idx.order.iter().next() else {
                    break;
                };
                if old == oid {
                    break;
                }
                idx.remove(&old);
                victims.push(old);
            }
            victims
        };
        crate::metrics::global().cache_evicted(crate::metrics::Cache::Disk, victims.len() as u64);
        for v in victims {
            tracing::debug!(oid = %v, "evicting object from the disk cache");
            let _ = std::fs::remove_file(self.path(v));
        }
        Ok(())
    }

    /// Writes `body` aside and renames it to `dest`. A failed write leaves no temporary file
    /// behind (it is removed when dropped), so a full disk does not stay fuller.
    fn write_object(&self, dest: &Path, body: &[u8], make_tmp: bool) -> std::io::Result<()> {
        if make_tmp {
            mkdir_p(&self.tmp)?;
        }
        if let Some(dir) = dest.parent() {
            mkdir_p(dir)?;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        // No sync (see the module doc): one per object capped a read of many small files at
        // the disk's syncs per second.
        tmp.write_all(body)?;
        tmp.persist(dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// Drops from the index every object whose file is gone (after a directory vanished), so
    /// the total is right again and nothing is evicted for bytes no longer there.
    fn forget_missing(&self) {
        let oids: Vec<Oid> = self.index().entries.keys().copied().collect();
        let gone: Vec<Oid> = oids
            .into_iter()
            .filter(|o| {
                matches!(std::fs::symlink_metadata(self.path(*o)),
                    Err(e) if e.kind() == ErrorKind::NotFound)
            })
            .collect();
        if gone.is_empty() {
            return;
        }
        tracing::warn!(
            objects = gone.len(),
            "cached objects vanished from disk; they will be fetched again"
        );
        let mut idx = self.index();
        for o in &gone {
            idx.remove(o);
        }
    }

    /// Bytes stored.
    pub fn total_bytes(&self) -> u64 {
        self.index().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{ObjectKind, Oid};

    fn oid(body: &[u8]) -> Oid {
        Oid::hash_object(ObjectKind::Blob, body)
    }

    fn stored(objs: &ObjectDir, o: Oid) -> bool {
        objs.open_verified(o).unwrap().is_some()
    }

    #[test]
    fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let objs = ObjectDir::open(dir.path(), 250).unwrap();
        let (a, b, c) = (vec![1u8; 100], vec![2u8; 100], vec![3u8; 100]);
        objs.insert(oid(&a), &a).unwrap();
        objs.insert(oid(&b), &b).unwrap();
        // Using `a` makes `b` the oldest.
        assert!(stored(&objs, oid(&a)));
        objs.insert(oid(&c), &c).unwrap();
        assert!(stored(&objs, oid(&a)));
        assert!(!stored(&objs, oid(&b)));
        assert!(stored(&objs, oid(&c)));
        assert_eq!(objs.total_bytes(), 200);
    }

    #[test]
    fn reopens_with_index_and_clears_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let a = b"hello".to_vec();
        {
            let objs = ObjectDir::open(dir.path(), 1 << 20).unwrap();
            objs.insert(oid(&a), &a).unwrap();
            std::fs::write(dir.path().join("tmp/partial"), b"x").unwrap();
        }
        let objs = ObjectDir::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(objs.total_bytes(), 5);
        assert!(!dir.path().join("tmp/partial").exists());
        // A new run trusts nothing it did not check.
        assert!(!stored(&objs, oid(&a)));
        assert_eq!(objs.check(oid(&a)).unwrap(), Check::Good);
        assert!(stored(&objs, oid(&a)));
    }

    #[test]
    fn damaged_objects_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (b"first object".to_vec(), b"second object".to_vec());
        {
            let objs = ObjectDir::open(dir.path(), 1 << 20).unwrap();
            objs.insert(oid(&a), &a).unwrap();
            objs.insert(oid(&b), &b).unwrap();
        }
        let objs = ObjectDir::open(dir.path(), 1 << 20).unwrap();
        std::fs::write(objs.path(oid(&a)), b"first objecT").unwrap();
        assert!(matches!(objs.check(oid(&a)).unwrap(), Check::Damaged(_)));
        assert!(!objs.path(oid(&a)).exists());
        assert_eq!(objs.check(oid(&a)).unwrap(), Check::Missing);
        assert_eq!(objs.total_bytes(), b.len() as u64);
        // A directory where an object should be.
        std::fs::remove_file(objs.path(oid(&b))).unwrap();
        std::fs::create_dir(objs.path(oid(&b))).unwrap();
        assert!(matches!(objs.check(oid(&b)).unwrap(), Check::Damaged(_)));
        objs.insert(oid(&b), &b).unwrap();
        assert_eq!(objs.check(oid(&b)).unwrap(), Check::Good);
    }

    #[test]
    fn lost_directories_are_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let objs = ObjectDir::open(&root, 1 << 20).unwrap();
        let (a, b) = (vec![1u8; 100], vec![2u8; 50]);
        objs.insert(oid(&a), &a).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        objs.insert(oid(&b), &b).unwrap();
        assert!(stored(&objs, oid(&b)));
        assert!(root.join("tmp").is_dir());
        assert!(!stored(&objs, oid(&a)));
        assert_eq!(objs.total_bytes(), 50);
    }

    #[test]
    fn object_larger_than_cap_is_kept_alone() {
        let dir = tempfile::tempdir().unwrap();
        let objs = ObjectDir::open(dir.path(), 10).unwrap();
        let a = vec![7u8; 50];
        objs.insert(oid(&a), &a).unwrap();
        assert!(stored(&objs, oid(&a)));
    }
}
