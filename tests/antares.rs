//! Antares end to end: the real `scorpio antares serve` (and the daemon's `/antares` routes)
//! against the Mega-API test server, with real FUSE mounts. Every test has its own temporary
//! directories; the harness stops the server and lazily unmounts anything left under them.
//! One module per concern: jobs, refusals, lifecycle, entry points.

mod support;

#[path = "antares/entry_points.rs"]
mod entry_points;
#[path = "antares/jobs.rs"]
mod jobs;
#[path = "antares/lifecycle.rs"]
mod lifecycle;
#[path = "antares/refusals.rs"]
mod refusals;
#[path = "antares/upstream.rs"]
mod upstream;
