//! The workspace's records in sled (tree `mounts`): which paths are mounted, with their layer
//! id, inode slot and CL, so that the next start mounts them again. A record is written (and
//! flushed) before a mount is answered, and removed before an unmount is.

use serde::{Deserialize, Serialize};

use super::{MountError, WritablePaths};

/// What is saved of a mounted path, keyed by the path.
#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    /// Its layer id.
    pub(super) id: String,
    /// The inode slot it was last mounted in.
    pub(super) slot: u32,
    /// The change list laid under it.
    #[serde(default)]
    pub(super) cl: Option<String>,
}

fn internal(e: impl std::fmt::Display) -> MountError {
    MountError::Internal(e.to_string())
}

impl WritablePaths {
    /// Saves `rec` for `path` and waits until it is on disk.
    pub(super) async fn save_record(&self, path: &str, rec: &Record) -> Result<(), MountError> {
        let rec = serde_json::to_vec(rec).map_err(internal)?;
        self.table.insert(path.as_bytes(), rec).map_err(internal)?;
        self.table.flush_async().await.map_err(internal)?;
        Ok(())
    }

    /// Removes the record of `path` and waits until that is on disk.
    pub(super) async fn remove_record(&self, path: &str) -> Result<(), MountError> {
        self.table.remove(path.as_bytes()).map_err(internal)?;
        self.table.flush_async().await.map_err(internal)?;
        Ok(())
    }

    /// The CL recorded for `path` (none when there is no readable record).
    pub(super) fn recorded_cl(&self, path: &str) -> Option<String> {
        self.table
            .get(path.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<Record>(&v).ok())
            .and_then(|r| r.cl)
    }

    /// The recorded paths.
    pub(super) fn recorded_paths(&self) -> Vec<String> {
        self.table
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect()
    }
}
