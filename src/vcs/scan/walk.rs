//! Walking an upper layer against the mounted commit: every entry read once, each change
//! handed to a [`Sink`] with the content read for it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use tokio::runtime::Handle;

use super::read::{read_entry, vanished, Content, Entry, Fault, Want};
use crate::dicfuse::Dicfuse;
use crate::remote::{EntryKind, Oid};
use crate::vcs::change::{Change, ChangeKind, GitEntry};
use crate::vcs::error::VcsError;

/// Where the changes a walk finds go, with the content that was read for them.
pub trait Sink {
    /// What of the new content of changed files is wanted.
    fn wants(&self) -> Want;
    /// Takes one change; `content` is its new content when wanted (and the change has one).
    fn change(&mut self, change: &Change, content: Option<Content>) -> Result<(), VcsError>;
}

/// A sink that only lists changes.
pub struct ListOnly;

impl Sink for ListOnly {
    fn wants(&self) -> Want {
        Want::Ids
    }
    fn change(&mut self, _: &Change, _: Option<Content>) -> Result<(), VcsError> {
        Ok(())
    }
}

/// The names in directory `fd` (sorted); a directory removed while listed lists what was read.
fn list(fd: &OwnedFd) -> Result<std::vec::IntoIter<Vec<u8>>, Fault> {
    let mut names = Vec::new();
    let mut dir = match rustix::fs::Dir::read_from(fd) {
        Ok(d) => d,
        Err(e) if vanished(e) => return Ok(names.into_iter()),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = dir.read() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if vanished(e) => break,
            Err(e) => return Err(e.into()),
        };
        let name = entry.file_name().to_bytes();
        // A nested repository is never part of a commit (git itself skips `.git`).
        if name != b"." && name != b".." && name != b".git" {
            names.push(name.to_vec());
        }
    }
    names.sort();
    names.dedup();
    Ok(names.into_iter())
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    p.extend_from_slice(prefix);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// A directory being walked.
struct Frame {
    fd: OwnedFd,
    names: std::vec::IntoIter<Vec<u8>>,
    lower: Option<u64>,
    rel: Vec<u8>,
}

/// The changes upper layer `upper` makes to the commit's directory `lower` (a Dicfuse inode;
/// `None` when the commit has no such directory), under repository path `prefix`, sorted by
/// path; each is also handed to `sink`. Runs on a blocking thread; `rt` answers the lookups
/// in the commit.
pub fn walk(
    dic: &Dicfuse,
    rt: &Handle,
    upper: &Path,
    lower: Option<u64>,
    prefix: &[u8],
    sink: &mut dyn Sink,
) -> Result<Vec<Change>, VcsError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let want = sink.wants();
    let root = match rustix::fs::open(upper, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if e == Errno::NOENT => return Ok(Vec::new()),
        Err(e) => return Err(Fault::from(e).at(prefix)),
    };
    let mut out = Vec::new();
    let mut emit = |c: Change, content: Option<Content>| -> Result<(), VcsError> {
        sink.change(&c, content)?;
        out.push(c);
        Ok(())
    };
    let names = list(&root).map_err(|f| f.at(prefix))?;
    let mut stack = vec![Frame {
        fd: root,
        names,
        lower,
        rel: prefix.to_vec(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.next() else {
            stack.pop();
            continue;
        };
        let repo_path = join(&frame.rel, &name);
        let base = match frame.lower {
            Some(l) => rt.block_on(dic.lower_lookup(l, &name))?,
            None => None,
        };
        let old = base.as_ref().map(|(_, n)| GitEntry {
            kind: n.kind,
            oid: n.oid.unwrap_or(Oid([0; 20])),
        });
        let entry = read_entry(frame.fd.as_fd(), OsStr::from_bytes(&name), &want)
            .map_err(|f| f.at(&repo_path))?;
        match entry {
            Entry::Absent => {}
            Entry::Other => {
                let path = crate::vcs::names::quote_path(&repo_path);
                tracing::warn!(path, "git cannot hold this file type; left out");
            }
            Entry::Whiteout => {
                if old.is_some() {
                    emit(Change::deleted(repo_path, old), None)?;
                }
            }
            Entry::Dir { fd, opaque } => {
                let merged = match &base {
                    Some((ino, n)) if n.kind == EntryKind::Dir && !opaque => Some(*ino),
                    _ => None,
                };
                if merged.is_none() && old.is_some() {
                    // The commit's entry (a file, or a directory now replaced) is gone.
                    emit(Change::deleted(repo_path.clone(), old), None)?;
                }
                let names = list(&fd).map_err(|f| f.at(&repo_path))?;
                stack.push(Frame {
                    fd,
                    names,
                    lower: merged,
                    rel: repo_path,
                });
            }
            Entry::Blob { kind, oid, content } => {
                let new = GitEntry { kind, oid };
                let change = |kind, old| Change {
                    kind,
                    path: repo_path.clone(),
                    old,
                    new: Some(new),
                };
                match old {
                    Some(o) if o == new => {}
                    Some(o) if o.kind.is_dir() => {
                        emit(Change::deleted(repo_path.clone(), Some(o)), None)?;
                        emit(change(ChangeKind::Added, None), content)?;
                    }
                    Some(o) => emit(change(ChangeKind::Modified, Some(o)), content)?,
                    None => emit(change(ChangeKind::Added, None), content)?,
                }
            }
        }
    }
    out.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then((a.kind as u8).cmp(&(b.kind as u8)))
    });
    Ok(out)
}
