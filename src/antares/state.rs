//! The Antares state file: every mount record, as JSON, replaced atomically.
//!
//! A save writes a temporary file beside the real one, syncs it, renames it over the old one and
//! syncs the directory, so after a crash the file holds either the old or the new records, never
//! a mix. A missing file is an empty state; a file that does not parse is an error (the daemon
//! refuses to start rather than forget mounts whose upper layers hold a job's work).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MountRecord;

/// The on-disk format.
#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    version: u32,
    mounts: Vec<MountRecord>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a state this version understands.
    #[error("state file {path} does not parse: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// The state file at one path.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file `path` (its directory is made on the first save).
    pub fn new(path: &Path) -> StateFile {
        StateFile {
            path: path.to_path_buf(),
        }
    }

    /// Where the state lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The records saved last (none when there is no file yet).
    pub fn load(&self) -> Result<Vec<MountRecord>, StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| StateError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(snap.mounts)
    }

    /// Replaces the saved records with `mounts`, atomically.
    pub fn save(&self, mounts: &[MountRecord]) -> Result<(), StateError> {
        let snap = Snapshot {
            version: 1,
            mounts: mounts.to_vec(),
        };
        let body = serde_json::to_vec_pretty(&snap).map_err(|e| self.io(e.into()))?;
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.io(std::io::Error::other("state file has no directory")))?;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.io(e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antares::MountState;

    fn record(id: &str) -> MountRecord {
        MountRecord {
            mount_id: id.into(),
            job_id: Some(format!("job-{id}")),
            path: "a/b".into(),
            cl: None,
            mountpoint: PathBuf::from(format!("/m/{id}")),
            upper_dir: Some(PathBuf::from(format!("/u/{id}"))),
            labels: Default::default(),
            readonly: false,
            state: MountState::Mounted,
            reason: None,
            commit: "00".repeat(20),
            created_at: 1,
            owns_mountpoint: true,
            owns_upper: true,
            build_id: None,
            created_at_epoch_ms: 1000,
            mounted_at_epoch_ms: Some(1000),
            last_seen_epoch_ms: 1000,
        }
    }

    #[test]
    fn save_then_load_round_trips_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let s = StateFile::new(&d.path().join("sub/state.json"));
        assert!(s.load().unwrap().is_empty());
        s.save(&[record("1"), record("2")]).unwrap();
        assert_eq!(s.load().unwrap(), vec![record("1"), record("2")]);
        s.save(&[record("2")]).unwrap();
        assert_eq!(s.load().unwrap(), vec![record("2")]);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_state() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        std::fs::write(&p, b"{not json").unwrap();
        assert!(matches!(
            StateFile::new(&p).load(),
            Err(StateError::Parse { .. })
        ));
    }
}
