//! Configuration errors: every one names the key and where its value came from.

use std::path::PathBuf;

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

/// The [`ConfigError::Invalid`] for `key`, whose value came from `origin`.
pub(super) fn invalid(key: &str, origin: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        origin: origin.to_string(),
        reason: reason.to_string(),
    }
}
