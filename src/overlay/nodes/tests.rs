//! The node table's rules, checked without FUSE or layers.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::NodeTable;
use crate::ino::Slot;

fn slot() -> Slot {
    Slot::new(3).expect("slot 3 fits")
}

fn table() -> NodeTable {
    NodeTable::new(slot(), Some(100))
}

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn kept_file() -> Arc<File> {
    Arc::new(File::open("/dev/null").expect("/dev/null opens"))
}

fn errno_of(r: super::Result<std::path::PathBuf>) -> i32 {
    r.expect_err("an error").errno()
}

#[test]
fn numbers_come_from_the_slot_and_are_never_reused() {
    let mut t = table();
    let root = slot().root();
    assert_eq!(t.len(), 1);
    assert_eq!(t.get(root).map(|n| n.lower), Some(Some(100)));
    let a = t.lookup(root, name("a"), None, None);
    let b = t.lookup(root, name("b"), None, None);
    assert_eq!(a, slot().first_free());
    assert_eq!(b, a + 1);
    assert!(slot().contains(a) && slot().contains(b));
    assert!(t.forget(a, 1));
    let again = t.lookup(root, name("a"), None, None);
    assert_eq!(again, b + 1, "a forgotten number is not handed out again");
}

#[test]
fn lookups_are_counted_and_forgotten() {
    let mut t = table();
    let root = slot().root();
    let a = t.lookup(root, name("a"), Some(7), None);
    assert_eq!(t.lookup(root, name("a"), Some(7), None), a);
    assert_eq!(t.get(a).map(|n| n.lookups), Some(2));
    assert!(!t.forget(a, 1));
    assert_eq!(t.get(a).map(|n| n.lookups), Some(1));
    assert!(t.forget(a, 5), "more than it holds forgets it all");
    assert!(t.get(a).is_none());
    assert_eq!(t.len(), 1);
    assert!(
        t.attached_at(root, name("a")).is_none(),
        "its name went with it"
    );
    assert!(!t.forget(a, 1), "an unknown inode is no error");
}

#[test]
fn the_root_is_never_forgotten() {
    let mut t = table();
    let root = slot().root();
    assert!(!t.forget(root, 10));
    assert_eq!(t.len(), 1);
    assert_eq!(t.rel_path(root).expect("root path"), Path::new(""));
    assert!(t.attached_at(root, name("")).is_none());
}

#[test]
fn hard_links_share_an_inode_and_outlive_one_name() {
    let mut t = table();
    let root = slot().root();
    let id = Some((1, 42));
    let a = t.lookup(root, name("a"), None, id);
    let b = t.lookup(root, name("b"), None, id);
    assert_eq!(a, b);
    assert_eq!(t.get(a).map(|n| n.lookups), Some(2));
    assert_eq!(
        t.rel_path(a).expect("path"),
        Path::new("b"),
        "the last name seen"
    );
    t.drop_name(root, name("b"));
    assert_eq!(
        t.rel_path(a).expect("path"),
        Path::new("a"),
        "moved to the other name"
    );
    assert_eq!(t.lookup(root, name("a"), None, id), a);
    // Forgotten altogether, the key no longer finds it.
    assert!(t.forget(a, 3));
    assert_ne!(t.lookup(root, name("c"), None, id), a);
}

#[test]
fn a_new_link_counts_a_lookup_and_finds_the_inode() {
    let mut t = table();
    let root = slot().root();
    let d = t.lookup(root, name("d"), None, None);
    let f = t.lookup(root, name("f"), None, None);
    t.add_link(f, d, name("g"), (1, 9));
    assert_eq!(t.get(f).map(|n| n.lookups), Some(2));
    assert!(t.has_other_name(f, root, name("f")));
    assert_eq!(t.lookup(d, name("g"), None, Some((1, 9))), f);
    t.drop_name(root, name("f"));
    assert_eq!(t.rel_path(f).expect("path"), Path::new("d/g"));
    assert!(!t.has_other_name(f, d, name("g")));
}

#[test]
fn rename_moves_a_node_and_replaces_the_target() {
    let mut t = table();
    let root = slot().root();
    let d = t.lookup(root, name("d"), Some(10), None);
    let f = t.lookup(root, name("f"), Some(11), None);
    let g = t.lookup(d, name("g"), Some(12), None);
    t.rename(f, (root, name("f")), (d, name("g")), Some(g), false);
    assert_eq!(t.rel_path(f).expect("path"), Path::new("d/g"));
    assert_eq!(
        t.get(f).and_then(|n| n.lower),
        Some(11),
        "a file keeps its lower"
    );
    assert_eq!(
        t.get(g).and_then(|n| n.lower),
        None,
        "the replaced one loses it"
    );
    assert_eq!(t.attached_at(d, name("g")), Some(f));
    assert!(t.attached_at(root, name("f")).is_none());
    assert_eq!(t.lookup(d, name("g"), Some(11), None), f);
}

/// A rename over one name of a hard-linked inode: the inode's path moves to its other name,
/// where its file still is (it named the renamed file before).
#[test]
fn a_rename_over_a_hard_link_moves_the_replaced_inode_to_its_other_name() {
    let mut t = table();
    let root = slot().root();
    let id = Some((1, 42));
    let e = t.lookup(root, name("e"), None, id);
    let d = t.lookup(root, name("d"), None, id);
    assert_eq!(d, e);
    assert_eq!(t.rel_path(d).expect("path"), Path::new("d"));
    let x = t.lookup(root, name("x"), None, None);
    t.rename(x, (root, name("x")), (root, name("d")), Some(d), false);
    assert_eq!(t.rel_path(x).expect("path"), Path::new("d"));
    assert_eq!(t.rel_path(d).expect("path"), Path::new("e"));
    assert_eq!(t.attached_at(root, name("e")), Some(d));
    assert_eq!(t.attached_at(root, name("d")), Some(x));
}

#[test]
fn a_renamed_directory_stops_merging_the_lower_below_it() {
    let mut t = table();
    let root = slot().root();
    let d = t.lookup(root, name("d"), Some(10), None);
    let c = t.lookup(d, name("c"), Some(11), None);
    let e = t.lookup(c, name("e"), Some(12), None);
    let other = t.lookup(root, name("x"), Some(13), None);
    t.rename(d, (root, name("d")), (root, name("n")), None, true);
    assert_eq!(t.rel_path(e).expect("path"), Path::new("n/c/e"));
    for ino in [d, c, e] {
        assert_eq!(t.get(ino).and_then(|n| n.lower), None);
    }
    assert_eq!(t.get(other).and_then(|n| n.lower), Some(13));
}

#[test]
fn exchange_swaps_two_names() {
    let mut t = table();
    let root = slot().root();
    let d = t.lookup(root, name("d"), None, None);
    let a = t.lookup(root, name("a"), Some(1), None);
    let b = t.lookup(d, name("b"), Some(2), None);
    t.exchange(a, (root, name("a")), b, (d, name("b")));
    assert_eq!(t.rel_path(a).expect("path"), Path::new("d/b"));
    assert_eq!(t.rel_path(b).expect("path"), Path::new("a"));
    assert_eq!(t.attached_at(root, name("a")), Some(b));
    assert_eq!(t.attached_at(d, name("b")), Some(a));
    assert_eq!(t.get(a).and_then(|n| n.lower), None);
    assert_eq!(t.get(b).and_then(|n| n.lower), None);
}

#[test]
fn a_detached_node_has_no_path_but_keeps_its_file_until_forgotten() {
    let mut t = table();
    let root = slot().root();
    let d = t.lookup(root, name("d"), None, None);
    let f = t.lookup(d, name("f"), None, None);
    assert_eq!(t.attached_at(d, name("f")), Some(f));
    t.detach(f, Some(kept_file()));
    t.drop_name(d, name("f"));
    assert_eq!(errno_of(t.rel_path(f)), libc::ENOENT);
    assert!(t.get(f).is_some_and(|n| n.detached));
    assert!(t.kept(f).is_some());
    assert!(t.attached_at(d, name("f")).is_none());
    // Below a detached directory nothing has a path either.
    let x = t.lookup(d, name("x"), None, None);
    t.detach(d, None);
    assert_eq!(errno_of(t.rel_path(x)), libc::ENOENT);
    assert!(t.forget(f, 1));
    assert!(t.kept(f).is_none());
    assert_eq!(errno_of(t.rel_path(f)), libc::ENOENT, "unknown");
}

#[test]
fn reattach_undoes_a_detach() {
    let mut t = table();
    let root = slot().root();
    let f = t.lookup(root, name("f"), None, None);
    t.detach(f, Some(kept_file()));
    t.reattach(f);
    assert!(t.kept(f).is_none());
    assert_eq!(t.rel_path(f).expect("path"), Path::new("f"));
    assert_eq!(t.attached_at(root, name("f")), Some(f));
}

#[test]
fn a_detached_node_found_through_another_link_is_attached_again() {
    let mut t = table();
    let root = slot().root();
    let id = Some((1, 5));
    let f = t.lookup(root, name("a"), None, id);
    t.detach(f, Some(kept_file()));
    t.drop_name(root, name("a"));
    assert_eq!(errno_of(t.rel_path(f)), libc::ENOENT);
    assert_eq!(t.lookup(root, name("b"), None, id), f);
    assert!(t.get(f).is_some_and(|n| !n.detached));
    assert!(t.kept(f).is_none(), "a path names it again: no kept file");
    assert_eq!(t.rel_path(f).expect("path"), Path::new("b"));
    assert_eq!(t.get(f).map(|n| n.lookups), Some(2));
}

#[test]
fn only_a_detached_node_keeps_a_file() {
    let mut t = table();
    let root = slot().root();
    let f = t.lookup(root, name("f"), None, None);
    t.keep(f, kept_file());
    assert!(t.kept(f).is_none());
    t.detach(f, None);
    assert!(t.kept(f).is_none());
    t.keep(f, kept_file());
    assert!(t.kept(f).is_some());
    t.keep(f + 100, kept_file());
    assert!(t.kept(f + 100).is_none(), "unknown inodes keep nothing");
}

#[test]
fn parents_in_a_circle_give_eloop() {
    let mut t = table();
    let root = slot().root();
    let a = t.lookup(root, name("a"), None, None);
    let b = t.lookup(a, name("b"), None, None);
    // The kernel refuses to move a directory below itself; the table does not check.
    t.rename(a, (root, name("a")), (b, name("a")), None, false);
    assert_eq!(errno_of(t.rel_path(b)), libc::ELOOP);
    assert_eq!(errno_of(t.rel_path(a)), libc::ELOOP);
}

#[test]
fn a_push_re_points_lower_entries() {
    let mut t = table();
    let root = slot().root();
    let f = t.lookup(root, name("f"), Some(1), None);
    t.set_lower(f, Some(2));
    assert_eq!(t.get(f).and_then(|n| n.lower), Some(2));
    let seen: Vec<u64> = t.iter().map(|(i, _)| i).collect();
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(&root) && seen.contains(&f));
}
