//! Pruning the upper layer after a push moved the base: upper entries equal to the new base
//! leave the upper layer, and every inode the kernel knows is pointed at its entry in the new
//! base.
//!
//! Only what the new base shows exactly leaves: same kind, content, executable bit, the
//! permissions and owner the lower layer shows, one link, no extended attributes of the user's.
//! Anything else (an edit made while the push was in flight, a `chmod 600`, an empty directory
//! git cannot hold) stays. All of this runs under `ns_lock` held exclusively, and every write
//! resolves its file under that lock, so no write can slip in between the check and the
//! removal. A file that is open may leave too: the next write to its inode copies it up again
//! from the new base, which has the same bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::{whiteout, OverlayFs, Result};
use crate::beneath;
use crate::remote::EntryKind;

/// What pruning after a push did.
#[derive(Clone, Debug, Default)]
pub struct Pruned {
    /// Upper entries removed because the base now has them.
    pub dropped: usize,
    /// Inodes whose cached attributes and pages the kernel must drop. Names need no
    /// invalidation: a push changes no name's inode, and the merged view shows the same entries
    /// before and after it (only the metadata of what left the upper layer changes).
    pub forget: Vec<u64>,
}

/// Opens `name` in `dir` as a directory to read, never through a symlink.
fn open_sub(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Whether `name` in `dir` carries no extended attribute but Scorpio's own marks.
fn only_private_xattrs(dir: &OwnedFd, name: &OsStr) -> bool {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::llistxattr(whiteout::xattr_path(dir, name), &mut buf[..]) {
        Ok(n) => buf[..n]
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .all(whiteout::is_private_xattr),
        Err(e) => e == rustix::io::Errno::NOTSUP,
    }
}

impl OverlayFs {
    /// Prunes this overlay's upper layer down to what differs from the base its lower layer now
    /// shows, and points known inodes at the new base (see the module comment).
    pub async fn prune_pushed(&self) -> Result<Pruned> {
        let _ns = self.ns_write().await;
        let mut dropped = HashSet::new();
        if self.lower.has_cl() {
            // A CL layer sits between; what it shows did not move with the push.
            tracing::info!(upper = %self.upper_path.display(), "a mount with a change list keeps its upper layer after a push");
        } else {
            let root_lower = self.info(self.root_ino())?.lower;
            let root = open_sub(&self.upper_fd, OsStr::new("."))?;
            Box::pin(self.prune_dir(&root, Path::new(""), root_lower, &mut dropped)).await?;
        }
        let forget = self.relink(&dropped, &|_, _| false).await?;
        Ok(Pruned {
            dropped: dropped.len(),
            forget,
        })
    }

    /// The inodes of this overlay whose lower directory is one of `lowers`, each with that
    /// lower directory (after a pull changed those directories' entries: the kernel must forget
    /// the names it cached in them). One pass over the node table.
    pub fn over_lower(&self, lowers: &HashSet<u64>) -> Vec<(u64, u64)> {
        self.table()
            .iter()
            .filter_map(|(ino, n)| n.lower.filter(|l| lowers.contains(l)).map(|l| (ino, l)))
            .collect()
    }

    /// Whether upper file or symlink `name` in `dir` (stat `st`) is exactly lower entry `lower`.
    async fn same_entry(&self, dir: &OwnedFd, name: &OsStr, st: &Stat, lower: u64) -> Result<bool> {
        let node = self.lower.dicfuse().lower_node(lower)?;
        let (uid, gid) = self.lower.dicfuse().owner();
        if st.st_nlink != 1 || (st.st_uid, st.st_gid) != (uid, gid) {
            return Ok(false);
        }
        let perm = st.st_mode & 0o7777;
        let kind_ok = match (FileType::from_raw_mode(st.st_mode), node.kind) {
            (FileType::RegularFile, EntryKind::File) => perm == 0o644,
            (FileType::RegularFile, EntryKind::Executable) => perm == 0o755,
            (FileType::Symlink, EntryKind::Symlink) => true,
            _ => false,
        };
        if !kind_ok || !only_private_xattrs(dir, name) {
            return Ok(false);
        }
        // Through the directory's fd: `name` itself is looked at, never followed.
        let id = crate::remote::object::git_identity(&whiteout::xattr_path(dir, name))?;
        Ok(id.map(|(_, oid)| oid) == node.oid)
    }

    /// Whether a directory's metadata is what the lower layer shows for a directory.
    fn plain_dir(&self, dir: &OwnedFd, name: &OsStr, st: &Stat) -> bool {
        st.st_mode & 0o7777 == 0o755
            && (st.st_uid, st.st_gid) == self.lower.dicfuse().owner()
            && only_private_xattrs(dir, name)
    }

    /// Whether upper directory `dir` holds exactly what lower directory `lower` holds.
    async fn same_tree(&self, dir: &OwnedFd, lower: u64) -> Result<bool> {
        let mut upper_names = Vec::new();
        for (name, _) in beneath::names(dir)? {
            let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            if whiteout::is_whiteout(dir, &name, &st) {
                return Ok(false);
            }
            upper_names.push((name, st));
        }
        let lower_children = self.lower.dicfuse().lower_children(lower).await?;
        if lower_children.len() != upper_names.len() {
            return Ok(false);
        }
        for (name, st) in upper_names {
            // Listings come sorted by name.
            let Ok(i) = lower_children.binary_search_by(|c| c.name().cmp(name.as_bytes())) else {
                return Ok(false);
            };
            let l = &lower_children[i];
            let same = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                l.node.kind.is_dir()
                    && self.plain_dir(dir, &name, &st)
                    && Box::pin(self.same_tree(&open_sub(dir, &name)?, l.ino)).await?
            } else {
                self.same_entry(dir, &name, &st, l.ino).await?
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes from upper directory `dir` (at `rel`, merged with lower directory `lower`) what
    /// the lower layer now shows exactly, recording the removed paths. Everything is reached
    /// from `dir`'s fd, so a symlink in the layer is only ever looked at or removed itself.
    async fn prune_dir(
        &self,
        dir: &OwnedFd,
        rel: &Path,
        lower: Option<u64>,
        dropped: &mut HashSet<PathBuf>,
    ) -> Result<()> {
        for (name, _) in beneath::names(dir)? {
            let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            let low = match lower {
                Some(l) => self.lower.lower_lookup(l, name.as_bytes()).await?,
                None => None,
            };
            let child_rel = rel.join(&name);
            if whiteout::is_whiteout(dir, &name, &st) {
                if low.is_none() {
                    rustix::fs::unlinkat(dir, &name, AtFlags::empty())?;
                    dropped.insert(child_rel);
                }
                continue;
            }
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let low_dir = low.filter(|(_, n)| n.kind.is_dir()).map(|(i, _)| i);
                let sub = open_sub(dir, &name)?;
                if whiteout::is_opaque(dir, &name) {
                    if let Some(l) = low_dir {
                        if self.plain_dir(dir, &name, &st) && self.same_tree(&sub, l).await? {
                            beneath::remove_entry(dir, &name)?;
                            dropped.insert(child_rel);
                        }
                    }
                    continue;
                }
                Box::pin(self.prune_dir(&sub, &child_rel, low_dir, dropped)).await?;
                if low_dir.is_some()
                    && self.plain_dir(dir, &name, &st)
                    && beneath::names(&sub)?.is_empty()
                {
                    rustix::fs::unlinkat(dir, &name, AtFlags::REMOVEDIR)?;
                    dropped.insert(child_rel);
                }
                continue;
            }
            if let Some((l, _)) = low {
                if self.same_entry(dir, &name, &st, l).await? {
                    rustix::fs::unlinkat(dir, &name, AtFlags::empty())?;
                    dropped.insert(child_rel);
                }
            }
        }
        Ok(())
    }

    /// Points every known inode at its entry in the new base; returns the inodes whose kernel
    /// caches must go (their lower entry changed, their upper entry was dropped, or `stale`
    /// says so of their old and new lower entries).
    pub(super) async fn relink(
        &self,
        dropped: &HashSet<PathBuf>,
        stale: &(dyn Fn(Option<u64>, Option<u64>) -> bool + Sync),
    ) -> Result<Vec<u64>> {
        let root = self.root_ino();
        let (mut children, lowers) = {
            let t = self.table();
            let mut children: HashMap<u64, Vec<(u64, OsString)>> = HashMap::new();
            let mut lowers = HashMap::new();
            for (ino, n) in t.iter() {
                lowers.insert(ino, n.lower);
                if ino != root {
                    children
                        .entry(n.parent)
                        .or_default()
                        .push((ino, n.name.clone()));
                }
            }
            (children, lowers)
        };
        let mut forget = Vec::new();
        let mut fresh: HashMap<u64, Option<u64>> = HashMap::new();
        fresh.insert(root, lowers.get(&root).copied().flatten());
        let mut queue = VecDeque::from([(root, PathBuf::new())]);
        while let Some((parent, rel)) = queue.pop_front() {
            let Some(kids) = children.remove(&parent) else {
                continue;
            };
            let pl = fresh.get(&parent).copied().flatten();
            let pdir = self.open_upper_dir(&rel)?;
            for (ino, name) in kids {
                let upper = match &pdir {
                    Some(d) => match rustix::fs::statat(d, &name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => Some(st),
                        Err(e) if e == rustix::io::Errno::NOENT => None,
                        Err(e) => return Err(e.into()),
                    },
                    None => None,
                };
                let low = match pl {
                    Some(l) => self.lower.lower_lookup(l, name.as_bytes()).await?,
                    None => None,
                };
                let new = self.merged_lower(pdir.as_ref(), &name, upper.as_ref(), low);
                fresh.insert(ino, new);
                let child_rel = rel.join(&name);
                let old = lowers.get(&ino).copied().flatten();
                if new != old || dropped.contains(&child_rel) || stale(old, new) {
                    self.table().set_lower(ino, new);
                    forget.push(ino);
                }
                queue.push_back((ino, child_rel));
            }
        }
        Ok(forget)
    }
}
