//! The read-only side of an overlay: the Dicfuse subtree, optionally with a CL layer over it.
//!
//! A CL (change list) layer is a local directory holding the files a change list adds or
//! modifies, and whiteouts for what it deletes, laid over the commit. A plain lower's ids are
//! Dicfuse inodes and every call goes straight through; a layered one's ids index a table of
//! (CL path, Dicfuse inode) pairs, one per entry seen. A layered lower's CL directory may be
//! replaced or dropped while it serves ([`Lower::set_cl`]): its ids keep naming the same pairs,
//! which are read against the directory laid at the time of each call.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rfuse3::raw::reply::FileAttr;
use rfuse3::{FileType, Timestamp};
use rustix::fs::{AtFlags, Mode, OFlags};

use super::{whiteout, OverlayError, Result};
use crate::dicfuse::Dicfuse;
use crate::remote::EntryKind;

/// What a lower entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowerNode {
    /// Its kind, as git would say.
    pub kind: EntryKind,
}

/// A child in a lower listing.
#[derive(Clone, Debug)]
pub struct LowerChild {
    /// Name.
    pub name: Vec<u8>,
    /// Lower id.
    pub ino: u64,
    /// What it is.
    pub node: LowerNode,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClEntry {
    cl: Option<PathBuf>,
    dic: Option<u64>,
}

struct ClView {
    /// The CL directory laid now (`None`: none, the commit shows through).
    dir: std::sync::RwLock<Option<Arc<rustix::fd::OwnedFd>>>,
    table: Mutex<(Vec<ClEntry>, HashMap<ClEntry, u64>)>,
    owner: (u32, u32),
}

impl ClView {
    fn dir(&self) -> Option<Arc<rustix::fd::OwnedFd>> {
        self.dir.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The CL directory, for an entry that is in it: ENOENT when none is laid now.
    fn dir_fd(&self) -> Result<Arc<rustix::fd::OwnedFd>> {
        self.dir().ok_or(OverlayError::Errno(libc::ENOENT))
    }
}

/// Opens CL directory `dir` to lay it (a path fd: everything in it is reached beneath it).
pub fn open_cl_dir(dir: &Path) -> std::io::Result<rustix::fd::OwnedFd> {
    Ok(rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The lower layer of one overlay.
pub struct Lower {
    dic: Arc<Dicfuse>,
    cl: Option<ClView>,
}

fn kind_of_mode(mode: u32) -> EntryKind {
    match rustix::fs::FileType::from_raw_mode(mode) {
        rustix::fs::FileType::Directory => EntryKind::Dir,
        rustix::fs::FileType::Symlink => EntryKind::Symlink,
        _ if mode & 0o111 != 0 => EntryKind::Executable,
        _ => EntryKind::File,
    }
}

impl Lower {
    /// The Dicfuse subtree alone.
    pub fn plain(dic: Arc<Dicfuse>) -> Lower {
        Lower { dic, cl: None }
    }

    /// The CL directory `cl_dir` over Dicfuse directory `root`; returns the lower and its root id.
    pub fn with_cl(
        dic: Arc<Dicfuse>,
        root: Option<u64>,
        cl_dir: &Path,
        owner: (u32, u32),
    ) -> std::io::Result<(Lower, u64)> {
        Self::layered(dic, root, Some(cl_dir), owner)
    }

    /// A layered lower over Dicfuse directory `root`, with CL directory `cl_dir` if given (one
    /// may be laid or dropped later with [`Lower::set_cl`]); returns the lower and its root id.
    pub fn layered(
        dic: Arc<Dicfuse>,
        root: Option<u64>,
        cl_dir: Option<&Path>,
        owner: (u32, u32),
    ) -> std::io::Result<(Lower, u64)> {
        let dir = cl_dir.map(open_cl_dir).transpose()?;
        let root_entry = ClEntry {
            cl: Some(PathBuf::new()),
            dic: root,
        };
        let mut map = HashMap::new();
        map.insert(root_entry.clone(), 1);
        let view = ClView {
            dir: std::sync::RwLock::new(dir.map(Arc::new)),
            table: Mutex::new((vec![root_entry], map)),
            owner,
        };
        Ok((
            Lower {
                dic,
                cl: Some(view),
            },
            1,
        ))
    }

    /// Whether the lower is layered: a change-list layer sits, or may be laid, over the commit
    /// (its ids are not Dicfuse's).
    pub fn has_cl(&self) -> bool {
        self.cl.is_some()
    }

    /// Lays CL directory `dir` over the commit in place of the current one (`None`: none).
    /// Ids stay valid; what they show is read from `dir` from now on. The caller re-resolves
    /// the entries it holds (their pairs may differ now) and holds requests meanwhile. EINVAL
    /// for a plain lower.
    pub fn set_cl(&self, dir: Option<Arc<rustix::fd::OwnedFd>>) -> Result<()> {
        let cl = self.cl.as_ref().ok_or(OverlayError::Errno(libc::EINVAL))?;
        *cl.dir.write().unwrap_or_else(|p| p.into_inner()) = dir;
        Ok(())
    }

    /// The CL directory laid now, if any.
    pub fn cl_dir(&self) -> Option<Arc<rustix::fd::OwnedFd>> {
        self.cl.as_ref().and_then(ClView::dir)
    }

    /// Whether lower entry `ino` is shown from the CL directory (its content may change when
    /// the directory is replaced).
    pub fn from_cl(&self, ino: u64) -> bool {
        self.cl
            .as_ref()
            .is_some_and(|cl| self.entry(cl, ino).is_ok_and(|e| e.cl.is_some()))
    }

    /// The Dicfuse view underneath.
    pub fn dicfuse(&self) -> &Arc<Dicfuse> {
        &self.dic
    }

    fn entry(&self, cl: &ClView, id: u64) -> Result<ClEntry> {
        let t = cl.table.lock().unwrap_or_else(|p| p.into_inner());
        id.checked_sub(1)
            .and_then(|i| t.0.get(i as usize))
            .cloned()
            .ok_or(OverlayError::Errno(libc::ENOENT))
    }

    fn intern(cl: &ClView, e: ClEntry) -> u64 {
        let mut t = cl.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = t.1.get(&e) {
            return *id;
        }
        t.0.push(e.clone());
        let id = t.0.len() as u64;
        t.1.insert(e, id);
        id
    }

    fn cl_stat(cl: &ClView, rel: &Path) -> Result<Option<rustix::fs::Stat>> {
        let p: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let Some(dir) = cl.dir() else {
            return Ok(None);
        };
        match rustix::fs::statat(&*dir, p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the CL entry at `rel` is a whiteout (or an opaque directory, for `opaque`).
    fn cl_mark(cl: &ClView, rel: &Path, st: &rustix::fs::Stat, opaque: bool) -> Result<bool> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let Some(name) = rel.file_name() else {
            return Ok(false);
        };
        let p: &Path = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir = rustix::fs::openat(
            &*cl.dir_fd()?,
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(if opaque {
            whiteout::is_opaque(&dir, name)
        } else {
            whiteout::is_whiteout(&dir, name, st)
        })
    }

    /// The child `name` of lower directory `parent`.
    pub async fn lower_lookup(&self, parent: u64, name: &[u8]) -> Result<Option<(u64, LowerNode)>> {
        let Some(cl) = &self.cl else {
            return Ok(self
                .dic
                .lower_lookup(parent, name)
                .await?
                .map(|(i, n)| (i, LowerNode { kind: n.kind })));
        };
        let e = self.entry(cl, parent)?;
        let mut cl_hit = None;
        if let Some(rel) = &e.cl {
            let child = rel.join(OsStr::from_bytes(name));
            if let Some(st) = Self::cl_stat(cl, &child)? {
                if Self::cl_mark(cl, &child, &st, false)? {
                    return Ok(None);
                }
                let opaque = Self::cl_mark(cl, &child, &st, true)?;
                cl_hit = Some((child, kind_of_mode(st.st_mode), opaque));
            }
        }
        let dic_hit = match e.dic {
            Some(d) => self.dic.lower_lookup(d, name).await?,
            None => None,
        };
        let entry = match (cl_hit, dic_hit) {
            (Some((rel, kind, opaque)), dic) => {
                let merged = dic
                    .filter(|(_, n)| kind == EntryKind::Dir && n.kind.is_dir() && !opaque)
                    .map(|(i, _)| i);
                (
                    ClEntry {
                        cl: Some(rel),
                        dic: merged,
                    },
                    kind,
                )
            }
            (None, Some((i, n))) => (
                ClEntry {
                    cl: None,
                    dic: Some(i),
                },
                n.kind,
            ),
            (None, None) => return Ok(None),
        };
        Ok(Some((
            Self::intern(cl, entry.0),
            LowerNode { kind: entry.1 },
        )))
    }

    /// The children of lower directory `ino`, sorted by name.
    pub async fn lower_children(&self, ino: u64) -> Result<Vec<LowerChild>> {
        let Some(cl) = &self.cl else {
            return Ok(self
                .dic
                .lower_children(ino)
                .await?
                .iter()
                .map(|c| LowerChild {
                    name: c.name().to_vec(),
                    ino: c.ino,
                    node: LowerNode { kind: c.node.kind },
                })
                .collect());
        };
        let e = self.entry(cl, ino)?;
        let mut names: Vec<Vec<u8>> = Vec::new();
        if let (Some(rel), Some(dir)) = (&e.cl, cl.dir()) {
            let listed = crate::beneath::open(&*dir, rel, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(std::io::Error::from)
                .and_then(crate::beneath::names);
            if let Ok(listed) = listed {
                names.extend(listed.into_iter().map(|(n, _)| n.as_bytes().to_vec()));
            }
        }
        if let Some(d) = e.dic {
            names.extend(
                self.dic
                    .lower_children(d)
                    .await?
                    .iter()
                    .map(|c| c.name().to_vec()),
            );
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some((i, node)) = self.lower_lookup(ino, &name).await? {
                out.push(LowerChild { name, ino: i, node });
            }
        }
        Ok(out)
    }

    /// What lower entry `ino` is.
    pub async fn lower_node(&self, ino: u64) -> Result<LowerNode> {
        let Some(cl) = &self.cl else {
            return Ok(LowerNode {
                kind: self.dic.lower_node(ino)?.kind,
            });
        };
        let e = self.entry(cl, ino)?;
        match (&e.cl, e.dic) {
            (Some(rel), _) => {
                let st = Self::cl_stat(cl, rel)?.ok_or(OverlayError::Errno(libc::ENOENT))?;
                Ok(LowerNode {
                    kind: kind_of_mode(st.st_mode),
                })
            }
            (None, Some(d)) => Ok(LowerNode {
                kind: self.dic.lower_node(d)?.kind,
            }),
            (None, None) => Err(OverlayError::Errno(libc::ENOENT)),
        }
    }

    /// Attributes of lower entry `ino`.
    pub async fn lower_attr(&self, ino: u64) -> Result<FileAttr> {
        let Some(cl) = &self.cl else {
            return Ok(self.dic.lower_attr(ino).await?);
        };
        let e = self.entry(cl, ino)?;
        match (&e.cl, e.dic) {
            (Some(rel), dic) => {
                let st = Self::cl_stat(cl, rel)?.ok_or(OverlayError::Errno(libc::ENOENT))?;
                // CL entries look like the commit's: owned by the mount's owner, 0644/0755.
                let kind = kind_of_mode(st.st_mode);
                let mut a = match dic {
                    Some(d) => self.dic.lower_attr(d).await?,
                    None => self.dic.lower_attr(crate::store::ROOT_INO).await?,
                };
                let (ft, perm) = match kind {
                    EntryKind::Dir | EntryKind::Submodule => (FileType::Directory, 0o755),
                    EntryKind::Symlink => (FileType::Symlink, 0o777),
                    EntryKind::Executable => (FileType::RegularFile, 0o755),
                    EntryKind::File => (FileType::RegularFile, 0o644),
                };
                a.kind = ft;
                a.perm = perm;
                a.size = if ft == FileType::Directory {
                    4096
                } else {
                    st.st_size as u64
                };
                a.blocks = a.size.div_ceil(512);
                a.nlink = if ft == FileType::Directory { 2 } else { 1 };
                a.uid = cl.owner.0;
                a.gid = cl.owner.1;
                let t = Timestamp::new(st.st_mtime, st.st_mtime_nsec as u32);
                a.mtime = t;
                a.ctime = t;
                a.atime = t;
                a.ino = ino;
                Ok(a)
            }
            (None, Some(d)) => Ok(self.dic.lower_attr(d).await?),
            (None, None) => Err(OverlayError::Errno(libc::ENOENT)),
        }
    }

    /// A readable file with the content of lower entry `ino`.
    pub async fn lower_open(&self, ino: u64) -> Result<File> {
        let Some(cl) = &self.cl else {
            return Ok(self.dic.lower_open(ino).await?);
        };
        let e = self.entry(cl, ino)?;
        match (&e.cl, e.dic) {
            (Some(rel), _) => Ok(File::from(crate::beneath::open(
                &*cl.dir_fd()?,
                rel,
                OFlags::RDONLY,
            )?)),
            (None, Some(d)) => Ok(self.dic.lower_open(d).await?),
            (None, None) => Err(OverlayError::Errno(libc::ENOENT)),
        }
    }

    /// The target of lower symlink `ino`.
    pub async fn lower_readlink(&self, ino: u64) -> Result<Bytes> {
        let Some(cl) = &self.cl else {
            return Ok(self.dic.lower_readlink(ino).await?);
        };
        let e = self.entry(cl, ino)?;
        match (&e.cl, e.dic) {
            (Some(rel), _) => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let name = rel.file_name().ok_or(OverlayError::Errno(libc::EINVAL))?;
                let dir =
                    crate::beneath::open(&*cl.dir_fd()?, parent, OFlags::PATH | OFlags::DIRECTORY)?;
                Ok(Bytes::from(
                    rustix::fs::readlinkat(&dir, name, Vec::new())?.into_bytes(),
                ))
            }
            (None, Some(d)) => Ok(self.dic.lower_readlink(d).await?),
            (None, None) => Err(OverlayError::Errno(libc::ENOENT)),
        }
    }
}
