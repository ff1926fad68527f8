//! Request outcomes, kept for `GET /api/fs/select/{id}`.

use super::{MountError, MountInfo, WritablePaths};

/// A request's path and its outcome, for `GET /api/fs/select/{id}`.
pub type RequestOutcome = (String, Result<MountInfo, String>);

impl WritablePaths {
    /// Records the outcome of request `id` for `GET /api/fs/select/{id}`.
    pub fn record(&self, id: &str, path: &str, r: &Result<MountInfo, MountError>) {
        let v = match r {
            Ok(info) => Ok(info.clone()),
            Err(e) => Err(e.to_string()),
        };
        let mut reqs = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if reqs.len() > 10_000 {
            reqs.clear();
        }
        reqs.insert(id.to_string(), (path.to_string(), v));
    }

    /// The outcome of request `id`.
    pub fn request(&self, id: &str) -> Option<RequestOutcome> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}
