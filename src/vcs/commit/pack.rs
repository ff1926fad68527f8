//! The pack a push sends: only the objects Scorpio made for the local commits.

use super::ids::{git_oid, our_oid};
use crate::remote::Oid;
use crate::vcs::error::VcsError;

/// A pack of the objects Scorpio made for the commits from `head` back to (not including)
/// `base`: those commits, and the trees and blobs they reach that this repository holds (the
/// rest belongs to the base, which the server has).
pub fn pack_new_objects(
    repo: &git2::Repository,
    head: Oid,
    base: Oid,
) -> Result<(Vec<u8>, usize), VcsError> {
    let err = |e: git2::Error| VcsError::Lower(e.to_string());
    let mut commits = Vec::new();
    let mut c = head;
    while c != base {
        let commit = repo.find_commit(git_oid(c)?).map_err(err)?;
        commits.push(commit.id());
        c = our_oid(commit.parent_id(0).map_err(err)?);
    }
    pack_commits(repo, &commits)
}

/// A pack of `commits` (of the staging repository) and the trees and blobs they reach that
/// this repository holds (the rest is the server's already).
pub fn pack_commits(
    repo: &git2::Repository,
    commits: &[git2::Oid],
) -> Result<(Vec<u8>, usize), VcsError> {
    let err = |e: git2::Error| VcsError::Lower(e.to_string());
    let odb = repo.odb().map_err(err)?;
    let mut pb = repo.packbuilder().map_err(err)?;
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<git2::Oid> = Vec::new();
    for c in commits {
        let commit = repo.find_commit(*c).map_err(err)?;
        pb.insert_object(commit.id(), None).map_err(err)?;
        stack.push(commit.tree_id());
    }
    while let Some(t) = stack.pop() {
        if !seen.insert(t) || !odb.exists(t) {
            continue;
        }
        pb.insert_object(t, None).map_err(err)?;
        let tree = repo.find_tree(t).map_err(err)?;
        for e in tree.iter() {
            match e.kind() {
                Some(git2::ObjectType::Tree) => stack.push(e.id()),
                Some(git2::ObjectType::Blob) if odb.exists(e.id()) && seen.insert(e.id()) => {
                    pb.insert_object(e.id(), None).map_err(err)?;
                }
                _ => {}
            }
        }
    }
    let n = pb.object_count();
    let mut buf = git2::Buf::new();
    pb.write_buf(&mut buf).map_err(err)?;
    Ok((buf.to_vec(), n))
}
