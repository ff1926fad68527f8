//! Remotes: where commits, trees and blobs come from.
//!
//! A [`Remote`] answers with data it has checked: tree listings are verified against their id
//! (or come from a listing pinned to the commit), and blobs are verified again by the store
//! before anything is written to disk.

pub mod local;
pub mod mega;
pub mod mega_push;
pub mod metered;
pub mod object;
pub mod pack;
pub mod smart_http;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::{Config, RemoteSpec};
pub use object::{EntryKind, ObjectError, ObjectKind, Oid, TreeEntry};
pub use pack::PackObject;
pub use smart_http::PushError;

/// The commit a workspace shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitInfo {
    /// The commit id.
    pub oid: Oid,
    /// Its root tree, when the remote can say.
    pub root_tree: Option<Oid>,
    /// Commit time in seconds since the epoch (shown as every entry's mtime).
    pub time: i64,
}

/// One entry of a directory listing, with its size when it came cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    /// The tree entry.
    pub entry: TreeEntry,
    /// The blob size, if known without fetching the blob.
    pub size: Option<u64>,
}

/// A directory of the mounted commit.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The entries, in the order the remote gave them.
    pub entries: Vec<ListedEntry>,
    /// False when the listing came without git modes (Mega's pinned fallback): files are 0644.
    pub exact_modes: bool,
}

/// A pack of many objects the remote sends in one answer: everything of a repository whose top
/// is the directory [`PackUnit::root`] (Mega: a `/third-party` repository's upload-pack).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PackUnit {
    /// The repository path of the directory the pack holds, with everything below it.
    pub root: String,
    /// Where the remote serves it (Mega: the `<root>.git` endpoint, from the base URL).
    pub endpoint: String,
}

/// What one pack brought.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackSummary {
    /// Objects handed to the sink.
    pub objects: u32,
    /// Objects the pack announced.
    pub announced: u32,
    /// Bytes of pack data read.
    pub bytes: u64,
    /// False when the pack was cut short by the byte bound (or the sink went away).
    pub complete: bool,
    /// Deltas dropped because their base was not held.
    pub dropped: u32,
    /// Objects passed over for their size (their readers fetch them alone).
    pub too_big: u32,
}

/// What a change list does to one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClAction {
    /// The path holds this blob afterwards (added, modified, or the new side of a rename).
    Write {
        /// The blob.
        oid: Oid,
        /// File, executable or symlink.
        kind: EntryKind,
    },
    /// The path is gone afterwards.
    Delete,
}

/// One change of a change list, at a `/`-separated repository path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClChange {
    /// Repository path, without a leading `/`.
    pub path: String,
    /// What happens there.
    pub action: ClAction,
}

/// Errors from a remote.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The remote does not have the object or path.
    #[error("{what} not found on the remote")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// The remote answered with an HTTP error.
    #[error("{url} answered HTTP {status}")]
    Http {
        /// The request.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The remote did not answer in time.
    #[error("{url} did not answer within {secs}s")]
    Timeout {
        /// The request.
        url: String,
        /// The deadline.
        secs: u64,
    },
    /// The remote could not be reached.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The request.
        url: String,
        /// Why.
        reason: String,
    },
    /// Data that does not match its id or does not parse.
    #[error(transparent)]
    Corrupt(#[from] ObjectError),
    /// A response that does not follow the API.
    #[error("bad response from {url}: {reason}")]
    Protocol {
        /// The request.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An error from git2 for the local backend.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// The source of a repository's objects.
#[async_trait]
pub trait Remote: Send + Sync + 'static {
    /// A short name for logs (`local`, `mega`).
    fn kind(&self) -> &'static str;

    /// Resolves `refname` (or the default) to the commit to mount.
    async fn resolve(&self, refname: Option<&str>) -> Result<CommitInfo, RemoteError>;

    /// Lists the directory at `path` (`/`-separated, `""` for the root) of `commit`, whose tree
    /// id is `oid` when known.
    async fn list_tree(
        &self,
        commit: &CommitInfo,
        path: &str,
        oid: Option<Oid>,
    ) -> Result<Listing, RemoteError>;

    /// The bytes of blob `oid` (the store verifies them).
    async fn blob(&self, oid: Oid) -> Result<Bytes, RemoteError>;

    /// The size of blob `oid` without transferring its content.
    async fn blob_size(&self, oid: Oid) -> Result<u64, RemoteError>;

    /// Whether [`Remote::blob_sizes`] answers many sizes in one cheap call (a repository on
    /// this machine). Such a remote's listings need not carry sizes: the store asks for those
    /// of a whole directory the first time one is needed.
    fn sizes_in_bulk(&self) -> bool {
        false
    }

    /// The sizes of blobs `oids`, in order. By default one [`Remote::blob_size`] after another.
    async fn blob_sizes(&self, oids: &[Oid]) -> Result<Vec<u64>, RemoteError> {
        let mut sizes = Vec::with_capacity(oids.len());
        for oid in oids {
            sizes.push(self.blob_size(*oid).await?);
        }
        Ok(sizes)
    }

    /// The pack that holds the directory at `path` (`/`-separated) and everything below it, when
    /// the remote sends such packs; `None` (the default) for one that does not.
    fn pack_unit(&self, _path: &str) -> Option<PackUnit> {
        None
    }

    /// Streams the objects of pack `unit` to `sink`, each named by the hash of its own bytes,
    /// reading at most `max_bytes` of pack data (the rest is left, and the summary says so).
    async fn pack(
        &self,
        unit: &PackUnit,
        _max_bytes: u64,
        _sink: tokio::sync::mpsc::Sender<PackObject>,
    ) -> Result<PackSummary, RemoteError> {
        Err(RemoteError::NotFound {
            what: format!("a pack of {}", unit.root),
        })
    }

    /// How many requests the store may keep in flight fetching sizes and blobs ahead of a
    /// reader (see `store::ahead`): 0, the default, for a remote whose answers cost no round
    /// trip (its listings carry sizes, its blobs are local).
    fn ahead_concurrency(&self) -> usize {
        0
    }

    /// The changes of change list `cl` relative to `base`, repository-relative, for a layer at
    /// repository path `at` (a remote that keeps CLs at their own paths looks for the CL's path
    /// at `at` and its parents; changes elsewhere may be left out).
    async fn cl_changes(
        &self,
        cl: &str,
        base: &CommitInfo,
        at: &str,
    ) -> Result<Vec<ClChange>, RemoteError>;
}

/// The receiving end of a push: the remote's own, or the `push_url` of the config.
#[async_trait]
pub trait Push: Send + Sync + 'static {
    /// Where pushes go, for messages.
    fn target(&self) -> String;

    /// The full name of the ref a push updates, given the configured `ref` (`None`: the
    /// remote's default branch).
    async fn refname(&self, configured: Option<&str>) -> Result<String, PushError>;

    /// Moves `refname` from `old` to `new` (compare-and-swap: refused when the ref is not at
    /// `old`), sending `pack`, which holds every object the receiver lacks.
    async fn push(&self, refname: &str, old: Oid, new: Oid, pack: Vec<u8>)
        -> Result<(), PushError>;

    /// The Mega server, when pushes go path by path to one (the `mega` remote without a
    /// `push_url`); `None` for a plain receiver.
    fn mega(&self) -> Option<&mega_push::MegaPush> {
        None
    }
}

/// The full ref name for a configured branch over HTTP (`None` and `HEAD` mean `main`).
pub fn branch_ref(configured: Option<&str>) -> Result<String, PushError> {
    match configured {
        None | Some("HEAD") => Ok("refs/heads/main".into()),
        Some(r) if Oid::from_hex(r).is_ok() => Err(PushError::NoBranch(r.to_string())),
        Some(r) if r.starts_with("refs/") => Ok(r.to_string()),
        Some(r) => Ok(format!("refs/heads/{r}")),
    }
}

/// Builds where pushes go: `push_url` when the config has one, else the remote itself.
pub fn pusher_from_config(cfg: &Config) -> Result<Arc<dyn Push>, RemoteError> {
    let http = |url: String| -> Result<Arc<dyn Push>, RemoteError> {
        Ok(Arc::new(smart_http::HttpPush::new(smart_http::Endpoint {
            url,
            token: cfg.remote_token.clone(),
            timeout: cfg.request_timeout,
        })?))
    };
    match (&cfg.push_url, &cfg.remote) {
        (Some(url), _) => http(url.trim_end_matches('/').to_string()),
        // Each path is its own endpoint on a Mega server (see `mega_push`).
        (None, RemoteSpec::Mega(base)) => Ok(Arc::new(mega_push::MegaPush::new(
            base,
            cfg.remote_token.clone(),
            cfg.request_timeout,
        )?)),
        (None, RemoteSpec::Local(path)) => Ok(Arc::new(local::LocalRemote::open(path)?)),
    }
}

/// Builds the remote the config names, measured (see [`metered`]).
pub fn from_config(cfg: &Config) -> Result<Arc<dyn Remote>, RemoteError> {
    let remote: Arc<dyn Remote> = match &cfg.remote {
        RemoteSpec::Local(path) => Arc::new(local::LocalRemote::open(path)?),
        RemoteSpec::Mega(url) => Arc::new(mega::MegaRemote::new(mega::MegaOptions {
            base_url: url.clone(),
            token: cfg.remote_token.clone(),
            connect_timeout: cfg.connect_timeout,
            request_timeout: cfg.request_timeout,
            concurrency: cfg.fetch_concurrency,
        })?),
    };
    Ok(Arc::new(metered::Metered(remote)))
}
