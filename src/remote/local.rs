//! The `local` remote: any git repository on this machine, read with git2.
//!
//! git2's `Repository` is not `Sync`, so it sits behind a mutex and every call runs on the
//! blocking pool. Blob sizes come from the object header, so `stat` never inflates a blob, and
//! listings leave them out: each is a search of the pack index (a cache miss per step on a large
//! repository), which was a third of a cold walk's time for sizes the walk never shows. The
//! store asks for a directory's sizes in one call ([`Remote::blob_sizes`]) once one is needed.
//! A push follows git's `receive.denyCurrentBranch` for a branch a working tree has checked
//! out (see [`checkout`]).

mod checkout;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::object::{parse_tree, verify};
use super::{
    ClAction, ClChange, CommitInfo, EntryKind, ListedEntry, Listing, ObjectKind, Oid, PushError,
    Remote, RemoteError,
};

/// A git repository on local disk.
pub struct LocalRemote {
    repo: Arc<Mutex<git2::Repository>>,
}

fn to_oid(o: git2::Oid) -> Oid {
    let mut b = [0u8; 20];
    b.copy_from_slice(o.as_bytes());
    Oid(b)
}

fn to_git(o: Oid) -> Result<git2::Oid, RemoteError> {
    Ok(git2::Oid::from_bytes(&o.0)?)
}

/// Most of a pack libgit2 keeps mapped at once (its default on 64-bit: 8 GiB, in 1 GiB windows).
const PACK_MAPPED_LIMIT: usize = 32 << 20;
/// The size of one mapped window of a pack.
const PACK_WINDOW: usize = 4 << 20;

/// Bounds libgit2's process-wide memory: its mapped pack windows (a full walk touched every page
/// of the pack, ~100 MB of resident pages for a million files) and its object cache (each tree
/// is read once here, then kept in the store's inode table, so caching it twice is waste).
/// Also drops libgit2's own hashing of every object it reads: each tree and blob is hashed
/// against its id by this remote or the store before it is used, and hashing twice was a few
/// percent of a cold walk.
#[allow(unsafe_code)]
fn bound_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: these set libgit2's global options; they run once, before this process
        // opens a repository through the local remote.
        let set = unsafe {
            git2::opts::set_mwindow_size(PACK_WINDOW)
                .and_then(|()| git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_LIMIT))
        };
        if let Err(e) = set {
            tracing::warn!(error = %e, "cannot bound libgit2's mapped pack windows");
        }
        git2::opts::enable_caching(false);
        git2::opts::strict_hash_verification(false);
    });
}

impl LocalRemote {
    /// Opens the repository at `path` (bare or not).
    pub fn open(path: &Path) -> Result<LocalRemote, RemoteError> {
        bound_libgit2();
        let repo = git2::Repository::open(path)?;
        Ok(LocalRemote {
            repo: Arc::new(Mutex::new(repo)),
        })
    }

    async fn with_repo<T: Send + 'static>(
        &self,
        f: impl FnOnce(&git2::Repository) -> Result<T, RemoteError> + Send + 'static,
    ) -> Result<T, RemoteError> {
        let repo = self.repo.clone();
        tokio::task::spawn_blocking(move || {
            let guard = repo.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| RemoteError::Protocol {
            url: "local".into(),
            reason: format!("blocking task failed: {e}"),
        })?
    }
}

fn not_found(e: git2::Error, what: String) -> RemoteError {
    if e.code() == git2::ErrorCode::NotFound {
        RemoteError::NotFound { what }
    } else {
        RemoteError::Git(e)
    }
}

#[async_trait]
impl Remote for LocalRemote {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn resolve(&self, refname: Option<&str>) -> Result<CommitInfo, RemoteError> {
        let spec = refname.unwrap_or("HEAD").to_string();
        self.with_repo(move |repo| {
            let obj = repo
                .revparse_single(&spec)
                .map_err(|e| not_found(e, format!("ref {spec}")))?;
            let commit = obj.peel_to_commit()?;
            Ok(CommitInfo {
                oid: to_oid(commit.id()),
                root_tree: Some(to_oid(commit.tree_id())),
                time: commit.time().seconds(),
            })
        })
        .await
    }

    async fn list_tree(
        &self,
        commit: &CommitInfo,
        path: &str,
        oid: Option<Oid>,
    ) -> Result<Listing, RemoteError> {
        let commit_oid = commit.oid;
        let path = path.to_string();
        self.with_repo(move |repo| {
            let tree_oid = match oid {
                Some(o) => o,
                None => {
                    let c = repo.find_commit(to_git(commit_oid)?)?;
                    let root = c.tree()?;
                    let id = if path.is_empty() {
                        root.id()
                    } else {
                        root.get_path(Path::new(&path))
                            .map_err(|e| not_found(e, format!("path {path}")))?
                            .id()
                    };
                    to_oid(id)
                }
            };
            let odb = repo.odb()?;
            let obj = odb
                .read(to_git(tree_oid)?)
                .map_err(|e| not_found(e, format!("tree {tree_oid}")))?;
            if obj.kind() != git2::ObjectType::Tree {
                return Err(RemoteError::NotFound {
                    what: format!("tree {tree_oid}"),
                });
            }
            verify(ObjectKind::Tree, tree_oid, obj.data())?;
            let entries = parse_tree(tree_oid, obj.data())?;
            let listed = entries
                .into_iter()
                .map(|entry| ListedEntry { entry, size: None })
                .collect();
            Ok(Listing {
                entries: listed,
                exact_modes: true,
            })
        })
        .await
    }

    async fn blob(&self, oid: Oid) -> Result<Bytes, RemoteError> {
        self.with_repo(move |repo| {
            let odb = repo.odb()?;
            let obj = odb
                .read(to_git(oid)?)
                .map_err(|e| not_found(e, format!("blob {oid}")))?;
            if obj.kind() != git2::ObjectType::Blob {
                return Err(RemoteError::NotFound {
                    what: format!("blob {oid}"),
                });
            }
            Ok(Bytes::copy_from_slice(obj.data()))
        })
        .await
    }

    fn sizes_in_bulk(&self) -> bool {
        true
    }

    async fn blob_sizes(&self, oids: &[Oid]) -> Result<Vec<u64>, RemoteError> {
        let oids = oids.to_vec();
        self.with_repo(move |repo| {
            let odb = repo.odb()?;
            oids.iter()
                .map(|oid| {
                    let (len, _) = odb
                        .read_header(to_git(*oid)?)
                        .map_err(|e| not_found(e, format!("blob {oid}")))?;
                    Ok(len as u64)
                })
                .collect()
        })
        .await
    }

    async fn blob_size(&self, oid: Oid) -> Result<u64, RemoteError> {
        self.with_repo(move |repo| {
            let (len, _) = repo
                .odb()?
                .read_header(to_git(oid)?)
                .map_err(|e| not_found(e, format!("blob {oid}")))?;
            Ok(len as u64)
        })
        .await
    }

    async fn cl_changes(
        &self,
        cl: &str,
        base: &CommitInfo,
        _at: &str,
    ) -> Result<Vec<ClChange>, RemoteError> {
        let cl = cl.to_string();
        let base = base.oid;
        self.with_repo(move |repo| {
            let target = repo
                .revparse_single(&cl)
                .map_err(|e| not_found(e, format!("change list {cl}")))?
                .peel_to_commit()?;
            let base_tree = repo.find_commit(to_git(base)?)?.tree()?;
            let diff = repo.diff_tree_to_tree(Some(&base_tree), Some(&target.tree()?), None)?;
            let mut out = Vec::new();
            for d in diff.deltas() {
                let path_of =
                    |f: &git2::DiffFile<'_>| f.path().map(|p| p.to_string_lossy().into_owned());
                let write = |f: git2::DiffFile<'_>| -> Option<ClChange> {
                    let kind = EntryKind::from_mode(u32::from(f.mode()))?;
                    let oid = to_oid(f.id());
                    (!kind.is_dir()).then(|| ClChange {
                        path: path_of(&f).unwrap_or_default(),
                        action: ClAction::Write { oid, kind },
                    })
                };
                match d.status() {
                    git2::Delta::Deleted => {
                        out.extend(path_of(&d.old_file()).map(|path| ClChange {
                            path,
                            action: ClAction::Delete,
                        }));
                    }
                    git2::Delta::Renamed => {
                        out.extend(path_of(&d.old_file()).map(|path| ClChange {
                            path,
                            action: ClAction::Delete,
                        }));
                        out.extend(write(d.new_file()));
                    }
                    _ => out.extend(write(d.new_file())),
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl super::Push for LocalRemote {
    fn target(&self) -> String {
        let repo = self.repo.lock().unwrap_or_else(|p| p.into_inner());
        repo.path().display().to_string()
    }

    async fn refname(&self, configured: Option<&str>) -> Result<String, PushError> {
        let spec = configured.unwrap_or("HEAD").to_string();
        if Oid::from_hex(&spec).is_ok() {
            return Err(PushError::NoBranch(spec));
        }
        let found = self
            .with_repo(move |repo| {
                // HEAD (and a short branch name) stand for the branch they name.
                let r = repo
                    .resolve_reference_from_short_name(&spec)
                    .map_err(|e| not_found(e, format!("ref {spec}")))?;
                let full = match r.symbolic_target() {
                    Some(t) => t.to_string(),
                    None => r.name().unwrap_or_default().to_string(),
                };
                Ok(full)
            })
            .await?;
        if !found.starts_with("refs/") {
            return Err(PushError::NoBranch(found));
        }
        Ok(found)
    }

    async fn push(
        &self,
        refname: &str,
        old: Oid,
        new: Oid,
        pack: Vec<u8>,
    ) -> Result<(), PushError> {
        let refname = refname.to_string();
        let repo = self.repo.clone();
        tokio::task::spawn_blocking(move || -> Result<(), PushError> {
            let repo = repo.lock().unwrap_or_else(|p| p.into_inner());
            let actual = repo
                .refname_to_id(&refname)
                .map(to_oid)
                .unwrap_or(Oid([0; 20]));
            if actual != old {
                return Err(PushError::Moved {
                    refname,
                    expected: old.to_hex(),
                    actual: actual.to_hex(),
                });
            }
            // Before anything is written: a checked-out branch may refuse the push.
            let worktree = checkout::guard(&repo, &refname)?;
            let odb = repo.odb().map_err(RemoteError::Git)?;
            let mut w = odb.packwriter().map_err(RemoteError::Git)?;
            std::io::Write::write_all(&mut w, &pack).map_err(|e| PushError::Refused {
                refname: refname.clone(),
                reason: format!("cannot store the pack: {e}"),
            })?;
            w.commit().map_err(RemoteError::Git)?;
            let (old_git, new_git) = (to_git(old)?, to_git(new)?);
            // The pack must have brought the commit.
            repo.find_commit(new_git).map_err(RemoteError::Git)?;
            if !repo.graph_descendant_of(new_git, old_git).unwrap_or(false) {
                return Err(PushError::Refused {
                    refname,
                    reason: "not a fast-forward".into(),
                });
            }
            if let Some(wt) = &worktree {
                // git's push-to-checkout: the tree and index move first, then the ref.
                if let Err(reason) = wt.update(old_git, new_git) {
                    return Err(PushError::Refused { refname, reason });
                }
            }
            // The ref moves only if nobody moved it since it was read: the same
            // compare-and-swap a git server applies.
            let moved = repo
                .reference_matching(&refname, new_git, true, old_git, "scorpio push")
                .map(|_| ());
            if let (Err(e), Some(wt)) = (&moved, &worktree) {
                // The tree was switched for a ref that did not move: put it back.
                if let Err(back) = wt.restore(new_git, old_git) {
                    return Err(PushError::Refused {
                        refname,
                        reason: format!("the ref did not move ({}) and {back}", e.message()),
                    });
                }
            }
            match moved {
                Ok(()) => Ok(()),
                Err(e) if e.code() == git2::ErrorCode::Modified => {
                    let actual = repo
                        .refname_to_id(&refname)
                        .map(to_oid)
                        .unwrap_or(Oid([0; 20]));
                    Err(PushError::Moved {
                        refname,
                        expected: old.to_hex(),
                        actual: actual.to_hex(),
                    })
                }
                Err(e) => Err(RemoteError::Git(e).into()),
            }
        })
        .await
        .map_err(|e| {
            PushError::Remote(RemoteError::Protocol {
                url: "local".into(),
                reason: format!("blocking task failed: {e}"),
            })
        })?
    }
}
