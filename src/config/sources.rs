//! The layered sources before validation: the file, then the environment, then the CLI, each
//! value kept with its origin so an error can name where it came from. Unknown keys are refused
//! by name here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{invalid, ConfigError};

/// Top-level keys and the `[antares]` keys (written `antares.<key>`).
pub(super) const KEYS: &[&str] = &[
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
    "allow_other",
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

    /// Whether any layer sets `key`.
    pub(super) fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Where the value of `key` came from, as errors name it.
    pub(super) fn origin(&self, key: &str) -> String {
        match self.values.get(key) {
            Some(Value::File(_, _)) => match &self.file {
                Some(f) => format!("config file {}", f.display()),
                None => "config file".into(),
            },
            Some(Value::Text(_, o)) => o.clone(),
            None => "default".into(),
        }
    }

    /// The value of `key` as a string.
    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
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

    /// The value of `key` as a path, made absolute against the file's directory or the cwd.
    pub(super) fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
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

    /// The value of `key` as a whole number within `min..=max`.
    pub(super) fn number(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
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

    /// The value of `key` as true or false.
    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
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
}

/// The known key spelled `key`, if any.
fn known(key: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| *k == key)
}
