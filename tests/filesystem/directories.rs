//! Filesystem: directories (see tests/filesystem.rs). Reading a directory while it changes, and
//! large listings with attributes that leave no lookup behind.

use std::path::Path;

use crate::support::api::mount;
use crate::support::daemon::Daemon;
use crate::support::fixture;
use crate::support::host::{drop_caches, fd_count, fd_count_after};

/// Reads the names of an open directory with `getdents64`, a few at a time (`buf` bytes a call),
/// into `seen` until `stop` says so or the end; returns whether the end was reached.
fn getdents_names(
    dir: &std::fs::File,
    buf: usize,
    seen: &mut Vec<String>,
    mut stop: impl FnMut(&[String]) -> bool,
) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = vec![0u8; buf];
    loop {
        // SAFETY: reads into a buffer of the length passed, on an fd we own.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                b.as_mut_ptr(),
                b.len(),
            )
        };
        assert!(n >= 0, "getdents64: {}", std::io::Error::last_os_error());
        if n == 0 {
            return true;
        }
        let mut at = 0usize;
        while at < n as usize {
            // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
            let reclen = u16::from_ne_bytes([b[at + 16], b[at + 17]]) as usize;
            let name = &b[at + 19..at + reclen];
            let name = &name[..name.iter().position(|c| *c == 0).unwrap_or(name.len())];
            seen.push(String::from_utf8_lossy(name).into_owned());
            at += reclen;
        }
        if stop(seen) {
            return false;
        }
    }
}

/// A directory read while it changes, a few entries per `getdents`: no name comes twice, every
/// name that stayed all along comes once, and nothing comes that never was there, whether it
/// sits in the lower layer or the upper one.
#[test]
fn a_directory_read_while_it_changes_skips_and_repeats_nothing() {
    use std::collections::HashSet;
    let fx = fixture::generated(500, 500);
    let d = Daemon::local(&fx);
    mount(&d, "d0000");
    let dir = d.workspace.join("d0000");
    for i in 0..400 {
        std::fs::write(dir.join(format!("u{i:04}.txt")), b"upper").expect("create upper");
    }
    let names_in = |dir: &Path| -> HashSet<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let initial = names_in(&dir);
    assert_eq!(initial.len(), 900);

    for round in 0..3 {
        let f = std::fs::File::open(&dir).expect("open dir");
        let mut seen = Vec::new();
        let done = getdents_names(&f, 600, &mut seen, |s| s.len() >= 150);
        assert!(!done, "the first calls end early");
        // Remove lower and upper names (read or not yet), rename some, add new ones.
        let mut gone = HashSet::new();
        let mut added = HashSet::new();
        let names: Vec<&String> = {
            let mut v: Vec<_> = initial.iter().collect();
            v.sort();
            v
        };
        for (k, n) in names.iter().enumerate() {
            let p = dir.join(n);
            if !p.exists() {
                gone.insert((*n).clone());
                continue;
            }
            match (k + round) % 7 {
                0 => {
                    std::fs::remove_file(&p).expect("unlink");
                    gone.insert((*n).clone());
                }
                3 => {
                    let to = format!("r{round}-{n}");
                    std::fs::rename(&p, dir.join(&to)).expect("rename");
                    gone.insert((*n).clone());
                    added.insert(to);
                }
                _ => {}
            }
        }
        for i in 0..200 {
            let n = format!("n{round}-{i:04}.txt");
            std::fs::write(dir.join(&n), b"new").expect("create new");
            added.insert(n);
        }
        assert!(getdents_names(&f, 600, &mut seen, |_| false));
        let mut once = HashSet::new();
        for n in &seen {
            assert!(once.insert(n.clone()), "round {round}: {n} listed twice");
            assert!(
                n == "." || n == ".." || initial.contains(n) || added.contains(n),
                "round {round}: {n} never existed"
            );
        }
        let missing: Vec<_> = initial
            .iter()
            .filter(|n| !gone.contains(*n) && !once.contains(*n))
            .collect();
        assert!(missing.is_empty(), "round {round}: skipped {missing:?}");
        // A fresh open lists exactly what is there now (the kernel's cached listing is gone).
        let now = names_in(&dir);
        let expected: HashSet<String> = initial
            .iter()
            .filter(|n| !gone.contains(*n))
            .cloned()
            .chain(added.iter().cloned())
            .collect();
        let (extra, lost): (Vec<_>, Vec<_>) = (
            now.difference(&expected).collect(),
            expected.difference(&now).collect(),
        );
        assert!(
            extra.is_empty() && lost.is_empty(),
            "round {round}: listed but gone {extra:?}; there but not listed {lost:?}"
        );
        // Put the directory back the way it was for the next round.
        for n in &added {
            std::fs::remove_file(dir.join(n)).expect("clean up");
        }
        for n in initial.iter().filter(|n| !dir.join(n).exists()) {
            if n.starts_with('u') {
                std::fs::write(dir.join(n), b"upper").expect("recreate upper");
            }
        }
    }
}

/// Listing a large directory with attributes (READDIRPLUS, more entries than one reply holds)
/// counts no lookup the kernel will not forget: once the files are removed and the kernel lets
/// go, the daemon holds no file for any of them.
#[test]
fn large_listings_leave_no_lookups_behind() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let dir = d.workspace.join("many");
    std::fs::create_dir(&dir).expect("mkdir");
    let pid = d.pid().expect("daemon pid");
    let file = |i: usize| dir.join(format!("file-with-a-longish-name-{i:05}.txt"));
    for i in 0..1500 {
        std::fs::write(file(i), b"x").expect("create");
    }
    drop_caches();
    let fds_before = fd_count(pid);
    for e in std::fs::read_dir(&dir).expect("list") {
        e.expect("entry").metadata().expect("stat");
    }
    for i in 0..1500 {
        std::fs::remove_file(file(i)).expect("unlink");
    }
    drop_caches();
    let after = fd_count_after(pid, fds_before);
    assert!(
        after <= fds_before,
        "daemon fds: {fds_before} before listing 1500 files, {after} after they were removed"
    );
}
