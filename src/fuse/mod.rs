//! The FUSE edge: mount options, mounting, and clearing mounts left by a crashed run.

pub mod busy;
pub mod mount;
pub mod mounts;
pub mod router;
pub mod session;
pub mod subtree;
