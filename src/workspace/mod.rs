//! The workspace's writable paths: mount, unmount, reset, restore, push.
//!
//! A mounted path gets an overlay (made by `overlay::assemble`) spliced into the workspace's
//! router, with its upper layer at `store_path/mounts/<id>/upper`, where `<id>` is derived
//! from the path, so mounting the same path again brings its edits back.
//!
//! Promises:
//! - Upper layers are never deleted here: unmounting keeps them, and reset drops only what it
//!   is asked to, reached beneath the layer through no symlink (`reset.rs`).
//! - A mount is recorded in sled before it is answered, and its record removed before an
//!   unmount is (`records.rs`); at start every recorded path is mounted again, and one that
//!   fails keeps its record for the next start.
//! - Every mount takes a fresh inode slot (`crate::ino`): the kernel never meets an old inode
//!   number that now means something else.
//! - Mount and unmount answer once the kernel shows the change (`shown.rs`); an unmount is
//!   refused while a process uses the path (`busy.rs`).
//! - A push and the pruning of every overlay after it are one operation (`push.rs`).

mod busy;
mod error;
mod mount;
mod pull;
mod push;
mod records;
mod requests;
mod reset;
mod shown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::dicfuse::Dicfuse;
use crate::fuse::router::WorkspaceFs;
use crate::fuse::workspace_mount::WorkspaceMount;
use crate::ino::{Slot, SlotAllocator};
use crate::overlay::{assemble, OverlayFs};
use crate::store::Store;

pub use error::MountError;
pub use pull::Pulled;
pub use push::Pushed;
pub use requests::RequestOutcome;

/// A mounted path as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountInfo {
    /// Repository path (`""` is the whole repository).
    pub path: String,
    /// Layer id.
    pub id: String,
    /// Upper layer directory.
    pub upper: PathBuf,
    /// Where it shows up.
    pub mountpoint: PathBuf,
}

/// Normalises a repository path (see [`assemble::normalize`]).
pub fn normalize(path: &str) -> Result<String, MountError> {
    Ok(assemble::normalize(path)?)
}

fn overlaps(a: &str, b: &str) -> bool {
    let inside = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}/"));
    inside(a, b) || inside(b, a)
}

/// The layer id of a path.
pub fn layer_id(path: &str) -> String {
    let h = Sha1::digest(path.as_bytes());
    hex::encode(&h[..8])
}

/// A mounted path: its inode slot, its overlay and the commit's directory under it.
type Active = (Slot, Arc<OverlayFs>, u64);

/// The workspace's writable paths: their overlays in the router, their records, and the
/// outcomes of the requests that made them.
pub struct WritablePaths {
    router: Arc<WorkspaceFs>,
    dic: Arc<Dicfuse>,
    layers: PathBuf,
    workspace: PathBuf,
    /// The workspace's own mount, made read-write for the first writable path.
    kernel: Arc<WorkspaceMount>,
    table: sled::Tree,
    active: tokio::sync::Mutex<BTreeMap<String, Active>>,
    /// Inode slots, each used once while the daemon lives (see `crate::ino`).
    slots: SlotAllocator,
    requests: Mutex<BTreeMap<String, RequestOutcome>>,
}

impl WritablePaths {
    /// The writable paths of the workspace `router` serves through `kernel`, with their layers
    /// under `store_path/mounts`.
    pub fn new(
        router: Arc<WorkspaceFs>,
        kernel: Arc<WorkspaceMount>,
        store: &Store,
        store_path: &Path,
    ) -> Result<WritablePaths, MountError> {
        let table = store
            .tree("mounts")
            .map_err(|e| MountError::Internal(e.to_string()))?;
        Ok(WritablePaths {
            dic: router.dicfuse().clone(),
            router,
            layers: store_path.join("mounts"),
            workspace: kernel.path().to_path_buf(),
            kernel,
            table,
            active: tokio::sync::Mutex::new(BTreeMap::new()),
            slots: SlotAllocator::new(),
            requests: Mutex::new(BTreeMap::new()),
        })
    }

    fn info(&self, path: &str) -> MountInfo {
        let id = layer_id(path);
        MountInfo {
            path: path.to_string(),
            upper: self.layers.join(&id).join("upper"),
            id,
            mountpoint: if path.is_empty() {
                self.workspace.clone()
            } else {
                self.workspace.join(path)
            },
        }
    }

    /// Mounted paths.
    pub async fn list(&self) -> Vec<MountInfo> {
        self.active
            .lock()
            .await
            .keys()
            .map(|p| self.info(p))
            .collect()
    }

    /// The mounted paths at or under `path` (all when `None`), each with its upper layer and
    /// the commit's directory (a Dicfuse inode) it overlays.
    pub async fn layers(
        &self,
        path: Option<&str>,
    ) -> Result<Vec<(String, PathBuf, u64)>, MountError> {
        let active = self.active.lock().await;
        let want = path.map(normalize).transpose()?;
        let found: Vec<_> = active
            .iter()
            .filter(|(p, _)| want.as_ref().map_or(true, |w| *p == w))
            .map(|(p, (_, _, lower))| (p.clone(), self.info(p).upper, *lower))
            .collect();
        match (&want, found.is_empty()) {
            (Some(w), true) => Err(MountError::NotMounted(w.clone())),
            _ => Ok(found),
        }
    }

    /// The read-only view the overlays sit on.
    pub fn dicfuse(&self) -> &Arc<Dicfuse> {
        &self.dic
    }

    /// Number of mounted paths.
    pub async fn count(&self) -> usize {
        self.active.lock().await.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_checked() {
        assert_eq!(normalize("/").unwrap(), "");
        assert_eq!(normalize("/a//b/").unwrap(), "a/b");
        assert!(normalize("a/../b").is_err());
        assert!(normalize("./a").is_err());
        assert!(normalize("a\0b").is_err());
    }

    #[test]
    fn overlap_rules() {
        assert!(overlaps("a/b", "a"));
        assert!(overlaps("a", "a/b"));
        assert!(overlaps("a", ""));
        assert!(!overlaps("ab", "a"));
        assert!(!overlaps("a/b", "a/c"));
        assert_ne!(layer_id("a"), layer_id("b"));
        assert_eq!(layer_id("a"), layer_id("a"));
    }
}
