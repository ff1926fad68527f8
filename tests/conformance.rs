//! POSIX conformance of the writable overlay: pjdfstest (the Rust rewrite, installed with
//! `cargo install pjdfstest --locked --version 0.2.2`) run on a plain directory and on a Scorpio
//! overlay whose lower layer holds files; every test that passes on the plain directory must
//! pass on Scorpio. The script prints both summaries.

mod support;

use std::process::Command;

use support::daemon::run_with_timeout;

#[test]
fn pjdfstest_passes_everything_a_plain_directory_passes() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/pjdfstest.sh"
    );
    let out = run_with_timeout(
        Command::new("bash")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_scorpio")),
        1500,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "pjdfstest regressions or setup failure (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        stdout.contains("every test that passes on the plain directory passes on scorpio"),
        "{stdout}"
    );
}

/// The fsx binary: `FSX` in the environment, else on PATH, else in ~/.cargo/bin.
fn fsx_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("FSX") {
        return p.into();
    }
    let cargo_bin = std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cargo/bin/fsx");
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("fsx"))
        .find(|p| p.is_file());
    on_path.unwrap_or(cargo_bin)
}

/// fsx (`cargo install fsx --locked --version 0.3.2`): 20,000 random reads, writes, mmap reads
/// and writes, truncates, fallocates, hole punches, sendfile and copy_file_range calls on a
/// file of the repository in a writable path (its first write copies it up), every read checked
/// against fsx's model of the file. `benches/fsx.sh` runs 100,000.
#[test]
fn fsx_finds_no_wrong_byte_in_a_copied_up_file() {
    let fx = support::fixture::standard();
    let d = support::Daemon::start(support::DaemonOpts::new(fx.repo_path.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    support::api::mount(&d, "/");
    let target = d.workspace.join(support::fixture::BIG_FILE);
    assert!(target.is_file(), "the fixture's big file is in the mount");
    let artifacts = tempfile::tempdir().expect("artifacts dir");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/fsx.toml");
    let out = run_with_timeout(
        Command::new(fsx_bin())
            .args(["-N", "20000", "-S", "11", "-f", config, "-P"])
            .arg(artifacts.path())
            .arg(&target),
        900,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fsx failed (exit {:?}); install it with `cargo install fsx --locked --version 0.3.2`\n{stdout}\n{stderr}\n{}",
        out.status.code(),
        d.log()
    );
    // Its work went to the upper layer, and the daemon is still answering.
    let st = support::api::changes(&d, "");
    assert!(
        st.iter()
            .any(|(k, p)| k == "modified" && p == support::fixture::BIG_FILE),
        "{st:?}"
    );
}
