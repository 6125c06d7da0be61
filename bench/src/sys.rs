//! What the operating system says: a directory's size on disk and this process's memory.

use std::path::Path;

/// Bytes a directory tree uses: allocated blocks (what `du` reports; head-chunk files are
/// preallocated sparse, so their length overstates them) and the sum of file lengths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirSize {
    /// Allocated bytes (`st_blocks × 512`).
    pub allocated: u64,
    /// Sum of file lengths.
    pub apparent: u64,
}

/// Measures `dir` recursively; unreadable entries are skipped (they are not ours to judge).
pub fn dir_size(dir: &Path) -> std::io::Result<DirSize> {
    use std::os::unix::fs::MetadataExt;
    let mut total = DirSize::default();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let sub = dir_size(&entry.path())?;
            total.allocated += sub.allocated;
            total.apparent += sub.apparent;
        } else {
            total.allocated += meta.blocks() * 512;
            total.apparent += meta.len();
        }
    }
    Ok(total)
}

/// `VmRSS` and `VmHWM` of this process in KiB, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set now.
    pub rss_kib: u64,
    /// Peak resident set.
    pub hwm_kib: u64,
}

/// Reads this process's memory figures; zero where the kernel does not report them.
pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// Formats a number of bytes as MiB with two decimals.
pub fn mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1u64 << 20) as f64)
}
