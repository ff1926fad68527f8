//! Building a CL layer directory from a change list, and swapping the one a live overlay
//! shows ([`OverlayFs::swap_cl`](super::OverlayFs::swap_cl)).
//!
//! Files the change list writes are fetched through the store (so they are verified and
//! cached like any blob) and written under the layer directory; files it deletes become
//! whiteouts. Only changes under the mounted path are kept, relative to it.
//!
//! A change list may hold symlinks (a directory turned into a link comes as "write the link"
//! and "delete what was under it"), so the layer is built from directory fds one component at
//! a time and never through a symlink: nothing it says can reach outside the layer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::{whiteout, OverlayError, Result};
use crate::beneath;
use crate::remote::{ClAction, ClChange, EntryKind};
use crate::store::Store;

/// Opens directory `rel` beneath `root`, making what is missing (0755); `None` when a file or
/// a symlink stands on the way.
fn make_dirs(root: &OwnedFd, rel: &Path) -> Result<Option<OwnedFd>> {
    let mut cur = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for part in rel.iter() {
        let open = |d: &OwnedFd| {
            rustix::fs::openat(
                d,
                part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        cur = match open(&cur) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&cur, part, Mode::from_raw_mode(0o755))?;
                open(&cur)?
            }
            Err(Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(Some(cur))
}

/// The path of change `c` relative to the mounted path `prefix` (`""`: the root); `None` when
/// it is not strictly under it.
pub fn under<'a>(c: &'a ClChange, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(c.path.as_str());
    }
    c.path
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
}

/// Writes the changes under `prefix` into the empty directory `dir`; returns how many.
pub async fn materialize(
    store: &Arc<Store>,
    changes: &[ClChange],
    prefix: &str,
    dir: &Path,
) -> Result<usize> {
    let root = beneath::open_dir(dir)?;
    let mut n = 0;
    for c in changes {
        let Some(rel) = under(c, prefix) else {
            continue;
        };
        if rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(OverlayError::Errno(libc::EINVAL));
        }
        let rel = Path::new(rel);
        let name = OsStr::from_bytes(rel.file_name().map(|n| n.as_bytes()).unwrap_or_default());
        let Some(pfd) = make_dirs(&root, rel.parent().unwrap_or(Path::new("")))? else {
            if c.action == ClAction::Delete {
                // Under an entry the change list made a file or a link: hidden already.
                continue;
            }
            return Err(OverlayError::Errno(libc::ENOTDIR));
        };
        // A later change at a path replaces what an earlier one put there.
        beneath::remove_entry(&pfd, name)?;
        match &c.action {
            ClAction::Delete => whiteout::make_whiteout(&pfd, name)?,
            ClAction::Write {
                oid,
                kind: EntryKind::Symlink,
            } => {
                let target = store
                    .blob_bytes(*oid)
                    .await
                    .map_err(|e| OverlayError::Io(std::io::Error::other(e.to_string())))?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &pfd, name)?;
            }
            ClAction::Write { oid, kind } => {
                let mut src = store
                    .open_blob(*oid)
                    .await
                    .map_err(|e| OverlayError::Io(std::io::Error::other(e.to_string())))?;
                let mode = if *kind == EntryKind::Executable {
                    0o755
                } else {
                    0o644
                };
                let mut dst = std::fs::File::from(rustix::fs::openat(
                    &pfd,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                )?);
                std::io::copy(&mut src, &mut dst)?;
                dst.flush()?;
            }
        }
        n += 1;
    }
    Ok(n)
}

/// What a CL swap changed, for the kernel's caches (in the overlay's inode numbers).
#[derive(Debug, Default)]
pub struct ClSwapped {
    /// Inodes whose attributes, pages or listing may show something else now.
    pub inodes: Vec<u64>,
    /// Names (parent inode, name) that may stand for something else now, names the kernel may
    /// remember as missing included.
    pub entries: Vec<(u64, std::ffi::OsString)>,
}

/// Every path in CL directory `dir` (whiteouts included), relative to it, into `out`.
fn layer_paths(dir: &OwnedFd, rel: &Path, out: &mut BTreeSet<PathBuf>) -> Result<()> {
    for (name, kind) in beneath::names(dir)? {
        let child = rel.join(&name);
        if kind == rustix::fs::FileType::Directory {
            let sub = rustix::fs::openat(
                dir,
                &name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            layer_paths(&sub, &child, out)?;
        }
        out.insert(child);
    }
    Ok(())
}

impl super::OverlayFs {
    /// Lays CL directory `dir` (`None`: none) under the upper layer in place of the one laid
    /// now, and points every inode the kernel knows at what it shows from then on; the upper
    /// layer is not touched. The caller holds every request to this overlay until this returns
    /// (none may see the new layer before the relink), then has the kernel drop what the answer
    /// names. On failure the layer laid before stays (EINVAL: the overlay's lower is not
    /// layered, see `Lower::layered`).
    pub async fn swap_cl(&self, dir: Option<&Path>) -> Result<ClSwapped> {
        let new = dir
            .map(super::lower::open_cl_dir)
            .transpose()?
            .map(Arc::new);
        if !self.lower.has_cl() {
            return Err(OverlayError::Errno(libc::EINVAL));
        }
        let _ns = self.ns_write().await;
        let old = self.lower.cl_dir();
        let mut paths = BTreeSet::new();
        for d in old.iter().chain(new.iter()) {
            layer_paths(d, Path::new(""), &mut paths)?;
        }
        self.lower.set_cl(new)?;
        let lower = &self.lower;
        let from_cl = |l: Option<u64>| l.is_some_and(|i| lower.from_cl(i));
        let stale = |old: Option<u64>, new: Option<u64>| from_cl(old) || from_cl(new);
        let mut inodes = match self.relink(&HashSet::new(), &stale).await {
            Ok(v) => v,
            Err(e) => {
                self.lower.set_cl(old)?;
                self.relink(&HashSet::new(), &|_, _| false).await?;
                return Err(e);
            }
        };
        let root = self.root_ino();
        inodes.push(root);
        let t = self.table();
        let by_name: HashMap<(u64, &OsStr), u64> = t
            .iter()
            .filter(|(i, n)| !n.detached && *i != root)
            .map(|(i, n)| ((n.parent, n.name.as_os_str()), i))
            .collect();
        let mut entries = BTreeSet::new();
        for p in &paths {
            let mut parent = root;
            for part in p.iter() {
                entries.insert((parent, part.to_os_string()));
                match by_name.get(&(parent, part)) {
                    Some(i) => parent = *i,
                    None => break,
                }
            }
        }
        for i in &inodes {
            if let Some(n) = t.get(*i).filter(|_| *i != root) {
                entries.insert((n.parent, n.name.clone()));
            }
        }
        Ok(ClSwapped {
            inodes,
            entries: entries.into_iter().collect(),
        })
    }
}
