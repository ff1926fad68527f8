//! What upstream (scorpiofs) clients read beside our own fields: a mount's layers, its state
//! under upstream's names ([`Lifecycle`]), its `*_epoch_ms` times, and readiness.
//!
//! Promises:
//! - Our own fields and their values are unchanged; upstream's are added beside them.
//! - A mount is ready when it is mounted, its session serves, no CL swap holds it, and its
//!   preload (`preload.rs`) has ended.

use super::{Antares, AntaresError, Layers, Lifecycle, MountRecord, MountState, MountView};

/// Milliseconds since the epoch, now.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MountRecord {
    /// Moves the record to `state`, stamping when (and when it was mounted).
    pub(super) fn set_state(&mut self, state: MountState) {
        let now = now_ms();
        self.state = state;
        self.last_seen_epoch_ms = now;
        if state == MountState::Mounted {
            self.mounted_at_epoch_ms = Some(now);
        }
    }
}

impl Antares {
    fn swapping(&self, id: &str) -> bool {
        self.swapping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Whether `rec` is ready for work (see the module doc).
    fn is_ready(&self, rec: &MountRecord) -> bool {
        rec.state == MountState::Mounted
            && self.sessions().contains_key(&rec.mount_id)
            && !self.swapping(&rec.mount_id)
            && self.preload_done(&rec.mount_id)
    }

    /// `rec`'s state under upstream's names.
    fn lifecycle(&self, rec: &MountRecord) -> Lifecycle {
        match rec.state {
            MountState::Provisioning => Lifecycle::Provisioning,
            MountState::Mounted if self.swapping(&rec.mount_id) => Lifecycle::Quiescing,
            MountState::Mounted if self.is_ready(rec) => Lifecycle::Ready,
            MountState::Mounted => Lifecycle::Mounted,
            MountState::Unmounting => Lifecycle::Unmounting,
            MountState::Failed => Lifecycle::Failed {
                reason: rec.reason.clone().unwrap_or_default(),
            },
        }
    }

    /// The API's view of `rec`: the record with upstream's fields beside it.
    pub fn view(&self, rec: MountRecord) -> MountView {
        let layers = Layers {
            upper: rec.upper_dir.clone(),
            cl: rec.cl.as_ref().map(|_| self.cl_dir(&rec.mount_id)),
            dicfuse: self.settings.dicfuse_dir.clone(),
        };
        MountView {
            lifecycle: self.lifecycle(&rec),
            layers,
            record: rec,
        }
    }

    /// Whether mount `id` is ready for work, with its state under upstream's names.
    pub fn readiness(&self, id: &str) -> Result<(bool, Lifecycle), AntaresError> {
        let rec = self.get(id)?;
        Ok((self.is_ready(&rec), self.lifecycle(&rec)))
    }
}
