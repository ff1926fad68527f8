//! Reading a git pack as it arrives from `git-upload-pack`: the side-band stream taken apart
//! ([`SideBand`]) and the pack's objects decoded one by one ([`PackReader`]), each named by the
//! hash of its own bytes, so an object handed out is the object of that id by construction.
//!
//! Deltas are resolved against the objects of the same pack that are still held (the most
//! recent ones, up to [`BASES_BYTES`]); a delta whose base is gone is counted and dropped, and
//! its reader fetches that object on its own. Mega's packs carry no deltas; git's do.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use sha1::{Digest, Sha1};

use super::{ObjectKind, Oid};

/// Bytes of decoded objects kept as possible bases of deltas that follow them.
pub const BASES_BYTES: usize = 32 << 20;
/// The biggest object kept: a bigger one is inflated through a small buffer and hashed as it
/// goes, so its id and size are known but not its bytes (its reader fetches it alone), and a
/// pack never costs more memory than this per object.
pub const OBJECT_MAX: u64 = 8 << 20;
/// Bytes inflated at a time while passing over an object too big to keep.
const SCRATCH: usize = 64 << 10;

/// Why a pack stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The bytes do not follow the pack or pkt-line format.
    #[error("malformed pack stream: {0}")]
    Malformed(String),
    /// The server reported an error on the stream.
    #[error("the server stopped the pack: {0}")]
    Server(String),
}

fn malformed(what: impl Into<String>) -> PackError {
    PackError::Malformed(what.into())
}

/// One object of a pack, with the id its bytes hash to.
#[derive(Clone, Debug)]
pub struct PackObject {
    /// `hash(kind, content)`.
    pub oid: Oid,
    /// Blob, tree or commit (tags are skipped).
    pub kind: ObjectKind,
    /// Bytes of content.
    pub size: u64,
    /// The content, unless the object was too big to keep (see [`OBJECT_MAX`]).
    pub data: Option<Bytes>,
}

/// Takes apart an `upload-pack` answer with `side-band-64k`: the acknowledgements before the
/// pack, then pkt-lines whose first byte says the band (1: pack data, 2: progress, 3: error).
#[derive(Default)]
pub struct SideBand {
    buf: Vec<u8>,
    ended: bool,
}

impl SideBand {
    /// Feeds bytes of the answer; the pack data in them is appended to `pack`.
    pub fn feed(&mut self, input: &[u8], pack: &mut Vec<u8>) -> Result<(), PackError> {
        if self.ended {
            return Ok(());
        }
        self.buf.extend_from_slice(input);
        let mut at = 0;
        let r = self.lines(&mut at, pack);
        self.buf.drain(..at);
        r
    }

    fn lines(&mut self, at: &mut usize, pack: &mut Vec<u8>) -> Result<(), PackError> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
        loop {
            let avail = &self.buf[*at..];
            if avail.len() < 4 {
                return Ok(());
            }
            let len = std::str::from_utf8(&avail[..4])
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .ok_or_else(|| malformed("bad pkt-line length"))?;
            if len == 0 {
                // The flush after the pack: the answer is over.
                self.ended = true;
                *at += 4;
                return Ok(());
            }
            if len < 5 {
                return Err(malformed(format!("pkt-line length {len}")));
            }
            if avail.len() < len {
                return Ok(());
            }
            let line = &avail[4..len];
            match line[0] {
                1 => pack.extend_from_slice(&line[1..]),
                2 => tracing::trace!(progress = %text(&line[1..]), "server"),
                3 => return Err(PackError::Server(text(&line[1..]))),
                _ if line.starts_with(b"NAK") || line.starts_with(b"ACK") => {}
                _ if line.starts_with(b"ERR ") => return Err(PackError::Server(text(&line[4..]))),
                b => return Err(malformed(format!("unknown side-band {b}"))),
            }
            *at += len;
        }
    }

    /// Whether the flush that ends the answer was seen.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// Where the reader is in the pack.
enum State {
    Header,
    Entry,
    Body {
        start: u64,
        kind: u8,
        size: u64,
        base: Option<Base>,
        inflate: Box<Decompress>,
        out: Vec<u8>,
        /// What becomes of the bytes inflated.
        sink: BodySink,
    },
    Trailer,
    Done,
}

/// Where an entry's inflated bytes go.
enum BodySink {
    /// Kept whole (within the reader's bound).
    Keep,
    /// Too big to keep: hashed as they come (an object that is not a delta).
    Hash(Box<Sha1>),
    /// Too big, and a delta or a tag: only passed over.
    Skip,
}

#[derive(Clone, Copy)]
enum Base {
    Offset(u64),
    Id(Oid),
}

/// Decodes a pack fed in pieces of any size.
pub struct PackReader {
    state: State,
    /// Bytes fed and not consumed yet.
    buf: Vec<u8>,
    /// Pack offset of `buf[0]`.
    pos: u64,
    /// Objects the header announced, and how many were read.
    count: u32,
    read: u32,
    /// Recent objects by pack offset (bases of later deltas), oldest first in `order`.
    bases: HashMap<u64, (ObjectKind, Bytes)>,
    by_id: HashMap<Oid, u64>,
    order: VecDeque<(u64, Oid)>,
    held: usize,
    /// Deltas dropped because their base was no longer held (or never was).
    pub dropped: u32,
    /// Deltas resolved.
    pub deltas: u32,
    /// Objects too big to keep (bigger than `object_max`): handed out without their bytes, or
    /// (deltas, tags) passed over.
    pub too_big: u32,
    object_max: u64,
}

impl Default for PackReader {
    fn default() -> Self {
        PackReader {
            state: State::Header,
            buf: Vec::new(),
            pos: 0,
            count: 0,
            read: 0,
            bases: HashMap::new(),
            by_id: HashMap::new(),
            order: VecDeque::new(),
            held: 0,
            dropped: 0,
            deltas: 0,
            too_big: 0,
            object_max: OBJECT_MAX,
        }
    }
}

fn kind_of(t: u8) -> Option<ObjectKind> {
    match t {
        1 => Some(ObjectKind::Commit),
        2 => Some(ObjectKind::Tree),
        3 => Some(ObjectKind::Blob),
        _ => None,
    }
}

impl PackReader {
    /// Feeds pack bytes; every object they complete goes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(PackObject)) -> Result<(), PackError> {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        let r = self.run(&mut at, out);
        self.buf.drain(..at);
        self.pos += at as u64;
        r
    }

    /// A reader that keeps no object bigger than `max` bytes (default [`OBJECT_MAX`]).
    pub fn with_object_max(max: u64) -> PackReader {
        PackReader {
            object_max: max,
            ..PackReader::default()
        }
    }

    /// Whether the whole pack, trailer included, was read.
    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Objects read so far, and how many the pack holds.
    pub fn progress(&self) -> (u32, u32) {
        (self.read, self.count)
    }

    fn run(&mut self, at: &mut usize, out: &mut dyn FnMut(PackObject)) -> Result<(), PackError> {
        loop {
            let avail = &self.buf[*at..];
            match &mut self.state {
                State::Header => {
                    if avail.len() < 12 {
                        return Ok(());
                    }
                    if &avail[..4] != b"PACK" {
                        return Err(malformed("no PACK signature"));
                    }
                    let version = u32::from_be_bytes([avail[4], avail[5], avail[6], avail[7]]);
                    if version != 2 && version != 3 {
                        return Err(malformed(format!("pack version {version}")));
                    }
                    self.count = u32::from_be_bytes([avail[8], avail[9], avail[10], avail[11]]);
                    *at += 12;
                    self.state = if self.count == 0 {
                        State::Trailer
                    } else {
                        State::Entry
                    };
                }
                State::Entry => {
                    let start = self.pos + *at as u64;
                    let Some((kind, size, used)) = entry_header(avail)? else {
                        return Ok(());
                    };
                    let (base, extra) = match kind {
                        6 => match ofs_distance(&avail[used..])? {
                            None => return Ok(()),
                            Some((d, n)) => {
                                let base = start
                                    .checked_sub(d)
                                    .ok_or_else(|| malformed("delta base before the pack"))?;
                                (Some(Base::Offset(base)), n)
                            }
                        },
                        7 => {
                            if avail.len() < used + 20 {
                                return Ok(());
                            }
                            let mut id = [0u8; 20];
                            id.copy_from_slice(&avail[used..used + 20]);
                            (Some(Base::Id(Oid(id))), 20)
                        }
                        1..=4 => (None, 0),
                        t => return Err(malformed(format!("object type {t}"))),
                    };
                    *at += used + extra;
                    let sink = match kind_of(kind) {
                        _ if size <= self.object_max => BodySink::Keep,
                        Some(k) if base.is_none() => {
                            let mut h = Sha1::new();
                            h.update(format!("{} {size}\0", k.name()).as_bytes());
                            BodySink::Hash(Box::new(h))
                        }
                        _ => BodySink::Skip,
                    };
                    let room = match sink {
                        BodySink::Keep => size.min(1 << 20) as usize,
                        _ => 0,
                    };
                    self.state = State::Body {
                        start,
                        kind,
                        size,
                        base,
                        inflate: Box::new(Decompress::new(true)),
                        out: Vec::with_capacity(room),
                        sink,
                    };
                }
                State::Body {
                    start,
                    kind,
                    size,
                    base,
                    inflate,
                    out: body,
                    sink,
                } => {
                    let before = inflate.total_in();
                    let status = match sink {
                        BodySink::Keep => {
                            // Room for the whole object (and one byte to see one that runs over).
                            let want = (*size as usize + 1).saturating_sub(body.len());
                            body.reserve(want);
                            inflate.decompress_vec(avail, body, FlushDecompress::None)
                        }
                        BodySink::Hash(_) | BodySink::Skip => {
                            let mut scratch = Vec::with_capacity(SCRATCH);
                            let r =
                                inflate.decompress_vec(avail, &mut scratch, FlushDecompress::None);
                            if let BodySink::Hash(h) = sink {
                                h.update(&scratch);
                            }
                            r
                        }
                    }
                    .map_err(|e| malformed(format!("inflate: {e}")))?;
                    let used = (inflate.total_in() - before) as usize;
                    *at += used;
                    if inflate.total_out() > *size {
                        return Err(malformed("object longer than its header says"));
                    }
                    match status {
                        Status::StreamEnd => {}
                        _ if *at >= self.buf.len() => return Ok(()),
                        _ if used == 0 && matches!(sink, BodySink::Keep) => {
                            return Err(malformed("inflate made no progress"))
                        }
                        _ => continue,
                    }
                    if inflate.total_out() != *size {
                        return Err(malformed("object shorter than its header says"));
                    }
                    let (start, kind, base, size) = (*start, *kind, *base, *size);
                    let body = std::mem::take(body);
                    let sink = std::mem::replace(sink, BodySink::Skip);
                    self.state = State::Entry;
                    self.read += 1;
                    match (sink, kind_of(kind)) {
                        (BodySink::Keep, _) => self.object(start, kind, base, body, out)?,
                        (BodySink::Hash(h), Some(kind)) => {
                            self.too_big += 1;
                            out(PackObject {
                                oid: Oid(h.finalize().into()),
                                kind,
                                size,
                                data: None,
                            });
                        }
                        _ => self.too_big += 1,
                    }
                    if self.read == self.count {
                        self.state = State::Trailer;
                    }
                }
                State::Trailer => {
                    if avail.len() < 20 {
                        return Ok(());
                    }
                    *at += 20;
                    self.state = State::Done;
                }
                State::Done => return Ok(()),
            }
        }
    }

    /// A whole entry read: resolve it when it is a delta, name it, hand it out, keep it as a
    /// possible base.
    fn object(
        &mut self,
        start: u64,
        kind: u8,
        base: Option<Base>,
        body: Vec<u8>,
        out: &mut dyn FnMut(PackObject),
    ) -> Result<(), PackError> {
        let (kind, data) = match base {
            None => match kind_of(kind) {
                Some(k) => (k, Bytes::from(body)),
                // A tag: nothing here uses one.
                None => return Ok(()),
            },
            Some(b) => {
                let at = match b {
                    Base::Offset(o) => Some(o),
                    Base::Id(id) => self.by_id.get(&id).copied(),
                };
                let Some((k, base)) = at.and_then(|o| self.bases.get(&o)) else {
                    self.dropped += 1;
                    return Ok(());
                };
                if delta_result_size(&body)? > self.object_max {
                    self.too_big += 1;
                    return Ok(());
                }
                let (k, data) = (*k, apply_delta(base, &body)?);
                self.deltas += 1;
                (k, Bytes::from(data))
            }
        };
        let oid = Oid::hash_object(kind, &data);
        self.keep(start, oid, kind, data.clone());
        out(PackObject {
            oid,
            kind,
            size: data.len() as u64,
            data: Some(data),
        });
        Ok(())
    }

    fn keep(&mut self, start: u64, oid: Oid, kind: ObjectKind, data: Bytes) {
        if data.len() > BASES_BYTES / 4 {
            return;
        }
        self.held += data.len();
        self.bases.insert(start, (kind, data));
        self.by_id.insert(oid, start);
        self.order.push_back((start, oid));
        while self.held > BASES_BYTES {
            let Some((o, id)) = self.order.pop_front() else {
                break;
            };
            if let Some((_, d)) = self.bases.remove(&o) {
                self.held -= d.len();
            }
            self.by_id.remove(&id);
        }
    }
}

/// An entry's type and size (and the bytes they took), or `None` when more bytes are needed.
fn entry_header(b: &[u8]) -> Result<Option<(u8, u64, usize)>, PackError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let kind = (first >> 4) & 7;
    let mut size = u64::from(first & 0x0f);
    let mut shift = 4;
    let mut i = 1;
    let mut c = first;
    while c & 0x80 != 0 {
        let Some(&next) = b.get(i) else {
            return Ok(None);
        };
        if shift > 57 {
            return Err(malformed("object size overflows"));
        }
        c = next;
        size |= u64::from(c & 0x7f) << shift;
        shift += 7;
        i += 1;
    }
    Ok(Some((kind, size, i)))
}

/// An `OFS_DELTA`'s distance back to its base (git's own varint: each continuation adds one).
fn ofs_distance(b: &[u8]) -> Result<Option<(u64, usize)>, PackError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let mut c = first;
    let mut d = u64::from(c & 0x7f);
    let mut i = 1;
    while c & 0x80 != 0 {
        let Some(&next) = b.get(i) else {
            return Ok(None);
        };
        if d > (u64::MAX >> 8) {
            return Err(malformed("delta offset overflows"));
        }
        c = next;
        d = ((d + 1) << 7) | u64::from(c & 0x7f);
        i += 1;
    }
    Ok(Some((d, i)))
}

/// A size at the head of a delta (little-endian base-128).
fn delta_size(d: &[u8], i: &mut usize) -> Result<u64, PackError> {
    let mut size = 0u64;
    let mut shift = 0;
    loop {
        let c = *d
            .get(*i)
            .ok_or_else(|| malformed("truncated delta header"))?;
        *i += 1;
        if shift > 57 {
            return Err(malformed("delta size overflows"));
        }
        size |= u64::from(c & 0x7f) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Ok(size);
        }
    }
}

/// The size of what delta `d` makes.
fn delta_result_size(d: &[u8]) -> Result<u64, PackError> {
    let mut i = 0;
    delta_size(d, &mut i)?;
    delta_size(d, &mut i)
}

/// Applies git delta `d` to `base`.
pub fn apply_delta(base: &[u8], d: &[u8]) -> Result<Vec<u8>, PackError> {
    let mut i = 0;
    if delta_size(d, &mut i)? != base.len() as u64 {
        return Err(malformed("delta base size mismatch"));
    }
    let size = delta_size(d, &mut i)?;
    // The caller weighs the result against its bound; this only refuses what no pack holds.
    if size > 1 << 32 {
        return Err(malformed("delta result too big"));
    }
    let mut out = Vec::with_capacity(size as usize);
    while i < d.len() {
        let cmd = d[i];
        i += 1;
        if cmd & 0x80 != 0 {
            let mut arg = |bits: u8, n: usize| -> Result<u64, PackError> {
                let mut v = 0u64;
                for k in 0..n {
                    if bits & (1 << k) != 0 {
                        let b = *d.get(i).ok_or_else(|| malformed("truncated delta copy"))?;
                        i += 1;
                        v |= u64::from(b) << (8 * k);
                    }
                }
                Ok(v)
            };
            let off = arg(cmd & 0x0f, 4)? as usize;
            let mut len = arg((cmd >> 4) & 0x07, 3)? as usize;
            if len == 0 {
                len = 0x10000;
            }
            let src = off
                .checked_add(len)
                .and_then(|end| base.get(off..end))
                .ok_or_else(|| malformed("delta copies past its base"))?;
            out.extend_from_slice(src);
        } else if cmd != 0 {
            let n = cmd as usize;
            let src = d
                .get(i..i + n)
                .ok_or_else(|| malformed("truncated delta insert"))?;
            out.extend_from_slice(src);
            i += n;
        } else {
            return Err(malformed("delta opcode 0"));
        }
        if out.len() as u64 > size {
            return Err(malformed("delta result longer than announced"));
        }
    }
    if out.len() as u64 != size {
        return Err(malformed("delta result shorter than announced"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
