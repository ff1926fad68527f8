//! The FUSE edge: mount options, mounting, and clearing mounts left by a crashed run.

pub mod mount;
pub mod router;
