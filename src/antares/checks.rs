//! What a mount request is checked against before anything on disk changes.

use std::path::{Path, PathBuf};

use super::error::internal;
use super::paths::{self, PathError};
use super::{Antares, AntaresError, CreateRequest, MountRecord};
use crate::fuse::mount;
use crate::overlay::assemble::{self, AssembleError};

impl Antares {
    /// Checks a mountpoint or upper directory of a request without writing anything; returns
    /// its canonical form.
    pub(super) async fn check_place(
        &self,
        field: &'static str,
        raw: &str,
        root: &Path,
        others: &[MountRecord],
    ) -> Result<PathBuf, AntaresError> {
        let bad = |e: PathError| AntaresError::BadPath {
            field,
            value: raw.to_string(),
            reason: e.to_string(),
        };
        let clean = paths::clean_abs(raw).map_err(bad)?;
        // Lexically first: the disk under another mount is never looked at (that would be a
        // FUSE request to this very daemon).
        in_use(field, &clean, others)?;
        let c = clean.clone();
        let canon = tokio::task::spawn_blocking(move || paths::canonical_prefix(&c))
            .await
            .map_err(internal)?
            .map_err(|e| AntaresError::BadPath {
                field,
                value: raw.to_string(),
                reason: e.to_string(),
            })?;
        in_use(field, &canon, others)?;
        if !self.settings.allow_other_roots && !paths::strictly_inside(root, &canon) {
            return Err(AntaresError::OutsideRoot {
                field,
                path: canon,
                root: root.to_path_buf(),
            });
        }
        if mount::mounted_fstype(&canon).is_some() {
            return Err(AntaresError::MountedOver(canon));
        }
        match std::fs::symlink_metadata(&canon) {
            Ok(m) if !m.is_dir() => Err(AntaresError::NotADir { field, path: canon }),
            Ok(_) if field == "mountpoint" => {
                let mut entries = std::fs::read_dir(&canon).map_err(|e| AntaresError::BadPath {
                    field,
                    value: raw.to_string(),
                    reason: e.to_string(),
                })?;
                if entries.next().is_some() {
                    return Err(AntaresError::NotEmpty(canon));
                }
                Ok(canon)
            }
            Ok(_) => Ok(canon),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(canon),
            Err(e) => Err(AntaresError::BadPath {
                field,
                value: raw.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Refuses `p` when it is, holds or lies inside another mount's mountpoint or layers.
pub(super) fn in_use(
    field: &'static str,
    p: &Path,
    others: &[MountRecord],
) -> Result<(), AntaresError> {
    for r in others {
        let mut taken = vec![r.mountpoint.clone()];
        if let Some(u) = &r.upper_dir {
            taken.push(u.clone());
            taken.push(paths::work_dir_for(u));
        }
        if taken.iter().any(|t| paths::overlap(p, t)) {
            return Err(AntaresError::InUse {
                field,
                path: p.to_path_buf(),
                mount_id: r.mount_id.clone(),
            });
        }
    }
    Ok(())
}

/// Field checks that need nothing but the request.
pub(super) fn check_fields(req: &CreateRequest, cl: Option<&str>) -> Result<(), AntaresError> {
    for (field, id) in [("job_id", &req.job_id), ("build_id", &req.build_id)] {
        if let Some(j) = id {
            if !paths::valid_job_id(j) {
                return Err(AntaresError::BadRequest(format!(
                    "{field} {j:?}: 1 to 128 printable characters without `/`, `\\`, `%`, `?` or spaces"
                )));
            }
        }
    }
    if let Some(c) = cl {
        assemble::check_cl_name(c).map_err(|e| refused(e, None))?;
    }
    if req.readonly && req.upper_dir.is_some() {
        return Err(AntaresError::BadRequest(
            "a read-only mount has no upper_dir".into(),
        ));
    }
    if req.readonly && cl.is_some() {
        return Err(AntaresError::BadRequest(
            "a CL layer needs a writable mount".into(),
        ));
    }
    if req.labels.len() > 64
        || req
            .labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 1024)
    {
        return Err(AntaresError::BadRequest(
            "labels: at most 64, keys of 1 to 128 bytes, values up to 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Each refusal of the assembly as Antares has always answered it; a failure of the layers or
/// the overlay is a failed mount at `mountpoint`.
pub(super) fn refused(e: AssembleError, mountpoint: Option<&Path>) -> AntaresError {
    match e {
        AssembleError::BadPath(ref p, _) => AntaresError::BadPath {
            field: "path",
            value: p.clone(),
            reason: e.to_string(),
        },
        AssembleError::BadClName(c) => {
            AntaresError::BadRequest(format!("cl {c:?}: a CL name is one path-free token"))
        }
        AssembleError::NotInRepository(p) => AntaresError::NotInRepository(p),
        AssembleError::NotADirectory(p) => AntaresError::NotADirectory(p),
        AssembleError::Through { path, through } => AntaresError::Through { path, through },
        AssembleError::Repository(m) => AntaresError::Repository(m),
        AssembleError::NoSuchCl(cl) => AntaresError::NoSuchCl(cl),
        AssembleError::Cl { cl, message } => AntaresError::Cl { cl, message },
        AssembleError::ClNothingHere { cl, path } => AntaresError::ClNothingHere { cl, path },
        AssembleError::Layer(e) => match mountpoint {
            Some(p) => AntaresError::Mount {
                path: p.to_path_buf(),
                message: e.to_string(),
            },
            None => internal(e),
        },
    }
}
