//! Loose objects written while a file is read: a large file's blob goes straight into the
//! staging repository's `objects` directory as the scan hashes it, under a temporary name that
//! the commit either puts in place or removes. The scan makes them and the commit places them,
//! so they live below both.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What temporary object files are named (libgit2 names its own so too).
const TEMPORARY: &str = "tmp_object";

/// Removes the temporary object files in `objects` (of writes cut short). Only one commit or
/// push writes at a time, so any found is not being written.
pub(super) fn remove_temporaries(objects: &Path) {
    let Ok(entries) = std::fs::read_dir(objects) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().as_bytes().starts_with(TEMPORARY.as_bytes()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A blob written as a loose object (zlib of `blob <len>\0` and the content) into a temporary
/// file of the repository's `objects` directory while the scan reads and hashes the file: the
/// content of a large file is written once, never held in memory, and needs no more disk than
/// its object. Dropped before the commit's `Writer::place_loose` (the file changed while read,
/// or it was not a change after all), it is removed.
pub struct LooseBlob {
    out: flate2::write::ZlibEncoder<tempfile::NamedTempFile>,
}

impl LooseBlob {
    /// Starts the object of a blob of `len` bytes in directory `objects`.
    pub fn create(objects: &Path, len: u64) -> std::io::Result<LooseBlob> {
        let tmp = tempfile::Builder::new()
            .prefix(TEMPORARY)
            .tempfile_in(objects)?;
        // The level libgit2 writes loose objects with: a large file is mostly written, not read.
        let mut out = flate2::write::ZlibEncoder::new(tmp, flate2::Compression::fast());
        std::io::Write::write_all(&mut out, format!("blob {len}\0").as_bytes())?;
        Ok(LooseBlob { out })
    }

    /// The whole object, flushed, still under its temporary name.
    pub(super) fn finish(self) -> std::io::Result<tempfile::NamedTempFile> {
        self.out.finish()
    }
}

impl std::fmt::Debug for LooseBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LooseBlob({})", self.out.get_ref().path().display())
    }
}

impl std::io::Write for LooseBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
