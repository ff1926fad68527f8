use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::*;

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    cmd.env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t");
    cmd.env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t");
    cmd.stdin(std::process::Stdio::piped());
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("git");
    if let Some(i) = input {
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), i).expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("git");
    assert!(out.status.success(), "git {args:?}");
    out.stdout
}

/// A repository whose files share most of their lines (so git deltas them), and every object
/// in it by id with its kind and content.
fn repo() -> (tempfile::TempDir, BTreeMap<Oid, (ObjectKind, Vec<u8>)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"], None);
    let base: String = (0..400)
        .map(|i| format!("line {i} of a shared file\n"))
        .collect();
    for i in 0..20 {
        std::fs::create_dir_all(d.join(format!("d{}", i % 3))).expect("mkdir");
        let body = format!("{base}the end of file {i}\n");
        std::fs::write(d.join(format!("d{}/f{i}.txt", i % 3)), body).expect("write");
    }
    std::fs::write(d.join("empty"), b"").expect("write");
    git(d, &["add", "-A"], None);
    git(d, &["commit", "-q", "-m", "one"], None);
    let ids = git(d, &["rev-list", "--objects", "--all"], None);
    let mut all = BTreeMap::new();
    for line in String::from_utf8(ids).expect("utf8").lines() {
        let hex = &line[..40];
        let kind = match String::from_utf8(git(d, &["cat-file", "-t", hex], None))
            .expect("t")
            .trim()
        {
            "blob" => ObjectKind::Blob,
            "tree" => ObjectKind::Tree,
            "commit" => ObjectKind::Commit,
            other => panic!("{other}"),
        };
        let body = git(d, &["cat-file", kind.name(), hex], None);
        all.insert(Oid::from_hex(hex).expect("hex"), (kind, body));
    }
    (dir, all)
}

fn pack(dir: &Path, offsets: bool) -> Vec<u8> {
    let mut args = vec!["pack-objects", "--stdout", "--revs", "-q"];
    if offsets {
        args.push("--delta-base-offset");
    }
    git(dir, &args, Some(b"main\n"))
}

fn read_in_pieces(pack: &[u8], piece: usize) -> (PackReader, Vec<PackObject>) {
    let mut r = PackReader::default();
    let mut got = Vec::new();
    for chunk in pack.chunks(piece) {
        r.feed(chunk, &mut |o| got.push(o)).expect("pack reads");
    }
    (r, got)
}

#[test]
fn every_object_of_a_git_pack_comes_out_with_its_id_and_bytes_in_pieces_of_any_size() {
    let (dir, all) = repo();
    for offsets in [true, false] {
        let bytes = pack(dir.path(), offsets);
        for piece in [1, 7, 4096, bytes.len()] {
            let (r, got) = read_in_pieces(&bytes, piece);
            assert!(
                r.done(),
                "offsets {offsets} piece {piece}: trailer not reached"
            );
            assert!(
                r.deltas > 0,
                "git made no deltas: the test proves nothing about them"
            );
            assert_eq!(r.dropped, 0);
            let seen: BTreeMap<Oid, (ObjectKind, Vec<u8>)> = got
                .into_iter()
                .map(|o| (o.oid, (o.kind, o.data.expect("kept").to_vec())))
                .collect();
            assert_eq!(seen, all, "offsets {offsets} piece {piece}");
        }
    }
}

/// Wraps `pack` as upload-pack's answer: a NAK, the data in band 1 split in `piece`s with
/// progress in band 2 between them, then the flush.
fn side_band(pack: &[u8], piece: usize) -> Vec<u8> {
    let mut out = crate::remote::smart_http::pkt_line(b"NAK\n");
    for (i, chunk) in pack.chunks(piece).enumerate() {
        let mut data = vec![1u8];
        data.extend_from_slice(chunk);
        out.extend(crate::remote::smart_http::pkt_line(&data));
        if i % 3 == 0 {
            out.extend(crate::remote::smart_http::pkt_line(
                b"\x02Counting objects\r",
            ));
        }
    }
    out.extend_from_slice(b"0000");
    out
}

#[test]
fn the_side_band_gives_back_the_pack_whatever_the_chunks_cut_through() {
    let (dir, _) = repo();
    let bytes = pack(dir.path(), true);
    let answer = side_band(&bytes, 1000);
    for piece in [1, 3, 999, 65536] {
        let mut sb = SideBand::default();
        let mut out = Vec::new();
        for chunk in answer.chunks(piece) {
            sb.feed(chunk, &mut out).expect("side band");
        }
        assert!(sb.ended(), "piece {piece}");
        assert_eq!(out, bytes, "piece {piece}");
    }
}

#[test]
fn a_server_error_on_band_three_or_err_stops_the_stream_with_its_words() {
    let mut sb = SideBand::default();
    let mut out = Vec::new();
    let mut answer = crate::remote::smart_http::pkt_line(b"NAK\n");
    answer.extend(crate::remote::smart_http::pkt_line(
        b"\x03upload-pack: not our ref\n",
    ));
    let e = sb.feed(&answer, &mut out).expect_err("band 3");
    assert!(
        matches!(&e, PackError::Server(m) if m == "upload-pack: not our ref"),
        "{e}"
    );
    let mut sb = SideBand::default();
    let e = sb
        .feed(
            &crate::remote::smart_http::pkt_line(b"ERR access denied\n"),
            &mut out,
        )
        .expect_err("ERR");
    assert!(
        matches!(&e, PackError::Server(m) if m == "access denied"),
        "{e}"
    );
}

#[test]
fn a_damaged_or_cut_pack_hands_out_no_object_under_a_wrong_id() {
    let (dir, all) = repo();
    let bytes = pack(dir.path(), true);
    // Cut: what came out is right, and the reader knows it is not done.
    let (r, got) = read_in_pieces(&bytes[..bytes.len() / 2], 512);
    assert!(!r.done());
    for o in &got {
        let data = o.data.as_ref().expect("kept");
        assert_eq!(all.get(&o.oid).map(|(_, b)| b.as_slice()), Some(&data[..]));
    }
    // Damaged anywhere: an error, or objects that are still exactly the objects of their ids.
    for at in (12..bytes.len() - 20).step_by(97) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        let mut r = PackReader::default();
        let mut got = Vec::new();
        let _ = r.feed(&bad, &mut |o| got.push(o));
        for o in got {
            let data = o.data.expect("kept");
            assert_eq!(Oid::hash_object(o.kind, &data), o.oid, "byte {at}");
        }
    }
}

#[test]
fn a_delta_copies_and_inserts_and_refuses_to_reach_outside_its_base() {
    let base = b"hello, world";
    // base size 12, result size 10: copy 5 bytes at 0, insert ", you".
    let d = [12u8, 10, 0x90, 5, 5, b',', b' ', b'y', b'o', b'u'];
    assert_eq!(apply_delta(base, &d).expect("delta"), b"hello, you");
    // Copy of 5 bytes at offset 10: past the base.
    let d = [12u8, 5, 0x91, 10, 5];
    assert!(apply_delta(base, &d).is_err());
    // Wrong base size.
    assert!(apply_delta(b"short", &[12u8, 0]).is_err());
    // Opcode 0 is reserved.
    assert!(apply_delta(base, &[12u8, 1, 0]).is_err());
}

#[test]
fn an_object_over_the_bound_comes_out_with_its_id_and_size_but_not_its_bytes() {
    let (dir, all) = repo();
    let bytes = pack(dir.path(), true);
    let mut r = PackReader::with_object_max(1000);
    let mut got = Vec::new();
    for chunk in bytes.chunks(333) {
        r.feed(chunk, &mut |o| got.push(o)).expect("pack reads");
    }
    assert!(r.done());
    assert!(r.too_big > 0, "no object was over 1000 bytes");
    let mut without_bytes = 0;
    for o in &got {
        let (kind, body) = all.get(&o.oid).expect("an object of the repository");
        assert_eq!((o.kind, o.size), (*kind, body.len() as u64));
        match &o.data {
            Some(d) => {
                assert!(d.len() <= 1000, "{} bytes kept", d.len());
                assert_eq!(&d[..], &body[..]);
            }
            None => {
                assert!(o.size > 1000);
                without_bytes += 1;
            }
        }
    }
    assert!(without_bytes > 0, "no big object was named by its hash");
    // Every object of the repository is accounted for: handed out (whole, or named without
    // its bytes), or a delta over the bound or whose base was passed over.
    let passed_over = r.too_big as usize - without_bytes;
    assert_eq!(
        got.len() + passed_over + r.dropped as usize,
        all.len(),
        "{} out, {} passed over, {} dropped",
        got.len(),
        passed_over,
        r.dropped
    );
}
