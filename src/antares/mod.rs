//! Antares: isolated per-job mounts for CI over one shared read-only layer.
//!
//! Every mount is its own FUSE session at its own mountpoint: a writable overlay (upper layer
//! `upper_root/<id>` or the request's `upper_dir`, optionally over a CL layer) or a read-only
//! view, both over the daemon's one [`Dicfuse`](crate::dicfuse::Dicfuse). So all jobs share one
//! inode table, one object store and one fetch queue: a blob any job has read is never fetched
//! again, while a job's writes land in its own upper layer only.
//!
//! Promises:
//! - A refused request changes nothing on disk: everything a request names is checked (paths
//!   lexically, then against the disk without writing, the repository, the CL) before the first
//!   directory is made. A mount that fails after that is undone.
//! - Every state change is saved (atomically, `state.rs`) before it is answered, so a crashed
//!   daemon finds at start what was mounted; it mounts it again or marks it `failed` with the
//!   reason, and never deletes an upper layer except on `DELETE`.
//! - Mutations run one at a time (`ops`); reads never wait for them.
//! - A writable mount's CL layer can be swapped or dropped while it serves (`swap.rs`): its
//!   requests are held meanwhile, never failed, and its upper layer is not touched.
//! - Upstream (scorpiofs) clients are served too (`upstream.rs`): their fields are read, and
//!   theirs are shown beside ours.

pub mod api;
mod checks;
mod cleanup;
pub mod cli;
mod error;
mod gate;
mod gauges;
mod lifecycle;
pub mod paths;
mod preload;
pub mod serve;
mod session;
pub mod state;
mod swap;
mod upstream;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
pub use error::AntaresError;
pub use lifecycle::Antares;

/// Where a mount is in its life.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountState {
    /// Being set up (a crash here leaves it to be mounted again at start).
    Provisioning,
    /// Served at its mountpoint.
    Mounted,
    /// Being deleted (a crash here finishes the deletion at start).
    Unmounting,
    /// Not served; `reason` says why. Its upper layer is kept until `DELETE`.
    Failed,
}

/// One mount as saved and as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountRecord {
    /// Its id (a UUID v4).
    pub mount_id: String,
    /// The job that asked for it, if it said.
    pub job_id: Option<String>,
    /// Repository path shown at the root (`""` is the whole repository).
    pub path: String,
    /// The change list laid under the upper layer.
    pub cl: Option<String>,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The upper layer (`None` for a read-only mount).
    pub upper_dir: Option<PathBuf>,
    /// Free-form labels from the request.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Read-only: no upper layer, writes are EROFS.
    #[serde(default)]
    pub readonly: bool,
    /// Where it is in its life.
    pub state: MountState,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The commit it shows (hex).
    pub commit: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Whether the mountpoint directory was made for it (and so is removed with it).
    #[serde(default)]
    pub owns_mountpoint: bool,
    /// Whether the upper directory was made for it (and so is removed with it); a requested
    /// `upper_dir` that existed before is the caller's and is kept.
    #[serde(default)]
    pub owns_upper: bool,
    /// The build id an upstream (scorpiofs) client sent, kept as given.
    #[serde(default)]
    pub build_id: Option<String>,
    /// Creation time in milliseconds since the epoch (upstream's name).
    #[serde(default)]
    pub created_at_epoch_ms: u64,
    /// When its session was last mounted (created or restored), milliseconds since the epoch.
    #[serde(default)]
    pub mounted_at_epoch_ms: Option<u64>,
    /// When the record last changed (state, CL), milliseconds since the epoch (upstream's name).
    #[serde(default)]
    pub last_seen_epoch_ms: u64,
}

/// The directories a mount is made of, as upstream (scorpiofs) clients read them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Layers {
    /// The upper layer (`None` for a read-only mount).
    pub upper: Option<PathBuf>,
    /// The CL layer's directory, when a change list is laid.
    pub cl: Option<PathBuf>,
    /// Where the shared read-only layer (Dicfuse) keeps its store.
    pub dicfuse: PathBuf,
}

/// A mount's state under upstream's (scorpiofs) names, for its clients: `provisioning` is
/// `Provisioning`, `mounted` is `Ready` once the mount is ready (`GET /mounts/{id}/ready`) and
/// `Mounted` before, `Quiescing` while its CL layer is being swapped, `unmounting` is `Unmounting`,
/// `failed` is `{"Failed": {"reason"}}`. `Unmounted` is only ever in a DELETE's answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Lifecycle {
    /// Being set up.
    Provisioning,
    /// Mounted, not yet ready.
    Mounted,
    /// Mounted and ready for work.
    Ready,
    /// Its CL layer is being swapped; requests to it are held meanwhile.
    Quiescing,
    /// Being deleted.
    Unmounting,
    /// Deleted.
    Unmounted,
    /// Not served.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A mount as the API shows it: the saved record with upstream's computed fields beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountView {
    /// The saved record (its fields flattened into the answer).
    #[serde(flatten)]
    pub record: MountRecord,
    /// Its directories.
    pub layers: Layers,
    /// Its state under upstream's names.
    pub lifecycle: Lifecycle,
}

/// Body of `POST /mounts`. Fields it does not know (an upstream client's) are kept in `extra`,
/// named in one log line and otherwise ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Makes the request idempotent: the same job gets the same mount.
    #[serde(default)]
    pub job_id: Option<String>,
    /// Repository directory to show (`/` or `""` for the whole repository).
    pub path: String,
    /// A change list to lay under the job's writes.
    #[serde(default)]
    pub cl: Option<String>,
    /// Where to mount (default `mount_root/<id>`).
    #[serde(default)]
    pub mountpoint: Option<String>,
    /// Where the job's writes go (default `upper_root/<id>`).
    #[serde(default)]
    pub upper_dir: Option<String>,
    /// Free-form labels, kept with the mount.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A read-only mount (no upper layer).
    #[serde(default)]
    pub readonly: bool,
    /// An upstream client's build id: kept and shown; without `job_id` it is the job's key.
    #[serde(default)]
    pub build_id: Option<String>,
    /// Every field not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The `[antares]` settings Antares works with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where default mountpoints are made.
    pub mount_root: PathBuf,
    /// Where default upper layers are made.
    pub upper_root: PathBuf,
    /// Where CL layers are built.
    pub cl_root: PathBuf,
    /// Most mounts at once.
    pub max_mounts: usize,
    /// Whether mountpoints and upper layers may lie outside their roots.
    pub allow_other_roots: bool,
    /// The state file.
    pub state_path: PathBuf,
    /// The store of the shared read-only layer (shown as `layers.dicfuse`).
    pub dicfuse_dir: PathBuf,
}

impl Settings {
    /// The settings of `cfg`; the state lives at `store_path/antares/state.json`.
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            mount_root: cfg.antares.mount_root.clone(),
            upper_root: cfg.antares.upper_root.clone(),
            cl_root: cfg.antares.cl_root.clone(),
            max_mounts: cfg.antares.max_mounts,
            allow_other_roots: cfg.antares.allow_other_roots,
            state_path: cfg.store_path.join("antares/state.json"),
            dicfuse_dir: cfg.store_path.clone(),
        }
    }
}
