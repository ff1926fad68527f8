//! POSIX semantics through a writable overlay of the mount, one module per concern: opens
//! (mixes of opens, open files outliving their names, truncation, read-only parts), metadata
//! (private marks, set-id bits, inode numbers), directories (readdir while changing, large
//! listings) and workloads (kernel overlayfs gives the same view, churn, build tools).

mod support;

#[path = "filesystem/directories.rs"]
mod directories;
#[path = "filesystem/metadata.rs"]
mod metadata;
#[path = "filesystem/opens.rs"]
mod opens;
#[path = "filesystem/workloads.rs"]
mod workloads;
