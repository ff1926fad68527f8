//! The kernel edge: mount syscalls and options ([`mount`]), a mounted session that unmounts
//! when dropped ([`session`]), the workspace's router ([`router`]: Dicfuse with overlays spliced
//! in) and the read-only subtree adapter ([`subtree`]).

pub mod mount;
pub mod router;
pub mod session;
pub mod subtree;
