//! Reading an upper layer while it changes (a build running while the user commits).
//!
//! Promises:
//! - An entry that vanishes while it is scanned or read (a file, or a directory with everything
//!   under it) is simply not there; nothing that vanishes is an error.
//! - Every file is read once, and what is reported (its id, kind and, when asked for, its bytes)
//!   is what the file held at one moment: the size, times, inode and mode are the same before
//!   and after the read, and either the file's last change is older than the read or a second
//!   read returned the same content. A file read while it changes is read again (a bounded
//!   number of times, then [`VcsError::Unstable`](super::VcsError::Unstable)).
//! - A file larger than [`IN_MEMORY_MAX`] is never held in memory: a sink that needs its content
//!   (a commit) gets the object being written into the staging repository as the file was
//!   hashed (so the object holds exactly the bytes of the id), and other sinks get only its id.
//! - The walk opens every directory relative to its parent and never follows a symlink, so an
//!   entry replaced by a symlink mid-scan cannot lead it outside the layer.
//!
//! Reading one entry is in `read`, the walk of a layer in `walk`.

mod read;
mod walk;

pub use read::{read_entry, Content, Entry, Fault, Want, IN_MEMORY_MAX};
pub use walk::{walk, ListOnly, Sink};

#[cfg(test)]
mod tests;
