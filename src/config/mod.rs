//! Configuration: `scorpio.toml`, then `SCORPIO_*` environment variables, then CLI flags.
//!
//! Every key is read through one lookup that knows where its value came from, so an error can
//! name both the key and its source. Upstream Scorpio's keys are accepted (`upstream`: each
//! sets one of ours, or is ignored with one warning line); any other unknown key is refused by
//! name.
//!
//! This module holds the validated types and what a loaded [`Config`] answers; the layers and
//! their origins live in `sources`, the checks in `validate`, default values in `defaults`,
//! upstream's keys in `upstream`, `config show` in `show`, `config init`'s file in `template`,
//! and errors in `error`.

mod defaults;
mod error;
mod show;
mod sources;
mod template;
mod upstream;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use error::invalid;
pub use error::ConfigError;
pub use show::Shown;
pub use sources::Sources;
pub use template::{template, write_template, InitError};

/// Where the repository comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteSpec {
    /// A git repository on this machine, read with git2.
    Local(PathBuf),
    /// A Mega server, read over its HTTP API; the base URL has no trailing `/`.
    Mega(String),
}

/// `[antares]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AntaresConfig {
    /// Address of the standalone Antares API.
    pub bind: SocketAddr,
    /// Where per-job mountpoints are made.
    pub mount_root: PathBuf,
    /// Where per-job upper layers live.
    pub upper_root: PathBuf,
    /// Where CL layers live.
    pub cl_root: PathBuf,
    /// Most mounts at once.
    pub max_mounts: usize,
    /// Whether mountpoints and upper layers may lie outside `mount_root` and `upper_root`.
    pub allow_other_roots: bool,
    /// Levels of directories listed from a new mount's path in the background; the mount is
    /// ready once they are (0: none).
    pub preload_depth: u32,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The repository to mount.
    pub remote: RemoteSpec,
    /// The ref to mount (`None`: the remote's HEAD or latest commit).
    pub refname: Option<String>,
    /// Mountpoint.
    pub workspace: PathBuf,
    /// Local state: objects, sled database, overlay layers.
    pub store_path: PathBuf,
    /// Address of the HTTP control API.
    pub http_addr: SocketAddr,
    /// A `tracing` filter directive.
    pub log_level: String,
    /// Bound on the in-memory object cache.
    pub cache_mem_bytes: u64,
    /// Bound on the on-disk object cache.
    pub cache_disk_bytes: u64,
    /// Bound on the database's page cache (the inode table and the records beside it).
    pub cache_db_bytes: u64,
    /// Bound on the read-only view's decoded directory listings.
    pub cache_listing_bytes: u64,
    /// Most background listings of the subdirectories of a directory a walker lists (0: none).
    pub list_ahead: usize,
    /// Most microseconds a FUSE session thread polls for the next request before it sleeps,
    /// while requests come that fast (0: it always sleeps).
    pub fuse_spin_us: u64,
    /// Most remote requests in flight at once.
    pub fetch_concurrency: usize,
    /// Levels of directories listed in the background from the root at start and from each
    /// writable path when it is mounted (0: none).
    pub prefetch_depth: u32,
    /// TCP connect timeout for the remote.
    pub connect_timeout: Duration,
    /// Deadline for one remote fetch, retries included.
    pub request_timeout: Duration,
    /// Where pushes go, when not the default for the remote.
    pub push_url: Option<String>,
    /// Bearer token sent to the remote.
    pub remote_token: Option<String>,
    /// Bearer token our own API requires.
    pub auth_token: Option<String>,
    /// Commit author name.
    pub git_author: Option<String>,
    /// Commit author email.
    pub git_email: Option<String>,
    /// Whether users other than the daemon's may enter its mounts (default: only when root).
    pub allow_other: bool,
    /// Antares settings.
    pub antares: AntaresConfig,
    /// For each key, the name its value was given under (ours or upstream's) and where it came
    /// from, for errors found after loading (see [`Config::invalid`]) and `config show`.
    origins: BTreeMap<&'static str, (String, String)>,
    /// One line for each upstream key accepted but ignored, for the user to read once.
    warnings: Vec<String>,
}

impl Config {
    /// Loads the file, the environment and the CLI layers.
    pub fn load(
        file: Option<&Path>,
        cli: &[(&'static str, Option<String>)],
    ) -> Result<Config, ConfigError> {
        Sources::from_file(file)?
            .with_env(std::env::vars())
            .with_cli(cli)
            .build()
    }

    /// Where the value of `key` came from: `config file <path>`, `SCORPIO_<KEY>`, `--<key>` or
    /// `default`.
    pub fn origin(&self, key: &str) -> String {
        self.origins
            .get(key)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| "default".into())
    }

    /// The name the value of `key` was given under: `key`, or the upstream key that set it.
    pub fn spelled<'a>(&'a self, key: &'a str) -> &'a str {
        self.origins.get(key).map_or(key, |(n, _)| n.as_str())
    }

    /// The error for a value of `key` found wrong after loading (start-up checks).
    pub fn invalid(&self, key: &str, reason: impl std::fmt::Display) -> ConfigError {
        invalid(self.spelled(key), &self.origin(key), &reason.to_string())
    }

    /// The error for an address of `key` that cannot be listened on: worded as
    /// [`Config::invalid`], but its own exit status (see [`ConfigError::is_bind`]).
    pub fn cannot_listen(&self, key: &str, addr: SocketAddr, e: std::io::Error) -> ConfigError {
        ConfigError::Bind {
            key: self.spelled(key).to_string(),
            origin: self.origin(key),
            reason: format!("cannot listen on {addr}: {e}"),
        }
    }

    /// One line for each upstream key that was accepted but is ignored (print each once).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The author and committer of commits made without one: `git_author` and `git_email`,
    /// or their defaults.
    pub fn commit_identity(&self) -> (String, String) {
        (
            self.git_author
                .clone()
                .unwrap_or_else(|| defaults::GIT_AUTHOR.into()),
            self.git_email
                .clone()
                .unwrap_or_else(|| defaults::GIT_EMAIL.into()),
        )
    }

    /// Start-up checks that need the filesystem: `store_path` can be written, `allow_other` is
    /// permitted, a local `remote` is a git repository that has `ref`. Each failure names its
    /// key and where the value came from (the process exits 2).
    pub fn check_host(&self) -> Result<(), ConfigError> {
        std::fs::create_dir_all(&self.store_path)
            .and_then(|()| tempfile::tempfile_in(&self.store_path).map(drop))
            .map_err(|e| {
                self.invalid(
                    "store_path",
                    format!(
                        "{} is not a writable directory: {e}",
                        self.store_path.display()
                    ),
                )
            })?;
        if self.allow_other && !crate::privacy::allow_other_permitted() {
            return Err(self.invalid(
                "allow_other",
                format!(
                    "a plain user's mount may let other users in only when {} has a \
                     `user_allow_other` line (as root: echo user_allow_other >> {}); or set \
                     allow_other = false",
                    crate::privacy::FUSE_CONF,
                    crate::privacy::FUSE_CONF
                ),
            ));
        }
        if let RemoteSpec::Local(p) = &self.remote {
            let repo = git2::Repository::open(p).map_err(|e| {
                self.invalid(
                    "remote",
                    format!("{} is not a git repository: {}", p.display(), e.message()),
                )
            })?;
            if let Some(r) = &self.refname {
                repo.revparse_single(r)
                    .and_then(|o| o.peel_to_commit())
                    .map_err(|e| {
                        self.invalid(
                            "ref",
                            format!("{r:?} names no commit in {}: {}", p.display(), e.message()),
                        )
                    })?;
            }
        }
        Ok(())
    }

    /// A stable name for the remote and ref, so state bound to one never serves another.
    pub fn remote_id(&self) -> String {
        let r = match &self.remote {
            RemoteSpec::Local(p) => format!(
                "local:{}",
                p.canonicalize().unwrap_or_else(|_| p.clone()).display()
            ),
            RemoteSpec::Mega(u) => format!("mega:{u}"),
        };
        format!("{r}#{}", self.refname.as_deref().unwrap_or("HEAD"))
    }
}

#[cfg(test)]
mod tests;
