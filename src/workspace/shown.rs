//! Waiting until the kernel shows a mount change: a request that mounts or unmounts a path
//! answers only once a `stat` through the kernel sees the new layer there.

use std::path::PathBuf;

use crate::ino::{self, Slot};

/// Waits (at most 3 s) until the kernel shows `probe` from the overlay in `slot` or, without
/// one, from the read-only view. Cache invalidations reach the kernel asynchronously; a request must not
/// return before its effect is visible.
pub(super) async fn wait_until_shown(probe: Option<PathBuf>, slot: Option<Slot>) {
    use std::os::unix::fs::MetadataExt;
    let Some(probe) = probe else {
        return;
    };
    let want = slot.map_or(ino::Owner::View, ino::Owner::Overlay);
    let wait = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            match std::fs::symlink_metadata(&probe) {
                Ok(m) if ino::owner(m.ino()) == want => return true,
                Err(_) if want == ino::Owner::View => return true,
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        false
    });
    if !matches!(wait.await, Ok(true)) {
        tracing::warn!(?slot, "the kernel did not show the mount change within 3s");
    }
}
