//! A mount's preload: the directories under its path listed to `antares.preload_depth` levels
//! in the background once it is mounted (created or restored). Until that ends the mount is not
//! ready (`GET /mounts/{id}/ready`); a preload that fails or cannot start is logged and counts
//! as ended (the mount works without it, only slower at first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{Antares, MountRecord};
use crate::prefetch::{Job, JobState, Prefetcher};

/// The preloads of the mounts of one Antares.
#[derive(Default)]
pub(super) struct Preloads {
    /// The jobs' runner and the depth, once set.
    with: OnceLock<(Arc<Prefetcher>, u32)>,
    /// Mounts whose preload has not ended: `None` while its job is being started.
    running: Mutex<HashMap<String, Option<Arc<Job>>>>,
}

impl Preloads {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<Job>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Antares {
    /// Preloads every mount mounted from now on to `depth` levels (0: none) with `p`'s jobs.
    /// Set once, before [`Antares::restore`]; a second call changes nothing.
    pub fn preload_with(&self, p: Arc<Prefetcher>, depth: u32) {
        let _ = self.preloads.with.set((p, depth));
    }

    /// Starts the preload of mount `rec`, just mounted; it is not ready until it ends.
    pub(super) fn start_preload(&self, rec: &MountRecord) {
        let Some((p, depth)) = self.preloads.with.get().cloned() else {
            return;
        };
        if depth == 0 {
            return;
        }
        let id = rec.mount_id.clone();
        self.preloads.running().insert(id.clone(), None);
        let (me, path) = (self.me.clone(), rec.path.clone());
        tokio::spawn(async move {
            let job = p.preload(&path, depth).await;
            let Some(a) = me.upgrade() else { return };
            let Some(job) = job else {
                a.preloads.running().remove(&id);
                return;
            };
            {
                let mut running = a.preloads.running();
                // Deleted while the job started: it has no mount to get ready.
                match running.get_mut(&id) {
                    Some(slot) => *slot = Some(job.clone()),
                    None => {
                        drop(running);
                        let _ = p.cancel(job.id());
                        return;
                    }
                }
            }
            let end = job.wait().await;
            if end.state != JobState::Done {
                tracing::warn!(id, error = ?end.error, state = ?end.state, "antares preload did not finish; the mount is ready without it");
            } else {
                tracing::info!(
                    id,
                    path,
                    dirs = end.dirs_fetched + end.dirs_kept,
                    ms = end.elapsed_ms,
                    "antares preload done"
                );
            }
            a.preloads.running().remove(&id);
        });
    }

    /// Whether mount `id`'s preload has ended (or there is none).
    pub(super) fn preload_done(&self, id: &str) -> bool {
        !self.preloads.running().contains_key(id)
    }

    /// Cancels mount `id`'s preload, if it runs (the mount is going).
    pub(super) fn stop_preload(&self, id: &str) {
        let job = self.preloads.running().remove(id).flatten();
        if let (Some(job), Some((p, _))) = (job, self.preloads.with.get()) {
            let _ = p.cancel(job.id());
        }
    }
}
