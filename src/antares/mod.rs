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

pub mod api;
mod checks;
pub mod cli;
mod error;
mod gauges;
mod lifecycle;
pub mod paths;
pub mod serve;
mod session;
pub mod state;

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
}

/// Body of `POST /mounts`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
        }
    }
}
