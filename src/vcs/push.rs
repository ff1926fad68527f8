//! `push`: the local commits, as a pack of only the objects Scorpio made, sent to the remote;
//! then the workspace's base moves to the pushed commit in place.
//!
//! Promises: nothing in the upper layer changes unless the receiver acknowledged the push; the
//! base moves without a remount, keeping the inode of every entry that still exists.

use std::collections::VecDeque;

use super::commit::our_oid;
use super::VcsError;
use crate::remote::{EntryKind, ListedEntry, Oid, TreeEntry};

/// The directories of `root` (a tree of the staging repository) whose trees Scorpio wrote, with
/// their entries, parents before children: exactly the directories a push changes.
pub fn changed_dirs(
    repo: &git2::Repository,
    root: git2::Oid,
) -> Result<Vec<(String, Vec<ListedEntry>)>, VcsError> {
    let err = |e: git2::Error| VcsError::Lower(e.to_string());
    let odb = repo.odb().map_err(err)?;
    let mut out = Vec::new();
    let mut queue = VecDeque::from([(String::new(), root)]);
    while let Some((path, id)) = queue.pop_front() {
        let tree = repo.find_tree(id).map_err(err)?;
        let mut entries = Vec::with_capacity(tree.len());
        for e in tree.iter() {
            let mode = u32::try_from(e.filemode()).unwrap_or(0);
            let kind = EntryKind::from_mode(mode)
                .ok_or_else(|| VcsError::Lower(format!("mode {mode:o} in tree {id}")))?;
            let name = e.name_bytes().to_vec();
            if kind == EntryKind::Dir && odb.exists(e.id()) {
                let sub = if path.is_empty() {
                    String::from_utf8_lossy(&name).into_owned()
                } else {
                    format!("{path}/{}", String::from_utf8_lossy(&name))
                };
                queue.push_back((sub, e.id()));
            }
            let size = match kind {
                EntryKind::Dir | EntryKind::Submodule => None,
                _ => odb.read_header(e.id()).ok().map(|(len, _)| len as u64),
            };
            entries.push(ListedEntry {
                entry: TreeEntry {
                    name,
                    kind,
                    oid: our_oid(e.id()),
                },
                size,
            });
        }
        entries.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        out.push((path, entries));
    }
    Ok(out)
}

/// The tree and time of commit `c` of the staging repository.
pub fn commit_tree(repo: &git2::Repository, c: Oid) -> Result<(git2::Oid, i64), VcsError> {
    let err = |e: git2::Error| VcsError::Lower(e.to_string());
    let commit = repo
        .find_commit(git2::Oid::from_bytes(&c.0).map_err(err)?)
        .map_err(err)?;
    Ok((commit.tree_id(), commit.time().seconds()))
}
