//! Test support for Scorpio's integration tests: git fixtures, a Mega-API server over a bare
//! repository, and a harness that runs the real `scorpio` daemon. Use with `mod support;`.
#![allow(dead_code)]
#![allow(unused_imports)]

pub mod antares;
pub mod api;
pub mod daemon;
pub mod fixture;
pub mod host;
pub mod http;
pub mod mega_server;
pub mod mountinfo;
pub mod tree;

pub use daemon::{run_with_timeout, try_run_with_timeout, Daemon, DaemonOpts};
pub use fixture::{add_commit, Fixture};
pub use mega_server::{Counts, Fault, MegaServer};
pub use mountinfo::{is_fuse_mounted, is_mounted};
