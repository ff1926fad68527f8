//! Reading a byte range of a local file in full (FUSE reads must not come back short before EOF).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

/// Reads up to `size` bytes at `offset`, short only at end of file.
pub fn read_full_at(file: &File, offset: u64, size: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_ranges_and_stops_at_eof() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        assert_eq!(&read_full_at(&f, 2, 3).unwrap()[..], b"234");
        assert_eq!(&read_full_at(&f, 8, 10).unwrap()[..], b"89");
        assert!(read_full_at(&f, 20, 4).unwrap().is_empty());
    }
}
