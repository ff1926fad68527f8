//! Reading one upper entry once, as git would record it: the retries around a file that changes
//! while read, and the content kept as a sink asks for it (in memory, hashed only, or written
//! into a loose object).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use sha1::{Digest, Sha1};

use crate::overlay::whiteout;
use crate::remote::object::hash_blob_at;
use crate::remote::{EntryKind, ObjectKind, Oid};
use crate::vcs::error::VcsError;
use crate::vcs::loose::LooseBlob;

/// Reads of one entry before it counts as changing faster than it can be read.
const ATTEMPTS: u32 = 40;

/// Files changed less than this long ago may still change within the same timestamp (file
/// times come from a clock that ticks every few milliseconds): they are read twice.
const TICK: Duration = Duration::from_millis(20);

/// Files up to this size are read into memory for a sink that wants their content (the fast
/// path: source files); larger ones (build outputs, archives, images) are written straight into
/// a loose object as they are read instead, so a commit or diff of a file of gigabytes needs a
/// buffer of [`CHUNK`] bytes, not the file's size.
pub const IN_MEMORY_MAX: u64 = 8 << 20;

/// The buffer a large file is hashed and copied through.
const CHUNK: usize = 64 << 10;

/// What a sink wants of the files it is told about.
#[derive(Clone, Debug)]
pub enum Want {
    /// Their ids only.
    Ids,
    /// The content of files up to [`IN_MEMORY_MAX`]; larger files are only hashed
    /// ([`Content::TooLarge`]).
    Small,
    /// Every content: files larger than [`IN_MEMORY_MAX`] are written as they are read into a
    /// loose object ([`LooseBlob`]) made in this `objects` directory of a repository.
    All(PathBuf),
}

/// The content read of a file or symlink.
#[derive(Debug)]
pub enum Content {
    /// All of it, in memory.
    Bytes(Vec<u8>),
    /// A loose object of exactly the bytes hashed, not yet in place (removed if dropped);
    /// boxed, as its deflate state is larger than the other variants together.
    Loose(Box<LooseBlob>),
    /// Not kept: a file of this many bytes, larger than [`IN_MEMORY_MAX`].
    TooLarge(u64),
}

/// One upper entry, read once.
pub enum Entry {
    /// Not there (any more).
    Absent,
    /// A whiteout: the lower entry is deleted.
    Whiteout,
    /// A directory, opened.
    Dir {
        /// The directory, for reading it and opening what it holds.
        fd: OwnedFd,
        /// Whether it hides the lower directory of the same name.
        opaque: bool,
    },
    /// A file or symlink, as git would record it.
    Blob {
        /// File, executable or symlink.
        kind: EntryKind,
        /// The blob id of the content read.
        oid: Oid,
        /// The content read, when it was asked for.
        content: Option<Content>,
    },
    /// A FIFO, socket or device: git cannot hold it.
    Other,
}

/// Why an entry could not be read.
pub enum Fault {
    /// The filesystem refused.
    Io(std::io::Error),
    /// It kept changing while it was read.
    Unstable,
    /// The object of a large file could not be written to the repository.
    Spool(std::io::Error),
}

impl From<Errno> for Fault {
    fn from(e: Errno) -> Self {
        Fault::Io(e.into())
    }
}

impl Fault {
    /// The error for this fault at repository path `path`.
    pub(super) fn at(self, path: &[u8]) -> VcsError {
        let path = crate::vcs::names::quote_path(path);
        match self {
            Fault::Io(source) => VcsError::Read { path, source },
            Fault::Unstable => VcsError::Unstable(path),
            Fault::Spool(e) if crate::vcs::error::is_no_space(&e) => {
                VcsError::NoSpace(format!("writing {path} into the staging repository: {e}"))
            }
            Fault::Spool(e) => {
                VcsError::Lower(format!("writing {path} into the staging repository: {e}"))
            }
        }
    }
}

/// Errors that mean the entry is gone (or was replaced while it was opened: look again).
pub(super) fn vanished(e: Errno) -> bool {
    e == Errno::NOENT || e == Errno::NOTDIR || e == Errno::LOOP
}

/// What a read must find unchanged around it.
fn stamp(st: &Stat) -> impl PartialEq + Copy {
    (
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_size,
        (st.st_mtime, st.st_mtime_nsec),
        (st.st_ctime, st.st_ctime_nsec),
    )
}

/// Whether the last change of `st` is older than `since` (so nothing changed the file after
/// `since`). A change time of a whole second is taken as a filesystem that keeps seconds only.
fn last_changed_before(st: &Stat, since: SystemTime) -> bool {
    let Ok(since) = since.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let (sec, nsec) = (i128::from(st.st_ctime), i128::from(st.st_ctime_nsec));
    let since_sec = i128::from(since.as_secs());
    if nsec == 0 {
        return sec < since_sec;
    }
    (sec, nsec) < (since_sec, i128::from(since.subsec_nanos()))
}

/// File or executable, as git tells them (by the owner's exec bit).
fn kind_of(st: &Stat) -> EntryKind {
    if st.st_mode & 0o100 != 0 {
        EntryKind::Executable
    } else {
        EntryKind::File
    }
}

fn backoff(attempt: u32) {
    if attempt > 0 {
        std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20))));
    }
}

/// Reads entry `name` of directory `dir` once (see the `scan` module comment); `want`: what of
/// the content of a file or symlink to return besides its id.
pub fn read_entry(dir: BorrowedFd<'_>, name: &OsStr, want: &Want) -> Result<Entry, Fault> {
    let keep = !matches!(want, Want::Ids);
    for attempt in 0..ATTEMPTS {
        backoff(attempt);
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if vanished(e) => return Ok(Entry::Absent),
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rustix::fs::openat(dir, name, flags, Mode::empty()) {
                    Ok(fd) => {
                        // Asked of the directory opened, not of whatever the name holds now.
                        let opaque = whiteout::is_opaque(&fd, OsStr::new("."));
                        return Ok(Entry::Dir { fd, opaque });
                    }
                    Err(e) if vanished(e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            FileType::Symlink => match rustix::fs::readlinkat(dir, name, Vec::new()) {
                // A symlink's target never changes in place: any target read is one it had.
                Ok(target) => {
                    let target = target.into_bytes();
                    let oid = Oid::hash_object(ObjectKind::Blob, &target);
                    return Ok(Entry::Blob {
                        kind: EntryKind::Symlink,
                        oid,
                        content: keep.then_some(Content::Bytes(target)),
                    });
                }
                Err(e) if vanished(e) || e == Errno::INVAL => continue,
                Err(e) => return Err(e.into()),
            },
            // Empty at the stat: that is a content it had, and nothing needs opening (a whiteout
            // has mode 0000, which a daemon that is not root could not open).
            FileType::RegularFile if st.st_size == 0 => {
                if whiteout::is_whiteout(dir, name, &st) {
                    return Ok(Entry::Whiteout);
                }
                return Ok(Entry::Blob {
                    kind: kind_of(&st),
                    oid: Oid::hash_object(ObjectKind::Blob, b""),
                    content: keep.then(|| Content::Bytes(Vec::new())),
                });
            }
            FileType::RegularFile => {
                if let Some(entry) = read_file(dir, name, want)? {
                    return Ok(entry);
                }
            }
            _ => return Ok(Entry::Other),
        }
    }
    Err(Fault::Unstable)
}

/// The content of an open file (of `len` bytes when opened) and its id, as `want` asks for it
/// (`None` as the content when only hashed); `None` when the file no longer holds `len` bytes
/// (it changed). Read from the file's start whatever its offset.
fn read_content(
    file: &std::fs::File,
    len: u64,
    want: &Want,
) -> Result<Option<(Oid, Option<Content>)>, Fault> {
    match want {
        Want::Small | Want::All(_) if len <= IN_MEMORY_MAX => {
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            // One byte more than it had tells that it grew, without reading all it grew by.
            file.take(len + 1)
                .read_to_end(&mut bytes)
                .map_err(Fault::Io)?;
            if bytes.len() as u64 != len {
                return Ok(None);
            }
            let oid = Oid::hash_object(ObjectKind::Blob, &bytes);
            Ok(Some((oid, Some(Content::Bytes(bytes)))))
        }
        Want::All(objects) => {
            let mut blob = LooseBlob::create(objects, len).map_err(Fault::Spool)?;
            // Short, the object would not hold the length its header names: dropped.
            Ok(hash_copy(file, len, &mut blob)?
                .map(|oid| (oid, Some(Content::Loose(Box::new(blob))))))
        }
        Want::Small => {
            let oid = hash_blob_at(file, len).map_err(Fault::Io)?;
            Ok(oid.map(|oid| (oid, Some(Content::TooLarge(len)))))
        }
        Want::Ids => {
            let oid = hash_blob_at(file, len).map_err(Fault::Io)?;
            Ok(oid.map(|oid| (oid, None)))
        }
    }
}

/// The blob id of the first `len` bytes of `file` (read with `pread` from its start), which are
/// copied to `copy` as they are hashed: the copy holds exactly the bytes of the id. `None` when
/// the file holds fewer than `len` bytes; of one that holds more, the first `len` are taken
/// (its stat tells it changed).
fn hash_copy(file: &std::fs::File, len: u64, copy: &mut dyn Write) -> Result<Option<Oid>, Fault> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    let mut buf = vec![0u8; CHUNK];
    let mut seen = 0u64;
    while seen < len {
        let want = usize::try_from(len - seen).map_or(CHUNK, |left| left.min(CHUNK));
        let n = match file.read_at(&mut buf[..want], seen) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fault::Io(e)),
        };
        h.update(&buf[..n]);
        copy.write_all(&buf[..n]).map_err(Fault::Spool)?;
        seen += n as u64;
    }
    Ok(Some(Oid(h.finalize().into())))
}

/// One attempt at reading regular file `name`: `None` when it changed (or was replaced) while
/// read, to be tried again.
fn read_file(dir: BorrowedFd<'_>, name: &OsStr, want: &Want) -> Result<Option<Entry>, Fault> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if vanished(e) || e == Errno::NXIO => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let since = SystemTime::now().checked_sub(TICK).unwrap_or(UNIX_EPOCH);
    let before = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(before.st_mode) != FileType::RegularFile {
        return Ok(None);
    }
    if whiteout::is_whiteout_fd(&fd, &before) {
        return Ok(Some(Entry::Whiteout));
    }
    let len = u64::try_from(before.st_size).unwrap_or(0);
    let file = std::fs::File::from(fd);
    let Some((oid, content)) = read_content(&file, len, want)? else {
        return Ok(None);
    };
    let after = rustix::fs::fstat(file.as_fd())?;
    if stamp(&before) != stamp(&after) {
        return Ok(None);
    }
    if !last_changed_before(&after, since) {
        // Changed within the current tick of the file clock: a rewrite to the same size in the
        // same tick would leave every stamp as it was. A second read agreeing rules that out.
        let again = read_content(&file, len, &Want::Ids)?;
        let last = rustix::fs::fstat(file.as_fd())?;
        if again.map(|(id, _)| id) != Some(oid) || stamp(&last) != stamp(&after) {
            return Ok(None);
        }
    }
    Ok(Some(Entry::Blob {
        kind: kind_of(&before),
        oid,
        content,
    }))
}
