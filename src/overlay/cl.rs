//! Building a CL layer directory from a change list.
//!
//! Files the change list writes are fetched through the store (so they are verified and
//! cached like any blob) and written under the layer directory; files it deletes become
//! whiteouts. Only changes under the mounted path are kept, relative to it.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use super::{whiteout, OverlayError, Result};
use crate::remote::{ClAction, ClChange, EntryKind};
use crate::store::Store;

/// Writes the changes under `prefix` into the empty directory `dir`; returns how many.
pub async fn materialize(
    store: &Arc<Store>,
    changes: &[ClChange],
    prefix: &str,
    dir: &Path,
) -> Result<usize> {
    use std::os::unix::fs::DirBuilderExt;
    let mut n = 0;
    for c in changes {
        let rel = if prefix.is_empty() {
            c.path.as_str()
        } else {
            match c
                .path
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r,
                None => continue,
            }
        };
        if rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(OverlayError::Errno(libc::EINVAL));
        }
        let path = dir.join(rel);
        let parent = path.parent().unwrap_or(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
        let pfd = rustix::fs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let name = OsStr::from_bytes(path.file_name().map(|n| n.as_bytes()).unwrap_or_default());
        let _ = std::fs::remove_file(&path);
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
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)?;
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
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
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
