//! A mounted FUSE session as a value: it ends when asked, and when dropped.
//!
//! [`Mounted`] owns rfuse3's handle of a session and the session's mountpoint.
//! [`Mounted::ended`] resolves when the session ends by itself (someone ran `umount`, or the
//! connection failed); [`Mounted::unmount`] ends it: a clean unmount first, a lazy detach when
//! users still hold the mount or the session does not end in time. Dropping a `Mounted` that is
//! still mounted detaches it lazily, so a panic or an early return never leaves a mount behind.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rfuse3::raw::{Filesystem, MountHandle, Session};

use super::mount;
use super::timed::Timed;

/// A FUSE session mounted at its mountpoint; unmounted by [`Mounted::unmount`] or on drop.
#[derive(Debug)]
pub struct Mounted {
    /// `None` once the session has ended (by itself, or unmounted).
    handle: Option<MountHandle>,
    mountpoint: PathBuf,
    /// Set by [`Mounted::unmount`], which leaves nothing for `drop` to do.
    unmounted: bool,
}

impl Mounted {
    /// Mounts `fs`, served by `session`, at `mountpoint`: with mount(2) as root, through
    /// `fusermount3` otherwise (see `crate::privacy::is_root`).
    /// Every request is counted and timed on the way (see [`Timed`]).
    pub async fn mount<FS>(
        session: Session<Timed<FS>>,
        fs: FS,
        mountpoint: &Path,
    ) -> io::Result<Mounted>
    where
        FS: Filesystem + Send + Sync + 'static,
    {
        let fs = Timed(fs);
        let handle = if crate::privacy::is_root() {
            session.mount(fs, mountpoint).await?
        } else {
            session.mount_with_unprivileged(fs, mountpoint).await?
        };
        Ok(Mounted {
            handle: Some(handle),
            mountpoint: mountpoint.to_path_buf(),
            unmounted: false,
        })
    }

    /// Where the session is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Resolves when the session ends without being asked to, with how it ended; never again
    /// after that. Cancel-safe: a `select!` may drop it and call it again.
    pub async fn ended(&mut self) -> io::Result<()> {
        let Some(handle) = self.handle.as_mut() else {
            return std::future::pending().await;
        };
        let r = handle.await;
        // A finished handle must not be polled again (nor has it anything left to unmount).
        self.handle = None;
        r
    }

    /// Ends the session and makes sure nothing stays mounted: a clean unmount first (when the
    /// session has not ended by itself), then a lazy detach when users still hold the mount
    /// (busy) or the session did not end within `timeout`. An error means the detach failed.
    pub async fn unmount(mut self, timeout: Duration) -> io::Result<()> {
        if let Some(handle) = self.handle.take() {
            // A busy mount fails the clean unmount at once, and rfuse3 then aborts the
            // connection; the timeout is for a session that still does not end.
            match tokio::time::timeout(timeout, handle.unmount()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(mountpoint = %self.mountpoint.display(), error = %e, "clean unmount failed (busy?); detaching lazily")
                }
                Err(_) => {
                    tracing::error!(mountpoint = %self.mountpoint.display(), "the FUSE session did not end within {} s; detaching lazily", timeout.as_secs())
                }
            }
        }
        self.unmounted = true;
        mount::detach_fuse(&self.mountpoint)
    }

    /// Lets go of a mount already detached from its mountpoint (which another mount may hold
    /// now): its session serves the users it still has and ends when the last one leaves.
    /// rfuse3 unmounts by path when its handle is dropped, which would hit the new mount, so the
    /// handle is forgotten instead (once per daemon run at most).
    pub fn forget_detached(mut self) {
        self.unmounted = true;
        if let Some(h) = self.handle.take() {
            std::mem::forget(h);
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.unmounted {
            return;
        }
        // Detached first: the handle, dropped next, then asks rfuse3 for a clean unmount in a
        // task, which finds nothing mounted and aborts the connection, so the session's thread
        // ends too.
        if let Err(e) = mount::detach_fuse(&self.mountpoint) {
            tracing::error!(mountpoint = %self.mountpoint.display(), error = %e, "cannot detach a dropped FUSE session");
        }
        // rfuse3 spawns that task on the current runtime, and panics without one; with no
        // runtime the detached mount ends when its last user lets go.
        if tokio::runtime::Handle::try_current().is_err() {
            std::mem::forget(self.handle.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfuse3::raw::prelude::*;
    use rfuse3::Result;

    /// The least a session can serve: the kernel's INIT.
    struct Empty;

    impl Filesystem for Empty {
        async fn init(&self, _req: Request) -> Result<ReplyInit> {
            Ok(ReplyInit::default())
        }

        async fn destroy(&self, _req: Request) {}
    }

    fn is_fuse(path: &Path) -> bool {
        mount::mounted_fstype(path).is_some_and(|t| t.starts_with("fuse"))
    }

    async fn mounted(dir: &tempfile::TempDir) -> Mounted {
        let mp = dir.path().join("mnt");
        std::fs::create_dir(&mp).expect("mkdir");
        let m = Mounted::mount(Session::new(mount::workspace_options()), Empty, &mp)
            .await
            .expect("mount");
        assert!(is_fuse(&mp), "not mounted at {}", mp.display());
        m
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_session_unmounts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = mounted(&dir).await;
        let mp = m.mountpoint().to_path_buf();
        drop(m);
        assert!(!is_fuse(&mp), "still a FUSE mount after drop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unmount_ends_the_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = mounted(&dir).await;
        let mp = m.mountpoint().to_path_buf();
        m.unmount(Duration::from_secs(10)).await.expect("unmount");
        assert!(!is_fuse(&mp), "still a FUSE mount after unmount");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unmount_from_outside_ends_the_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = mounted(&dir).await;
        let mp = m.mountpoint().to_path_buf();
        mount::detach(&mp).expect("umount from outside");
        // Ended, cleanly or not: an unmount that comes before the kernel's INIT was answered
        // ends the session with an error ("init stage"), which is an end all the same.
        let ended = tokio::time::timeout(Duration::from_secs(10), m.ended()).await;
        assert!(ended.is_ok(), "the session did not end within 10 s");
        m.unmount(Duration::from_secs(10)).await.expect("unmount");
        assert!(!is_fuse(&mp));
    }
}
