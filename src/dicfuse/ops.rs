//! The rfuse3 `Filesystem` implementation of Dicfuse.
//!
//! Every write is EROFS. Lookups of missing names are answered with a negative entry that the
//! kernel may cache as long as positive ones, since the commit never changes.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use bytes::Bytes;
use futures::stream::{self, Stream};
use rfuse3::raw::prelude::*;
use rfuse3::raw::reply::FileAttr;
use rfuse3::{Result, SetAttr};

use super::{DicError, Dicfuse, LOWER_TTL};
use crate::remote::EntryKind;
use crate::store::{Node, ROOT_INO};

fn erofs<T>() -> Result<T> {
    Err(libc::EROFS.into())
}

impl Dicfuse {
    fn negative_entry(&self) -> ReplyEntry {
        let mut attr = self.attr_with(0, &root_like(), 0);
        attr.ino = 0;
        ReplyEntry {
            ttl: LOWER_TTL,
            attr,
            generation: 0,
        }
    }

    async fn do_lookup(
        &self,
        parent: u64,
        name: &OsStr,
    ) -> std::result::Result<ReplyEntry, DicError> {
        let children = self.children(parent).await?;
        let name = name.as_bytes();
        let Ok(i) = children.binary_search_by(|c| c.name().cmp(name)) else {
            return Ok(self.negative_entry());
        };
        let child = &children[i];
        if !child.node.kind.is_dir() {
            self.pressure.file_looked_up();
        }
        let attr = self.attr(child.ino, &child.node).await?;
        Ok(ReplyEntry {
            ttl: LOWER_TTL,
            attr,
            generation: 0,
        })
    }

    /// Whether a file of directory `parent` has a size not known yet.
    async fn sizes_unknown(&self, parent: u64) -> std::result::Result<bool, DicError> {
        Ok(self
            .children(parent)
            .await?
            .iter()
            .any(|c| !c.node.kind.is_dir() && c.node.size.is_none()))
    }

    /// The entries of directory `parent` from position `skip` on (`.` is 0, `..` is 1, then the
    /// children in name order), each with its position + 1 as the offset to resume after it.
    pub(super) async fn dir_entries(
        &self,
        parent: u64,
        skip: usize,
    ) -> std::result::Result<Vec<DirEntry>, DicError> {
        let children = self.children(parent).await?;
        let mut out = Vec::with_capacity((children.len() + 2).saturating_sub(skip));
        // Both dot entries are directories, whose attributes depend on their numbers only:
        // of the directory's own entry, only its parent's number is read.
        if skip < 2 {
            let up = if parent == ROOT_INO {
                ROOT_INO
            } else {
                self.store
                    .inodes
                    .parent_of(parent)?
                    .ok_or(DicError::NoEntry)?
            };
            if skip == 0 {
                self.lister.reader_lists(parent, up, &children);
            }
            let dir = root_like();
            for i in skip..2 {
                let (ino, name) = if i == 0 { (parent, ".") } else { (up, "..") };
                out.push(DirEntry {
                    offset: i as i64 + 1,
                    kind: FileType::Directory,
                    name: OsString::from(name),
                    attr: self.attr_with(ino, &dir, 4096),
                    known: true,
                });
            }
        }
        for (i, c) in children.iter().enumerate().skip(skip.saturating_sub(2)) {
            let known = c.node.kind.is_dir() || c.node.size.is_some();
            let size = if c.node.kind.is_dir() {
                4096
            } else {
                c.node.size.unwrap_or(0)
            };
            let attr = self.attr_with(c.ino, &c.node, size);
            out.push(DirEntry {
                offset: i as i64 + 3,
                kind: attr.kind,
                name: OsStr::from_bytes(c.name()).to_os_string(),
                attr,
                known,
            });
        }
        Ok(out)
    }
}

/// One entry of a listing as READDIR and READDIRPLUS send it.
pub(super) struct DirEntry {
    /// Where the next READDIR resumes.
    pub(super) offset: i64,
    pub(super) kind: FileType,
    pub(super) name: OsString,
    /// Attributes, the inode number among them (with size 0 when it is not `known`).
    pub(super) attr: FileAttr,
    /// Whether the size is known.
    pub(super) known: bool,
}

/// A stand-in node for attributes that carry no entry.
fn root_like() -> Node {
    Node {
        parent: ROOT_INO,
        name: Vec::new(),
        kind: EntryKind::Dir,
        oid: None,
        size: None,
    }
}

impl Filesystem for Dicfuse {
    async fn init(&self, _req: Request) -> Result<ReplyInit> {
        Ok(ReplyInit::default())
    }

    async fn destroy(&self, _req: Request) {}

    refuse!(libc::EROFS: setattr, symlink, mknod, mkdir, unlink, rmdir, rename, rename2, link);
    refuse!(libc::EROFS: write, setxattr, removexattr, create, fallocate);

    async fn lookup(&self, _req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        Ok(self.do_lookup(parent, name).await?)
    }

    /// Inodes of a commit are permanent (persisted in sled), so there is nothing to release.
    async fn forget(&self, _req: Request, _inode: u64, _nlookup: u64) {}

    async fn batch_forget(&self, _req: Request, _inodes: &[(u64, u64)]) {}

    method!(fn getattr(self, _req, inode, _fh, _flags) {
        let node = self.node(inode)?;
        let attr = self.attr(inode, &node).await?;
        Ok(ReplyAttr {
            ttl: LOWER_TTL,
            attr,
        })
    });

    async fn readlink(&self, _req: Request, inode: u64) -> Result<ReplyData> {
        let node = self.node(inode)?;
        if node.kind != EntryKind::Symlink {
            return Err(DicError::NotLink.into());
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        let data = self.store.blob_bytes(oid).await.map_err(DicError::from)?;
        Ok(ReplyData { data })
    }

    // Opens are zero-message (see `NO_OPEN`): the kernel keeps no handle of ours, so reads
    // find the blob by inode and the first read of a file is what fetches its content.
    method!(fn open(self, _req, _inode, _flags) {
        Err(crate::NO_OPEN.into())
    });

    method!(fn read(self, _req, inode, _fh, offset, size) {
        let node = self.node(inode)?;
        if node.kind.is_dir() {
            return Err(DicError::IsDir.into());
        }
        let oid = node.oid.ok_or(DicError::NoEntry)?;
        let file = self.open_blob_of(&node, oid).await?;
        let data = crate::fileio::read_full_at(&file, offset, size as usize).map_err(|e| {
            tracing::error!(error = %e, "reading a cached object failed");
            libc::EIO
        })?;
        Ok(ReplyData { data })
    });

    async fn statfs(&self, _req: Request, _inode: u64) -> Result<ReplyStatFs> {
        let used = self.store.disk_bytes().div_ceil(4096);
        let files = self.store.inodes.len() as u64;
        Ok(ReplyStatFs {
            blocks: used,
            bfree: 0,
            bavail: 0,
            files,
            ffree: 0,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
        })
    }

    method!(fn release(self, _req, _inode, _fh, _flags, _lock_owner, _flush) {
        Ok(())
    });

    async fn fsync(&self, _req: Request, _inode: u64, _fh: u64, _datasync: bool) -> Result<()> {
        Ok(())
    }

    async fn getxattr(
        &self,
        _req: Request,
        inode: u64,
        _name: &OsStr,
        _size: u32,
    ) -> Result<ReplyXAttr> {
        self.node(inode)?;
        Err(libc::ENODATA.into())
    }

    async fn listxattr(&self, _req: Request, inode: u64, size: u32) -> Result<ReplyXAttr> {
        self.node(inode)?;
        Ok(if size == 0 {
            ReplyXAttr::Size(0)
        } else {
            ReplyXAttr::Data(Bytes::new())
        })
    }

    async fn flush(&self, _req: Request, _inode: u64, _fh: u64, _lock_owner: u64) -> Result<()> {
        Ok(())
    }

    /// Directories are opened without the daemon (`crate::NO_OPENDIR`): the kernel then keeps
    /// their listings in its readdir cache, and a walk costs no OPENDIR and RELEASEDIR.
    async fn opendir(&self, _req: Request, inode: u64, _flags: u32) -> Result<ReplyOpen> {
        if !self.node(inode)?.kind.is_dir() {
            return Err(DicError::NotDir.into());
        }
        Err(crate::NO_OPENDIR.into())
    }

    method!(fn readdir(self, _req, parent, _fh, offset) {
        let entries = self.dir_entries(parent, offset.max(0) as usize).await?;
        let items: Vec<Result<DirectoryEntry>> = entries
            .into_iter()
            .map(|e| {
                Ok(DirectoryEntry {
                    inode: e.attr.ino,
                    kind: e.kind,
                    name: e.name,
                    offset: e.offset,
                })
            })
            .collect();
        Ok(ReplyDirectory {
            entries: stream::iter(items),
        })
    });

    async fn releasedir(&self, _req: Request, _inode: u64, _fh: u64, _flags: u32) -> Result<()> {
        Ok(())
    }

    method!(fn access(self, _req, inode, mask) {
        self.node(inode)?;
        if mask as i32 & libc::W_OK != 0 {
            return erofs();
        }
        Ok(())
    });

    method!(fn readdirplus(self, _req, parent, _fh, offset, _lock_owner) {
        let files = self.pressure.files_wanted();
        if files && self.store.sizes_in_bulk() && self.sizes_unknown(parent).await? {
            // Sizes cheap to ask a directory at a time (a local repository) come with the
            // listing, so the files' attributes do.
            self.learn_sizes(parent).await?;
        }
        let entries = self.dir_entries(parent, offset as usize).await?;
        let items: Vec<Result<DirectoryEntryPlus>> = entries
            .into_iter()
            .map(|DirEntry { offset, kind, name, mut attr, known }| {
                let inode = attr.ino;
                // Directories go out with attributes (a walker goes into them next), files only
                // while readers look files up (`LookupPressure`). Other entries go with node id
                // 0, listed, and looked up by the kernel on first use: a walk that only lists
                // then makes the kernel allocate no inode per file (at a million files, most of
                // the walk's time and ~1 GB of kernel memory), and no entry goes out with a size
                // the remote has not told yet.
                let ttl = if known && (kind == FileType::Directory || files) {
                    LOWER_TTL
                } else {
                    attr.ino = 0;
                    std::time::Duration::ZERO
                };
                Ok(DirectoryEntryPlus {
                    inode,
                    generation: 0,
                    kind,
                    name,
                    offset,
                    attr,
                    entry_ttl: ttl,
                    attr_ttl: ttl,
                })
            })
            .collect();
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(items),
        })
    });
}
