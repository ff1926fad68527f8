//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Scorpio: mount a remote monorepo as a lazy, verified FUSE filesystem.
#[derive(Parser, Debug)]
#[command(name = "scorpio", version, about)]
pub struct Cli {
    /// Config file (scorpio.toml).
    #[arg(short = 'c', long, global = true)]
    pub config: Option<PathBuf>,
    /// The repository: a local git path or an http(s) Mega URL.
    #[arg(long, global = true)]
    pub remote: Option<String>,
    /// The ref (or commit) to mount.
    #[arg(long = "ref", global = true)]
    pub refname: Option<String>,
    /// Mountpoint.
    #[arg(long, global = true)]
    pub workspace: Option<String>,
    /// Local state directory.
    #[arg(long, global = true)]
    pub store_path: Option<String>,
    /// Address of the HTTP API.
    #[arg(long, global = true)]
    pub http_addr: Option<String>,
    /// Log filter (`info`, `debug`, `scorpio=trace`, ...).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Mount the workspace and serve the API until SIGINT/SIGTERM (the default).
    Run,
    /// Check /dev/fuse, fusermount3, the store and the remote.
    Doctor,
    /// Make a repository path writable in the running daemon's workspace.
    Mount {
        /// Repository path (`/` for the whole repository).
        path: String,
        /// A change list to lay under the edits.
        #[arg(long)]
        cl: Option<String>,
    },
    /// Make a path read-only again; its changes are kept.
    Umount {
        /// Repository path.
        path: String,
    },
    /// List the writable paths.
    List,
    /// Show what the writable paths change (A added, M modified, D deleted).
    Status {
        /// One writable path (default: all).
        path: Option<String>,
    },
    /// Show the changes as a unified diff.
    Diff {
        /// One writable path (default: all).
        path: Option<String>,
    },
    /// Commit the changes of every writable path (or one) on top of the mounted commit.
    Commit {
        /// The commit message.
        #[arg(short, long)]
        message: String,
        /// Only this writable path's changes.
        path: Option<String>,
    },
    /// Push the local commits to the remote; the workspace then shows the pushed commit.
    Push {
        /// A writable path (only checked to be mounted: the commits hold every path's changes).
        path: Option<String>,
    },
    /// Drop the changes of a writable path, or those under a path inside one.
    Reset {
        /// The path whose changes go.
        path: String,
    },
}

impl Cli {
    /// The config keys given on the command line.
    pub fn overrides(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("remote", self.remote.clone()),
            ("ref", self.refname.clone()),
            ("workspace", self.workspace.clone()),
            ("store_path", self.store_path.clone()),
            ("http_addr", self.http_addr.clone()),
            ("log_level", self.log_level.clone()),
        ]
    }
}
