//! The kernel edge: mount syscalls and options ([`mount`]), a mounted session that unmounts
//! when dropped ([`session`]), the workspace's router ([`router`]: Dicfuse with overlays spliced
//! in), the read-only subtree adapter ([`subtree`]), the wrapper that counts and times every
//! request ([`timed`]) and the workspace's own mount, read-only to
//! the kernel while nothing is writable ([`workspace_mount`]).

pub mod mount;
pub mod router;
pub mod session;
pub mod subtree;
pub mod timed;
pub mod workspace_mount;
