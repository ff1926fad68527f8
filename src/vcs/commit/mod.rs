//! `commit`: a git commit of the upper layer's changes on top of the mounted commit.
//!
//! Promises: only the trees on the paths of changes are rebuilt (every other entry keeps the
//! commit's object id, read from the inode table, never fetched); blobs come from the upper layer;
//! objects are written to a local bare repository (`store_path/git`) that holds only what Scorpio
//! made, so it is exactly what a push must send. Commits stack: the parent is the last local
//! commit until a push moves the base.
//!
//! Here: who a commit is by, the sink that takes blobs into the staging repository as the scan
//! reads them, and the commit object. The staging repository is in `staging`, object writing
//! with roll-back in `writer`, the trees in `tree`, the local history in `history`, the pack a
//! push sends in `pack`.

mod history;
mod ids;
mod pack;
mod staging;
mod tree;
mod writer;

pub use history::History;
pub use ids::{mode, our_oid};
pub use pack::{pack_commits, pack_new_objects};
pub use staging::{open_staging, renew_staging};
pub use tree::{plan, tree_with, Plan};
pub use writer::Writer;

use ids::git_oid;

use super::change::Change;
use super::error::VcsError;
use super::names::quote_path;
use super::scan::{Content, Sink, Want};
use crate::remote::Oid;

/// Who a commit is by.
#[derive(Clone, Debug)]
pub struct Author {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// Takes the blobs of changed files into the staging repository as the scan reads them: the
/// blob written is exactly the bytes the change's id was computed from.
pub struct BlobSink<'w, 'r> {
    /// Where blobs go.
    pub writer: &'w mut Writer<'r>,
}

impl Sink for BlobSink<'_, '_> {
    fn wants(&self) -> Want {
        Want::All(self.writer.objects.clone())
    }

    fn change(&mut self, c: &Change, content: Option<Content>) -> Result<(), VcsError> {
        let (Some(new), Some(content)) = (c.new, content) else {
            return Ok(());
        };
        if c.old.is_some_and(|o| o.oid == new.oid) {
            // Only the mode changed: the commit has the blob.
            return Ok(());
        }
        let bytes = match content {
            Content::Bytes(bytes) => bytes,
            Content::Loose(blob) => return self.writer.place_loose(*blob, git_oid(new.oid)?),
            Content::TooLarge(_) => {
                return Err(VcsError::Lower(format!(
                    "the content of {} was not kept",
                    quote_path(&c.path)
                )))
            }
        };
        let oid = self.writer.write(git2::ObjectType::Blob, &bytes)?;
        if our_oid(oid) != new.oid {
            return Err(VcsError::Lower(format!(
                "the blob of {} hashed differently when written",
                quote_path(&c.path)
            )));
        }
        Ok(())
    }
}

/// Writes a commit object of `tree` on `parent` and returns its id.
pub fn write_commit(
    w: &mut Writer<'_>,
    tree: Oid,
    parent: Oid,
    author: &Author,
    message: &str,
) -> Result<Oid, VcsError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clean = |s: &str| s.replace(['<', '>', '\n'], "");
    let who = format!(
        "{} <{}> {now} +0000",
        clean(&author.name),
        clean(&author.email)
    );
    let mut msg = message.trim_end().to_string();
    msg.push('\n');
    let body = format!("tree {tree}\nparent {parent}\nauthor {who}\ncommitter {who}\n\n{msg}");
    Ok(our_oid(w.write(git2::ObjectType::Commit, body.as_bytes())?))
}

#[cfg(test)]
mod tests;
