//! The workspace's own FUSE mount, read-only to the kernel while nothing in it is writable.
//!
//! A read-only superblock is what lets the kernel keep a file's attributes across a read: on a
//! writable FUSE mount every read the daemon serves marks the file's atime stale, so the next
//! `stat` is a GETATTR. Root flips the flag in place with a remount. A plain user cannot remount
//! (`fusermount3` has no remount), so the first writable path replaces the read-only mount with
//! a read-write one on the same directory, served by the same filesystem: the read-only mount is
//! detached lazily first, and whoever still holds it (a shell whose cwd is inside) keeps the
//! read-only view until it leaves. The workspace then stays read-write until the daemon stops;
//! read-only parts answer EROFS themselves, as they do on root's read-write mount.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rfuse3::raw::Session;

use super::mount;
use super::router::WorkspaceFs;
use super::session::Mounted;
use crate::privacy::is_root;

/// The workspace's mount: mounted once, made read-write or read-only as writable paths come
/// and go, unmounted at the end.
pub struct WorkspaceMount {
    fs: WorkspaceFs,
    path: PathBuf,
    state: tokio::sync::Mutex<State>,
    /// Wakes [`WorkspaceMount::ended`] so that a swap can take the current mount at once.
    swapping: tokio::sync::Notify,
}

struct State {
    current: Option<Mounted>,
    read_only: bool,
}

impl WorkspaceMount {
    /// The mount of `fs` at `path` (not mounted yet).
    pub fn new(fs: WorkspaceFs, path: &Path) -> WorkspaceMount {
        WorkspaceMount {
            fs,
            path: path.to_path_buf(),
            state: tokio::sync::Mutex::new(State {
                current: None,
                read_only: false,
            }),
            swapping: tokio::sync::Notify::new(),
        }
    }

    /// Where the workspace is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Mounts the workspace, read-only to the kernel when `read_only`.
    pub async fn mount(&self, read_only: bool) -> io::Result<()> {
        let mut st = self.state.lock().await;
        st.current = Some(self.mount_session(read_only).await?);
        st.read_only = read_only;
        Ok(())
    }

    async fn mount_session(&self, read_only: bool) -> io::Result<Mounted> {
        let mut options = mount::workspace_options();
        options.read_only(read_only);
        let session = Session::new(options);
        // Invalidations go to the session the kernel now uses for this path.
        self.fs.set_notify(session.get_notify());
        Mounted::mount(session, self.fs.clone(), &self.path).await
    }

    /// Whether the kernel sees the workspace read-only.
    pub async fn is_read_only(&self) -> bool {
        self.state.lock().await.read_only
    }

    /// Makes the workspace read-only or read-write to the kernel. Root remounts in place; a plain
    /// user's first read-write replaces the mount (see the module doc) and it then stays
    /// read-write, since replacing it again would cut off the shells inside. Called only while
    /// no overlay is spliced in (the first writable path comes, or the last one went).
    pub async fn set_read_only(&self, read_only: bool) -> io::Result<()> {
        if is_root() {
            self.swapping.notify_one();
            let mut st = self.state.lock().await;
            mount::set_readonly(&self.path, read_only);
            st.read_only = read_only;
            return Ok(());
        }
        if read_only {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| tracing::info!(path = %self.path.display(), "not root: the workspace stays read-write to the kernel until the daemon stops (a remount needs root); writes outside writable paths are refused by the daemon (EROFS)"));
            return Ok(());
        }
        self.swapping.notify_one();
        let mut st = self.state.lock().await;
        if !st.read_only {
            return Ok(());
        }
        // The new mount goes where the old one is: the old one must leave first.
        mount::detach_fuse(&self.path)?;
        if let Some(old) = st.current.take() {
            old.forget_detached();
        }
        match self.mount_session(false).await {
            Ok(m) => {
                st.current = Some(m);
                st.read_only = false;
                tracing::info!(path = %self.path.display(), "not root: the read-only workspace mount was replaced by a read-write one (a shell inside it must cd again)");
                Ok(())
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot mount the workspace read-write; mounting it read-only again");
                st.current = Some(self.mount_session(true).await?);
                Err(e)
            }
        }
    }

    /// Resolves when the workspace's session ends without being asked to (someone unmounted
    /// it); a read-only mount replaced by a read-write one does not count. Cancel-safe.
    pub async fn ended(&self) -> io::Result<()> {
        loop {
            let mut st = self.state.lock().await;
            let Some(m) = st.current.as_mut() else {
                return Err(io::Error::other("the workspace is not mounted"));
            };
            // The lock is let go when a swap asks for it, and every 100 ms: the swap may ask
            // (notify) before it waits for the lock, and this loop may take the lock again in
            // between; once it waits, tokio's mutex, which serves waiters in order, hands it over.
            tokio::select! {
                r = m.ended() => return r,
                _ = self.swapping.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Ends the workspace's session and makes sure nothing stays mounted (see
    /// [`Mounted::unmount`]).
    pub async fn unmount(&self, timeout: Duration) -> io::Result<()> {
        let current = self.state.lock().await.current.take();
        match current {
            Some(m) => m.unmount(timeout).await,
            None => mount::detach_fuse(&self.path),
        }
    }
}
