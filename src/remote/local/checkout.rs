//! git's rule for pushing to a branch that a working tree has checked out
//! (`receive.denyCurrentBranch`), for the `local` remote.
//!
//! Moving such a branch under its working tree leaves the tree and index at the old commit, so
//! `git status` there shows the push reversed and a `git commit -a` would undo it. As git does:
//! unset, `refuse` or `true` refuse the push before anything is written; `ignore`/`false` push;
//! `warn` pushes and logs; `updateInstead` refuses when the working tree or index has changes to
//! tracked files, else checks the new commit out (index and tree) before the ref moves, and puts
//! the old one back if the ref then cannot move. Untracked files never make a tree dirty and
//! are never overwritten; ignored directories are never walked (the daemon's own store and
//! mounted workspace may live in one, as with the example config).
//! Every working tree counts: the main one and linked ones (`git worktree add`).

use std::path::PathBuf;

use git2::build::CheckoutBuilder;
use git2::{Repository, StatusOptions};

use super::super::{PushError, RemoteError};

/// How many dirty paths a refusal names.
const NAMED_PATHS: usize = 5;

/// What `receive.denyCurrentBranch` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deny {
    /// Refuse the push (git's default).
    Refuse,
    /// Push and say nothing.
    Ignore,
    /// Push and log a warning.
    Warn,
    /// Update the working tree along with the branch, if it is clean.
    UpdateInstead,
}

/// The working tree a push must also update (`updateInstead`).
pub(super) struct CheckedOut {
    /// The working tree's own repository handle (its HEAD and index).
    repo: Repository,
    workdir: PathBuf,
}

/// The working tree (main or linked) whose HEAD is the branch `refname`, if any, with a
/// repository handle of its own (its HEAD and index).
pub(super) fn checked_out_in(
    repo: &Repository,
    refname: &str,
) -> Result<Option<(PathBuf, Repository)>, git2::Error> {
    // Opened from a linked worktree, `repo` sees that worktree's HEAD; the main one and the
    // list of worktrees live in the common directory.
    let main = Repository::open(repo.commondir())?;
    if let Some(wd) = main.workdir() {
        if head_branch(&main)?.as_deref() == Some(refname) {
            return Ok(Some((wd.to_path_buf(), main)));
        }
    }
    for name in main.worktrees()?.iter().flatten() {
        let Ok(wt) = main.find_worktree(name) else {
            continue;
        };
        // A worktree whose directory is gone (prunable) has no tree to leave behind.
        if wt.validate().is_err() {
            continue;
        }
        let wrepo = Repository::open_from_worktree(&wt)?;
        if head_branch(&wrepo)?.as_deref() == Some(refname) {
            return Ok(Some((wt.path().to_path_buf(), wrepo)));
        }
    }
    Ok(None)
}

/// The branch HEAD names (`None` when detached).
fn head_branch(repo: &Repository) -> Result<Option<String>, git2::Error> {
    let head = repo.find_reference("HEAD")?;
    Ok(head.symbolic_target().map(str::to_string))
}

/// Reads `receive.denyCurrentBranch` as git does (names case-insensitively, else a boolean).
pub(super) fn deny_current_branch(cfg: &git2::Config) -> Result<Deny, String> {
    const KEY: &str = "receive.denyCurrentBranch";
    let entry = match cfg.get_entry(KEY) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Deny::Refuse),
        Err(e) => return Err(format!("cannot read {KEY}: {}", e.message())),
    };
    // A key with no `=` is a boolean true.
    if !entry.has_value() {
        return Ok(Deny::Refuse);
    }
    let value = String::from_utf8_lossy(entry.value_bytes()).into_owned();
    match value.to_ascii_lowercase().as_str() {
        "refuse" => Ok(Deny::Refuse),
        "ignore" => Ok(Deny::Ignore),
        "warn" => Ok(Deny::Warn),
        "updateinstead" => Ok(Deny::UpdateInstead),
        _ => match git2::Config::parse_bool(value.as_str()) {
            Ok(true) => Ok(Deny::Refuse),
            Ok(false) => Ok(Deny::Ignore),
            Err(_) => Err(format!(
                "{KEY} is `{value}`, which git does not know (refuse, warn, ignore, updateInstead)"
            )),
        },
    }
}

/// Applies the rule before anything is written: `Ok(None)` lets the push go on as for a bare
/// repository, `Ok(Some(_))` is a clean working tree the push must update, an error refuses.
pub(super) fn guard(repo: &Repository, refname: &str) -> Result<Option<CheckedOut>, PushError> {
    let refused = |reason: String| PushError::Refused {
        refname: refname.to_string(),
        reason,
    };
    let Some((workdir, wrepo)) = checked_out_in(repo, refname).map_err(RemoteError::Git)? else {
        return Ok(None);
    };
    let cfg = repo.config().map_err(RemoteError::Git)?;
    let shown = workdir.display();
    match deny_current_branch(&cfg).map_err(refused)? {
        Deny::Ignore => Ok(None),
        Deny::Warn => {
            tracing::warn!(
                "pushing to {refname}, the branch checked out in {shown}: its working tree and \
                 index stay at the old commit (receive.denyCurrentBranch = warn)"
            );
            Ok(None)
        }
        Deny::Refuse => Err(refused(format!(
            "it is the branch checked out in the working tree {shown}, which would be left \
             behind (git refuses this too: receive.denyCurrentBranch). Push to a bare repository, \
             set `ref` to another branch, or run `git -C {shown} config \
             receive.denyCurrentBranch updateInstead` to have pushes update that working tree"
        ))),
        Deny::UpdateInstead => {
            let dirty = dirty_paths(&wrepo).map_err(RemoteError::Git)?;
            if !dirty.is_empty() {
                return Err(refused(format!(
                    "receive.denyCurrentBranch is updateInstead and the working tree {shown} \
                     has uncommitted changes to tracked files ({}): commit or stash them there, \
                     then push again",
                    name_paths(&dirty)
                )));
            }
            Ok(Some(CheckedOut {
                repo: wrepo,
                workdir,
            }))
        }
    }
}

/// Paths whose index differs from HEAD or whose working-tree file differs from the index;
/// untracked, ignored and submodule contents are not looked at (as `git push` checks).
fn dirty_paths(repo: &Repository) -> Result<Vec<String>, git2::Error> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false)
        .recurse_untracked_dirs(false)
        .include_ignored(false)
        .recurse_ignored_dirs(false)
        .include_unmodified(false)
        .exclude_submodules(true)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .map(|e| String::from_utf8_lossy(e.path_bytes()).into_owned())
        .collect())
}

fn name_paths(paths: &[String]) -> String {
    let mut s = paths
        .iter()
        .take(NAMED_PATHS)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > NAMED_PATHS {
        s.push_str(&format!(" and {} more", paths.len() - NAMED_PATHS));
    }
    s
}

impl CheckedOut {
    /// Turns the index and working tree from commit `from` (where HEAD's branch is) into
    /// commit `to`, as `git read-tree -u -m` does: a file that no longer matches HEAD, or an
    /// untracked file where `to` has one, is a conflict, and then nothing changes. Says why
    /// when it fails.
    pub(super) fn update(&self, from: git2::Oid, to: git2::Oid) -> Result<(), String> {
        let shown = self.workdir.display();
        let e = match self.switch(to) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Switch::Conflicts(paths) = &e {
            return Err(format!(
                "the working tree {shown} has files in the way ({}: changed there since the \
                 push began, or untracked where the pushed commit adds them); nothing was \
                 changed there",
                name_paths(paths)
            ));
        }
        // Anything else (a full disk) may have left the tree half-switched.
        let back = match self.restore(to, from) {
            Ok(()) => "the old files were put back".to_string(),
            Err(b) => b,
        };
        Err(format!(
            "cannot update the working tree {shown}: {e}; {back}"
        ))
    }

    /// Puts back commit `from`'s files and index entries at the paths where commit `to`
    /// differs from it, after [`CheckedOut::update`] wrote them for a ref that did not move.
    /// Forced, as those files are the push's own; nothing else is touched.
    pub(super) fn restore(&self, to: git2::Oid, from: git2::Oid) -> Result<(), String> {
        let failed = |e: git2::Error| {
            format!(
                "the working tree {} could not be put back to {from} ({}): check it with \
                 `git status` there",
                self.workdir.display(),
                e.message()
            )
        };
        let from_tree = self
            .repo
            .find_commit(from)
            .and_then(|c| c.tree())
            .map_err(failed)?;
        let to_tree = self
            .repo
            .find_commit(to)
            .and_then(|c| c.tree())
            .map_err(failed)?;
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&from_tree), Some(&to_tree), None)
            .map_err(failed)?;
        let mut cb = CheckoutBuilder::new();
        cb.force().update_index(true).disable_pathspec_match(true);
        let mut any = false;
        for d in diff.deltas() {
            for p in [d.old_file().path(), d.new_file().path()]
                .into_iter()
                .flatten()
            {
                cb.path(p);
                any = true;
            }
        }
        if !any {
            return Ok(());
        }
        self.repo
            .checkout_tree(from_tree.as_object(), Some(&mut cb))
            .map_err(failed)
    }

    /// A safe checkout of `to` against HEAD's tree (libgit2's default baseline).
    fn switch(&self, to: git2::Oid) -> Result<(), Switch> {
        let to_tree = self.repo.find_commit(to)?.tree()?;
        let conflicts = std::cell::RefCell::new(Vec::new());
        let mut cb = CheckoutBuilder::new();
        cb.safe()
            .update_index(true)
            .notify_on(git2::CheckoutNotificationType::CONFLICT)
            .notify(|_, path, _, _, _| {
                if let Some(p) = path {
                    conflicts
                        .borrow_mut()
                        .push(p.to_string_lossy().into_owned());
                }
                true
            });
        let done = self.repo.checkout_tree(to_tree.as_object(), Some(&mut cb));
        drop(cb);
        match done {
            Err(e) if e.code() == git2::ErrorCode::Conflict => {
                Err(Switch::Conflicts(conflicts.into_inner()))
            }
            other => Ok(other?),
        }
    }
}

/// Why a checkout did not happen.
#[derive(Debug, thiserror::Error)]
enum Switch {
    /// Files in the way; nothing was changed.
    #[error("files in the way")]
    Conflicts(Vec<String>),
    /// Anything else.
    #[error("{}", .0.message())]
    Git(#[from] git2::Error),
}

#[cfg(test)]
mod tests;
