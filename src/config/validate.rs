//! Validation: turns the layered [`Sources`] into a [`Config`], checking each value (URLs,
//! listen addresses, ranges, loopback without a token) and naming the key and origin on failure.

use std::net::SocketAddr;
use std::time::Duration;

use super::defaults;
use super::error::{invalid, ConfigError};
use super::sources::{Sources, KEYS};
use super::{AntaresConfig, Config, RemoteSpec};

impl Sources {
    /// Validates every layer into a [`Config`].
    pub fn build(&self) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let remote_raw = self.string("remote")?.ok_or_else(|| {
            invalid(
                "remote",
                "default",
                "missing: set `remote` in the file, SCORPIO_REMOTE or --remote",
            )
        })?;
        let remote = if let Some(scheme) = url_scheme(&remote_raw) {
            http_url(&remote_raw).map_err(|why| {
                let why = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
                    why
                } else {
                    format!("{why}; a remote is a path to a local git repository or an http(s):// Mega URL")
                };
                self.invalid("remote", &why)
            })?;
            RemoteSpec::Mega(remote_raw.trim_end_matches('/').to_string())
        } else {
            let p = self.path("remote")?.unwrap_or_default();
            if !p.exists() {
                return Err(self.invalid("remote", &format!("{} does not exist", p.display())));
            }
            RemoteSpec::Local(p)
        };
        let refname = self.string("ref")?.filter(|s| !s.is_empty());
        let workspace = self
            .path("workspace")?
            .unwrap_or_else(|| cwd.join(defaults::WORKSPACE_DIR));
        let store_path = match self.path("store_path")? {
            Some(p) => p,
            None => defaults::store_path(),
        };
        if workspace.starts_with(&store_path) || store_path.starts_with(&workspace) {
            return Err(self.invalid(
                "workspace",
                "workspace and store_path must not contain each other",
            ));
        }
        let http_raw = self
            .string("http_addr")?
            .unwrap_or_else(|| defaults::HTTP_ADDR.into());
        let (http_addr, http_loopback) =
            listen_addr(&http_raw).map_err(|why| self.invalid("http_addr", &why))?;
        let auth_token = self.string("auth_token")?.filter(|s| !s.is_empty());
        if !http_loopback && auth_token.is_none() {
            return Err(self.invalid("http_addr", "binding beyond loopback requires `auth_token`"));
        }
        let log_level = self
            .string("log_level")?
            .unwrap_or_else(|| defaults::LOG_LEVEL.into());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| self.invalid("log_level", &e.to_string()))?;
        let antares_bind_raw = self
            .string("antares.bind")?
            .unwrap_or_else(|| defaults::ANTARES_BIND.into());
        let (antares_bind, antares_loopback) =
            listen_addr(&antares_bind_raw).map_err(|why| self.invalid("antares.bind", &why))?;
        if !antares_loopback && auth_token.is_none() {
            return Err(self.invalid(
                "antares.bind",
                "binding beyond loopback requires `auth_token`",
            ));
        }
        let antares = AntaresConfig {
            bind: antares_bind,
            mount_root: self
                .path("antares.mount_root")?
                .unwrap_or_else(|| store_path.join(defaults::ANTARES_MOUNT_DIR)),
            upper_root: self
                .path("antares.upper_root")?
                .unwrap_or_else(|| store_path.join(defaults::ANTARES_UPPER_DIR)),
            cl_root: self
                .path("antares.cl_root")?
                .unwrap_or_else(|| store_path.join(defaults::ANTARES_CL_DIR)),
            max_mounts: self
                .number("antares.max_mounts", 1, 100_000)?
                .unwrap_or(defaults::ANTARES_MAX_MOUNTS) as usize,
            allow_other_roots: self.boolean("antares.allow_other_roots")?.unwrap_or(false),
            preload_depth: self
                .number("antares.preload_depth", 0, defaults::PREFETCH_DEPTH_MAX)?
                .unwrap_or(defaults::PREFETCH_DEPTH) as u32,
        };
        Ok(Config {
            allow_other: self
                .boolean("allow_other")?
                .unwrap_or_else(crate::privacy::is_root),
            remote,
            refname,
            workspace,
            store_path,
            http_addr,
            log_level,
            cache_mem_bytes: self
                .number("cache_mem_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(defaults::CACHE_MEM_BYTES),
            cache_disk_bytes: self
                .number("cache_disk_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(defaults::CACHE_DISK_BYTES),
            cache_db_bytes: self
                .number("cache_db_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(defaults::CACHE_DB_BYTES),
            cache_listing_bytes: self
                .number("cache_listing_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(defaults::CACHE_LISTING_BYTES),
            list_ahead: self
                .number("list_ahead", 0, 256)?
                .unwrap_or(defaults::LIST_AHEAD) as usize,
            fuse_spin_us: self
                .number("fuse_spin_us", 0, 10_000)?
                .unwrap_or(defaults::FUSE_SPIN_US),
            fetch_concurrency: self
                .number("fetch_concurrency", 1, 1024)?
                .unwrap_or(defaults::FETCH_CONCURRENCY) as usize,
            prefetch_depth: self
                .number("prefetch_depth", 0, defaults::PREFETCH_DEPTH_MAX)?
                .unwrap_or(defaults::PREFETCH_DEPTH) as u32,
            connect_timeout: Duration::from_secs(
                self.number("connect_timeout_secs", 1, 3600)?
                    .unwrap_or(defaults::CONNECT_TIMEOUT_SECS),
            ),
            request_timeout: Duration::from_secs(
                self.number("request_timeout_secs", 1, 3600)?
                    .unwrap_or(defaults::REQUEST_TIMEOUT_SECS),
            ),
            push_url: match self.string("push_url")?.filter(|s| !s.is_empty()) {
                Some(u) => Some(http_url(&u).map_err(|why| self.invalid("push_url", &why))?),
                None => None,
            },
            remote_token: self.string("remote_token")?,
            auth_token,
            git_author: self.string("git_author")?,
            git_email: self.string("git_email")?,
            antares,
            origins: KEYS
                .iter()
                .map(|k| (*k, (self.name(k).to_string(), self.origin(k))))
                .collect(),
            warnings: self.warnings(),
        })
    }
}

/// The scheme of `s` when it is written as a URL (`scheme://...`), else `None` (a path).
pub(super) fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .then_some(scheme)
}

/// `s` if it is an http(s) URL with a host; otherwise why not.
fn http_url(s: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "{s:?} has the URL scheme `{}`; only http:// and https:// are supported",
            u.scheme()
        ));
    }
    if !u.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(s.to_string())
}

/// The address to listen on for `s` (`ip:port`, or `host:port` with a host that resolves, such
/// as `localhost`), and whether every address the host names is loopback.
fn listen_addr(s: &str) -> Result<(SocketAddr, bool), String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok((a, a.ip().is_loopback()));
    }
    let bad = || format!("{s:?} is not host:port (e.g. 127.0.0.1:8000 or localhost:8000)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("cannot resolve the host of {s:?}: {e}"))?
        .collect();
    // The first IPv4 address: what `localhost` means to most clients.
    let first = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;
    Ok((first, addrs.iter().all(|a| a.ip().is_loopback())))
}
