//! Scorpio: mount a remote monorepo as a lazy, verified FUSE filesystem.
//!
//! Data flows one way: FUSE request -> `fuse` (the router, `WorkspaceFs`) -> `overlay` (a
//! writable path) -> `dicfuse` (the read-only view of one commit) -> `store` (verified objects
//! on disk, inode table in sled) -> `remote`. HTTP requests enter through `daemon` (the
//! workspace: `workspace`, `vcs`) or `antares` (per-job mounts). The README's "Design" section
//! has the folder map.

#![deny(missing_docs)]

// First: its macros write the `Filesystem` methods of the modules below.
#[macro_use]
mod fs_methods;

pub mod antares;
pub mod beneath;
pub mod busy;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod dicfuse;
pub mod doctor;
pub mod fileio;
pub mod fuse;
pub mod http;
pub mod ino;
pub mod metrics;
pub mod overlay;
pub mod prefetch;
pub mod privacy;
pub mod remote;
pub mod service;
pub mod store;
pub mod vcs;
pub mod view;
pub mod workspace;

/// The answer to every FUSE OPEN: ENOSYS once makes the kernel open files without asking the
/// daemon from then on (and send no RELEASE), so a build's tens of thousands of opens of the
/// same headers cost no round trip. Reads and writes then name the inode alone.
pub const NO_OPEN: i32 = libc::ENOSYS;

/// The answer to every FUSE CREATE: ENOSYS once makes the kernel create files with MKNOD and
/// then open them itself (zero-message, as `NO_OPEN`), where a CREATE'd file costs a RELEASE at
/// its last close on kernels before 6.19: one round trip in ten of an untar.
pub const NO_CREATE: i32 = libc::ENOSYS;

/// The answer to an overlay's OPENDIR: ENOSYS once makes the kernel open directories without
/// asking (and send no RELEASEDIR), and keep their listings in its readdir cache, which it drops
/// itself when a change goes through the mount. READDIR then names the directory alone, and an
/// offset is a hash of the entry's name, so a listing read while it changes stays in order.
pub const NO_OPENDIR: i32 = libc::ENOSYS;
