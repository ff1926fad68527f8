//! The layered sources before validation: the file, then the environment, then the CLI, each
//! value kept with its origin so an error can name where it came from. Keys are ours, upstream's
//! (see `upstream`: they set ours, or are ignored with a warning) or refused by name here.
//!
//! A key of ours set under our name in any layer wins over the same key set under an upstream
//! name in any layer (the upstream one is then ignored with a warning); among upstream names the
//! usual layering holds, and in the file a table (`[server] base_url`) wins over the flat name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{invalid, ConfigError};
use super::upstream::{self, Meaning, UpstreamKey};

/// Top-level keys and the `[antares]` keys (written `antares.<key>`).
pub(super) const KEYS: &[&str] = &[
    "remote",
    "ref",
    "workspace",
    "store_path",
    "http_addr",
    "log_level",
    "cache_mem_bytes",
    "cache_disk_bytes",
    "cache_db_bytes",
    "cache_listing_bytes",
    "list_ahead",
    "fuse_spin_us",
    "fetch_concurrency",
    "prefetch_depth",
    "connect_timeout_secs",
    "request_timeout_secs",
    "push_url",
    "remote_token",
    "auth_token",
    "git_author",
    "git_email",
    "allow_other",
    "antares.bind",
    "antares.mount_root",
    "antares.upper_root",
    "antares.cl_root",
    "antares.max_mounts",
    "antares.allow_other_roots",
    "antares.preload_depth",
];

/// A value and where it came from.
#[derive(Clone, Debug)]
enum Value {
    /// From the file; relative paths are taken from the file's directory.
    File(toml::Value, PathBuf),
    /// From the environment or the command line; relative paths are taken from the cwd.
    Text(String, String),
}

/// A value given under an upstream name for a key of ours.
#[derive(Clone, Debug)]
struct Aliased {
    /// The name it was given under (`base_url`, `server.base_url`), as errors name it.
    name: String,
    /// The value.
    value: Value,
}

/// The layered sources before validation.
#[derive(Debug, Default)]
pub struct Sources {
    /// Values set under our names.
    values: BTreeMap<&'static str, Value>,
    /// Values set under an upstream name, by the key of ours they set (the top layer's).
    aliased: BTreeMap<&'static str, Aliased>,
    /// Upstream keys with no meaning here: the name as given, where, and why it is ignored.
    ignored: BTreeMap<String, (String, &'static str)>,
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
        let unknown = |key: String| ConfigError::Unknown {
            key,
            origin: origin.clone(),
        };
        let (tables, flat): (Vec<_>, Vec<_>) = table
            .into_iter()
            .partition(|(k, _)| upstream::TABLES.contains(&k.as_str()));
        // Flat keys first: upstream lets a table's value win over the flat one.
        for (k, v) in flat {
            let v = Value::File(v, dir.clone());
            if let Some(key) = known(&k) {
                s.values.insert(key, v);
            } else if let Some(u) = upstream::flat(&k) {
                s.upstream(u, k, v);
            } else {
                return Err(unknown(k));
            }
        }
        for (t, v) in tables {
            let toml::Value::Table(sub) = v else {
                return Err(invalid(&t, &origin, &format!("must be a table ([{t}])")));
            };
            for (sk, sv) in sub {
                let full = format!("{t}.{sk}");
                let v = Value::File(sv, dir.clone());
                if let Some(key) = known(&full) {
                    s.values.insert(key, v);
                } else if let Some(u) = upstream::in_table(&t, &sk) {
                    s.upstream(u, full, v);
                } else {
                    return Err(unknown(full));
                }
            }
        }
        Ok(s)
    }

    /// Lays `SCORPIO_<KEY>` variables (`SCORPIO_ANTARES_<KEY>` for `[antares]`) over the file,
    /// and upstream's `SCORPIO_<UPSTREAM_KEY>` ones where they are not also ours.
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Sources {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in KEYS {
            let var = env_var(key);
            if let Some(v) = env.get(&var) {
                self.values.insert(key, Value::Text(v.clone(), var));
            }
        }
        for u in upstream::UPSTREAM_KEYS {
            let var = env_var(u.flat);
            if KEYS.iter().any(|k| env_var(k) == var) {
                continue;
            }
            if let Some(v) = env.get(&var) {
                self.upstream(u, u.flat.to_string(), Value::Text(v.clone(), var));
            }
        }
        self
    }

    /// Records a value given under the upstream key `u`, spelled `name`. An empty string is
    /// unset, as upstream takes it.
    fn upstream(&mut self, u: &UpstreamKey, name: String, value: Value) {
        let empty = match &value {
            Value::File(toml::Value::String(s), _) | Value::Text(s, _) => s.trim().is_empty(),
            Value::File(_, _) => false,
        };
        if empty {
            return;
        }
        match u.meaning {
            Meaning::Ours(key) => {
                if let Some(key) = known(key) {
                    self.aliased.insert(key, Aliased { name, value });
                }
            }
            Meaning::Ignored(why) => {
                let origin = self.value_origin(&value);
                self.ignored.insert(name, (origin, why));
            }
        }
    }

    /// One line for each upstream key that is accepted but ignored: one with no meaning here,
    /// or one whose key of ours is also set under our name.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, a) in &self.aliased {
            if self.values.contains_key(key) {
                out.push(format!(
                    "upstream config key `{}` (from {}) is ignored: `{key}` (from {}) is set and wins",
                    a.name,
                    self.value_origin(&a.value),
                    self.origin(key)
                ));
            }
        }
        for (name, (origin, why)) in &self.ignored {
            out.push(format!(
                "upstream config key `{name}` (from {origin}) has no meaning here and is ignored: {why}"
            ));
        }
        out
    }

    /// Lays command-line values over everything else. An `[antares]` key's flag is its own name
    /// (`antares.bind` is `antares serve --bind`).
    pub fn with_cli(mut self, cli: &[(&'static str, Option<String>)]) -> Sources {
        for (key, v) in cli {
            if let (Some(key), Some(v)) = (known(key), v) {
                let flag = key
                    .strip_prefix("antares.")
                    .unwrap_or(key)
                    .replace('_', "-");
                self.values
                    .insert(key, Value::Text(v.clone(), format!("--{flag}")));
            }
        }
        self
    }

    /// The value of `key`: under our name if any layer sets it so, else under an upstream name.
    fn get(&self, key: &str) -> Option<&Value> {
        self.values
            .get(key)
            .or_else(|| self.aliased.get(key).map(|a| &a.value))
    }

    /// Whether the value of `key` comes under an upstream name (which writes numbers as strings).
    fn via_upstream(&self, key: &str) -> bool {
        !self.values.contains_key(key) && self.aliased.contains_key(key)
    }

    /// The name the value of `key` was given under, as errors name it: ours, or upstream's.
    pub(super) fn name<'a>(&'a self, key: &'a str) -> &'a str {
        match self.aliased.get(key) {
            Some(a) if !self.values.contains_key(key) => &a.name,
            _ => key,
        }
    }

    /// Where `v` came from: `config file <path>`, `SCORPIO_<KEY>` or `--<key>`.
    fn value_origin(&self, v: &Value) -> String {
        match v {
            Value::File(_, _) => match &self.file {
                Some(f) => format!("config file {}", f.display()),
                None => "config file".into(),
            },
            Value::Text(_, o) => o.clone(),
        }
    }

    /// Where the value of `key` came from, as errors name it.
    pub(super) fn origin(&self, key: &str) -> String {
        match self.get(key) {
            Some(v) => self.value_origin(v),
            None => "default".into(),
        }
    }

    /// The error for the value of `key`, naming the name it was given under and its origin.
    pub(super) fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        invalid(self.name(key), &self.origin(key), reason)
    }

    /// The value of `key` as a string.
    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::File(toml::Value::String(s), _)) | Some(Value::Text(s, _)) => {
                Ok(Some(s.clone()))
            }
            Some(Value::File(other, _)) => Err(self.invalid(
                key,
                &format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    /// The value of `key` as a path, made absolute against the file's directory or the cwd.
    pub(super) fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        if s.is_empty() {
            return Err(self.invalid(key, "empty path"));
        }
        let p = PathBuf::from(&s);
        let base = match self.get(key) {
            Some(Value::File(_, dir)) => dir.clone(),
            _ => std::env::current_dir().unwrap_or_default(),
        };
        Ok(Some(if p.is_absolute() { p } else { base.join(p) }))
    }

    /// The value of `key` as a whole number within `min..=max`.
    pub(super) fn number(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let n = match self.get(key) {
            None => return Ok(None),
            Some(Value::File(toml::Value::Integer(i), _)) => u64::try_from(*i).ok(),
            Some(Value::File(toml::Value::String(s), _)) if self.via_upstream(key) => {
                s.trim().parse::<u64>().ok()
            }
            Some(Value::Text(s, _)) => s.trim().parse::<u64>().ok(),
            Some(Value::File(_, _)) => None,
        };
        let n = n.ok_or_else(|| self.invalid(key, "expected a whole number"))?;
        if n < min || n > max {
            return Err(self.invalid(key, &format!("{n} is outside {min}..={max}")));
        }
        Ok(Some(n))
    }

    /// The value of `key` as true or false.
    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let b = match self.get(key) {
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
            .ok_or_else(|| self.invalid(key, "expected true or false"))
    }
}

/// The known key spelled `key`, if any.
fn known(key: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| *k == key)
}

/// The environment variable for `key`: `SCORPIO_<KEY>`, dots as underscores.
fn env_var(key: &str) -> String {
    format!("SCORPIO_{}", key.replace('.', "_").to_ascii_uppercase())
}
