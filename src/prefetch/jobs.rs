//! The jobs of one daemon: started by id, watched, cancelled, kept a while after they end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::walk::walk;
use super::{repo_path, Counters, JobState, PrefetchError, Request, Snapshot};
use crate::dicfuse::{Dicfuse, PathLookup};
use crate::remote::EntryKind;

/// Finished jobs kept for `GET /api/prefetch/{id}` (the oldest go first).
const KEEP_FINISHED: usize = 64;

/// How often a running job logs its progress.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Where a job is, and how it ended.
#[derive(Clone, Debug)]
struct Status {
    state: JobState,
    error: Option<String>,
    ended: Option<Instant>,
}

/// One prefetch job.
pub struct Job {
    id: String,
    seq: u64,
    path: String,
    depth: Option<u32>,
    blobs: bool,
    started: Instant,
    counters: Counters,
    status: tokio::sync::watch::Sender<Status>,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Job {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The job now.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.status.borrow().clone();
        let end = st.ended.unwrap_or_else(Instant::now);
        let c = &self.counters;
        Snapshot {
            id: self.id.clone(),
            path: self.path.clone(),
            depth: self.depth,
            blobs: self.blobs,
            state: st.state,
            error: st.error,
            dirs_fetched: Counters::get(&c.dirs_fetched),
            dirs_kept: Counters::get(&c.dirs_kept),
            blobs_fetched: Counters::get(&c.blobs_fetched),
            blobs_kept: Counters::get(&c.blobs_kept),
            bytes_fetched: Counters::get(&c.bytes_fetched),
            bytes_kept: Counters::get(&c.bytes_kept),
            elapsed_ms: end.duration_since(self.started).as_millis() as u64,
        }
    }

    /// Waits for the job to end and returns how it ended.
    pub async fn wait(&self) -> Snapshot {
        let mut rx = self.status.subscribe();
        // The sender lives in `self`: the wait ends with the job.
        let _ = rx.wait_for(|s| s.state != JobState::Running).await;
        self.snapshot()
    }

    /// Ends the job in `state` unless it has ended already; `true` if this call ended it.
    fn finish(&self, state: JobState, error: Option<String>) -> bool {
        self.status.send_if_modified(|s| {
            if s.state != JobState::Running {
                return false;
            }
            *s = Status {
                state,
                error: error.clone(),
                ended: Some(Instant::now()),
            };
            true
        })
    }

    fn log_progress(&self, what: &str) {
        let s = self.snapshot();
        tracing::info!(
            id = s.id,
            path = s.path,
            state = ?s.state,
            dirs_fetched = s.dirs_fetched,
            dirs_kept = s.dirs_kept,
            blobs_fetched = s.blobs_fetched,
            blobs_kept = s.blobs_kept,
            bytes_fetched = s.bytes_fetched,
            elapsed_ms = s.elapsed_ms,
            error = s.error.as_deref().unwrap_or(""),
            "{what}"
        );
    }
}

/// The prefetch jobs of one view.
pub struct Prefetcher {
    dic: Arc<Dicfuse>,
    concurrency: usize,
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Prefetcher {
    /// Jobs over `dic`, each with at most `concurrency` fetches in flight.
    pub fn new(dic: Arc<Dicfuse>, concurrency: usize) -> Arc<Prefetcher> {
        Arc::new(Prefetcher {
            dic,
            concurrency: concurrency.max(1),
            jobs: Mutex::new(BTreeMap::new()),
            seq: Default::default(),
        })
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks `req` and starts its job in the background (refused: nothing started).
    pub async fn start(self: &Arc<Self>, req: &Request) -> Result<Arc<Job>, PrefetchError> {
        if req.depth == Some(0) {
            return Err(PrefetchError::BadDepth);
        }
        let path = repo_path(&req.path)?;
        let root = match self.dic.resolve_path(&path).await? {
            PathLookup::Found(ino) => ino,
            PathLookup::Missing => return Err(PrefetchError::NotFound(path)),
            PathLookup::NotADirectory(at) => return Err(PrefetchError::NotDir(at)),
        };
        if self.dic.lower_node(root)?.kind != EntryKind::Dir {
            return Err(PrefetchError::NotDir(path));
        }
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id: uuid::Uuid::new_v4().simple().to_string(),
            seq,
            path,
            depth: req.depth,
            blobs: req.blobs,
            started: Instant::now(),
            counters: Counters::default(),
            status: tokio::sync::watch::channel(Status {
                state: JobState::Running,
                error: None,
                ended: None,
            })
            .0,
            abort: Mutex::new(None),
        });
        self.remember(job.clone());
        job.log_progress("prefetch started");
        let (dic, j, conc) = (self.dic.clone(), job.clone(), self.concurrency);
        let task = tokio::spawn(async move {
            let _busy = crate::busy::Busy::start();
            // The progress lines come from this task too, so a cancel (which aborts it) ends
            // them with the walk.
            let walk = walk(&dic, root, j.depth, j.blobs, conc, &j.counters);
            tokio::pin!(walk);
            let mut tick = tokio::time::interval(LOG_EVERY);
            tick.tick().await;
            let r = loop {
                tokio::select! {
                    r = &mut walk => break r,
                    _ = tick.tick() => j.log_progress("prefetch progress"),
                }
            };
            let ended = match r {
                Ok(()) => j.finish(JobState::Done, None),
                Err(e) => j.finish(JobState::Failed, Some(e.to_string())),
            };
            if ended {
                j.log_progress("prefetch ended");
            }
        });
        *job.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        // A cancel that came before the handle was stored finds the job ended: abort now.
        if job.snapshot().state == JobState::Cancelled {
            task.abort();
        }
        Ok(job)
    }

    /// Keeps `job`, forgetting the oldest finished jobs beyond [`KEEP_FINISHED`].
    fn remember(&self, job: Arc<Job>) {
        let mut jobs = self.jobs();
        jobs.insert(job.id.clone(), job);
        let mut finished: Vec<(u64, String)> = jobs
            .values()
            .filter(|j| j.status.borrow().state != JobState::Running)
            .map(|j| (j.seq, j.id.clone()))
            .collect();
        if finished.len() > KEEP_FINISHED {
            finished.sort();
            for (_, id) in &finished[..finished.len() - KEEP_FINISHED] {
                jobs.remove(id);
            }
        }
    }

    /// The job `id`.
    pub fn get(&self, id: &str) -> Result<Arc<Job>, PrefetchError> {
        self.jobs()
            .get(id)
            .cloned()
            .ok_or_else(|| PrefetchError::NoJob(id.to_string()))
    }

    /// Every job kept, oldest first.
    pub fn list(&self) -> Vec<Snapshot> {
        let mut jobs: Vec<Arc<Job>> = self.jobs().values().cloned().collect();
        jobs.sort_by_key(|j| j.seq);
        jobs.iter().map(|j| j.snapshot()).collect()
    }

    /// Cancels job `id` (one that has ended stays as it ended) and returns it.
    pub fn cancel(&self, id: &str) -> Result<Snapshot, PrefetchError> {
        let job = self.get(id)?;
        if job.finish(JobState::Cancelled, None) {
            if let Some(h) = job.abort.lock().unwrap_or_else(|p| p.into_inner()).take() {
                h.abort();
            }
            job.log_progress("prefetch cancelled");
        }
        Ok(job.snapshot())
    }

    /// Starts a background preload of the trees under `path` to `depth` levels (a mount's
    /// `prefetch_depth`): a failure to start is logged, never returned.
    pub async fn preload(self: &Arc<Self>, path: &str, depth: u32) -> Option<Arc<Job>> {
        if depth == 0 {
            return None;
        }
        let req = Request {
            path: path.to_string(),
            depth: Some(depth),
            blobs: false,
        };
        match self.start(&req).await {
            Ok(j) => Some(j),
            Err(e) => {
                tracing::warn!(path, error = %e, "preload not started");
                None
            }
        }
    }
}
