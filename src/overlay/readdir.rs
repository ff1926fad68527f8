//! Merged directory listings, and READDIR and READDIRPLUS over them.
//!
//! Directories are opened without the daemon (`crate::NO_OPENDIR`), so a READDIR names the
//! directory and an offset, with no listing kept since an open. The offset of an entry is a hash
//! of its name (`.` is 1, `..` is 2) and a listing goes out in hash order: a READDIR resumes
//! after the last hash the reader saw, so a directory read while it changes never skips or
//! repeats an entry that stays, whatever was added or removed meanwhile. (Two names with the
//! same 63-bit hash would sort by name and could split across READDIRs; with the kernel asking
//! for hundreds of entries at a time, a directory would need billions of names for that to be
//! likely.)

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::hash::Hasher;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::stream;
use rfuse3::raw::reply::{
    DirectoryEntry, DirectoryEntryPlus, FileAttr, ReplyDirectory, ReplyDirectoryPlus,
};
use rfuse3::{FileType, Result as FuseResult};
use rustix::fs::{AtFlags, OFlags};

use super::mode::file_type;
use super::{whiteout, OverlayError, OverlayFs, Result, UPPER_TTL};

/// The entries one READDIR sends.
type Entries = stream::Iter<std::vec::IntoIter<FuseResult<DirectoryEntry>>>;
/// The entries one READDIRPLUS sends.
type EntriesPlus = stream::Iter<std::vec::IntoIter<FuseResult<DirectoryEntryPlus>>>;

/// One entry of a listing as READDIR sends it.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// Where a READDIR resumes after this entry.
    pub off: i64,
    /// The merged entry's `d_ino` (the parent's inode for `..`, the directory's own for `.`).
    pub ino: u64,
    pub kind: FileType,
    pub name: OsString,
}

/// A directory's entries in offset order, with the namespace generation they were listed in.
pub(super) struct Listing {
    ino: u64,
    generation: u64,
    entries: Arc<Vec<Entry>>,
}

/// The offset of the entry named `name`: a hash of the name, above those of `.` and `..`. Only
/// one daemon's life has to agree with itself (the kernel's readdir state dies with the
/// connection), and the standard hasher with its fixed keys does.
fn name_offset(name: &[u8]) -> i64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(name);
    ((h.finish() >> 1) as i64).max(3)
}

/// One entry of a merged listing.
#[derive(Clone, Debug)]
pub(super) struct DirItem {
    pub name: OsString,
    pub kind: FileType,
    /// A number for `d_ino`; the real inode comes from a lookup.
    pub ino_hint: u64,
}

impl OverlayFs {
    /// The merged entries of directory `ino` (without `.` and `..`), sorted by name.
    pub(super) async fn merged_listing(&self, ino: u64) -> Result<Vec<DirItem>> {
        let mut items: BTreeMap<OsString, DirItem> = BTreeMap::new();
        let mut hidden: HashSet<OsString> = HashSet::new();
        let upper = match self.upper_stat(ino)? {
            Some((t, st))
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory =>
            {
                Some(t.open(OFlags::RDONLY | OFlags::DIRECTORY)?)
            }
            Some(_) => return Err(super::OverlayError::Errno(libc::ENOTDIR)),
            None => None,
        };
        if let Some(dir) = &upper {
            let mut d = rustix::fs::Dir::read_from(dir)?;
            while let Some(entry) = d.read() {
                let entry = entry?;
                let name = OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                // Only a regular file can be a whiteout: anything else is known from its
                // d_type, without a stat.
                let (kind, ino_hint) = match entry.file_type() {
                    rustix::fs::FileType::RegularFile | rustix::fs::FileType::Unknown => {
                        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(st) => st,
                            Err(e) if e == rustix::io::Errno::NOENT => continue,
                            Err(e) => return Err(e.into()),
                        };
                        if whiteout::is_whiteout(dir, name, &st) {
                            hidden.insert(name.to_os_string());
                            continue;
                        }
                        (file_type(st.st_mode), st.st_ino)
                    }
                    t => (file_type(t.as_raw_mode()), entry.ino()),
                };
                items.insert(
                    name.to_os_string(),
                    DirItem {
                        name: name.to_os_string(),
                        kind,
                        ino_hint,
                    },
                );
            }
        }
        if let Some(lower) = self.info(ino)?.lower {
            for child in self.lower.lower_children(lower).await?.iter() {
                let name = OsStr::from_bytes(&child.name).to_os_string();
                if items.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let kind = if child.node.kind.is_dir() {
                    FileType::Directory
                } else if child.node.kind == crate::remote::EntryKind::Symlink {
                    FileType::Symlink
                } else {
                    FileType::RegularFile
                };
                items.insert(
                    name.clone(),
                    DirItem {
                        name,
                        kind,
                        ino_hint: child.ino,
                    },
                );
            }
        }
        Ok(items.into_values().collect())
    }

    /// The listing READDIR sends for directory `ino`: `.`, `..` and the merged entries, in
    /// offset order. A directory whose name is gone lists nothing, as on a local filesystem.
    pub(super) async fn listing(&self, ino: u64) -> Result<Arc<Vec<Entry>>> {
        // Shared: no namespace change runs while the layers are read, so the generation read
        // here is the one the listing shows.
        let _ns = self.ns_lock.read().await;
        let generation = self.ns_gen.load(Ordering::SeqCst);
        if let Some(l) = self.last_listing().as_ref() {
            if l.ino == ino && l.generation == generation {
                return Ok(l.entries.clone());
            }
        }
        let info = self.info(ino)?;
        let entries = if info.detached {
            Vec::new()
        } else {
            let items = self.merged_listing(ino).await?;
            let mut entries = Vec::with_capacity(items.len() + 2);
            entries.push(Entry {
                off: 1,
                ino,
                kind: FileType::Directory,
                name: OsString::from("."),
            });
            entries.push(Entry {
                off: 2,
                ino: info.parent,
                kind: FileType::Directory,
                name: OsString::from(".."),
            });
            let mut named: Vec<Entry> = items
                .into_iter()
                .map(|i| Entry {
                    off: name_offset(i.name.as_bytes()),
                    ino: i.ino_hint,
                    kind: i.kind,
                    name: i.name,
                })
                .collect();
            named.sort_unstable_by(|a, b| (a.off, &a.name).cmp(&(b.off, &b.name)));
            entries.extend(named);
            entries
        };
        let entries = Arc::new(entries);
        *self.last_listing() = Some(Listing {
            ino,
            generation,
            entries: entries.clone(),
        });
        Ok(entries)
    }

    fn last_listing(&self) -> std::sync::MutexGuard<'_, Option<Listing>> {
        self.last_listing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// READDIR of `parent` after offset `offset`.
    pub(super) async fn read_dir(
        &self,
        parent: u64,
        offset: i64,
    ) -> Result<ReplyDirectory<Entries>> {
        let listing = self.listing(parent).await?;
        let entries: Vec<FuseResult<DirectoryEntry>> = listing
            .iter()
            .filter(|e| e.off > offset)
            .map(|e| {
                Ok(DirectoryEntry {
                    inode: e.ino,
                    kind: e.kind,
                    name: e.name.clone(),
                    offset: e.off,
                })
            })
            .collect();
        Ok(ReplyDirectory {
            entries: stream::iter(entries),
        })
    }

    /// READDIRPLUS of `parent` after offset `offset`: each entry but `.` and `..` counts as a
    /// kernel lookup (the kernel links neither); one that vanished meanwhile is left out.
    pub(super) async fn read_dir_plus(
        &self,
        parent: u64,
        offset: u64,
    ) -> Result<ReplyDirectoryPlus<EntriesPlus>> {
        let listing = self.listing(parent).await?;
        let mut entries = Vec::new();
        let mut template: Option<FileAttr> = None;
        for e in listing.iter().filter(|e| e.off as u64 > offset) {
            if e.off > 2 && e.kind != FileType::Directory {
                // Only directories go out with attributes (a walker goes into them next); the
                // rest with node id 0, looked up by the kernel on first use: a walk costs no
                // node here and no inode in the kernel per file. The attributes are ignored.
                let mut attr = match template {
                    Some(t) => t,
                    None => *template.insert(self.attr_of(parent).await?),
                };
                attr.ino = 0;
                attr.kind = e.kind;
                entries.push(Ok(DirectoryEntryPlus {
                    inode: e.ino,
                    generation: 0,
                    kind: e.kind,
                    name: e.name.clone(),
                    offset: e.off,
                    attr,
                    entry_ttl: std::time::Duration::ZERO,
                    attr_ttl: std::time::Duration::ZERO,
                }));
                continue;
            }
            let attr = if e.off <= 2 {
                self.attr_of(e.ino).await?
            } else {
                match self.lookup_entry(parent, &e.name).await {
                    Ok(found) => found.attr,
                    Err(OverlayError::Errno(libc::ENOENT)) => continue,
                    Err(e) => return Err(e),
                }
            };
            entries.push(Ok(DirectoryEntryPlus {
                inode: attr.ino,
                generation: 0,
                kind: attr.kind,
                name: e.name.clone(),
                offset: e.off,
                attr,
                entry_ttl: UPPER_TTL,
                attr_ttl: UPPER_TTL,
            }));
        }
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(entries),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::name_offset;

    #[test]
    fn offsets_follow_the_name_alone_and_leave_room_for_the_dots() {
        assert_eq!(name_offset(b"main.c"), name_offset(b"main.c"));
        assert_ne!(name_offset(b"main.c"), name_offset(b"main.h"));
        let offs: std::collections::HashSet<i64> = (0..10_000)
            .map(|i| name_offset(format!("f{i}").as_bytes()))
            .collect();
        assert_eq!(offs.len(), 10_000);
        assert!(offs.iter().all(|o| *o >= 3));
    }
}
