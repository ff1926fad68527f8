//! Writable mounts of repository paths: validation, slots, persistence.
//!
//! A mounted path gets an overlay whose upper layer lives at `store_path/mounts/<id>/upper`,
//! where `<id>` is derived from the path, so mounting the same path again brings its edits back.
//! Upper layers are never deleted here: unmounting keeps them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::router::WorkspaceFs;
use crate::dicfuse::{Dicfuse, PathLookup};
use crate::ino::{self, Slot, SlotAllocator};
use crate::overlay::{beneath, Lower, OverlayFs};
use std::os::unix::ffi::OsStrExt;

use crate::store::{Store, ROOT_INO};

/// Why a mount request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The path is not a clean repository path.
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    /// The repository has no such directory.
    #[error("{0:?} does not exist in the repository")]
    NotFound(String),
    /// The path is a file.
    #[error("{0:?} is not a directory")]
    NotDir(String),
    /// The path goes through a file or a symlink of the repository (the second path).
    #[error("{0:?} goes through {1:?}, which is not a directory")]
    Through(String, String),
    /// The path is mounted already.
    #[error("{0:?} is already mounted")]
    AlreadyMounted(String),
    /// The path is inside, or holds, a mounted path.
    #[error("{0:?} overlaps the mounted path {1:?}")]
    Overlaps(String, String),
    /// The path is not mounted.
    #[error("{0:?} is not mounted")]
    NotMounted(String),
    /// Something under the mount is in use (open files, mappings, working directories).
    #[error("{0:?} is in use by {1}; close its files first")]
    Busy(String, String),
    /// The change list could not be read or applied.
    #[error("change list {0:?}: {1}")]
    Cl(String, String),
    /// The store or the layer directories failed.
    #[error("internal error: {0}")]
    Internal(String),
}

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

#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    slot: u32,
    #[serde(default)]
    cl: Option<String>,
}

/// Normalises a repository path: no `.`/`..`, no empty components, no NUL; `/` is the root.
pub fn normalize(path: &str) -> Result<String, MountError> {
    if path.contains('\0') {
        return Err(MountError::BadPath(path.into(), "holds NUL"));
    }
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" => continue,
            "." | ".." => {
                return Err(MountError::BadPath(
                    path.into(),
                    "`.` and `..` are not allowed",
                ))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
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

/// A request's path and its outcome, for `GET /api/fs/select/{id}`.
pub type RequestOutcome = (String, Result<MountInfo, String>);

/// Mounts and unmounts overlays in the router, and remembers them across restarts.
pub struct MountManager {
    router: Arc<WorkspaceFs>,
    dic: Arc<Dicfuse>,
    layers: PathBuf,
    workspace: PathBuf,
    table: sled::Tree,
    active: tokio::sync::Mutex<BTreeMap<String, Active>>,
    /// Inode slots, each used once while the daemon lives (see `crate::ino`).
    slots: SlotAllocator,
    requests: Mutex<BTreeMap<String, RequestOutcome>>,
}

impl MountManager {
    /// A manager over `router`, keeping layers under `store_path/mounts`.
    pub fn new(
        router: Arc<WorkspaceFs>,
        store: &Store,
        store_path: &Path,
        workspace: &Path,
    ) -> Result<MountManager, MountError> {
        let table = store
            .tree("mounts")
            .map_err(|e| MountError::Internal(e.to_string()))?;
        Ok(MountManager {
            dic: router.dicfuse().clone(),
            router,
            layers: store_path.join("mounts"),
            workspace: workspace.to_path_buf(),
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

    /// Mounts `path` writable.
    pub async fn mount(&self, path: &str, cl: Option<&str>) -> Result<MountInfo, MountError> {
        let path = normalize(path)?;
        let cl = cl.map(str::trim).filter(|c| !c.is_empty());
        if let Some(c) = cl {
            if c.contains('/') || c.contains("..") || c.chars().any(char::is_whitespace) {
                return Err(MountError::BadPath(
                    c.to_string(),
                    "a CL name is one path-free token",
                ));
            }
        }
        let mut active = self.active.lock().await;
        if active.contains_key(&path) {
            return Err(MountError::AlreadyMounted(path));
        }
        if let Some(other) = active.keys().find(|m| overlaps(&path, m)) {
            return Err(MountError::Overlaps(path, other.clone()));
        }
        let lower = match self.dic.resolve_path(&path).await {
            Ok(PathLookup::Found(ino)) => ino,
            Ok(PathLookup::Missing) => return Err(MountError::NotFound(path)),
            Ok(PathLookup::NotADirectory(through)) => {
                return Err(MountError::Through(path, through))
            }
            Err(e) => return Err(MountError::Internal(e.to_string())),
        };
        let node = self
            .dic
            .lower_node(lower)
            .map_err(|e| MountError::Internal(e.to_string()))?;
        if !node.kind.is_dir() {
            return Err(MountError::NotDir(path));
        }
        let slot = self
            .slots
            .next()
            .map_err(|e| MountError::Internal(e.to_string()))?;
        let info = self.info(&path);
        let layer = self.layers.join(&info.id);
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
        let (lower_view, lower_root) = match cl {
            None => (Lower::plain(self.dic.clone()), lower),
            Some(cl) => self.cl_layer(&path, cl, &layer, lower).await?,
        };
        let ovl = OverlayFs::new(
            slot,
            lower_view,
            Some(lower_root),
            &info.upper,
            &layer.join("work"),
        )
        .map_err(|e| MountError::Internal(e.to_string()))?;
        let ovl = Arc::new(ovl);
        let at = if path.is_empty() {
            None
        } else {
            Some((
                node.parent,
                OsString::from(String::from_utf8_lossy(&node.name).into_owned()),
            ))
        };
        let rec = serde_json::to_vec(&Record {
            id: info.id.clone(),
            slot: slot.get(),
            cl: cl.map(str::to_string),
        })
        .map_err(|e| MountError::Internal(e.to_string()))?;
        self.table
            .insert(path.as_bytes(), rec)
            .map_err(|e| MountError::Internal(e.to_string()))?;
        self.table
            .flush_async()
            .await
            .map_err(|e| MountError::Internal(e.to_string()))?;
        if active.is_empty() && self.router.is_live() {
            super::mount::set_readonly(&self.workspace, false);
        }
        self.router.attach(slot, at, ovl.clone()).await;
        if self.router.is_live() {
            settle(self.probe_path(&info).await, Some(slot)).await;
        }
        active.insert(path.clone(), (slot, ovl, lower));
        tracing::info!(path, id = info.id, upper = %info.upper.display(), "mounted writable");
        Ok(info)
    }

    /// Builds (or, when the remote cannot be reached, reuses) the CL layer of `path` and returns
    /// the lower view with it and that view's root.
    async fn cl_layer(
        &self,
        path: &str,
        cl: &str,
        layer: &Path,
        lower: u64,
    ) -> Result<(Lower, u64), MountError> {
        let dir = layer.join("cl");
        let marker = layer.join("cl.done");
        let internal = |e: &dyn std::fmt::Display| MountError::Internal(e.to_string());
        let store = self.dic.store().clone();
        let changes = store.remote().cl_changes(cl, &self.dic.commit()).await;
        match changes {
            Ok(changes) => {
                // The old layers hold what a change list made (symlinks too): removed from the
                // layer directory's fd, never through them.
                let layer_fd = beneath::open_dir(layer).map_err(|e| internal(&e))?;
                let fresh = layer.join("cl.new");
                beneath::remove_entry(&layer_fd, OsStr::new("cl.new")).map_err(|e| internal(&e))?;
                make_private_dir(&fresh).map_err(|e| internal(&e))?;
                std::fs::set_permissions(
                    &fresh,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(|e| internal(&e))?;
                let n = crate::overlay::cl::materialize(&store, &changes, path, &fresh)
                    .await
                    .map_err(|e| MountError::Cl(cl.to_string(), e.to_string()))?;
                beneath::remove_entry(&layer_fd, OsStr::new("cl.done"))
                    .map_err(|e| internal(&e))?;
                beneath::remove_entry(&layer_fd, OsStr::new("cl")).map_err(|e| internal(&e))?;
                std::fs::rename(&fresh, &dir).map_err(|e| internal(&e))?;
                write_private(&marker, cl.as_bytes()).map_err(|e| internal(&e))?;
                tracing::info!(path, cl, files = n, "CL layer built");
            }
            Err(crate::remote::RemoteError::NotFound { .. }) => {
                return Err(MountError::NotFound(format!("change list {cl}")));
            }
            Err(e) => {
                let have = std::fs::read(&marker)
                    .ok()
                    .is_some_and(|m| m == cl.as_bytes());
                if !have {
                    return Err(MountError::Cl(cl.to_string(), e.to_string()));
                }
                tracing::warn!(path, cl, error = %e, "remote unreachable; using the CL layer built before");
            }
        }
        Lower::with_cl(self.dic.clone(), Some(lower), &dir, self.dic.owner())
            .map_err(|e| internal(&e))
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
                .join(std::ffi::OsStr::from_bytes(&first.name)),
        )
    }

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
        let cl = self
            .table
            .get(mounted.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<Record>(&v).ok())
            .and_then(|r| r.cl);
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
        let mut holders = super::busy::holders(&mountpoint);
        for _ in 0..20 {
            if holders.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            holders = super::busy::holders(&mountpoint);
        }
        if !holders.is_empty() {
            return Err(MountError::Busy(path, super::busy::describe(&holders)));
        }
        self.table
            .remove(path.as_bytes())
            .map_err(|e| MountError::Internal(e.to_string()))?;
        self.table
            .flush_async()
            .await
            .map_err(|e| MountError::Internal(e.to_string()))?;
        let probe = self.probe_path(&self.info(&path)).await;
        self.router.detach(slot).await;
        if self.router.is_live() {
            settle(probe, None).await;
        }
        active.remove(&path);
        if active.is_empty() && self.router.is_live() {
            super::mount::set_readonly(&self.workspace, true);
        }
        tracing::info!(path, "unmounted; the upper layer is kept");
        Ok(())
    }

    /// Mounts again what was mounted when the daemon last stopped.
    pub async fn restore(&self) -> Vec<(String, MountError)> {
        let paths: Vec<String> = self
            .table
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        let mut failed = Vec::new();
        for p in paths {
            let cl = self
                .table
                .get(p.as_bytes())
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_slice::<Record>(&v).ok())
                .and_then(|r| r.cl);
            // The record stays on failure, so the next start tries again.
            if let Err(e) = self.mount(&p, cl.as_deref()).await {
                tracing::error!(path = p, error = %e, "could not mount again at start");
                failed.push((p, e));
            }
        }
        failed
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

    /// Records the outcome of request `id` for `GET /api/fs/select/{id}`.
    pub fn record(&self, id: &str, path: &str, r: &Result<MountInfo, MountError>) {
        let v = match r {
            Ok(info) => Ok(info.clone()),
            Err(e) => Err(e.to_string()),
        };
        let mut reqs = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if reqs.len() > 10_000 {
            reqs.clear();
        }
        reqs.insert(id.to_string(), (path.to_string(), v));
    }

    /// The outcome of request `id`.
    pub fn request(&self, id: &str) -> Option<RequestOutcome> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
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

    /// After a push moved the base: settles every mounted overlay on it (see
    /// `overlay::settle`) and has the kernel forget what changed (`touched`: the read-only
    /// view's entries the rebase changed). Returns the number of upper entries dropped.
    pub async fn settle_after_push(&self, touched: &[crate::store::Touched]) -> usize {
        use std::os::unix::ffi::OsStringExt;
        let forget_dic: Vec<_> = touched
            .iter()
            .map(|t| (t.parent, OsString::from_vec(t.name.clone()), t.ino))
            .collect();
        self.router.forget_cached(forget_dic).await;
        let active: Vec<(String, Arc<OverlayFs>)> = self
            .active
            .lock()
            .await
            .iter()
            .map(|(p, (_, o, _))| (p.clone(), o.clone()))
            .collect();
        let mut dropped = 0;
        for (path, ovl) in active {
            match ovl.prune_pushed().await {
                Ok(s) => {
                    tracing::info!(
                        path,
                        dropped = s.dropped,
                        forgotten = s.forget.len(),
                        "upper layer settled on the pushed commit"
                    );
                    dropped += s.dropped;
                    self.router.forget_inodes(ovl.as_ref(), &s.forget).await;
                }
                // Nothing is lost: what stays in the upper layer still shows, and equals the base.
                Err(e) => {
                    tracing::warn!(path, error = %e, "could not settle the upper layer on the pushed commit")
                }
            }
        }
        // The push is answered once the kernel shows the pushed commit.
        self.router.flush_notifications().await;
        dropped
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

/// Waits (briefly) until the kernel shows `probe` from the overlay (`true`) or from the
/// read-only view. Cache invalidations reach the kernel asynchronously; a request must not
/// return before its effect is visible.
async fn settle(probe: Option<PathBuf>, slot: Option<Slot>) {
    use std::os::unix::fs::MetadataExt;
    let Some(probe) = probe else {
        return;
    };
    let want = slot.map_or(ino::Owner::View, ino::Owner::Overlay);
    let wait = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            match std::fs::symlink_metadata(&probe) {
                Ok(m) if ino::owner(m.ino()) == want => return true,
                Err(_) if want == ino::Owner::View => return true,
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        false
    });
    if !matches!(wait.await, Ok(true)) {
        tracing::warn!(?slot, "the kernel did not show the mount change within 3s");
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
