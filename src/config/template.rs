//! `scorpio config init`: a commented config naming every key with its default and meaning.
//! Only `remote` is set; every other key is a comment showing its default, so the file passes
//! `config validate` as written and again with every line uncommented.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::defaults as d;
use super::validate::url_scheme;

/// Why `config init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The file exists and `--force` was not given.
    #[error("{0} exists; not overwritten (--force overwrites it)")]
    Exists(PathBuf),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The text of a new config whose `remote` is `remote`.
pub fn template(remote: &str) -> String {
    let remote = toml::Value::String(remote.to_string());
    let mib = |b: u64| b >> 20;
    format!(
        r#"# Scorpio config, written by `scorpio config init`. Only `remote` is set; every other key
# shows its default in a comment. Relative paths are taken from this file's directory. Every
# key can also be set as SCORPIO_<KEY> in the environment (SCORPIO_ANTARES_<KEY> for
# [antares]), the common ones as flags; CLI > environment > file > defaults.
# `scorpio config validate` checks this file; `scorpio config show` prints what is in effect.

# A path to a git repository (the `local` remote) or an http(s) Mega URL (the `mega` remote).
remote = {remote}
# The ref or commit to mount (default: HEAD for `local`, the latest commit for `mega`).
# ref = "main"
# Mountpoint, created if missing (default: ./workspace, from where the daemon starts).
# workspace = "{workspace}"
# Objects, meta.sled, overlay layers (default: $XDG_DATA_HOME/scorpio, else ~/.local/share/scorpio).
# store_path = "/var/lib/scorpio"
# The HTTP API; anything but loopback requires auth_token.
# http_addr = "{http_addr}"
# A tracing filter: info, debug, scorpio=trace,info, ...
# log_level = "{log_level}"

# Bounds of the object caches, of the database's page cache and of the decoded directory
# listings, in bytes.
# cache_mem_bytes = {cache_mem}   # {cache_mem_mib} MiB
# cache_disk_bytes = {cache_disk}   # {cache_disk_mib} MiB
# cache_db_bytes = {cache_db}   # {cache_db_mib} MiB
# cache_listing_bytes = {cache_listing}   # {cache_listing_mib} MiB

# When a reader walks down (lists a directory after listing its parent), the subdirectories of
# that directory are listed in the background, at most this many at once (0: off). Speeds up a
# full walk; a plain `ls` still asks the remote for that one directory.
# list_ahead = {list_ahead}

# Microseconds a FUSE session thread polls for the next request before it sleeps, while
# requests come that fast (0: always sleep). Saves waking it per request of a walk on a VM whose
# idle CPUs halt; takes CPU from a parallel build on a small machine.
# fuse_spin_us = {fuse_spin_us}

# Remote requests in flight, TCP connect timeout, deadline of one fetch (retries included).
# fetch_concurrency = {fetch_concurrency}
# connect_timeout_secs = {connect}
# request_timeout_secs = {request}

# Levels of directories listed in the background from the root at start and from each
# writable path when mounted (1: the directory itself; 0: none).
# prefetch_depth = {prefetch_depth}

# Where pushes go (default: the remote's own).
# push_url = "https://git.example.com/repo.git"
# remote_token = "..."   # sent to the remote as a Bearer token
# auth_token = "..."     # required by our own API; needed to bind beyond loopback

# Author and committer of commits made without one.
# git_author = "{git_author}"
# git_email = "{git_email}"

# Whether other users may enter the mounts (file modes still apply). Default: true as root,
# false otherwise; a plain user's needs `user_allow_other` in /etc/fuse.conf.
# allow_other = false

# Antares: per-job CI mounts (`scorpio antares serve`, or /antares on the daemon's API).
[antares]
# bind = "{antares_bind}"
# mount_root = "/var/lib/scorpio/{mount_dir}"   # default: <store_path>/{mount_dir}
# upper_root = "/var/lib/scorpio/{upper_dir}"   # default: <store_path>/{upper_dir}
# cl_root = "/var/lib/scorpio/{cl_dir}"         # default: <store_path>/{cl_dir}
# max_mounts = {max_mounts}
# allow_other_roots = false   # true: mountpoint/upper_dir may lie outside their roots
# preload_depth = {prefetch_depth}   # levels listed from a new mount's path; ready once done
"#,
        workspace = d::WORKSPACE_DIR,
        http_addr = d::HTTP_ADDR,
        log_level = d::LOG_LEVEL,
        cache_mem = d::CACHE_MEM_BYTES,
        cache_mem_mib = mib(d::CACHE_MEM_BYTES),
        cache_disk = d::CACHE_DISK_BYTES,
        cache_disk_mib = mib(d::CACHE_DISK_BYTES),
        cache_db = d::CACHE_DB_BYTES,
        cache_db_mib = mib(d::CACHE_DB_BYTES),
        cache_listing = d::CACHE_LISTING_BYTES,
        cache_listing_mib = mib(d::CACHE_LISTING_BYTES),
        list_ahead = d::LIST_AHEAD,
        fuse_spin_us = d::FUSE_SPIN_US,
        fetch_concurrency = d::FETCH_CONCURRENCY,
        connect = d::CONNECT_TIMEOUT_SECS,
        request = d::REQUEST_TIMEOUT_SECS,
        prefetch_depth = d::PREFETCH_DEPTH,
        git_author = d::GIT_AUTHOR,
        git_email = d::GIT_EMAIL,
        antares_bind = d::ANTARES_BIND,
        mount_dir = d::ANTARES_MOUNT_DIR,
        upper_dir = d::ANTARES_UPPER_DIR,
        cl_dir = d::ANTARES_CL_DIR,
        max_mounts = d::ANTARES_MAX_MOUNTS,
    )
}

/// Writes [`template`] to `path` (its directory made if missing), with `remote` (a relative
/// path made absolute from the cwd, since the file's own directory is where it would be read
/// from), or `.` (the file's directory) when none is given. An existing file is refused unless
/// `force`; without it the file is created exclusively, so two runs at once cannot both write.
pub fn write_template(path: &Path, remote: Option<&str>, force: bool) -> Result<(), InitError> {
    let remote = match remote {
        None => ".".to_string(),
        Some(r) if url_scheme(r).is_some() || Path::new(r).is_absolute() => r.to_string(),
        Some(r) => std::path::absolute(r)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| r.to_string()),
    };
    let write_err = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut f = open.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists(path.to_path_buf())
        } else {
            write_err(e)
        }
    })?;
    f.write_all(template(&remote).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write_err)
}
