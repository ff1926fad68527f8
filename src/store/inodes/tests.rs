//! Unit tests of the inode table: persistence across reopen, binding, listing once, rebase.

use super::*;
use crate::remote::TreeEntry;

fn listed(name: &str, kind: EntryKind, id: u8) -> ListedEntry {
    ListedEntry {
        entry: TreeEntry {
            name: name.as_bytes().to_vec(),
            kind,
            oid: Oid([id; 20]),
        },
        size: Some(3),
    }
}

fn commit(id: u8) -> CommitInfo {
    CommitInfo {
        oid: Oid([id; 20]),
        root_tree: Some(Oid([id + 1; 20])),
        time: 5,
    }
}

/// Opens the database at `path` again, as a restart does.
fn reopen(path: &std::path::Path) -> sled::Db {
    // sled's flusher thread outlives the dropped handle for a moment and holds the
    // database's lock until it ends (a new process, as a restart is, never sees that).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
}

#[test]
fn inodes_survive_reopen_and_rebind_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let db = sled::open(dir.path()).unwrap();
        let t = InodeTable::open(&db).unwrap();
        assert!(t.bind("r", &commit(1)).unwrap());
        t.insert_children(
            ROOT_INO,
            vec![
                listed("a", EntryKind::Dir, 2),
                listed("b", EntryKind::File, 3),
            ],
        )
        .unwrap();
        a = t.child(ROOT_INO, b"a").unwrap().unwrap();
        t.insert_children(a, vec![listed("x y", EntryKind::File, 4)])
            .unwrap();
        b = t.child(a, b"x y").unwrap().unwrap();
        assert_eq!(t.path(b).unwrap(), "a/x y");
        db.flush().unwrap();
    }
    let db = reopen(dir.path());
    let t = InodeTable::open(&db).unwrap();
    assert!(!t.bind("r", &commit(1)).unwrap());
    assert_eq!(t.child(ROOT_INO, b"a").unwrap(), Some(a));
    assert_eq!(t.child(a, b"x y").unwrap(), Some(b));
    assert_eq!(t.recorded("r").unwrap(), Some(commit(1)));
    assert_eq!(t.recorded("other").unwrap(), None);
    let names: Vec<_> = t
        .children(ROOT_INO)
        .unwrap()
        .into_iter()
        .map(|c| c.node.name)
        .collect();
    assert_eq!(names, [b"a".to_vec(), b"b".to_vec()]);
    assert!(t.bind("r", &commit(7)).unwrap());
    assert_eq!(t.child(ROOT_INO, b"a").unwrap(), None);
    assert!(!t.is_loaded(ROOT_INO).unwrap());
}

#[test]
fn rebase_keeps_inodes_of_what_stays_and_reports_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    t.bind("r", &commit(1)).unwrap();
    t.insert_children(
        ROOT_INO,
        vec![
            listed("a", EntryKind::Dir, 2),
            listed("gone", EntryKind::File, 3),
            listed("same", EntryKind::File, 4),
            listed("was-dir", EntryKind::Dir, 5),
        ],
    )
    .unwrap();
    let a = t.child(ROOT_INO, b"a").unwrap().unwrap();
    let same = t.child(ROOT_INO, b"same").unwrap().unwrap();
    let was_dir = t.child(ROOT_INO, b"was-dir").unwrap().unwrap();
    t.insert_children(a, vec![listed("f", EntryKind::File, 6)])
        .unwrap();
    let f = t.child(a, b"f").unwrap().unwrap();
    t.insert_children(was_dir, vec![listed("inner", EntryKind::File, 7)])
        .unwrap();
    let inner = t.child(was_dir, b"inner").unwrap().unwrap();

    let touched = t
        .rebase(
            &commit(9),
            &[
                (
                    String::new(),
                    vec![
                        listed("a", EntryKind::Dir, 12),
                        listed("new-dir", EntryKind::Dir, 13),
                        listed("same", EntryKind::File, 4),
                        listed("was-dir", EntryKind::File, 15),
                    ],
                ),
                (
                    "a".into(),
                    vec![
                        listed("f", EntryKind::Executable, 16),
                        listed("g", EntryKind::File, 17),
                    ],
                ),
                ("new-dir".into(), vec![listed("n", EntryKind::File, 18)]),
            ],
        )
        .unwrap();
    // What stays keeps its inode; what changed is updated in place.
    assert_eq!(t.child(ROOT_INO, b"a").unwrap(), Some(a));
    assert_eq!(t.child(ROOT_INO, b"same").unwrap(), Some(same));
    // A file with other content is another inode; the old one is gone.
    let f2 = t.child(a, b"f").unwrap().unwrap();
    assert_ne!(f2, f);
    assert_eq!(t.get(f).unwrap(), None);
    let fnode = t.get(f2).unwrap().unwrap();
    assert_eq!(
        (fnode.kind, fnode.oid),
        (EntryKind::Executable, Some(Oid([16; 20])))
    );
    assert_eq!(t.get(a).unwrap().unwrap().oid, Some(Oid([12; 20])));
    assert_eq!(t.get(ROOT_INO).unwrap().unwrap().oid, commit(9).root_tree);
    // Gone is gone; a directory turned file loses its listing.
    assert_eq!(t.child(ROOT_INO, b"gone").unwrap(), None);
    let now_file = t.child(ROOT_INO, b"was-dir").unwrap().unwrap();
    assert_eq!(t.get(now_file).unwrap().unwrap().kind, EntryKind::File);
    assert_eq!(t.get(was_dir).unwrap(), None);
    assert!(!t.is_loaded(was_dir).unwrap());
    assert_eq!(t.child(was_dir, b"inner").unwrap(), None);
    assert_eq!(t.get(inner).unwrap(), None);
    // New entries are listed from the update, with fresh inodes.
    let nd = t.child(ROOT_INO, b"new-dir").unwrap().unwrap();
    assert!(t.is_loaded(nd).unwrap());
    assert!(t.child(nd, b"n").unwrap().is_some());
    assert!(t.child(a, b"g").unwrap().is_some());
    let mut names: Vec<_> = touched.iter().map(|x| x.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            b"a".to_vec(),
            b"f".to_vec(),
            b"g".to_vec(),
            b"gone".to_vec(),
            b"new-dir".to_vec(),
            b"was-dir".to_vec()
        ]
    );
    // The binding moved: a restart on commit 9 keeps all of this.
    assert!(!t.bind("r", &commit(9)).unwrap());
    assert_eq!(t.child(ROOT_INO, b"same").unwrap(), Some(same));
    // A path the new commit does not have is an error, and nothing is written.
    assert!(t
        .rebase(&commit(20), &[("missing".into(), vec![])])
        .is_err());
    assert_eq!(t.recorded("r").unwrap(), Some(commit(9)));
}

#[test]
fn listing_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    t.bind("r", &commit(1)).unwrap();
    t.insert_children(ROOT_INO, vec![listed("a", EntryKind::File, 2)])
        .unwrap();
    let first = t.child(ROOT_INO, b"a").unwrap();
    t.insert_children(
        ROOT_INO,
        vec![
            listed("a", EntryKind::File, 2),
            listed("z", EntryKind::File, 3),
        ],
    )
    .unwrap();
    assert_eq!(t.child(ROOT_INO, b"a").unwrap(), first);
    assert_eq!(t.child(ROOT_INO, b"z").unwrap(), None);
    t.set_size(first.unwrap(), 42).unwrap();
    assert_eq!(t.get(first.unwrap()).unwrap().unwrap().size, Some(42));
}

#[test]
fn a_listing_is_one_record_and_names_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    t.bind("r", &commit(1)).unwrap();
    let entries: Vec<ListedEntry> = (0..100u8)
        .map(|i| listed(&format!("f{i:02}.txt"), EntryKind::File, i))
        .collect();
    t.insert_children(ROOT_INO, entries).unwrap();
    assert_eq!(t.listings.len(), 1);
    assert_eq!(t.spans.len(), 1);
    assert_eq!(t.len(), 101);
    // Inode, kind, id, size and name: little beyond the name's 7 bytes and the id's 20.
    let raw = t.listings.get(ROOT_INO.to_be_bytes()).unwrap().unwrap();
    assert!(raw.len() / 100 <= 7 + 20 + 8, "{} bytes", raw.len());
    let f42 = t.child(ROOT_INO, b"f42.txt").unwrap().unwrap();
    let node = t.get(f42).unwrap().unwrap();
    assert_eq!(
        (node.parent, node.name.as_slice(), node.oid),
        (ROOT_INO, b"f42.txt".as_slice(), Some(Oid([42; 20])))
    );
    assert_eq!(t.path(f42).unwrap(), "f42.txt");
}

#[test]
fn a_table_of_the_layout_before_keeps_its_binding_and_lists_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let root = Node {
        parent: ROOT_INO,
        name: Vec::new(),
        kind: EntryKind::Dir,
        oid: commit(1).root_tree,
        size: None,
    };
    let binding = encoding::Binding {
        remote: "r".into(),
        commit: commit(1),
    };
    db.open_tree("nodes")
        .unwrap()
        .insert(ROOT_INO.to_be_bytes(), bincode::serialize(&root).unwrap())
        .unwrap();
    db.open_tree("names").unwrap().insert(b"x", b"y").unwrap();
    let meta = db.open_tree("meta").unwrap();
    meta.insert(BINDING, bincode::serialize(&binding).unwrap())
        .unwrap();
    meta.insert(NEXT_INO, &9u64.to_be_bytes()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"nodes"));
    assert_eq!(t.recorded("r").unwrap(), Some(commit(1)));
    assert!(!t.bind("r", &commit(1)).unwrap());
    assert_eq!(t.get(ROOT_INO).unwrap(), Some(root));
    assert!(!t.is_loaded(ROOT_INO).unwrap());
    t.insert_children(ROOT_INO, vec![listed("a", EntryKind::File, 2)])
        .unwrap();
    // Numbers go on from where the old table stopped.
    assert_eq!(t.child(ROOT_INO, b"a").unwrap(), Some(9));
}

#[test]
fn a_node_looked_up_before_a_change_is_read_again_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    t.bind("r", &commit(1)).unwrap();
    t.insert_children(ROOT_INO, vec![listed("a", EntryKind::File, 2)])
        .unwrap();
    let a = t.child(ROOT_INO, b"a").unwrap().unwrap();
    assert_eq!(t.get(a).unwrap().unwrap().size, Some(3));
    t.set_size(a, 42).unwrap();
    assert_eq!(t.get(a).unwrap().unwrap().size, Some(42));
    t.rebase(
        &commit(9),
        &[(String::new(), vec![listed("a", EntryKind::File, 7)])],
    )
    .unwrap();
    assert_eq!(t.get(a).unwrap(), None);
    let a2 = t.child(ROOT_INO, b"a").unwrap().unwrap();
    assert_eq!(t.get(a2).unwrap().unwrap().oid, Some(Oid([7; 20])));
}

#[test]
fn a_reopened_table_hands_out_inodes_past_every_span_and_keeps_its_count() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, written);
    {
        let db = sled::open(dir.path()).unwrap();
        let t = InodeTable::open(&db).unwrap();
        t.bind("r", &commit(1)).unwrap();
        written = t
            .insert_children(
                ROOT_INO,
                vec![
                    listed("c", EntryKind::File, 2),
                    listed("a", EntryKind::Dir, 3),
                    listed("b", EntryKind::File, 4),
                ],
            )
            .unwrap()
            .expect("a first listing is written");
        (a, b, c) = (
            t.child(ROOT_INO, b"a").unwrap().unwrap(),
            t.child(ROOT_INO, b"b").unwrap().unwrap(),
            t.child(ROOT_INO, b"c").unwrap().unwrap(),
        );
        // What it returns is what the table holds, by name.
        assert_eq!(written, t.children(ROOT_INO).unwrap());
        assert_eq!(t.len(), 4);
        // A second listing of the same directory writes nothing.
        assert_eq!(
            t.insert_children(ROOT_INO, vec![listed("z", EntryKind::File, 9)])
                .unwrap(),
            None
        );
        // A listing cut off by a crash after its span: ten inodes handed out, never listed.
        let top = a.max(b).max(c);
        t.spans
            .insert((top + 1).to_be_bytes(), &span_value(a, 10))
            .unwrap();
        db.flush().unwrap();
    }
    let db = reopen(dir.path());
    let t = InodeTable::open(&db).unwrap();
    assert!(!t.bind("r", &commit(1)).unwrap());
    assert_eq!(t.len(), 4, "the count of entries survives a restart");
    let listed_after = t
        .insert_children(a, vec![listed("x", EntryKind::File, 5)])
        .unwrap()
        .unwrap();
    let x = listed_after[0].ino;
    assert!(
        x > a.max(b).max(c) + 10,
        "inode {x} handed out again after a restart (a={a} b={b} c={c})"
    );
    assert_eq!(t.get(x).unwrap().unwrap().name, b"x");
    assert_eq!(t.len(), 5);
    // The orphan span's numbers are no entry.
    assert_eq!(t.get(a.max(b).max(c) + 1).unwrap(), None);
}

#[test]
fn a_name_listed_twice_keeps_its_first_entry_and_inodes_follow_the_remote_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let t = InodeTable::open(&db).unwrap();
    t.bind("r", &commit(1)).unwrap();
    let written = t
        .insert_children(
            ROOT_INO,
            vec![
                listed("b", EntryKind::File, 2),
                listed("a", EntryKind::File, 3),
                listed("b", EntryKind::Dir, 4),
                listed("c", EntryKind::File, 5),
            ],
        )
        .unwrap()
        .unwrap();
    let seen: Vec<_> = written
        .iter()
        .map(|c| (c.name().to_vec(), c.ino, c.node.kind))
        .collect();
    let first = ROOT_INO + 1;
    assert_eq!(
        seen,
        [
            (b"a".to_vec(), first + 1, EntryKind::File),
            (b"b".to_vec(), first, EntryKind::File),
            (b"c".to_vec(), first + 2, EntryKind::File),
        ]
    );
    assert_eq!(t.len(), 4);
    assert_eq!(t.child(ROOT_INO, b"c").unwrap(), Some(first + 2));
}
