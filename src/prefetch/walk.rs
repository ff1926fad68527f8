//! The walk of one job: directories breadth first, blobs after the directories known so far,
//! at most `concurrency` of them in flight.

use std::collections::VecDeque;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};

use super::Counters;
use crate::dicfuse::{DicError, Dicfuse};
use crate::remote::EntryKind;
use crate::store::Node;

/// What one step found to do next.
#[derive(Default)]
struct Found {
    dirs: Vec<(u64, u32)>,
    files: Vec<(u64, Node)>,
}

/// Lists directory `ino` (at `level`, the walk's root being 1) and says what is beneath it.
async fn step_dir(
    dic: &Dicfuse,
    ino: u64,
    level: u32,
    depth: Option<u32>,
    blobs: bool,
    counters: &Counters,
) -> Result<Found, DicError> {
    let (children, fetched) = dic.prefetch_dir(ino).await?;
    counters.dir(fetched);
    let deeper = depth.map_or(true, |d| level < d);
    let mut found = Found::default();
    for c in children.iter() {
        match c.node.kind {
            EntryKind::Dir if deeper => found.dirs.push((c.ino, level + 1)),
            EntryKind::File | EntryKind::Executable | EntryKind::Symlink if blobs => {
                found.files.push((c.ino, c.node.clone()))
            }
            _ => {}
        }
    }
    Ok(found)
}

async fn step_blob(
    dic: &Dicfuse,
    ino: u64,
    node: Node,
    counters: &Counters,
) -> Result<Found, DicError> {
    let got = dic.prefetch_blob(ino, &node).await?;
    counters.blob(got.fetched, got.bytes);
    Ok(Found::default())
}

/// Walks the subtree of directory `root`: lists directories down to `depth` levels (`None`:
/// all) and, with `blobs`, fetches the blobs of the files in them. Stops at the first error.
pub(super) async fn walk(
    dic: &Dicfuse,
    root: u64,
    depth: Option<u32>,
    blobs: bool,
    concurrency: usize,
    counters: &Counters,
) -> Result<(), DicError> {
    let mut dirs = VecDeque::from([(root, 1u32)]);
    let mut files: VecDeque<(u64, Node)> = VecDeque::new();
    let mut running: FuturesUnordered<BoxFuture<'_, Result<Found, DicError>>> =
        FuturesUnordered::new();
    loop {
        while running.len() < concurrency.max(1) {
            // Directories first: they find the rest of the work.
            let step = if let Some((ino, level)) = dirs.pop_front() {
                step_dir(dic, ino, level, depth, blobs, counters).boxed()
            } else if let Some((ino, node)) = files.pop_front() {
                step_blob(dic, ino, node, counters).boxed()
            } else {
                break;
            };
            running.push(step);
        }
        match running.next().await {
            None => return Ok(()),
            Some(found) => {
                let found = found?;
                dirs.extend(found.dirs);
                files.extend(found.files);
            }
        }
    }
}
