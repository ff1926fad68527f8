//! The sled encoding of the inode table: keys, values and the meta records, so the layout on
//! disk has one home.
//!
//! A directory's listing is one value (`listings`: its inode -> its entries, sorted by name,
//! each with its own inode), so a listing is one write and one read, and a name is stored once.
//! The inodes one listing hands out are consecutive: `spans` maps the first of them to the
//! directory holding them, which is how an inode finds its entry. The root's node is a meta
//! record. Listings are bincode with variable-length integers.

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::remote::{CommitInfo, EntryKind, Oid};
use crate::store::StoreError;

/// The remote and commit the table is bound to (meta record [`BINDING`]).
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Binding {
    /// The remote's stable name.
    pub(super) remote: String,
    /// The commit mounted.
    pub(super) commit: CommitInfo,
}

/// One entry of a stored listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stored {
    /// Its inode.
    pub(super) ino: u64,
    /// What it is.
    pub(super) kind: EntryKind,
    /// Its object.
    pub(super) oid: Oid,
    /// The blob size once known.
    pub(super) size: Option<u64>,
    /// Its name in the directory.
    pub(super) name: Vec<u8>,
}

/// A directory's entries, sorted by name.
pub(super) type StoredListing = Vec<Stored>;

fn varint() -> impl Options {
    bincode::DefaultOptions::new().with_varint_encoding()
}

/// Encodes a meta record (bincode's fixed-width integers, as stores made before kept them).
pub(super) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // bincode cannot fail on these plain structs.
    bincode::serialize(v).unwrap_or_default()
}

/// Decodes a meta record.
pub(super) fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(b).map_err(|e| StoreError::Decode(e.to_string()))
}

/// Encodes a listing (variable-length integers: most are small): the bytes bincode's varint
/// encoding gives, written directly. Through serde, each byte of an id and of a name went
/// through the serializer one at a time, which was a twentieth of a cold walk's CPU time.
pub(super) fn enc_listing(v: &StoredListing) -> Vec<u8> {
    // At most 9 bytes per integer, 1 for the kind, 20 for the id, 1 for the size's tag.
    let mut out = Vec::with_capacity(
        9 + v
            .iter()
            .map(|e| 3 * 9 + 1 + 20 + 1 + e.name.len())
            .sum::<usize>(),
    );
    put_varint(&mut out, v.len() as u64);
    for e in v {
        put_varint(&mut out, e.ino);
        put_varint(&mut out, kind_index(e.kind));
        out.extend_from_slice(&e.oid.0);
        match e.size {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_varint(&mut out, s);
            }
        }
        put_varint(&mut out, e.name.len() as u64);
        out.extend_from_slice(&e.name);
    }
    out
}

/// Appends `n` as bincode's varint encoding does: one byte up to 250, else a marker byte and
/// the value little-endian in the fewest of 2, 4 or 8 bytes.
fn put_varint(out: &mut Vec<u8>, n: u64) {
    if n <= 250 {
        out.push(n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(251);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(252);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// The variant index serde gives `kind` (its place in the enum's declaration).
fn kind_index(kind: EntryKind) -> u64 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Executable => 1,
        EntryKind::Symlink => 2,
        EntryKind::Dir => 3,
        EntryKind::Submodule => 4,
    }
}

/// Decodes a listing.
pub(super) fn dec_listing(b: &[u8]) -> Result<StoredListing, StoreError> {
    varint()
        .deserialize(b)
        .map_err(|e| StoreError::Decode(e.to_string()))
}

/// The value of a span: the directory holding the inodes and how many there are.
pub(super) fn span_value(parent: u64, count: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&parent.to_be_bytes());
    v[8..].copy_from_slice(&count.to_be_bytes());
    v
}

/// A span record read back: its first inode, the directory holding the span, how many.
pub(super) fn span_at(key: &[u8], value: &[u8]) -> (u64, u64, u64) {
    (
        ino_at(key),
        ino_at(value),
        ino_at(value.get(8..).unwrap_or(&[])),
    )
}

/// The inode number stored big-endian at the start of `v` (0 when `v` is short).
pub(super) fn ino_at(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if let Some(head) = v.get(..8) {
        b.copy_from_slice(head);
    }
    u64::from_be_bytes(b)
}

/// Meta key of the [`Binding`].
pub(super) const BINDING: &[u8] = b"binding";
/// Meta key of the next inode number to hand out.
pub(super) const NEXT_INO: &[u8] = b"next_ino";
/// Meta key of the root's node.
pub(super) const ROOT: &[u8] = b"root";
/// Meta key of the number of entries in the table (the root included).
pub(super) const ENTRIES: &[u8] = b"entries";
/// Trees of the layout before listings were stored whole; dropped when found.
pub(super) const OLD_TREES: &[&str] = &["nodes", "names", "dirs"];

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing encoder writes what bincode's varint encoding would, so stores written
    /// before and after read alike.
    #[test]
    fn a_listing_encodes_as_bincode_would() {
        let kinds = [
            EntryKind::File,
            EntryKind::Executable,
            EntryKind::Symlink,
            EntryKind::Dir,
            EntryKind::Submodule,
        ];
        let ints = [
            0,
            1,
            250,
            251,
            255,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        let mut listing: StoredListing = Vec::new();
        for (i, &n) in ints.iter().enumerate() {
            listing.push(Stored {
                ino: n,
                kind: kinds[i % kinds.len()],
                oid: Oid([i as u8; 20]),
                size: (i % 3 != 0).then_some(ints[ints.len() - 1 - i]),
                name: vec![b'a' + i as u8; [0, 1, 250, 251, 300, 70_000][i % 6]],
            });
        }
        for n in [0, 1, listing.len()] {
            let part: StoredListing = listing[..n].to_vec();
            assert_eq!(enc_listing(&part), varint().serialize(&part).unwrap());
            assert_eq!(dec_listing(&enc_listing(&part)).unwrap(), part);
        }
    }
}
