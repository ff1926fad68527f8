//! The staging repository (`store_path/git`) commits are written to: opened at start (over
//! what a crash left), and renewed after a push.

use std::path::Path;

use crate::vcs::error::VcsError;
use crate::vcs::loose::remove_temporaries;

/// The local repository commits are written to. Only this daemon uses it (the store's sled
/// database is locked for one process), so lock files found at start are what a crash left, and
/// are removed; a repository that does not open (a crash during its creation) is moved aside,
/// never deleted, and a new one is made in its place.
pub fn open_staging(store_path: &Path) -> Result<git2::Repository, VcsError> {
    // Trees name objects this repository does not hold (the rest of the commit).
    git2::opts::strict_object_creation(false);
    let dir = store_path.join("git");
    let failed = |e: &dyn std::fmt::Display| {
        VcsError::Lower(format!("staging repository {}: {e}", dir.display()))
    };
    if let Ok(r) = git2::Repository::open_bare(&dir) {
        remove_stale_locks(&dir);
        // Objects a crash cut short, never to be finished.
        remove_temporaries(&dir.join("objects"));
        return Ok(r);
    }
    if dir.exists() {
        let aside = store_path.join(format!("git.broken-{}", unique_suffix()));
        std::fs::rename(&dir, &aside).map_err(|e| failed(&e))?;
        tracing::warn!(dir = %aside.display(), "the staging repository did not open; moved aside");
    }
    // Made aside and renamed into place, so a crash never leaves a half-made repository.
    let tmp = store_path.join(format!("git.new-{}", unique_suffix()));
    git2::Repository::init_bare(&tmp).map_err(|e| failed(&e))?;
    std::fs::rename(&tmp, &dir).map_err(|e| failed(&e))?;
    git2::Repository::open_bare(&dir).map_err(|e| failed(&e))
}

/// A suffix no other directory of the store has.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Removes the `*.lock` files of repository `dir` (its top level and `refs/`).
fn remove_stale_locks(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf(), dir.join("refs")];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && path.starts_with(dir.join("refs")) {
                dirs.push(path);
            } else if !is_dir && path.extension().is_some_and(|x| x == "lock") {
                tracing::warn!(file = %path.display(), "removing a lock file a crash left");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Replaces the staging repository by an empty one (after its objects were pushed).
pub fn renew_staging(store_path: &Path) -> Result<git2::Repository, VcsError> {
    let dir = store_path.join("git");
    let old = store_path.join(format!("git.pushed-{}", unique_suffix()));
    std::fs::rename(&dir, &old)?;
    let fresh = open_staging(store_path)?;
    if let Err(e) = std::fs::remove_dir_all(&old) {
        tracing::warn!(dir = %old.display(), error = %e, "could not remove the old staging repository");
    }
    Ok(fresh)
}
