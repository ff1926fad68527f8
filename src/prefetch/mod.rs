//! Prefetch: the directory listings (and, when asked, the blobs) of a subtree of the read-only
//! view fetched ahead of its readers, in parallel and bounded, as a job that can be watched and
//! cancelled.
//!
//! Promises:
//! - Everything goes through [`Dicfuse`] the way a reader's request does: listings land in the
//!   inode table, blobs in the object store verified against their ids. So what a prefetch
//!   fetched is kept across restarts, and a second prefetch of the same subtree asks the remote
//!   for nothing (it counts what it found kept instead).
//! - At most `fetch_concurrency` listings or blobs are in flight for one job.
//! - A refused request (a path with `.` or `..`, one that is not in the commit or is not a
//!   directory, a depth of 0) starts nothing.
//! - Cancelling a job stops it at once: nothing new is asked of the remote after it (a blob
//!   already in flight is finished and kept, as a reader's would be).
//! - A running job logs one progress line a second; every job logs its end.

pub mod cli;
mod jobs;
mod walk;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::dicfuse::DicError;
pub use jobs::{Job, Prefetcher};

/// What to prefetch (the body of `POST /api/prefetch`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    /// Repository path of a directory (`/` or `""` is the whole repository).
    pub path: String,
    /// Levels of directories to list: 1 is the directory itself, 2 adds its subdirectories,
    /// and so on; `None` lists the whole subtree.
    #[serde(default)]
    pub depth: Option<u32>,
    /// Whether the blobs of the files in the listed directories are fetched too.
    #[serde(default)]
    pub blobs: bool,
}

/// Why a prefetch was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PrefetchError {
    /// The path is not a repository path.
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    /// Nothing in the commit at that path.
    #[error("{0:?} is not in the mounted commit")]
    NotFound(String),
    /// The path names a file, a symlink or a submodule, or goes through one.
    #[error("{0:?} is not a directory of the repository")]
    NotDir(String),
    /// A depth of 0 lists nothing.
    #[error("depth must be at least 1 (1 lists the directory itself; leave it out for the whole subtree)")]
    BadDepth,
    /// No job has that id (or it was forgotten).
    #[error("no prefetch job {0}")]
    NoJob(String),
    /// The view, the store or the remote failed.
    #[error("reading the repository failed: {0}")]
    Lower(#[from] DicError),
}

/// Where a job is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Fetching.
    Running,
    /// Everything asked for is kept.
    Done,
    /// Stopped by a cancel; what it fetched is kept.
    Cancelled,
    /// Stopped by an error (`error` says which); what it fetched is kept.
    Failed,
}

/// Counters of one job, updated as it goes.
#[derive(Debug, Default)]
pub struct Counters {
    dirs_fetched: AtomicU64,
    dirs_kept: AtomicU64,
    blobs_fetched: AtomicU64,
    blobs_kept: AtomicU64,
    bytes_fetched: AtomicU64,
    bytes_kept: AtomicU64,
}

impl Counters {
    fn dir(&self, fetched: bool) {
        let c = if fetched {
            &self.dirs_fetched
        } else {
            &self.dirs_kept
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn blob(&self, fetched: bool, bytes: u64) {
        let (n, b) = if fetched {
            (&self.blobs_fetched, &self.bytes_fetched)
        } else {
            (&self.blobs_kept, &self.bytes_kept)
        };
        n.fetch_add(1, Ordering::Relaxed);
        b.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A job as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    /// Its id, for `GET` and `DELETE /api/prefetch/{id}`.
    pub id: String,
    /// The repository path it prefetches (normalized: no leading `/`; `""` is the root).
    pub path: String,
    /// Levels of directories it lists (`None`: all).
    pub depth: Option<u32>,
    /// Whether it fetches blobs.
    pub blobs: bool,
    /// Where it is.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Directories listed from the remote.
    pub dirs_fetched: u64,
    /// Directories the inode table had already.
    pub dirs_kept: u64,
    /// Blobs fetched from the remote (and verified).
    pub blobs_fetched: u64,
    /// Blobs the store had already.
    pub blobs_kept: u64,
    /// Bytes of the blobs fetched.
    pub bytes_fetched: u64,
    /// Bytes of the blobs the store had already.
    pub bytes_kept: u64,
    /// Milliseconds since it started (until it ended, once it has).
    pub elapsed_ms: u64,
}

impl Snapshot {
    /// Objects fetched from the remote: listings and blobs.
    pub fn fetched(&self) -> u64 {
        self.dirs_fetched + self.blobs_fetched
    }

    /// Objects found kept: listings and blobs.
    pub fn kept(&self) -> u64 {
        self.dirs_kept + self.blobs_kept
    }

    /// One line for people: what was fetched, what was kept, how fast.
    pub fn summary(&self) -> String {
        let secs = (self.elapsed_ms as f64 / 1e3).max(1e-3);
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        format!(
            "prefetch {path}: {state}; {df} directories listed, {dk} kept; {bf} blobs fetched \
             ({bytes}), {bk} kept; {objs} objects in {secs:.1} s ({rate:.0} objects/s, {bps}/s)",
            state = match self.state {
                JobState::Running => "running",
                JobState::Done => "done",
                JobState::Cancelled => "cancelled",
                JobState::Failed => "failed",
            },
            df = self.dirs_fetched,
            dk = self.dirs_kept,
            bf = self.blobs_fetched,
            bytes = human_bytes(self.bytes_fetched),
            bk = self.blobs_kept,
            objs = self.fetched(),
            rate = self.fetched() as f64 / secs,
            bps = human_bytes((self.bytes_fetched as f64 / secs) as u64),
        )
    }
}

/// `n` bytes for people (`1.5 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `raw` as a repository path: no leading or trailing `/`, no empty parts; `.`, `..` and NUL
/// are refused (a prefetch never leaves the repository).
pub fn repo_path(raw: &str) -> Result<String, PrefetchError> {
    if raw.contains('\0') {
        return Err(PrefetchError::BadPath(raw.into(), "holds NUL"));
    }
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" => continue,
            "." | ".." => {
                return Err(PrefetchError::BadPath(
                    raw.into(),
                    "`.` and `..` are not allowed",
                ))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests;
