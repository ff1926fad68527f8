//! Command-line interface (clap), and the process's exit statuses.

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
    /// Summarize the daemon's `/metrics`: requests, remote fetches and bytes, cache hit ratio,
    /// inode entries, upper layer size.
    Stats,
    /// Fetch the directory listings (and with --blobs the files) of a subtree ahead of its
    /// readers, with progress; what is fetched is kept, so a second run fetches nothing.
    /// Ctrl-C cancels it.
    Prefetch {
        /// Repository path of a directory (`/` for the whole repository), or a path inside the
        /// workspace.
        path: String,
        /// Levels of directories to list: 1 is the directory itself (default: all).
        #[arg(long)]
        depth: Option<u32>,
        /// Fetch the blobs of the files too.
        #[arg(long)]
        blobs: bool,
    },
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
        /// A writable path: on a Mega remote only that one is pushed (elsewhere only checked to
        /// be mounted: the commits hold every path's changes).
        path: Option<String>,
    },
    /// Move the workspace to the remote's newest commit, keeping every local edit on top
    /// (an edit of a path the remote changed too stays, marked as a conflict in `status`).
    Pull,
    /// Drop the changes of a writable path, or those under a path inside one.
    Reset {
        /// The path whose changes go.
        path: String,
    },
    /// Write, check or print the config.
    Config {
        /// What to do.
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Print a shell completion script (`scorpio completions bash > /etc/bash_completion.d/scorpio`);
    /// reads no config.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Per-job CI mounts (Antares): serve the API, or talk to it.
    Antares {
        /// Talk to the main daemon's `/antares` routes (at `http_addr`), not to `antares.bind`.
        #[arg(long)]
        via_daemon: bool,
        /// What to do.
        #[command(subcommand)]
        cmd: AntaresCmd,
    },
}

/// `scorpio config ...` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ConfigCmd {
    /// Write a commented config naming every key and its default (`remote` from --remote, else
    /// `.`); an existing file is kept unless --force.
    Init {
        /// Where (default: the -c file, else ./scorpio.toml).
        #[arg(long)]
        path: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Load the config (file, environment, flags) and check every value: exit 0, or 2 naming
    /// the key and where its value came from.
    Validate,
    /// Print every key's effective value and where it came from (default, file, env, flag).
    Show,
}

/// `scorpio antares ...` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AntaresCmd {
    /// Serve the Antares API alone (no workspace) until SIGINT/SIGTERM.
    Serve {
        /// Address to listen on (the `antares.bind` key).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Ask for a mount; prints its mountpoint.
    Mount {
        /// Repository path (`/` for the whole repository).
        path: String,
        /// Makes the request idempotent: the same job gets the same mount.
        #[arg(long)]
        job_id: Option<String>,
        /// A change list to lay under the job's writes.
        #[arg(long)]
        cl: Option<String>,
        /// Where to mount (default: `antares.mount_root/<id>`).
        #[arg(long)]
        mountpoint: Option<String>,
        /// Where the writes go (default: `antares.upper_root/<id>`).
        #[arg(long)]
        upper_dir: Option<String>,
        /// A label `key=value` (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A read-only mount (no upper layer).
        #[arg(long)]
        readonly: bool,
    },
    /// Delete a mount: unmount it and remove its upper layer.
    Umount {
        /// The mount id (or, with `--job`, the job id).
        id: String,
        /// `id` is a job id.
        #[arg(long)]
        job: bool,
    },
    /// List the mounts.
    List,
}

impl Cli {
    /// The config keys given on the command line.
    pub fn overrides(&self) -> Vec<(&'static str, Option<String>)> {
        let bind = match &self.command {
            Some(Cmd::Antares {
                cmd: AntaresCmd::Serve { bind },
                ..
            }) => bind.clone(),
            _ => None,
        };
        vec![
            ("remote", self.remote.clone()),
            ("ref", self.refname.clone()),
            ("workspace", self.workspace.clone()),
            ("store_path", self.store_path.clone()),
            ("http_addr", self.http_addr.clone()),
            ("log_level", self.log_level.clone()),
            ("antares.bind", bind),
        ]
    }
}

/// The exit statuses of `scorpio`, one table (the README's "Exit codes" says the same).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Anything without a code of its own: the daemon refused (the message says why), a
    /// `doctor` check failed, `config init` found the file there, a start-up failure.
    pub const FAILED: u8 = 1;
    /// A bad config value or command line, naming the key and where its value came from.
    pub const CONFIG: u8 = 2;
    /// The daemon (or the Antares API) is not reachable.
    pub const UNREACHABLE: u8 = 3;
    /// The daemon cannot listen on its address (`http_addr`, `antares.bind`): taken by another
    /// process, or not this host's. Upstream's code for it too.
    pub const BIND: u8 = 4;
    /// The workspace's FUSE mount failed (upstream's 3, which is ours for `UNREACHABLE`).
    pub const MOUNT: u8 = 5;
}
