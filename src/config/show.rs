//! `scorpio config show`: every key's effective value and where it came from (`default`,
//! `config file <path>`, `SCORPIO_<KEY>`, `--<key>`, and the upstream name it was given under).
//! Tokens are never printed, only whether they are set.

use super::sources::KEYS;
use super::{defaults, Config, RemoteSpec};

/// One key as `config show` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The key (`antares.<key>` for the `[antares]` table).
    pub key: &'static str,
    /// Its effective value, written as TOML where it is set, else `(not set: ...)`.
    pub value: String,
    /// Where the value came from.
    pub origin: String,
}

/// `s` as a TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `p` as a TOML string.
fn path(p: &std::path::Path) -> String {
    quoted(&p.display().to_string())
}

impl Config {
    /// The effective value of `key` as `config show` writes it, or `None` for a key that is
    /// not ours.
    fn shown_value(&self, key: &str) -> Option<String> {
        let opt = |v: &Option<String>, unset: &str| match v {
            Some(s) => quoted(s),
            None => format!("(not set: {unset})"),
        };
        let secret = |v: &Option<String>| match v {
            Some(_) => "(set; not shown)".to_string(),
            None => "(not set)".to_string(),
        };
        let a = &self.antares;
        Some(match key {
            "remote" => match &self.remote {
                RemoteSpec::Local(p) => path(p),
                RemoteSpec::Mega(u) => quoted(u),
            },
            "ref" => opt(&self.refname, "HEAD, or the remote's latest commit"),
            "workspace" => path(&self.workspace),
            "store_path" => path(&self.store_path),
            "http_addr" => quoted(&self.http_addr.to_string()),
            "log_level" => quoted(&self.log_level),
            "cache_mem_bytes" => self.cache_mem_bytes.to_string(),
            "cache_disk_bytes" => self.cache_disk_bytes.to_string(),
            "cache_db_bytes" => self.cache_db_bytes.to_string(),
            "cache_listing_bytes" => self.cache_listing_bytes.to_string(),
            "list_ahead" => self.list_ahead.to_string(),
            "fuse_spin_us" => self.fuse_spin_us.to_string(),
            "fetch_concurrency" => self.fetch_concurrency.to_string(),
            "prefetch_depth" => self.prefetch_depth.to_string(),
            "connect_timeout_secs" => self.connect_timeout.as_secs().to_string(),
            "request_timeout_secs" => self.request_timeout.as_secs().to_string(),
            "push_url" => opt(&self.push_url, "the remote's own"),
            "remote_token" => secret(&self.remote_token),
            "auth_token" => secret(&self.auth_token),
            "git_author" => opt(&self.git_author, &quoted(defaults::GIT_AUTHOR)),
            "git_email" => opt(&self.git_email, &quoted(defaults::GIT_EMAIL)),
            "allow_other" => self.allow_other.to_string(),
            "antares.bind" => quoted(&a.bind.to_string()),
            "antares.mount_root" => path(&a.mount_root),
            "antares.upper_root" => path(&a.upper_root),
            "antares.cl_root" => path(&a.cl_root),
            "antares.max_mounts" => a.max_mounts.to_string(),
            "antares.allow_other_roots" => a.allow_other_roots.to_string(),
            "antares.preload_depth" => a.preload_depth.to_string(),
            _ => return None,
        })
    }

    /// Every key of ours (in the order of `sources::KEYS`) with its effective value and origin.
    pub fn show(&self) -> Vec<Shown> {
        KEYS.iter()
            .filter_map(|key| {
                let value = self.shown_value(key)?;
                let spelled = self.spelled(key);
                let origin = if spelled == *key {
                    self.origin(key)
                } else {
                    format!("{}, as upstream `{spelled}`", self.origin(key))
                };
                Some(Shown { key, value, origin })
            })
            .collect()
    }

    /// [`Config::show`] as lines `key = value  # origin`, the comments aligned.
    pub fn show_text(&self) -> String {
        let rows = self.show();
        let width = rows
            .iter()
            .map(|r| r.key.len() + 3 + r.value.len())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|r| {
                let kv = format!("{} = {}", r.key, r.value);
                format!("{kv:<width$}  # {}\n", r.origin)
            })
            .collect()
    }
}
