//! Writing objects into the staging repository so that a commit that fails takes back
//! everything it wrote.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::vcs::error::VcsError;
use crate::vcs::loose::{remove_temporaries, LooseBlob};

/// Writes objects into the staging repository, remembering the ones it created, so that a
/// commit that fails takes back everything it wrote (nothing is left to fill the disk).
///
/// Only one commit or push uses the repository at a time (`Vcs::op`), so whatever a failed
/// commit finds in the fan-out directories it wrote to that is not an object (a temporary file
/// of a write cut short) is its own too.
pub struct Writer<'r> {
    odb: git2::Odb<'r>,
    /// The repository's `objects` directory.
    pub(super) objects: PathBuf,
    created: Vec<git2::Oid>,
    /// Fan-out directories written to (`objects/ab`), and whether this commit made them.
    touched: BTreeMap<String, bool>,
}

/// A git2 failure while writing `what`; a full disk is [`VcsError::NoSpace`].
fn write_failed(what: &str, e: git2::Error) -> VcsError {
    let msg = e.message();
    if msg.contains("No space left on device") || msg.contains("Disk quota exceeded") {
        VcsError::NoSpace(format!("writing {what} to the staging repository: {msg}"))
    } else {
        VcsError::Lower(format!("writing {what}: {msg}"))
    }
}

impl<'r> Writer<'r> {
    /// A writer into `repo`.
    pub fn new(repo: &'r git2::Repository) -> Result<Writer<'r>, VcsError> {
        Ok(Writer {
            odb: repo.odb().map_err(|e| VcsError::Lower(e.to_string()))?,
            objects: repo.path().join("objects"),
            created: Vec::new(),
            touched: BTreeMap::new(),
        })
    }

    /// Writes an object (unless the repository has it) and returns its id.
    pub fn write(&mut self, kind: git2::ObjectType, data: &[u8]) -> Result<git2::Oid, VcsError> {
        let oid = git2::Oid::hash_object(kind, data).map_err(|e| write_failed("an object", e))?;
        if self.odb.exists(oid) {
            return Ok(oid);
        }
        self.will_write(oid);
        let written = self
            .odb
            .write(kind, data)
            .map_err(|e| write_failed(&format!("{kind} {oid}"), e))?;
        self.created.push(written);
        Ok(written)
    }

    /// Notes that object `oid` is about to be written, for [`Writer::roll_back`].
    fn will_write(&mut self, oid: git2::Oid) {
        let hex = oid.to_string();
        let fanout = hex[..2].to_string();
        let existed = self.objects.join(&fanout).is_dir();
        self.touched.entry(fanout).or_insert(!existed);
    }

    /// Puts `blob` (written by the scan as it read the file) in place as object `oid`, unless
    /// the repository has it (then `blob` is dropped, which removes it).
    pub fn place_loose(&mut self, blob: LooseBlob, oid: git2::Oid) -> Result<(), VcsError> {
        if self.odb.exists(oid) {
            return Ok(());
        }
        let what = format!("blob {oid}");
        let failed = |e: std::io::Error| {
            if crate::vcs::error::is_no_space(&e) {
                VcsError::NoSpace(format!("writing {what} to the staging repository: {e}"))
            } else {
                VcsError::Lower(format!("writing {what}: {e}"))
            }
        };
        let hex = oid.to_string();
        self.will_write(oid);
        let fanout = self.objects.join(&hex[..2]);
        std::fs::create_dir_all(&fanout).map_err(failed)?;
        let tmp = blob.finish().map_err(failed)?;
        // Read-only, as git makes every object.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o444))
            .map_err(failed)?;
        tmp.persist(fanout.join(&hex[2..]))
            .map_err(|e| failed(e.error))?;
        self.created.push(oid);
        Ok(())
    }

    /// Removes every object this writer created, what a cut-short write left in the directories
    /// it wrote to, and the directories it made; returns the number of objects removed.
    pub fn roll_back(self) -> usize {
        let n = self.created.len();
        remove_temporaries(&self.objects);
        for oid in &self.created {
            let hex = oid.to_string();
            let _ = std::fs::remove_file(self.objects.join(&hex[..2]).join(&hex[2..]));
        }
        for (fanout, made) in &self.touched {
            let dir = self.objects.join(fanout);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let is_object =
                    name.len() == 38 && name.as_bytes().iter().all(u8::is_ascii_hexdigit);
                if !is_object {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            if *made {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        n
    }
}
