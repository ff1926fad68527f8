//! Content-addressed objects on disk (`objects/ab/cdef...`), bounded by size.
//!
//! Objects are written to a temporary file, synced and renamed into place, so a reader sees a
//! whole verified object or nothing. When the total passes the bound, the least recently used
//! objects are removed; an open file keeps working after its object is evicted (Linux unlink).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::remote::Oid;

/// Access order and sizes of the objects on disk.
#[derive(Default)]
struct Index {
    /// oid -> (size, tick of last use).
    entries: HashMap<Oid, (u64, u64)>,
    /// tick -> oid, oldest first.
    order: BTreeMap<u64, Oid>,
    total: u64,
    tick: u64,
}

impl Index {
    fn touch(&mut self, oid: Oid) -> bool {
        let Some((_, t)) = self.entries.get_mut(&oid) else {
            return false;
        };
        self.order.remove(t);
        self.tick += 1;
        *t = self.tick;
        self.order.insert(self.tick, oid);
        true
    }

    fn add(&mut self, oid: Oid, size: u64) {
        if self.touch(oid) {
            return;
        }
        self.tick += 1;
        self.entries.insert(oid, (size, self.tick));
        self.order.insert(self.tick, oid);
        self.total += size;
    }

    fn remove(&mut self, oid: &Oid) {
        if let Some((size, t)) = self.entries.remove(oid) {
            self.order.remove(&t);
            self.total -= size;
        }
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
    /// Opens (creating) `root`, indexing what is there, oldest-written first.
    pub fn open(root: &Path, cap: u64) -> std::io::Result<ObjectDir> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
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
            index.add(oid, size);
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

    /// Opens a stored object for reading, marking it used; `None` if it is not stored.
    pub fn open_object(&self, oid: Oid) -> std::io::Result<Option<File>> {
        match File::open(self.path(oid)) {
            Ok(f) => {
                self.index().touch(oid);
                Ok(Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.index().remove(&oid);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the object is stored.
    pub fn contains(&self, oid: Oid) -> bool {
        self.index().entries.contains_key(&oid) && self.path(oid).exists()
    }

    /// Reads a whole stored object.
    pub fn read(&self, oid: Oid) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(oid)) {
            Ok(v) => {
                self.index().touch(oid);
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a verified object atomically, then evicts down to the bound.
    pub fn insert(&self, oid: Oid, body: &[u8]) -> std::io::Result<()> {
        let dest = self.path(oid);
        if let Some(dir) = dest.parent() {
            // Explicit mode: the daemon runs with umask 0.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o755,
            )
            .create(dir)?;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        tmp.write_all(body)?;
        tmp.as_file().sync_data()?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        let victims = {
            let mut idx = self.index();
            idx.add(oid, body.len() as u64);
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
        for v in victims {
            tracing::debug!(oid = %v, "evicting object from the disk cache");
            let _ = std::fs::remove_file(self.path(v));
        }
        Ok(())
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

    #[test]
    fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let objs = ObjectDir::open(dir.path(), 250).unwrap();
        let (a, b, c) = (vec![1u8; 100], vec![2u8; 100], vec![3u8; 100]);
        objs.insert(oid(&a), &a).unwrap();
        objs.insert(oid(&b), &b).unwrap();
        // Using `a` makes `b` the oldest.
        assert!(objs.open_object(oid(&a)).unwrap().is_some());
        objs.insert(oid(&c), &c).unwrap();
        assert!(objs.contains(oid(&a)));
        assert!(!objs.contains(oid(&b)));
        assert!(objs.contains(oid(&c)));
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
        assert_eq!(objs.read(oid(&a)).unwrap().unwrap(), a);
        assert_eq!(objs.total_bytes(), 5);
        assert!(!dir.path().join("tmp/partial").exists());
    }

    #[test]
    fn object_larger_than_cap_is_kept_alone() {
        let dir = tempfile::tempdir().unwrap();
        let objs = ObjectDir::open(dir.path(), 10).unwrap();
        let a = vec![7u8; 50];
        objs.insert(oid(&a), &a).unwrap();
        assert!(objs.contains(oid(&a)));
    }
}
