//! Reading an upper layer while it changes (a build running while the user commits).
//!
//! Promises:
//! - An entry that vanishes while it is scanned or read (a file, or a directory with everything
//!   under it) is simply not there; nothing that vanishes is an error.
//! - Every file is read once, and what is reported (its id, kind and, when asked for, its bytes)
//!   is what the file held at one moment: the size, times, inode and mode are the same before
//!   and after the read, and either the file's last change is older than the read or a second
//!   read returned the same content. A file read while it changes is read again (a bounded
//!   number of times, then [`VcsError::Unstable`]).
//! - A file larger than [`IN_MEMORY_MAX`] is never held in memory: a sink that needs its content
//!   (a commit) gets the object being written into the staging repository as the file was
//!   hashed (so the object holds exactly the bytes of the id), and other sinks get only its id.
//! - The walk opens every directory relative to its parent and never follows a symlink, so an
//!   entry replaced by a symlink mid-scan cannot lead it outside the layer.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use sha1::{Digest, Sha1};
use tokio::runtime::Handle;

use super::change::{Change, ChangeKind, GitEntry};
use super::loose::LooseBlob;
use super::VcsError;
use crate::dicfuse::Dicfuse;
use crate::overlay::whiteout;
use crate::remote::object::hash_blob_at;
use crate::remote::{EntryKind, ObjectKind, Oid};

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
    /// A loose object of exactly the bytes hashed, not yet in place (removed if dropped).
    Loose(LooseBlob),
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
    fn at(self, path: &[u8]) -> VcsError {
        let path = super::names::quote_path(path);
        match self {
            Fault::Io(source) => VcsError::Read { path, source },
            Fault::Unstable => VcsError::Unstable(path),
            Fault::Spool(e) if super::is_no_space(&e) => {
                VcsError::NoSpace(format!("writing {path} into the staging repository: {e}"))
            }
            Fault::Spool(e) => {
                VcsError::Lower(format!("writing {path} into the staging repository: {e}"))
            }
        }
    }
}

/// Errors that mean the entry is gone (or was replaced while it was opened: look again).
fn vanished(e: Errno) -> bool {
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
fn settled_before(st: &Stat, since: SystemTime) -> bool {
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

/// Reads entry `name` of directory `dir` once (see the module comment); `want`: what of the
/// content of a file or symlink to return besides its id.
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
            Ok(hash_copy(file, len, &mut blob)?.map(|oid| (oid, Some(Content::Loose(blob)))))
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
    if !settled_before(&after, since) {
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

/// Where the changes a walk finds go, with the content that was read for them.
pub trait Sink {
    /// What of the new content of changed files is wanted.
    fn wants(&self) -> Want;
    /// Takes one change; `content` is its new content when wanted (and the change has one).
    fn change(&mut self, change: &Change, content: Option<Content>) -> Result<(), VcsError>;
}

/// A sink that only lists changes.
pub struct ListOnly;

impl Sink for ListOnly {
    fn wants(&self) -> Want {
        Want::Ids
    }
    fn change(&mut self, _: &Change, _: Option<Content>) -> Result<(), VcsError> {
        Ok(())
    }
}

/// The names in directory `fd` (sorted); a directory removed while listed lists what was read.
fn list(fd: &OwnedFd) -> Result<std::vec::IntoIter<Vec<u8>>, Fault> {
    let mut names = Vec::new();
    let mut dir = match rustix::fs::Dir::read_from(fd) {
        Ok(d) => d,
        Err(e) if vanished(e) => return Ok(names.into_iter()),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = dir.read() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if vanished(e) => break,
            Err(e) => return Err(e.into()),
        };
        let name = entry.file_name().to_bytes();
        // A nested repository is never part of a commit (git itself skips `.git`).
        if name != b"." && name != b".." && name != b".git" {
            names.push(name.to_vec());
        }
    }
    names.sort();
    names.dedup();
    Ok(names.into_iter())
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    p.extend_from_slice(prefix);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// A directory being walked.
struct Frame {
    fd: OwnedFd,
    names: std::vec::IntoIter<Vec<u8>>,
    lower: Option<u64>,
    rel: Vec<u8>,
}

/// The changes upper layer `upper` makes to the commit's directory `lower` (a Dicfuse inode;
/// `None` when the commit has no such directory), under repository path `prefix`, sorted by
/// path; each is also handed to `sink`. Runs on a blocking thread; `rt` answers the lookups
/// in the commit.
pub fn walk(
    dic: &Dicfuse,
    rt: &Handle,
    upper: &Path,
    lower: Option<u64>,
    prefix: &[u8],
    sink: &mut dyn Sink,
) -> Result<Vec<Change>, VcsError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let want = sink.wants();
    let root = match rustix::fs::open(upper, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if e == Errno::NOENT => return Ok(Vec::new()),
        Err(e) => return Err(Fault::from(e).at(prefix)),
    };
    let mut out = Vec::new();
    let mut emit = |c: Change, content: Option<Content>| -> Result<(), VcsError> {
        sink.change(&c, content)?;
        out.push(c);
        Ok(())
    };
    let names = list(&root).map_err(|f| f.at(prefix))?;
    let mut stack = vec![Frame {
        fd: root,
        names,
        lower,
        rel: prefix.to_vec(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.next() else {
            stack.pop();
            continue;
        };
        let repo_path = join(&frame.rel, &name);
        let base = match frame.lower {
            Some(l) => rt.block_on(dic.lower_lookup(l, &name))?,
            None => None,
        };
        let old = base.as_ref().map(|(_, n)| GitEntry {
            kind: n.kind,
            oid: n.oid.unwrap_or(Oid([0; 20])),
        });
        let entry = read_entry(frame.fd.as_fd(), OsStr::from_bytes(&name), &want)
            .map_err(|f| f.at(&repo_path))?;
        match entry {
            Entry::Absent => {}
            Entry::Other => {
                let path = super::names::quote_path(&repo_path);
                tracing::warn!(path, "git cannot hold this file type; left out");
            }
            Entry::Whiteout => {
                if old.is_some() {
                    emit(Change::deleted(repo_path, old), None)?;
                }
            }
            Entry::Dir { fd, opaque } => {
                let merged = match &base {
                    Some((ino, n)) if n.kind == EntryKind::Dir && !opaque => Some(*ino),
                    _ => None,
                };
                if merged.is_none() && old.is_some() {
                    // The commit's entry (a file, or a directory now replaced) is gone.
                    emit(Change::deleted(repo_path.clone(), old), None)?;
                }
                let names = list(&fd).map_err(|f| f.at(&repo_path))?;
                stack.push(Frame {
                    fd,
                    names,
                    lower: merged,
                    rel: repo_path,
                });
            }
            Entry::Blob { kind, oid, content } => {
                let new = GitEntry { kind, oid };
                let change = |kind, old| Change {
                    kind,
                    path: repo_path.clone(),
                    old,
                    new: Some(new),
                };
                match old {
                    Some(o) if o == new => {}
                    Some(o) if o.kind.is_dir() => {
                        emit(Change::deleted(repo_path.clone(), Some(o)), None)?;
                        emit(change(ChangeKind::Added, None), content)?;
                    }
                    Some(o) => emit(change(ChangeKind::Modified, Some(o)), content)?,
                    None => emit(change(ChangeKind::Added, None), content)?,
                }
            }
        }
    }
    out.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then((a.kind as u8).cmp(&(b.kind as u8)))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn read(dir: &Path, name: &str, want: Want) -> Entry {
        let d = std::fs::File::open(dir).expect("open dir");
        match read_entry(d.as_fd(), OsStr::new(name), &want) {
            Ok(e) => e,
            Err(_) => panic!("read_entry failed"),
        }
    }

    /// A file rewritten in place (one `pwrite` of a whole version over the other) while it is
    /// read: every read returns one version or the other, never the head of one with the tail
    /// of the other.
    #[test]
    fn a_file_rewritten_in_place_is_never_read_torn() {
        use std::os::unix::fs::FileExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        const LEN: usize = 1 << 20;
        let dir = tempfile::tempdir().expect("tempdir");
        let versions = [vec![b'a'; LEN], vec![b'b'; LEN]];
        std::fs::write(dir.path().join("f"), &versions[0]).expect("write");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let rewriter = {
            let (stop, path, versions) = (stop.clone(), dir.path().join("f"), versions.clone());
            std::thread::spawn(move || {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .expect("open");
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    f.write_all_at(&versions[n % 2], 0).expect("rewrite");
                    if n % 4 == 0 {
                        // Room for a read to get through whole.
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            })
        };
        let d = std::fs::File::open(dir.path()).expect("open dir");
        let ids = versions
            .each_ref()
            .map(|v| Oid::hash_object(ObjectKind::Blob, v));
        let (mut whole, mut unstable) = (0, 0);
        for _ in 0..300 {
            // Hashed as read: the reader is slower than the rewriter, which laps it.
            match read_entry(d.as_fd(), OsStr::new("f"), &Want::Ids) {
                Ok(Entry::Blob { oid, .. }) => {
                    assert!(ids.contains(&oid), "a torn read: {oid:?}");
                    whole += 1;
                }
                Err(Fault::Unstable) => unstable += 1,
                _ => panic!("the file is a blob"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        rewriter.join().expect("rewriter");
        assert!(whole > 0, "no read got through ({unstable} unstable)");
    }

    #[test]
    fn entries_read_as_git_records_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), b"hello\n").expect("write");
        let Entry::Blob {
            kind,
            oid,
            content: Some(Content::Bytes(bytes)),
        } = read(dir.path(), "f", Want::Small)
        else {
            panic!("a file is a blob");
        };
        assert_eq!(
            (kind, oid.to_hex().as_str(), &bytes[..]),
            (
                EntryKind::File,
                "ce013625030ba8dba906f756967f9e9ca394464a",
                &b"hello\n"[..]
            )
        );
        let Entry::Blob {
            oid: hashed,
            content,
            ..
        } = read(dir.path(), "f", Want::Ids)
        else {
            panic!("a file is a blob");
        };
        assert!(hashed == oid && content.is_none());
        std::fs::set_permissions(dir.path().join("f"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert!(matches!(
            read(dir.path(), "f", Want::Ids),
            Entry::Blob {
                kind: EntryKind::Executable,
                ..
            }
        ));
        std::os::unix::fs::symlink("target", dir.path().join("l")).expect("symlink");
        let Entry::Blob { kind, oid, .. } = read(dir.path(), "l", Want::Ids) else {
            panic!("a symlink is a blob");
        };
        assert_eq!(kind, EntryKind::Symlink);
        assert_eq!(oid, Oid::hash_object(ObjectKind::Blob, b"target"));
        assert!(matches!(
            read(dir.path(), "gone", Want::Small),
            Entry::Absent
        ));
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        assert!(matches!(
            read(dir.path(), "d", Want::Small),
            Entry::Dir { opaque: false, .. }
        ));
    }

    /// A file larger than [`IN_MEMORY_MAX`] is never read into memory: a sink that wants small
    /// contents gets only its id; one that wants every content gets a loose object being made
    /// in the directory it named, which leaves nothing there when dropped (the commit puts it in
    /// place: see the commit's tests).
    #[test]
    fn a_large_file_is_only_hashed_or_written_to_an_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = tempfile::tempdir().expect("objects dir");
        let len = usize::try_from(IN_MEMORY_MAX).expect("usize") + 12345;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).expect("write");
        let id = Oid::hash_object(ObjectKind::Blob, &data);
        let Entry::Blob {
            oid,
            content: Some(Content::TooLarge(n)),
            ..
        } = read(dir.path(), "big", Want::Small)
        else {
            panic!("a large file is only hashed");
        };
        assert_eq!((oid, n), (id, len as u64));
        let Entry::Blob {
            oid,
            content: Some(Content::Loose(blob)),
            ..
        } = read(dir.path(), "big", Want::All(objects.path().to_path_buf()))
        else {
            panic!("a large file is written to an object");
        };
        assert_eq!(oid, id);
        let names = || std::fs::read_dir(objects.path()).expect("list").count();
        assert_eq!(names(), 1, "the object is being made there");
        drop(blob);
        assert_eq!(names(), 0, "a dropped object leaves nothing");
    }
}
