//! Telling the service manager how the daemon is doing (systemd's `sd_notify` protocol, through
//! the `sd-notify` crate): READY once the daemon serves what it promises (the workspace mounted
//! and the API listening; for `antares serve`, the API listening and the mounts restored), and
//! STOPPING as soon as shutdown begins. With `Type=notify`, `systemctl start` returns only then,
//! and units ordered after Scorpio find the workspace mounted.
//!
//! Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent. A failure to send is logged
//! and otherwise ignored: the daemon serves the same either way.

use sd_notify::NotifyState;

/// Tells the service manager the daemon is ready, with a one-line status for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the daemon is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("unmounting")]);
}

fn send(states: &[NotifyState]) {
    // The socket stays in the environment: both messages go to it, and children started later
    // (none today) would not inherit a socket that is not theirs anyway (the unit's is ours).
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}
