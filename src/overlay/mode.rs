//! Small readings of a `st_mode` and a stat that every part of the overlay needs: whether it is
//! a directory, its FUSE file type, and the key that makes hard links share an inode.

use rfuse3::FileType;
use rustix::fs::Stat;

/// Whether `mode` is a directory's.
pub(super) fn is_dir_mode(mode: u32) -> bool {
    rustix::fs::FileType::from_raw_mode(mode) == rustix::fs::FileType::Directory
}

/// The FUSE file type of a `st_mode`.
pub(super) fn file_type(mode: u32) -> FileType {
    match rustix::fs::FileType::from_raw_mode(mode) {
        rustix::fs::FileType::Directory => FileType::Directory,
        rustix::fs::FileType::Symlink => FileType::Symlink,
        rustix::fs::FileType::CharacterDevice => FileType::CharDevice,
        rustix::fs::FileType::BlockDevice => FileType::BlockDevice,
        rustix::fs::FileType::Fifo => FileType::NamedPipe,
        rustix::fs::FileType::Socket => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

/// The hard-link key of an upper entry (its dev, ino): only a file with more than one link has
/// one, so that all its names find the same inode.
pub(super) fn upper_id(st: &Stat) -> Option<(u64, u64)> {
    (!is_dir_mode(st.st_mode) && st.st_nlink > 1).then_some((st.st_dev, st.st_ino))
}
