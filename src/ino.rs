//! Inode numbers: which layer owns a number, in every FUSE session Scorpio serves.
//!
//! A session's numbers are cut in ranges of `2^32`. Range 0 is the read-only view: Dicfuse's
//! table numbers, `1..2^32` (the store never hands out more). Range `s + 1` belongs to the
//! overlay of slot `s`; that overlay's root is the range's first number plus one. The kernel
//! calls a session's root 1, which a session whose root is some other inode remaps ([`RootMap`]).
//!
//! Slots are never reused while the daemon lives ([`SlotAllocator`]): the kernel may still hold
//! inodes of an unmounted overlay (a file opened just as it went), and a new overlay numbering
//! its inodes the same way would be taken for the old one.

use std::sync::atomic::{AtomicU32, Ordering};

/// The kernel's number for a session's root directory.
pub const KERNEL_ROOT: u64 = 1;

/// How many bits of an inode number a range spans.
const RANGE_BITS: u32 = 32;

/// The end of the read-only view's range: Dicfuse numbers are below it.
pub const VIEW_END: u64 = 1 << RANGE_BITS;

/// The slot of an overlay: it names the overlay's range of inode numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(u32);

impl Slot {
    /// The first slot.
    pub const FIRST: Slot = Slot(0);

    /// Slot `n`, if its range fits in 64 bits (every `n` but `u32::MAX`).
    pub fn new(n: u32) -> Option<Slot> {
        (n < u32::MAX).then_some(Slot(n))
    }

    /// The slot's number, as records store it.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The number of the range this slot owns (0 is the read-only view's).
    fn range(self) -> u64 {
        u64::from(self.0) + 1
    }

    /// The first number of the slot's range (owned by nobody: numbers start at the root).
    fn base(self) -> u64 {
        self.range() << RANGE_BITS
    }

    /// The overlay's root inode.
    pub fn root(self) -> u64 {
        self.base() + 1
    }

    /// The first inode the overlay hands out after its root.
    pub fn first_free(self) -> u64 {
        self.base() + 2
    }

    /// Whether `ino` is in this slot's range, and so may be handed out by its overlay.
    pub fn contains(self, ino: u64) -> bool {
        ino > self.base() && ino >> RANGE_BITS == self.range()
    }
}

/// Who answers for an inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The read-only view (Dicfuse), with the same number.
    View,
    /// The overlay of this slot.
    Overlay(Slot),
}

/// The owner of `ino` by its range alone (a session that remaps its root asks [`RootMap`] first).
pub fn owner(ino: u64) -> Owner {
    match ino >> RANGE_BITS {
        0 => Owner::View,
        // A range above the last slot's cannot be handed out; it names no overlay either.
        r => Owner::Overlay(Slot(u32::try_from(r - 1).unwrap_or(u32::MAX))),
    }
}

/// Hands out slots, each once while the daemon lives (see the module doc).
#[derive(Debug, Default)]
pub struct SlotAllocator {
    next: AtomicU32,
}

/// Every slot has been handed out: only a restart numbers them again.
#[derive(Debug, thiserror::Error)]
#[error("no inode slot left: restart the daemon")]
pub struct SlotsExhausted;

impl SlotAllocator {
    /// An allocator whose first slot is [`Slot::FIRST`].
    pub fn new() -> SlotAllocator {
        SlotAllocator::default()
    }

    /// The next unused slot.
    pub fn next(&self) -> Result<Slot, SlotsExhausted> {
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                s.checked_add(1).filter(|n| *n < u32::MAX)
            })
            .map(Slot)
            .map_err(|_| SlotsExhausted)
    }
}

/// The remap of a session whose root is inode `inner` of what it serves: the kernel's 1 is
/// `inner`, and `inner` is shown to the kernel as 1; every other number passes unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootMap {
    inner: u64,
}

impl RootMap {
    /// A session rooted at inode `inner`.
    pub fn new(inner: u64) -> RootMap {
        RootMap { inner }
    }

    /// Kernel number -> served number.
    pub fn inward(self, ino: u64) -> u64 {
        if ino == KERNEL_ROOT {
            self.inner
        } else {
            ino
        }
    }

    /// Served number -> kernel number. The number 1 of what is served (the repository root
    /// above a subtree) can only appear as the `..` of a top-level directory, which the kernel
    /// does not follow; it stays 1.
    pub fn outward(self, ino: u64) -> u64 {
        if ino == self.inner {
            KERNEL_ROOT
        } else {
            ino
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_do_not_overlap_and_name_their_owner() {
        let a = Slot::FIRST;
        let b = Slot::new(1).unwrap();
        assert_eq!(a.root(), (1 << 32) + 1);
        assert_eq!(a.first_free(), a.root() + 1);
        assert_eq!(b.root(), (2 << 32) + 1);
        assert!(a.contains(a.root()) && a.contains((2 << 32) - 1));
        assert!(!a.contains(1 << 32), "the base belongs to nobody");
        assert!(!a.contains(b.root()) && !b.contains(a.root()));
        assert_eq!(owner(a.root()), Owner::Overlay(a));
        assert_eq!(owner(b.first_free() + 7), Owner::Overlay(b));
        assert_eq!(owner(KERNEL_ROOT), Owner::View);
        assert_eq!(owner(VIEW_END - 1), Owner::View);
        assert_eq!(owner(VIEW_END), Owner::Overlay(a));
    }

    #[test]
    fn the_last_slot_is_never_made() {
        assert!(Slot::new(u32::MAX).is_none());
        let last = Slot::new(u32::MAX - 1).unwrap();
        assert_eq!(last.root(), (u64::from(u32::MAX) << 32) + 1);
        assert!(last.contains(u64::MAX));
        assert_eq!(owner(u64::MAX), Owner::Overlay(last));
    }

    #[test]
    fn slots_are_handed_out_once_until_none_is_left() {
        let s = SlotAllocator::new();
        assert_eq!(s.next().unwrap(), Slot::FIRST);
        assert_eq!(s.next().unwrap().get(), 1);
        let nearly = SlotAllocator {
            next: AtomicU32::new(u32::MAX - 2),
        };
        assert_eq!(nearly.next().unwrap().get(), u32::MAX - 2);
        assert!(nearly.next().is_err(), "u32::MAX - 1 would leave no next");
        assert!(nearly.next().is_err(), "and stays exhausted");
    }

    #[test]
    fn a_root_map_swaps_the_root_and_nothing_else() {
        let m = RootMap::new(42);
        assert_eq!(m.inward(KERNEL_ROOT), 42);
        assert_eq!(m.outward(42), KERNEL_ROOT);
        assert_eq!(m.inward(7), 7);
        assert_eq!(m.outward(7), 7);
        assert_eq!(m.outward(KERNEL_ROOT), KERNEL_ROOT);
        let id = RootMap::new(KERNEL_ROOT);
        assert_eq!((id.inward(1), id.outward(1)), (1, 1));
    }

    /// Was `antares::subtree`'s own test of the remap it had.
    #[test]
    fn the_root_maps_both_ways_and_others_pass_through() {
        for root in [1u64, 7, 1 << 20] {
            let m = RootMap::new(root);
            assert_eq!(m.inward(KERNEL_ROOT), root);
            assert_eq!(m.outward(root), KERNEL_ROOT);
            assert_eq!(m.outward(m.inward(KERNEL_ROOT)), KERNEL_ROOT);
            for other in [2u64, 99, 1 << 40] {
                if other != root {
                    assert_eq!(m.inward(other), other);
                    assert_eq!(m.outward(other), other);
                }
            }
        }
    }
}
