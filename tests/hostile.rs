//! A hostile or careless local user against the daemon (issue 11): symlinks in requests and in
//! the mount, a second uid, a damaged or full store, files changing during a commit, floods of
//! half-sent connections, malformed bodies, bad configs. Each module is one concern.

mod support;

#[path = "hostile/api.rs"]
mod api;
#[path = "hostile/privacy.rs"]
mod privacy;
#[path = "hostile/startup.rs"]
mod startup;
#[path = "hostile/store.rs"]
mod store;
#[path = "hostile/symlinks.rs"]
mod symlinks;
#[path = "hostile/vcs.rs"]
mod vcs;
