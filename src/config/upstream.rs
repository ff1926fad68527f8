//! Upstream Scorpio's config keys (scorpiofs 0.4): the one table saying which of ours each sets
//! and which have no meaning here. A config written for upstream loads: a key that means
//! something here sets our key; one that does not is accepted with one warning line naming it.
//!
//! Upstream spells each key flat (`load_dir_depth = "3"`, also `SCORPIO_LOAD_DIR_DEPTH`) or
//! inside a table (`[dicfuse] load_dir_depth = 3`), and writes numbers as strings or as numbers.

/// What an upstream key does here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Meaning {
    /// It sets this key of ours (`antares.<key>` for the `[antares]` table).
    Ours(&'static str),
    /// It has no meaning here, for this reason; accepted with one warning line.
    Ignored(&'static str),
}

/// One upstream key.
#[derive(Clone, Copy, Debug)]
pub(super) struct UpstreamKey {
    /// Its flat name, also read as `SCORPIO_<NAME>` from the environment.
    pub flat: &'static str,
    /// The table it goes in when not flat (`server`, `dicfuse` or `antares`).
    pub table: &'static str,
    /// Its name inside that table.
    pub short: &'static str,
    /// What it does here.
    pub meaning: Meaning,
}

const fn key(
    flat: &'static str,
    table: &'static str,
    short: &'static str,
    meaning: Meaning,
) -> UpstreamKey {
    UpstreamKey {
        flat,
        table,
        short,
        meaning,
    }
}

use Meaning::{Ignored, Ours};

/// Why the read-only view's tuning knobs mean nothing here.
const LAZY: &str = "directories are read when first looked up and kept for the mounted commit";
/// Why Antares' own view knobs mean nothing here.
const SHARED: &str = "Antares mounts share the workspace's read-only view";

/// Every upstream key, in upstream's order.
pub(super) const UPSTREAM_KEYS: &[UpstreamKey] = &[
    key("base_url", "server", "base_url", Ours("remote")),
    key(
        "lfs_url",
        "server",
        "lfs_url",
        Ignored("files are read from the remote's git objects; there is no LFS endpoint"),
    ),
    key("workspace", "server", "workspace", Ours("workspace")),
    key("store_path", "server", "store_path", Ours("store_path")),
    key(
        "config_file",
        "server",
        "config_file",
        Ignored("the config file is the one given with -c"),
    ),
    key("git_author", "server", "git_author", Ours("git_author")),
    key("git_email", "server", "git_email", Ours("git_email")),
    key("log_level", "server", "log_level", Ours("log_level")),
    key(
        "dicfuse_readable",
        "dicfuse",
        "readable",
        Ignored("the workspace is always readable"),
    ),
    key(
        "load_dir_depth",
        "dicfuse",
        "load_dir_depth",
        Ours("prefetch_depth"),
    ),
    key(
        "fetch_file_thread",
        "dicfuse",
        "fetch_file_thread",
        Ours("fetch_concurrency"),
    ),
    key(
        "dicfuse_import_concurrency",
        "dicfuse",
        "import_concurrency",
        Ignored(LAZY),
    ),
    key(
        "dicfuse_dir_sync_ttl_secs",
        "dicfuse",
        "dir_sync_ttl_secs",
        Ignored("the view is one commit: a directory never changes under it"),
    ),
    key(
        "dicfuse_reply_ttl_secs",
        "dicfuse",
        "reply_ttl_secs",
        Ignored("there is no kernel cache TTL key here"),
    ),
    key(
        "dicfuse_fetch_dir_timeout_secs",
        "dicfuse",
        "fetch_dir_timeout_secs",
        Ignored("request_timeout_secs is one deadline with the retries included, not one per try"),
    ),
    key(
        "dicfuse_connect_timeout_secs",
        "dicfuse",
        "connect_timeout_secs",
        Ours("connect_timeout_secs"),
    ),
    key(
        "dicfuse_fetch_dir_max_retries",
        "dicfuse",
        "fetch_dir_max_retries",
        Ignored("retries end at request_timeout_secs, not after a count"),
    ),
    key(
        "dicfuse_stat_mode",
        "dicfuse",
        "stat_mode",
        Ignored("sizes and modes always come from the git objects"),
    ),
    key(
        "dicfuse_open_buff_max_bytes",
        "dicfuse",
        "open_buff_max_bytes",
        Ignored("cache_mem_bytes bounds the memory cache"),
    ),
    key(
        "dicfuse_open_buff_max_files",
        "dicfuse",
        "open_buff_max_files",
        Ignored("cache_mem_bytes bounds the memory cache"),
    ),
    key(
        "antares_load_dir_depth",
        "antares",
        "load_dir_depth",
        Ours("antares.preload_depth"),
    ),
    key(
        "antares_dicfuse_stat_mode",
        "antares",
        "stat_mode",
        Ignored(SHARED),
    ),
    key(
        "antares_dicfuse_open_buff_max_bytes",
        "antares",
        "open_buff_max_bytes",
        Ignored(SHARED),
    ),
    key(
        "antares_dicfuse_open_buff_max_files",
        "antares",
        "open_buff_max_files",
        Ignored(SHARED),
    ),
    key(
        "antares_dicfuse_dir_sync_ttl_secs",
        "antares",
        "dir_sync_ttl_secs",
        Ignored(SHARED),
    ),
    key(
        "antares_dicfuse_reply_ttl_secs",
        "antares",
        "reply_ttl_secs",
        Ignored(SHARED),
    ),
    key(
        "antares_upper_root",
        "antares",
        "upper_root",
        Ours("antares.upper_root"),
    ),
    key(
        "antares_cl_root",
        "antares",
        "cl_root",
        Ours("antares.cl_root"),
    ),
    key(
        "antares_mount_root",
        "antares",
        "mount_root",
        Ours("antares.mount_root"),
    ),
    key(
        "antares_state_file",
        "antares",
        "state_file",
        Ignored("Antares keeps its mounts in store_path's database"),
    ),
];

/// Tables upstream writes keys in (ours has `[antares]` too).
pub(super) const TABLES: &[&str] = &["server", "dicfuse", "antares"];

/// The upstream key spelled `name` at the top level of a file or in the environment.
pub(super) fn flat(name: &str) -> Option<&'static UpstreamKey> {
    UPSTREAM_KEYS.iter().find(|k| k.flat == name)
}

/// The upstream key spelled `short` inside `[table]`.
pub(super) fn in_table(table: &str, short: &str) -> Option<&'static UpstreamKey> {
    UPSTREAM_KEYS
        .iter()
        .find(|k| k.table == table && k.short == short)
}
