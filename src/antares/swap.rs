//! Swapping the CL layer of a live mount: `POST /mounts/{id}/cl` lays a change list (or a newer
//! state of the same one), `DELETE /mounts/{id}/cl` drops it.
//!
//! Promises:
//! - The change list is fetched and its layer built beside the live one (`<layer>.new`) before
//!   anything the mount shows changes; a refusal or failure there (an unknown CL, a remote
//!   error, a CL with nothing under the path) leaves the old layer laid and answers an error.
//! - The swap itself holds the mount's requests (`gate`): those in flight finish first, those
//!   that arrive meanwhile wait and then run against the new layer; none fails. The overlay
//!   points every inode the kernel knows at what it shows now before they go on; then the kernel
//!   is told to drop the names, attributes and pages that may have changed. Open files stay open.
//! - The job's upper layer is not touched: its writes show over the new layer as over the old.
//! - The record is saved between moving the old layer out of its place and moving the new one
//!   in, so a restart at any point finds either the layer the record names or none (and builds
//!   it again from the CL).
//! - While it swaps, the mount shows `lifecycle` `Quiescing` and is not ready.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::checks::refused;
use super::error::internal;
use super::session::SwapHandle;
use super::upstream::now_ms;
use super::{Antares, AntaresError, MountRecord, MountState};
use crate::overlay::assemble;

/// Debug builds only: the swap holds the mount's requests this much longer (milliseconds), so
/// that a test can issue requests while they are held.
const TEST_HOLD_ENV: &str = "SCORPIO_TEST_CL_SWAP_HOLD_MS";

async fn test_hold() {
    if !cfg!(debug_assertions) {
        return;
    }
    if let Some(ms) = std::env::var(TEST_HOLD_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

impl Antares {
    /// Lays change list `cl` under mount `id`'s upper layer in place of the one laid now
    /// (`None`: drops it); returns the record (see the module doc).
    pub async fn swap_cl(&self, id: &str, cl: Option<&str>) -> Result<MountRecord, AntaresError> {
        self.open_for_requests()?;
        let _op = self.ops.lock().await;
        self.open_for_requests()?;
        let rec = self.get(id)?;
        let cl = match cl.map(str::trim) {
            Some(c) => {
                assemble::check_cl_name(c).map_err(|e| refused(e, None))?;
                Some(c.to_string())
            }
            None => None,
        };
        if rec.readonly {
            return Err(AntaresError::BadRequest(
                "a CL layer needs a writable mount".into(),
            ));
        }
        let handle = match self.sessions().get(id).and_then(|s| s.swap()) {
            Some(h) if rec.state == MountState::Mounted => h,
            _ => {
                return Err(AntaresError::NotServing {
                    mount_id: id.to_string(),
                    state: format!("{:?}", rec.state).to_lowercase(),
                })
            }
        };
        if cl.is_none() && rec.cl.is_none() {
            return Ok(rec);
        }
        self.set_swapping(id, true);
        let r = self.swap_locked(rec, cl, handle).await;
        self.set_swapping(id, false);
        r
    }

    fn set_swapping(&self, id: &str, on: bool) {
        let mut s = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            s.insert(id.to_string());
        } else {
            s.remove(id);
        }
    }

    /// Removes a layer built beside `dir` that will not be laid.
    async fn remove_aside(&self, dir: &std::path::Path) {
        let root = self.roots().cl;
        let aside = dir.with_extension("new");
        let r =
            tokio::task::spawn_blocking(move || super::cleanup::remove_tree(&root, &aside)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "a CL layer built for a failed swap is left behind");
        }
    }

    async fn swap_locked(
        &self,
        mut rec: MountRecord,
        cl: Option<String>,
        handle: SwapHandle,
    ) -> Result<MountRecord, AntaresError> {
        let id = rec.mount_id.clone();
        let dir = self.cl_dir(&id);
        let built: Option<PathBuf> = match &cl {
            Some(c) => {
                let changes = self.fetch_cl(c, &rec.path).await?;
                match assemble::build_beside(&self.dic, &rec.path, c, &dir, &changes).await {
                    Ok(aside) => Some(aside),
                    Err(e) => {
                        self.remove_aside(&dir).await;
                        return Err(refused(e, Some(&rec.mountpoint)));
                    }
                }
            }
            None => None,
        };
        let held_at = Instant::now();
        let swapped = {
            let _held = handle.gate.write().await;
            tracing::info!(id, cl = ?cl, "CL swap: the mount's requests are held");
            test_hold().await;
            handle.ovl.swap_cl(built.as_deref()).await
        };
        let held_ms = held_at.elapsed().as_secs_f64() * 1e3;
        let changed = match swapped {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(id, error = %e, "CL swap failed; the old layer stays");
                self.remove_aside(&dir).await;
                return Err(AntaresError::Mount {
                    path: rec.mountpoint.clone(),
                    message: format!("swapping the CL layer: {e}"),
                });
            }
        };
        handle.invalidate(&changed).await;
        let d = dir.clone();
        tokio::task::spawn_blocking(move || assemble::retire_layer(&d))
            .await
            .map_err(internal)?
            .map_err(|e| internal(format!("retiring the old CL layer of {id}: {e}")))?;
        rec.cl = cl;
        rec.last_seen_epoch_ms = now_ms();
        self.put(rec.clone()).await?;
        if built.is_some() {
            tokio::task::spawn_blocking(move || assemble::promote_beside(&dir))
                .await
                .map_err(internal)?
                .map_err(|e| internal(format!("placing the new CL layer of {id}: {e}")))?;
        }
        tracing::info!(
            id,
            cl = ?rec.cl,
            held_ms,
            inodes = changed.inodes.len(),
            names = changed.entries.len(),
            "CL layer swapped on a live mount"
        );
        Ok(rec)
    }
}
