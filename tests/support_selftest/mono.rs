//! The real Mega server harness (`support::mono`): it starts on its own ports, takes a push to a
//! `/third-party` repository with the token, serves that repository's tree, and stops on drop
//! with nothing left listening.

use crate::support::fixture;
use crate::support::mono::Mono;

#[test]
fn the_real_mega_server_starts_takes_a_push_and_stops() {
    let Some(mono) = Mono::start() else { return };
    let fx = fixture::standard();
    mono.push_ok(
        &fx.repo_path,
        "/third-party/selftest",
        "refs/heads/main:refs/heads/main",
    );
    let r = crate::get(&format!(
        "{}/api/v1/file/tree?path=/third-party/selftest",
        mono.url
    ));
    assert_eq!(r.status, 200);
    // The real tree of the pushed repository: git's raw tree of the fixture's root.
    let tree = git2::Repository::open_bare(&fx.repo_path)
        .and_then(|r| {
            r.find_commit(git2::Oid::from_str(&fx.commit)?)?
                .tree()
                .map(|t| t.id())
        })
        .expect("the fixture's tree");
    // The raw tree, byte for byte: it hashes to the fixture's tree id.
    let served = git2::Oid::hash_object(git2::ObjectType::Tree, &r.body).expect("hash");
    assert_eq!(
        served, tree,
        "the served tree is not the pushed repository's"
    );
    let addr = mono.addr();
    drop(mono);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "mono still listens on {addr} after drop"
    );
}
