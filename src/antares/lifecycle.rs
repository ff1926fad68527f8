//! The life of Antares mounts: create, delete, restore; their sessions and saved state (see the
//! module doc of `antares` for what it promises).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::checks::{check_fields, refused};
use super::cleanup::{make_dir, remove_cl_dirs, remove_layers, Roots};
use super::error::internal;
use super::paths;
use super::session::{self, LiveSession};
use super::state::StateFile;
use super::upstream::now_ms;
use super::{AntaresError, CreateRequest, MountRecord, MountState, Settings};
use crate::beneath;
use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::ino::Slot;
use crate::overlay::assemble::{self, Assembly, ClLayer, ClSource, RepoDir};
use crate::remote::ClChange;
use crate::vcs::status::Change;

/// Antares: the per-job mounts, their sessions and their saved state.
pub struct Antares {
    pub(super) dic: Arc<Dicfuse>,
    pub(super) settings: Settings,
    state: StateFile,
    records: Mutex<BTreeMap<String, MountRecord>>,
    sessions: Mutex<HashMap<String, LiveSession>>,
    /// Mounts whose CL layer is being swapped (shown as `Quiescing`).
    pub(super) swapping: Mutex<std::collections::HashSet<String>>,
    pub(super) ops: tokio::sync::Mutex<()>,
    /// Each mount's preload (`preload.rs`).
    pub(super) preloads: super::preload::Preloads,
    closing: AtomicBool,
    started: Instant,
    pub(super) me: Weak<Antares>,
}

impl Antares {
    /// Antares over `dic` with `settings`: makes the roots and reads the saved state (nothing
    /// is mounted until [`Antares::restore`]).
    pub fn open(dic: Arc<Dicfuse>, mut settings: Settings) -> Result<Arc<Antares>, AntaresError> {
        // Mountpoints must be reachable by the jobs' users; layers only by the daemon.
        for (root, mode) in [
            (&mut settings.mount_root, 0o755),
            (&mut settings.upper_root, 0o700),
            (&mut settings.cl_root, 0o700),
        ] {
            make_dir(root, mode).map_err(|e| internal(format!("{}: {e}", root.display())))?;
            *root = root
                .canonicalize()
                .map_err(|e| internal(format!("{}: {e}", root.display())))?;
        }
        let state = StateFile::new(&settings.state_path);
        let saved = state.load().map_err(internal)?;
        let records = saved.into_iter().map(|r| (r.mount_id.clone(), r)).collect();
        Ok(Arc::new_cyclic(|me| Antares {
            dic,
            settings,
            state,
            records: Mutex::new(records),
            sessions: Mutex::new(HashMap::new()),
            swapping: Mutex::new(Default::default()),
            ops: tokio::sync::Mutex::new(()),
            preloads: Default::default(),
            closing: AtomicBool::new(false),
            started: Instant::now(),
            me: me.clone(),
        }))
    }

    pub(super) fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MountRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The commit every mount shows (hex).
    pub fn commit(&self) -> String {
        self.dic.commit().oid.to_hex()
    }

    /// Seconds since Antares was opened.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Number of mounts (every state).
    pub fn count(&self) -> usize {
        self.records().len()
    }

    /// Whether shutdown has begun (requests then get 503).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(super) fn open_for_requests(&self) -> Result<(), AntaresError> {
        if self.is_closing() {
            return Err(AntaresError::ShuttingDown);
        }
        Ok(())
    }

    /// Every mount, oldest first.
    pub fn list(&self) -> Vec<MountRecord> {
        let mut v: Vec<MountRecord> = self.records().values().cloned().collect();
        v.sort_by(|a, b| (a.created_at, &a.mount_id).cmp(&(b.created_at, &b.mount_id)));
        v
    }

    /// The mount `id`.
    pub fn get(&self, id: &str) -> Result<MountRecord, AntaresError> {
        self.records()
            .get(id)
            .cloned()
            .ok_or_else(|| AntaresError::NotFound(id.to_string()))
    }

    /// The mount of job `job_id`.
    pub fn by_job(&self, job_id: &str) -> Result<MountRecord, AntaresError> {
        self.find_job(job_id)
            .ok_or_else(|| AntaresError::NotFound(format!("for job {job_id}")))
    }

    fn find_job(&self, job_id: &str) -> Option<MountRecord> {
        self.records()
            .values()
            .find(|r| r.job_id.as_deref() == Some(job_id))
            .cloned()
    }

    /// Saves the current records (atomically; off the async workers).
    async fn save(&self) -> Result<(), AntaresError> {
        let all = self.list();
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.save(&all))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    pub(super) async fn put(&self, rec: MountRecord) -> Result<(), AntaresError> {
        self.records().insert(rec.mount_id.clone(), rec);
        self.save().await
    }

    async fn forget(&self, id: &str) -> Result<(), AntaresError> {
        self.records().remove(id);
        self.save().await
    }

    /// Creates a mount, or returns the job's existing one (`false`: nothing new was made).
    pub async fn create(
        &self,
        mut req: CreateRequest,
    ) -> Result<(MountRecord, bool), AntaresError> {
        self.open_for_requests()?;
        // Upstream's rule: without a job id, the build id is the job's key.
        req.job_id = req.job_id.take().or_else(|| req.build_id.clone());
        let started = Instant::now();
        let _op = self.ops.lock().await;
        self.open_for_requests()?;
        let path = assemble::normalize(&req.path).map_err(|e| refused(e, None))?;
        let cl = req
            .cl
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        check_fields(&req, cl.as_deref())?;
        if let Some(job) = &req.job_id {
            if let Some(old) = self.find_job(job) {
                if old.path == path && old.cl == cl && old.readonly == req.readonly {
                    return Ok((old, false));
                }
                return Err(AntaresError::JobConflict {
                    job_id: job.clone(),
                    mount_id: old.mount_id,
                    path: old.path,
                    cl: old.cl,
                    readonly: old.readonly,
                });
            }
        }
        if self.count() >= self.settings.max_mounts {
            return Err(AntaresError::TooMany(self.settings.max_mounts));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let others = self.list();
        let mountpoint = match &req.mountpoint {
            Some(raw) => {
                self.check_place("mountpoint", raw, &self.settings.mount_root, &others)
                    .await?
            }
            None => self.settings.mount_root.join(&id),
        };
        let upper = match (&req.upper_dir, req.readonly) {
            (_, true) => None,
            (Some(raw), false) => Some(
                self.check_place("upper_dir", raw, &self.settings.upper_root, &others)
                    .await?,
            ),
            (None, false) => Some(self.settings.upper_root.join(&id)),
        };
        if let Some(u) = &upper {
            if paths::overlap(u, &mountpoint)
                || paths::overlap(&paths::work_dir_for(u), &mountpoint)
            {
                return Err(AntaresError::BadRequest(format!(
                    "upper_dir {} and mountpoint {} overlap",
                    u.display(),
                    mountpoint.display()
                )));
            }
        }
        let lower = self.lower_dir(&path).await?;
        let changes = match &cl {
            Some(c) => Some(self.fetch_cl(c, &path).await?),
            None => None,
        };
        // Everything is checked: from here on the disk changes, and a failure undoes it (an
        // upper layer that was there before the request is left alone).
        let owns_upper = upper.as_ref().is_some_and(|u| !u.exists());
        let now = now_ms();
        let mut rec = MountRecord {
            mount_id: id.clone(),
            job_id: req.job_id.clone(),
            path,
            cl,
            owns_mountpoint: !mountpoint.exists(),
            owns_upper,
            mountpoint,
            upper_dir: upper,
            labels: req.labels.clone(),
            readonly: req.readonly,
            state: MountState::Provisioning,
            reason: None,
            commit: self.commit(),
            created_at: now / 1000,
            build_id: req.build_id.clone(),
            created_at_epoch_ms: now,
            mounted_at_epoch_ms: None,
            last_seen_epoch_ms: now,
        };
        self.put(rec.clone()).await?;
        let checked_ms = started.elapsed().as_secs_f64() * 1e3;
        match self.provision(&rec, lower, changes, true).await {
            Ok(s) => {
                self.sessions().insert(id.clone(), s);
                let mounted_ms = started.elapsed().as_secs_f64() * 1e3;
                rec.set_state(MountState::Mounted);
                // Before the record says mounted: it is never ready before its preload ends.
                self.start_preload(&rec);
                self.put(rec.clone()).await?;
                tracing::info!(
                    id,
                    path = rec.path,
                    mountpoint = %rec.mountpoint.display(),
                    job = ?rec.job_id,
                    checked_ms,
                    mounted_ms,
                    total_ms = started.elapsed().as_secs_f64() * 1e3,
                    "antares mount created"
                );
                Ok((rec, true))
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "antares mount failed; undoing it");
                let r = rec.clone();
                let cl = self.cl_dir(&id);
                let roots = self.roots();
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = remove_cl_dirs(&roots.cl, &cl);
                    remove_layers(&r, &roots)
                })
                .await;
                self.forget(&id).await?;
                Err(e)
            }
        }
    }

    /// The Dicfuse directory at repository path `path`.
    pub(super) async fn lower_dir(&self, path: &str) -> Result<RepoDir, AntaresError> {
        assemble::resolve_dir(&self.dic, path)
            .await
            .map_err(|e| refused(e, None))
    }

    /// The changes of `cl` for `path`; refused before the disk changes when none is under it.
    pub(super) async fn fetch_cl(
        &self,
        cl: &str,
        path: &str,
    ) -> Result<Vec<ClChange>, AntaresError> {
        let changes = assemble::fetch_cl(&self.dic, cl, path)
            .await
            .map_err(|e| refused(e, None))?;
        assemble::check_cl_here(cl, &changes, path).map_err(|e| refused(e, None))?;
        Ok(changes)
    }

    pub(super) fn roots(&self) -> Roots {
        Roots {
            mount: self.settings.mount_root.clone(),
            upper: self.settings.upper_root.clone(),
            cl: self.settings.cl_root.clone(),
        }
    }

    pub(super) fn cl_dir(&self, id: &str) -> PathBuf {
        self.settings.cl_root.join(id)
    }

    /// Makes the directories of `rec` and mounts it. `fresh`: a new mount (its upper layer may
    /// be made); otherwise a restart, where a missing upper layer is an error, not a new start.
    async fn provision(
        &self,
        rec: &MountRecord,
        lower: RepoDir,
        changes: Option<Vec<ClChange>>,
        fresh: bool,
    ) -> Result<LiveSession, AntaresError> {
        let mp = rec.mountpoint.clone();
        let failed = |e: &dyn std::fmt::Display| AntaresError::Mount {
            path: mp.clone(),
            message: e.to_string(),
        };
        make_dir(&rec.mountpoint, 0o755).map_err(|e| failed(&e))?;
        let on_end = self.on_end(&rec.mount_id);
        let Some(upper) = &rec.upper_dir else {
            return LiveSession::readonly(self.dic.clone(), lower.ino, &rec.mountpoint, on_end)
                .await
                .map_err(|e| failed(&e));
        };
        if !fresh && !upper.is_dir() {
            return Err(failed(&format!(
                "its upper layer {} is missing",
                upper.display()
            )));
        }
        // The upper root stands for the mounted directory, whose mode is 0755.
        make_dir(upper, 0o755).map_err(|e| failed(&e))?;
        // Recorded paths are canonical: a symlink on the way now (a job may own a requested
        // upper_dir's parent) would have the overlay write the job's files somewhere else.
        for dir in [upper.clone(), paths::work_dir_for(upper)] {
            if let Err(e) = beneath::open_abs(&dir) {
                return Err(failed(&format!(
                    "{} is no longer where the mount made it ({e}: a symlink on the way?)",
                    dir.display()
                )));
            }
        }
        let cl_dir = self.cl_dir(&rec.mount_id);
        let cl = rec.cl.as_deref().map(|name| ClLayer {
            name,
            dir: &cl_dir,
            source: match changes {
                Some(c) => ClSource::Fetched(c),
                // A restart reuses the layer it built, or builds it again.
                None => ClSource::BuiltOrFetch,
            },
        });
        let ovl = assemble::assemble_swappable(
            &self.dic,
            Assembly {
                path: &rec.path,
                dir: &lower,
                cl,
                upper,
                work: &paths::work_dir_for(upper),
                slot: Slot::FIRST,
            },
        )
        .await
        .map_err(|e| refused(e, Some(&rec.mountpoint)))?;
        LiveSession::writable(self.dic.clone(), Arc::new(ovl), &rec.mountpoint, on_end)
            .await
            .map_err(|e| failed(&e))
    }

    /// What a session does when the kernel ends it: the mount becomes `failed`.
    fn on_end(&self, id: &str) -> session::OnEnd {
        let me = self.me.clone();
        let id = id.to_string();
        Box::new(move |why| {
            if let Some(a) = me.upgrade() {
                tokio::spawn(async move { a.session_ended(&id, why).await });
            }
        })
    }

    async fn session_ended(&self, id: &str, why: String) {
        let _op = self.ops.lock().await;
        self.sessions().remove(id);
        let Ok(mut rec) = self.get(id) else { return };
        if rec.state == MountState::Mounted {
            rec.set_state(MountState::Failed);
            rec.reason = Some(why);
            if let Err(e) = self.put(rec).await {
                tracing::error!(id, error = %e, "could not save a mount's failure");
            }
        }
    }

    /// Unmounts mount `id`, removes its mountpoint (when made for it), upper layer, scratch
    /// and CL directories, and forgets it.
    pub async fn delete(&self, id: &str) -> Result<MountRecord, AntaresError> {
        self.open_for_requests()?;
        let _op = self.ops.lock().await;
        let mut rec = self.get(id)?;
        rec.set_state(MountState::Unmounting);
        self.put(rec.clone()).await?;
        self.finish_delete(&rec).await?;
        tracing::info!(id, mountpoint = %rec.mountpoint.display(), "antares mount deleted");
        Ok(rec)
    }

    async fn finish_delete(&self, rec: &MountRecord) -> Result<(), AntaresError> {
        self.stop_preload(&rec.mount_id);
        let session = self.sessions().remove(&rec.mount_id);
        match session {
            Some(s) => s.unmount().await.map_err(|e| AntaresError::Mount {
                path: rec.mountpoint.clone(),
                message: format!("cannot unmount: {e}"),
            })?,
            // No session (failed, or left by a crash): only a dead FUSE mount is cleared.
            None => mount::clear_stale(&rec.mountpoint).map_err(|e| AntaresError::Mount {
                path: rec.mountpoint.clone(),
                message: e.to_string(),
            })?,
        }
        if mount::mounted_fstype(&rec.mountpoint).is_some() {
            return Err(AntaresError::Mount {
                path: rec.mountpoint.clone(),
                message: "still mounted after unmounting".into(),
            });
        }
        let r = rec.clone();
        let cl = self.cl_dir(&rec.mount_id);
        let roots = self.roots();
        tokio::task::spawn_blocking(move || {
            remove_layers(&r, &roots)?;
            remove_cl_dirs(&roots.cl, &cl)
        })
        .await
        .map_err(internal)?
        .map_err(|e| internal(format!("removing the layers of {}: {e}", rec.mount_id)))?;
        self.forget(&rec.mount_id).await
    }

    /// The changes of mount `id`'s upper layer against the commit.
    pub async fn changes(&self, id: &str) -> Result<Vec<Change>, AntaresError> {
        let rec = self.get(id)?;
        let Some(upper) = &rec.upper_dir else {
            return Ok(Vec::new());
        };
        let lower = self.lower_dir(&rec.path).await?;
        crate::vcs::status::status(&self.dic, upper, Some(lower.ino), &rec.path)
            .await
            .map_err(|e| match e {
                // A build still writing: the caller may ask again; not the daemon's fault.
                crate::vcs::VcsError::Unstable(m) => AntaresError::Changing(m),
                e => internal(e),
            })
    }

    /// Brings back what the state file holds: mounts again what was mounted (or being made),
    /// finishes deletions a crash interrupted, clears stale FUSE mounts. Returns the mounts that
    /// could not be mounted again, with the reason (they are saved as `failed`).
    pub async fn restore(&self) -> Vec<(String, String)> {
        let _op = self.ops.lock().await;
        let mut failures = Vec::new();
        for mut rec in self.list() {
            let id = rec.mount_id.clone();
            match rec.state {
                MountState::Unmounting => {
                    if let Err(e) = self.finish_delete(&rec).await {
                        tracing::error!(id, error = %e, "could not finish deleting a mount");
                    }
                    continue;
                }
                MountState::Failed => {
                    if let Err(e) = mount::clear_stale(&rec.mountpoint) {
                        tracing::warn!(id, error = %e, "a failed mount's mountpoint is busy");
                    }
                    continue;
                }
                MountState::Provisioning | MountState::Mounted => {}
            }
            match self.remount(&rec).await {
                Ok(s) => {
                    self.sessions().insert(id.clone(), s);
                    rec.set_state(MountState::Mounted);
                    rec.reason = None;
                    self.start_preload(&rec);
                    tracing::info!(id, mountpoint = %rec.mountpoint.display(), "antares mount restored");
                }
                Err(why) => {
                    tracing::error!(
                        id,
                        reason = why,
                        "antares mount could not be restored; its upper layer is kept"
                    );
                    rec.set_state(MountState::Failed);
                    rec.reason = Some(why.clone());
                    failures.push((id.clone(), why));
                }
            }
            self.records().insert(id, rec);
        }
        if let Err(e) = self.save().await {
            tracing::error!(error = %e, "could not save the restored state");
        }
        failures
    }

    async fn remount(&self, rec: &MountRecord) -> Result<LiveSession, String> {
        mount::clear_stale(&rec.mountpoint).map_err(|e| e.to_string())?;
        if rec.commit != self.commit() {
            return Err(format!(
                "it was made on commit {}, the daemon now serves {}",
                rec.commit,
                self.commit()
            ));
        }
        if let Ok(mut entries) = std::fs::read_dir(&rec.mountpoint) {
            if entries.next().is_some() {
                return Err(format!(
                    "its mountpoint {} is not empty",
                    rec.mountpoint.display()
                ));
            }
        }
        let lower = self.lower_dir(&rec.path).await.map_err(|e| e.to_string())?;
        // A mount that was never answered may lack its upper layer; one that was must have it.
        let fresh = rec.state == MountState::Provisioning;
        self.provision(rec, lower, None, fresh)
            .await
            .map_err(|e| e.to_string())
    }

    /// Refuses new requests (503) and unmounts every session. Records stay as they are, so the
    /// next start mounts the same mounts again.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _op = self.ops.lock().await;
        let all: Vec<(String, LiveSession)> = self.sessions().drain().collect();
        let n = all.len();
        let results = futures::future::join_all(all.into_iter().map(|(id, s)| async move {
            if let Err(e) = s.unmount().await {
                tracing::error!(id, error = %e, "could not unmount at shutdown");
            }
        }))
        .await;
        drop(results);
        tracing::info!(mounts = n, "antares sessions unmounted");
    }
}
