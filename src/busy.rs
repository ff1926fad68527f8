//! Background work in progress (listings ahead of a walker, fetches ahead of a reader), counted
//! so the FUSE session threads do not poll for requests while it needs the CPU
//! (`rfuse3::raw::set_read_spin`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Background jobs running now, over the whole process.
pub static BACKGROUND: AtomicUsize = AtomicUsize::new(0);

/// Counts one background job while it lives.
pub struct Busy(());

impl Busy {
    /// Starts counting a job.
    pub fn start() -> Busy {
        BACKGROUND.fetch_add(1, Ordering::Relaxed);
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BACKGROUND.fetch_sub(1, Ordering::Relaxed);
    }
}
