//! Dropping changes: all of a mounted path's, or those at and under a path inside one.

use std::path::Path;

use super::{normalize, MountError, WritablePaths};
use crate::beneath;

impl WritablePaths {
    /// Drops the changes at `path`: all of a mounted path's changes when `path` is mounted, or
    /// those at and under `path` when it lies inside a mounted path. Returns the mounted path and
    /// how many upper entries were removed. The path is remounted afterwards (so the kernel forgets
    /// every inode that came from the dropped changes); open files make it refuse.
    pub async fn reset(&self, path: &str) -> Result<(String, usize), MountError> {
        let path = normalize(path)?;
        let mounted = {
            let active = self.active.lock().await;
            active
                .keys()
                .find(|m| m.is_empty() || path == **m || path.starts_with(&format!("{m}/")))
                .cloned()
                .ok_or_else(|| MountError::NotMounted(path.clone()))?
        };
        let rel = if path == mounted {
            String::new()
        } else {
            path[mounted.len()..].trim_start_matches('/').to_string()
        };
        let cl = self.recorded_cl(&mounted);
        let upper = self.info(&mounted).upper;
        self.unmount(&mounted).await?;
        let removed = clear_upper(&upper, &rel);
        // In a new inode slot, as every mount: the kernel then holds none of the old inodes.
        let again = self.mount(&mounted, cl.as_deref()).await;
        let removed = removed.map_err(|e| MountError::Internal(e.to_string()))?;
        again?;
        tracing::info!(path = mounted, under = rel, removed, "changes dropped");
        Ok((mounted, removed))
    }
}

/// Removes `rel` (everything when empty) from the upper layer `upper`; counts what it removed.
/// `rel` is resolved beneath `upper` through no symlink: a path through a symlink the user made
/// names something outside the layer, which is not the layer's to drop.
fn clear_upper(upper: &Path, rel: &str) -> std::io::Result<usize> {
    use beneath::Removal;
    let root = beneath::open_dir(upper)?;
    if !rel.is_empty() {
        let r = beneath::remove(&root, Path::new(rel))?;
        return Ok(usize::from(r == Removal::Removed));
    }
    let mut n = 0;
    for (name, _) in beneath::names(&root)? {
        n += usize::from(beneath::remove_entry(&root, &name)? == Removal::Removed);
    }
    Ok(n)
}
