//! Configuration: `scorpio.toml`, then `SCORPIO_*` environment variables, then CLI flags.
//!
//! Every key is read through one lookup that knows where its value came from, so an error can
//! name both the key and its source. Unknown keys in the file are refused by name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Most remote requests in flight at once.
    pub fetch_concurrency: usize,
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
    /// Antares settings.
    pub antares: AntaresConfig,
    /// Where each key's value came from, for errors found after loading (see [`Config::invalid`]).
    origins: BTreeMap<&'static str, String>,
}

/// A configuration error; the process exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key nobody knows.
    #[error("unknown config key `{key}` (in {origin})")]
    Unknown {
        /// The key.
        key: String,
        /// Where it was found.
        origin: String,
    },
    /// A key with a value that does not fit.
    #[error("config key `{key}` (from {origin}): {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

/// Top-level keys and the `[antares]` keys (written `antares.<key>`).
const KEYS: &[&str] = &[
    "remote",
    "base_url",
    "ref",
    "workspace",
    "store_path",
    "http_addr",
    "log_level",
    "cache_mem_bytes",
    "cache_disk_bytes",
    "fetch_concurrency",
    "connect_timeout_secs",
    "request_timeout_secs",
    "push_url",
    "remote_token",
    "auth_token",
    "git_author",
    "git_email",
    "antares.bind",
    "antares.mount_root",
    "antares.upper_root",
    "antares.cl_root",
    "antares.max_mounts",
    "antares.allow_other_roots",
];

/// A value and where it came from.
#[derive(Clone, Debug)]
enum Value {
    /// From the file; relative paths are taken from the file's directory.
    File(toml::Value, PathBuf),
    /// From the environment or the command line; relative paths are taken from the cwd.
    Text(String, String),
}

/// The layered sources before validation.
#[derive(Debug, Default)]
pub struct Sources {
    values: BTreeMap<&'static str, Value>,
    /// The config file, named in errors about its values.
    file: Option<PathBuf>,
}

impl Sources {
    /// Reads `path` (if any) as the bottom layer.
    pub fn from_file(path: Option<&Path>) -> Result<Sources, ConfigError> {
        let mut s = Sources::default();
        let Some(path) = path else { return Ok(s) };
        s.file = Some(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let origin = path.display().to_string();
        for (k, v) in table {
            if k == "antares" {
                let toml::Value::Table(sub) = v else {
                    return Err(invalid("antares", &origin, "must be a table ([antares])"));
                };
                for (sk, sv) in sub {
                    let full = format!("antares.{sk}");
                    let key = known(&full).ok_or(ConfigError::Unknown {
                        key: full,
                        origin: origin.clone(),
                    })?;
                    s.values.insert(key, Value::File(sv, dir.clone()));
                }
            } else {
                let key = known(&k).ok_or(ConfigError::Unknown {
                    key: k.clone(),
                    origin: origin.clone(),
                })?;
                s.values.insert(key, Value::File(v, dir.clone()));
            }
        }
        Ok(s)
    }

    /// Lays `SCORPIO_<KEY>` variables (`SCORPIO_ANTARES_<KEY>` for `[antares]`) over the file.
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Sources {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in KEYS {
            let var = format!("SCORPIO_{}", key.replace('.', "_").to_ascii_uppercase());
            if let Some(v) = env.get(&var) {
                self.values.insert(key, Value::Text(v.clone(), var));
            }
        }
        self
    }

    /// Lays command-line values over everything else.
    pub fn with_cli(mut self, cli: &[(&'static str, Option<String>)]) -> Sources {
        for (key, v) in cli {
            if let (Some(key), Some(v)) = (known(key), v) {
                self.values.insert(
                    key,
                    Value::Text(v.clone(), format!("--{}", key.replace('_', "-"))),
                );
            }
        }
        self
    }

    fn origin(&self, key: &str) -> String {
        match self.values.get(key) {
            Some(Value::File(_, _)) => match &self.file {
                Some(f) => format!("config file {}", f.display()),
                None => "config file".into(),
            },
            Some(Value::Text(_, o)) => o.clone(),
            None => "default".into(),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::File(toml::Value::String(s), _)) | Some(Value::Text(s, _)) => {
                Ok(Some(s.clone()))
            }
            Some(Value::File(other, _)) => Err(invalid(
                key,
                &self.origin(key),
                &format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        if s.is_empty() {
            return Err(invalid(key, &self.origin(key), "empty path"));
        }
        let p = PathBuf::from(&s);
        let base = match self.values.get(key) {
            Some(Value::File(_, dir)) => dir.clone(),
            _ => std::env::current_dir().unwrap_or_default(),
        };
        Ok(Some(if p.is_absolute() { p } else { base.join(p) }))
    }

    fn number(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let n = match self.values.get(key) {
            None => return Ok(None),
            Some(Value::File(toml::Value::Integer(i), _)) => u64::try_from(*i).ok(),
            Some(Value::Text(s, _)) => s.trim().parse::<u64>().ok(),
            Some(Value::File(_, _)) => None,
        };
        let n = n.ok_or_else(|| invalid(key, &self.origin(key), "expected a whole number"))?;
        if n < min || n > max {
            return Err(invalid(
                key,
                &self.origin(key),
                &format!("{n} is outside {min}..={max}"),
            ));
        }
        Ok(Some(n))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let b = match self.values.get(key) {
            None => return Ok(None),
            Some(Value::File(toml::Value::Boolean(b), _)) => Some(*b),
            Some(Value::Text(s, _)) => match s.trim() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            Some(Value::File(_, _)) => None,
        };
        b.map(Some)
            .ok_or_else(|| invalid(key, &self.origin(key), "expected true or false"))
    }

    /// Validates every layer into a [`Config`].
    pub fn build(&self) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let remote_key = if self.values.contains_key("remote") {
            "remote"
        } else {
            "base_url"
        };
        let remote_raw = self.string(remote_key)?.ok_or_else(|| {
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
                invalid(remote_key, &self.origin(remote_key), &why)
            })?;
            RemoteSpec::Mega(remote_raw.trim_end_matches('/').to_string())
        } else {
            let p = self.path(remote_key)?.unwrap_or_default();
            if !p.exists() {
                return Err(invalid(
                    remote_key,
                    &self.origin(remote_key),
                    &format!("{} does not exist", p.display()),
                ));
            }
            RemoteSpec::Local(p)
        };
        let refname = self.string("ref")?.filter(|s| !s.is_empty());
        let workspace = self
            .path("workspace")?
            .unwrap_or_else(|| cwd.join("workspace"));
        let store_path = match self.path("store_path")? {
            Some(p) => p,
            None => default_store_path(),
        };
        if workspace.starts_with(&store_path) || store_path.starts_with(&workspace) {
            return Err(invalid(
                "workspace",
                &self.origin("workspace"),
                "workspace and store_path must not contain each other",
            ));
        }
        let http_raw = self
            .string("http_addr")?
            .unwrap_or_else(|| "127.0.0.1:8000".into());
        let (http_addr, http_loopback) = listen_addr(&http_raw)
            .map_err(|why| invalid("http_addr", &self.origin("http_addr"), &why))?;
        let auth_token = self.string("auth_token")?.filter(|s| !s.is_empty());
        if !http_loopback && auth_token.is_none() {
            return Err(invalid(
                "http_addr",
                &self.origin("http_addr"),
                "binding beyond loopback requires `auth_token`",
            ));
        }
        let log_level = self.string("log_level")?.unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| invalid("log_level", &self.origin("log_level"), &e.to_string()))?;
        let antares_bind_raw = self
            .string("antares.bind")?
            .unwrap_or_else(|| "127.0.0.1:2726".into());
        let (antares_bind, antares_loopback) = listen_addr(&antares_bind_raw)
            .map_err(|why| invalid("antares.bind", &self.origin("antares.bind"), &why))?;
        if !antares_loopback && auth_token.is_none() {
            return Err(invalid(
                "antares.bind",
                &self.origin("antares.bind"),
                "binding beyond loopback requires `auth_token`",
            ));
        }
        let antares = AntaresConfig {
            bind: antares_bind,
            mount_root: self
                .path("antares.mount_root")?
                .unwrap_or_else(|| store_path.join("antares/mnt")),
            upper_root: self
                .path("antares.upper_root")?
                .unwrap_or_else(|| store_path.join("antares/upper")),
            cl_root: self
                .path("antares.cl_root")?
                .unwrap_or_else(|| store_path.join("antares/cl")),
            max_mounts: self.number("antares.max_mounts", 1, 100_000)?.unwrap_or(64) as usize,
            allow_other_roots: self.boolean("antares.allow_other_roots")?.unwrap_or(false),
        };
        Ok(Config {
            remote,
            refname,
            workspace,
            store_path,
            http_addr,
            log_level,
            cache_mem_bytes: self
                .number("cache_mem_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(256 << 20),
            cache_disk_bytes: self
                .number("cache_disk_bytes", 1 << 20, u64::MAX)?
                .unwrap_or(20 << 30),
            fetch_concurrency: self.number("fetch_concurrency", 1, 1024)?.unwrap_or(16) as usize,
            connect_timeout: Duration::from_secs(
                self.number("connect_timeout_secs", 1, 3600)?.unwrap_or(5),
            ),
            request_timeout: Duration::from_secs(
                self.number("request_timeout_secs", 1, 3600)?.unwrap_or(30),
            ),
            push_url: match self.string("push_url")?.filter(|s| !s.is_empty()) {
                Some(u) => Some(
                    http_url(&u)
                        .map_err(|why| invalid("push_url", &self.origin("push_url"), &why))?,
                ),
                None => None,
            },
            remote_token: self.string("remote_token")?,
            auth_token,
            git_author: self.string("git_author")?,
            git_email: self.string("git_email")?,
            antares,
            origins: KEYS
                .iter()
                .map(|k| (*k, self.origin(k)))
                .chain([("remote", self.origin(remote_key))])
                .collect(),
        })
    }
}

/// The scheme of `s` when it is written as a URL (`scheme://...`), else `None` (a path).
fn url_scheme(s: &str) -> Option<&str> {
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

fn known(key: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| *k == key)
}

fn invalid(key: &str, origin: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        origin: origin.to_string(),
        reason: reason.to_string(),
    }
}

fn default_store_path() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("scorpio");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/scorpio"),
        None => PathBuf::from("/var/lib/scorpio"),
    }
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
            .cloned()
            .unwrap_or_else(|| "default".into())
    }

    /// The error for a value of `key` found wrong after loading (start-up checks).
    pub fn invalid(&self, key: &str, reason: impl std::fmt::Display) -> ConfigError {
        invalid(key, &self.origin(key), &reason.to_string())
    }

    /// Start-up checks that need the filesystem: `store_path` can be written, a local `remote`
    /// is a git repository that has `ref`. Each failure names its
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
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scorpio.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn defaults_and_relative_paths() {
        let (dir, p) = file("remote = \".\"\nworkspace = \"ws\"\nstore_path = \"st\"\n");
        let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
        assert_eq!(c.workspace, dir.path().join("ws"));
        assert_eq!(c.store_path, dir.path().join("st"));
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.fetch_concurrency, 16);
        assert!(matches!(c.remote, RemoteSpec::Local(_)));
    }

    #[test]
    fn precedence_cli_over_env_over_file() {
        let (_d, p) = file("remote = \"http://a\"\nfetch_concurrency = 3\nlog_level = \"warn\"\nstore_path = \"/s\"\n");
        let env = [
            ("SCORPIO_FETCH_CONCURRENCY".to_string(), "5".to_string()),
            ("SCORPIO_LOG_LEVEL".to_string(), "debug".to_string()),
        ];
        let c = Sources::from_file(Some(&p))
            .unwrap()
            .with_env(env)
            .with_cli(&[("log_level", Some("trace".into())), ("workspace", None)])
            .build()
            .unwrap();
        assert_eq!(c.fetch_concurrency, 5);
        assert_eq!(c.log_level, "trace");
        assert_eq!(c.remote, RemoteSpec::Mega("http://a".into()));
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let (_d, p) = file("remote = \".\"\nbogus = 1\n");
        let e = Sources::from_file(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let (_d, p) = file("remote = \".\"\n[antares]\nnope = 1\n");
        assert!(Sources::from_file(Some(&p))
            .unwrap_err()
            .to_string()
            .contains("antares.nope"));
        let (_d, p) = file("remote = \".\"\nfetch_concurrency = \"many\"\nstore_path = \"/s\"\n");
        let e = Sources::from_file(Some(&p))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("fetch_concurrency"), "{e}");
        let env = [("SCORPIO_HTTP_ADDR".to_string(), "nowhere".to_string())];
        let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\n");
        let e = Sources::from_file(Some(&p))
            .unwrap()
            .with_env(env)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http_addr") && e.contains("SCORPIO_HTTP_ADDR"),
            "{e}"
        );
    }

    #[test]
    fn urls_and_listen_addresses() {
        let build = |text: &str| {
            let (_d, p) = file(text);
            Sources::from_file(Some(&p)).unwrap().build()
        };
        let e = build("remote = \"ftp://x\"\nstore_path = \"/s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`remote`") && e.contains("ftp"), "{e}");
        for bad in ["not a url", "ftp://h/r.git", "http://"] {
            let e = build(&format!(
                "remote = \".\"\nstore_path = \"/s\"\npush_url = {bad:?}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("`push_url`"), "{bad}: {e}");
        }
        let c =
            build("remote = \".\"\nstore_path = \"/s\"\npush_url = \"https://h/r.git\"\n").unwrap();
        assert_eq!(c.push_url.as_deref(), Some("https://h/r.git"));
        let c =
            build("remote = \".\"\nstore_path = \"/s\"\nhttp_addr = \"localhost:8001\"\n").unwrap();
        assert!(c.http_addr.ip().is_loopback() && c.http_addr.port() == 8001);
        let origin = c.origin("http_addr");
        assert!(
            origin.starts_with("config file ") && origin.ends_with("scorpio.toml"),
            "{origin}"
        );
        assert!(build("remote = \".\"\nstore_path = \"/s\"\nhttp_addr = \"localhost\"\n").is_err());
    }

    #[test]
    fn antares_keys() {
        let (d, p) = file("remote = \".\"\nstore_path = \"st\"\n[antares]\nallow_other_roots = true\nmax_mounts = 3\n");
        let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
        assert!(c.antares.allow_other_roots);
        assert_eq!(c.antares.max_mounts, 3);
        assert_eq!(c.antares.mount_root, d.path().join("st/antares/mnt"));
        let (_d, p) =
            file("remote = \".\"\nstore_path = \"/s\"\n[antares]\nallow_other_roots = 1\n");
        let e = Sources::from_file(Some(&p))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("antares.allow_other_roots"), "{e}");
        let (_d, p) =
            file("remote = \".\"\nstore_path = \"/s\"\n[antares]\nbind = \"0.0.0.0:2726\"\n");
        assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
        let c = Sources::from_file(None)
            .unwrap()
            .with_env([
                ("SCORPIO_REMOTE".to_string(), ".".to_string()),
                ("SCORPIO_STORE_PATH".to_string(), "/s".to_string()),
                (
                    "SCORPIO_ANTARES_ALLOW_OTHER_ROOTS".to_string(),
                    "true".to_string(),
                ),
            ])
            .build()
            .unwrap();
        assert!(c.antares.allow_other_roots);
    }

    #[test]
    fn refuses_open_bind_without_token_and_missing_remote() {
        let (_d, p) = file("remote = \".\"\nhttp_addr = \"0.0.0.0:8000\"\nstore_path = \"/s\"\n");
        assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
        let (_d, p) = file("remote = \".\"\nhttp_addr = \"0.0.0.0:8000\"\nauth_token = \"t\"\nstore_path = \"/s\"\n");
        assert!(Sources::from_file(Some(&p)).unwrap().build().is_ok());
        let (_d, p) = file("store_path = \"/s\"\n");
        assert!(Sources::from_file(Some(&p))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string()
            .contains("remote"));
        let (_d, p) = file("remote = \"/does/not/exist\"\nstore_path = \"/s\"\n");
        assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
        let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\ncache_mem_bytes = 0\n");
        assert!(Sources::from_file(Some(&p))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string()
            .contains("cache_mem_bytes"));
    }
}
