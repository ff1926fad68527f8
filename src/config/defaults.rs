//! Default values: what a key means when no layer sets it. Validation reads them from here so
//! each default has one home.

use std::path::PathBuf;

/// `http_addr` when unset.
pub(super) const HTTP_ADDR: &str = "127.0.0.1:8000";
/// `antares.bind` when unset.
pub(super) const ANTARES_BIND: &str = "127.0.0.1:2726";
/// `log_level` when unset.
pub(super) const LOG_LEVEL: &str = "info";
/// `workspace` when unset, under the current directory.
pub(super) const WORKSPACE_DIR: &str = "workspace";
/// `antares.mount_root` when unset, under `store_path`.
pub(super) const ANTARES_MOUNT_DIR: &str = "antares/mnt";
/// `antares.upper_root` when unset, under `store_path`.
pub(super) const ANTARES_UPPER_DIR: &str = "antares/upper";
/// `antares.cl_root` when unset, under `store_path`.
pub(super) const ANTARES_CL_DIR: &str = "antares/cl";
/// `antares.max_mounts` when unset.
pub(super) const ANTARES_MAX_MOUNTS: u64 = 64;
/// `cache_mem_bytes` when unset.
pub(super) const CACHE_MEM_BYTES: u64 = 256 << 20;
/// `cache_disk_bytes` when unset.
pub(super) const CACHE_DISK_BYTES: u64 = 20 << 30;
/// `cache_db_bytes` when unset: sled's page cache (sled's own default is 1 GiB).
pub(super) const CACHE_DB_BYTES: u64 = 32 << 20;
/// `cache_listing_bytes` when unset.
pub(super) const CACHE_LISTING_BYTES: u64 = 16 << 20;
/// `list_ahead` when unset. Only a walk going down lists ahead, so a plain `ls` still asks the
/// remote for that one directory.
pub(super) const LIST_AHEAD: u64 = 8;
/// `fuse_spin_us` when unset: off. Polling sped a walk up on a VM whose idle CPUs halt, but
/// took CPU from a parallel build on a small machine (`benches/compare.sh`: 1.09x native with
/// it, 0.98x without, on 2 CPUs); a user whose work is walks turns it on.
pub(super) const FUSE_SPIN_US: u64 = 0;
/// `fetch_concurrency` when unset.
pub(super) const FETCH_CONCURRENCY: u64 = 16;
/// `prefetch_depth` and `antares.preload_depth` when unset: nothing is listed ahead.
pub(super) const PREFETCH_DEPTH: u64 = 0;
/// The most levels `prefetch_depth` and `antares.preload_depth` take.
pub(super) const PREFETCH_DEPTH_MAX: u64 = 1024;
/// `connect_timeout_secs` when unset.
pub(super) const CONNECT_TIMEOUT_SECS: u64 = 5;
/// `request_timeout_secs` when unset.
pub(super) const REQUEST_TIMEOUT_SECS: u64 = 30;

/// `git_author` when unset.
pub(super) const GIT_AUTHOR: &str = "Scorpio";
/// `git_email` when unset.
pub(super) const GIT_EMAIL: &str = "scorpio@localhost";

/// `store_path` when unset: `$XDG_DATA_HOME/scorpio`, else `~/.local/share/scorpio`, else
/// `/var/lib/scorpio`.
pub(super) fn store_path() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("scorpio");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/scorpio"),
        None => PathBuf::from("/var/lib/scorpio"),
    }
}
