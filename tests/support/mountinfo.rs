//! Reading /proc/self/mountinfo: what is mounted where, with which options, decoded exactly as
//! the daemon decodes it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u64,
    /// Mount point with octal escapes (`\040` etc.) decoded.
    pub mount_point: PathBuf,
    /// Filesystem type, e.g. `fuse`, `fuse.scorpio`, `ext4`.
    pub fstype: String,
    /// Mount source (e.g. `scorpio`, `/dev/sda1`).
    pub source: String,
    /// Per-mount options, then the superblock's (`rw,relatime,...,ro,...`).
    pub options: String,
    /// The superblock's options alone (`ro` there is what makes the kernel refuse writes and
    /// keep attributes across reads).
    pub super_options: String,
}

/// Decodes the `\ooo` octal escapes the kernel uses in mountinfo fields (the daemon's own
/// decoder, so the tests read mountinfo exactly as the daemon does).
pub use scorpio::fuse::mount::unescape as decode_mount_field;

/// Parses one mountinfo line.
pub fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() < 10 {
        return None;
    }
    let mount_id = fields[0].parse().ok()?;
    let mount_point = PathBuf::from(OsString::from_vec(decode_mount_field(fields[4])));
    let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let fstype = String::from_utf8_lossy(&decode_mount_field(fields.get(sep + 1)?)).into_owned();
    let source = String::from_utf8_lossy(&decode_mount_field(fields.get(sep + 2)?)).into_owned();
    let options = format!(
        "{},{}",
        fields[5],
        fields.get(sep + 3).copied().unwrap_or_default()
    );
    let super_options = fields.get(sep + 3).copied().unwrap_or_default().to_string();
    Some(MountEntry {
        mount_id,
        mount_point,
        fstype,
        source,
        options,
        super_options,
    })
}

/// Every mount in /proc/self/mountinfo, in order (later entries are stacked on earlier ones).
pub fn mountinfo() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(parse_mountinfo_line)
        .collect()
}

/// Mounts whose mount point is exactly `path`, in mount order.
pub fn mounts_at(path: &Path) -> Vec<MountEntry> {
    mountinfo()
        .into_iter()
        .filter(|m| m.mount_point == path)
        .collect()
}

/// Whether anything is mounted exactly at `path` (pass a canonical path).
pub fn is_mounted(path: &Path) -> bool {
    !mounts_at(path).is_empty()
}

/// Whether a filesystem of type `fuse*` is mounted exactly at `path` (pass a canonical path).
pub fn is_fuse_mounted(path: &Path) -> bool {
    mounts_at(path).iter().any(|m| m.fstype.starts_with("fuse"))
}

/// Lines of /proc/mounts that mention "fuse" (for error messages).
pub fn fuse_mounts() -> String {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("fuse"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the topmost mount at `path` has a read-only superblock.
pub fn superblock_read_only(path: &Path) -> bool {
    mounts_at(path)
        .last()
        .is_some_and(|m| m.super_options.split(',').any(|o| o == "ro"))
}

/// The options of the topmost mount at `path` (per-mount ones first, then the superblock's);
/// empty when nothing is mounted there.
pub fn mount_options_of(path: &Path) -> String {
    mounts_at(path)
        .last()
        .map(|m| m.options.clone())
        .unwrap_or_default()
}
