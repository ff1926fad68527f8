//! The sled encoding of the inode table: keys, values and the meta records, so the layout on
//! disk has one home.

use serde::{Deserialize, Serialize};

use crate::remote::CommitInfo;
use crate::store::StoreError;

/// The remote and commit the table is bound to (meta record [`BINDING`]).
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Binding {
    /// The remote's stable name.
    pub(super) remote: String,
    /// The commit mounted.
    pub(super) commit: CommitInfo,
}

/// Encodes a value for a sled tree.
pub(super) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // bincode cannot fail on these plain structs.
    bincode::serialize(v).unwrap_or_default()
}

/// Decodes a value read from a sled tree.
pub(super) fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(b).map_err(|e| StoreError::Decode(e.to_string()))
}

/// The `names` key of `name` in directory `parent`: the parent's big-endian number, then the
/// name, so a prefix scan lists a directory in name order.
pub(super) fn name_key(parent: u64, name: &[u8]) -> Vec<u8> {
    let mut k = parent.to_be_bytes().to_vec();
    k.extend_from_slice(name);
    k
}

/// The inode number stored big-endian at the start of `v`.
pub(super) fn ino_at(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&v[..8]);
    u64::from_be_bytes(b)
}

/// Meta key of the [`Binding`].
pub(super) const BINDING: &[u8] = b"binding";
/// Meta key of the next inode number to hand out.
pub(super) const NEXT_INO: &[u8] = b"next_ino";
