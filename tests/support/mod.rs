//! Test support for Scorpio's integration tests, the one home of every shared helper: `daemon`
//! (the real `scorpio` daemon as a child, commands with timeouts), `api` (calls to its API and
//! CLI), `http` (the one HTTP client), `fixture` (git repositories), `mega_server` (a Mega-API
//! and git smart-HTTP server over a bare repository), `mono` (the real Mega server), `antares` (the standalone Antares
//! server), `mountinfo`, `host` (fds, other users, tmpfs, kernel overlayfs) and `tree` (walking
//! and comparing trees). Use with `mod support;`; each test crate compiles it on its own and
//! uses a part, hence the allowances below.
#![allow(dead_code)]
#![allow(unused_imports)]

pub mod antares;
pub mod api;
pub mod daemon;
pub mod fixture;
pub mod host;
pub mod http;
pub mod mega_server;
pub mod mono;
pub mod mountinfo;
pub mod tree;

pub use daemon::{run_with_timeout, try_run_with_timeout, Daemon, DaemonOpts};
pub use fixture::{add_commit, Fixture};
pub use mega_server::{Counts, Fault, MegaServer};
pub use mountinfo::{is_fuse_mounted, is_mounted};
