//! request flags.

pub use crate::raw::abi::FOPEN_DIRECT_IO;
pub use crate::raw::abi::FOPEN_KEEP_CACHE;
pub use crate::raw::abi::FOPEN_NONSEEKABLE;
/// Scorpio patch: the kernel reads and writes the open file's backing file itself
/// (`ReplyOpen::backing_id`).
pub const FOPEN_PASSTHROUGH: u32 = 1 << 7;
pub use crate::raw::abi::FUSE_IOCTL_32BIT;
pub use crate::raw::abi::FUSE_IOCTL_COMPAT;
pub use crate::raw::abi::FUSE_IOCTL_DIR;
pub use crate::raw::abi::FUSE_IOCTL_MAX_IOV;
pub use crate::raw::abi::FUSE_IOCTL_RETRY;
pub use crate::raw::abi::FUSE_IOCTL_UNRESTRICTED;
pub use crate::raw::abi::FUSE_POLL_SCHEDULE_NOTIFY;
pub use crate::raw::abi::FUSE_READ_LOCKOWNER;
pub use crate::raw::abi::FUSE_WRITE_CACHE;
pub use crate::raw::abi::FUSE_WRITE_KILL_SUIDGID;
pub use crate::raw::abi::FUSE_WRITE_LOCKOWNER;
