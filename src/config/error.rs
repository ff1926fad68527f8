//! Configuration errors: every one names the key and where its value came from.

use std::path::PathBuf;

/// A configuration error; the process exits with status 2 (4 for [`ConfigError::Bind`]).
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
    /// An address that cannot be listened on (taken, or not this host's): worded as
    /// [`ConfigError::Invalid`], but not a mistake in the config as such, so it has its own exit
    /// status (see [`ConfigError::is_bind`]).
    #[error("config key `{key}` (from {origin}): {reason}")]
    Bind {
        /// The key.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Whether this is an address that cannot be listened on (exit 4), not a config mistake
    /// (exit 2).
    pub fn is_bind(&self) -> bool {
        matches!(self, ConfigError::Bind { .. })
    }
}

/// The [`ConfigError::Invalid`] for `key`, whose value came from `origin`.
pub(super) fn invalid(key: &str, origin: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        origin: origin.to_string(),
        reason: reason.to_string(),
    }
}
