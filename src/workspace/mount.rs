//! Mounting and unmounting a writable path: checks, the layer directories, the overlay (made
//! by `overlay::assemble`), its record, the router, and the wait until the kernel shows it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::records::Record;
use super::{busy, normalize, overlaps, shown, MountError, MountInfo, WritablePaths};
use crate::overlay::assemble::{self, Assembly, ClLayer, ClSource};
use crate::store::ROOT_INO;

impl WritablePaths {
    /// Mounts `path` writable.
    pub async fn mount(&self, path: &str, cl: Option<&str>) -> Result<MountInfo, MountError> {
        let path = normalize(path)?;
        let cl = cl.map(str::trim).filter(|c| !c.is_empty());
        if let Some(c) = cl {
            assemble::check_cl_name(c)?;
        }
        let mut active = self.active.lock().await;
        if active.contains_key(&path) {
            return Err(MountError::AlreadyMounted(path));
        }
        if let Some(other) = active.keys().find(|m| overlaps(&path, m)) {
            return Err(MountError::Overlaps(path, other.clone()));
        }
        let dir = assemble::resolve_dir(&self.dic, &path).await?;
        let lower = dir.ino;
        let slot = self
            .slots
            .next()
            .map_err(|e| MountError::Internal(e.to_string()))?;
        let info = self.info(&path);
        let layer = self.layers.join(&info.id);
        // A refused mount (an unknown CL, a CL with nothing here) leaves no trace on disk.
        let fresh = !layer.exists();
        make_private_dir(&layer).map_err(|e| MountError::Internal(e.to_string()))?;
        write_private(&layer.join("path"), path.as_bytes())
            .map_err(|e| MountError::Internal(e.to_string()))?;
        if !info.upper.exists() {
            // The upper root stands for the mounted directory: same mode, owner and times.
            let a = self
                .dic
                .lower_attr(lower)
                .await
                .map_err(|e| MountError::Internal(e.to_string()))?;
            init_upper_root(&info.upper, &a).map_err(|e| MountError::Internal(e.to_string()))?;
        }
        let cl_dir = layer.join("cl");
        let ovl = assemble::assemble(
            &self.dic,
            Assembly {
                path: &path,
                dir: &dir,
                cl: cl.map(|name| ClLayer {
                    name,
                    dir: &cl_dir,
                    source: ClSource::FetchOrReuse,
                }),
                upper: &info.upper,
                work: &layer.join("work"),
                slot,
            },
        )
        .await
        .inspect_err(|_| {
            if fresh {
                let _ = std::fs::remove_dir_all(&layer);
            }
        })?;
        let ovl = Arc::new(ovl);
        let at = if path.is_empty() {
            None
        } else {
            Some((
                dir.parent,
                OsString::from(String::from_utf8_lossy(&dir.name).into_owned()),
            ))
        };
        if active.is_empty() && self.router.is_live() {
            // Before the record: a workspace that cannot be made writable mounts nothing.
            self.kernel.set_read_only(false).await.map_err(|e| {
                MountError::Internal(format!("cannot make the workspace read-write: {e}"))
            })?;
        }
        self.save_record(
            &path,
            &Record {
                id: info.id.clone(),
                slot: slot.get(),
                cl: cl.map(str::to_string),
            },
        )
        .await?;
        self.router.attach(slot, at, ovl.clone()).await;
        if self.router.is_live() {
            shown::wait_until_shown(self.probe_path(&info).await, Some(slot)).await;
        }
        active.insert(path.clone(), (slot, ovl, lower));
        tracing::info!(path, id = info.id, upper = %info.upper.display(), "mounted writable");
        Ok(info)
    }

    /// A path whose inode tells which layer the kernel sees at a mount point: the mount point
    /// itself, or for the whole repository its first entry.
    async fn probe_path(&self, info: &MountInfo) -> Option<PathBuf> {
        if !info.path.is_empty() {
            return Some(info.mountpoint.clone());
        }
        let children = self.dic.lower_children(ROOT_INO).await.ok()?;
        let first = children.first()?;
        Some(
            info.mountpoint
                .join(std::ffi::OsStr::from_bytes(first.name())),
        )
    }

    /// Unmounts `path`; its upper layer stays on disk.
    pub async fn unmount(&self, path: &str) -> Result<(), MountError> {
        let path = normalize(path)?;
        let mut active = self.active.lock().await;
        let (slot, _, _) = active
            .get(&path)
            .cloned()
            .ok_or_else(|| MountError::NotMounted(path.clone()))?;
        // Once detached, its inodes stop answering: refuse while a process uses them. A process
        // that is exiting is given a moment to let go.
        let mountpoint = self.info(&path).mountpoint;
        // /proc shows paths with symlinks resolved.
        let mountpoint = std::fs::canonicalize(&mountpoint).unwrap_or(mountpoint);
        let mut holders = busy::holders(&mountpoint);
        for _ in 0..20 {
            if holders.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            holders = busy::holders(&mountpoint);
        }
        if !holders.is_empty() {
            return Err(MountError::Busy(path, busy::describe(&holders)));
        }
        self.remove_record(&path).await?;
        let probe = self.probe_path(&self.info(&path)).await;
        self.router.detach(slot).await;
        if self.router.is_live() {
            shown::wait_until_shown(probe, None).await;
        }
        active.remove(&path);
        if active.is_empty() && self.router.is_live() {
            if let Err(e) = self.kernel.set_read_only(true).await {
                tracing::warn!(error = %e, "the workspace stays read-write to the kernel");
            }
        }
        tracing::info!(path, "unmounted; the upper layer is kept");
        Ok(())
    }

    /// Mounts again what was mounted when the daemon last stopped.
    pub async fn restore(&self) -> Vec<(String, MountError)> {
        let paths = self.recorded_paths();
        let mut failed = Vec::new();
        for p in paths {
            let cl = self.recorded_cl(&p);
            // The record stays on failure, so the next start tries again.
            if let Err(e) = self.mount(&p, cl.as_deref()).await {
                tracing::error!(path = p, error = %e, "could not mount again at start");
                failed.push((p, e));
            }
        }
        failed
    }
}

/// Creates a directory only the daemon's user can enter.
fn make_private_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
}

fn write_private(p: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)?;
    f.write_all(data)
}

fn init_upper_root(upper: &Path, a: &rfuse3::raw::reply::FileAttr) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = upper.with_extension("new");
    let _ = std::fs::remove_dir(&tmp);
    std::fs::DirBuilder::new()
        .mode(u32::from(a.perm))
        .create(&tmp)?;
    std::os::unix::fs::chown(&tmp, Some(a.uid), Some(a.gid))?;
    // Exactly the mounted directory's mode, whatever the daemon's umask took away.
    std::fs::set_permissions(
        &tmp,
        std::os::unix::fs::PermissionsExt::from_mode(u32::from(a.perm)),
    )?;
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::new(a.mtime.sec.max(0) as u64, a.mtime.nsec);
    std::fs::File::open(&tmp)?
        .set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))?;
    std::fs::rename(&tmp, upper)
}
