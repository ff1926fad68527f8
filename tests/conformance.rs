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
