//! I/O errors injected into the storage's write paths, so tests can prove that EIO or ENOSPC on
//! each path (WAL, head chunks, blocks, checkpoints, tombstones, snapshots) is an error that stops
//! only that work and is retried, not a panic or a lost sample. Every write, sync, create and
//! rename in the engine calls [`check`] first; outside `cfg(test)` it is an empty inline function.
//!
//! A fault is registered for one data directory and one write path, so tests running in parallel
//! in other directories are not affected. Which path a file belongs to follows from where it lives
//! under the data directory (see [`WritePath::of`]).

use std::io;
use std::path::Path;

/// The storage's write paths, told apart by where their files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum WritePath {
    /// `wal/<segment>`.
    Wal,
    /// `wal/checkpoint.*`.
    Checkpoint,
    /// `chunks_head/`.
    HeadChunks,
    /// `snapshots/`.
    Snapshot,
    /// `tombstones` files, in the data directory or a block.
    Tombstones,
    /// Anything else: blocks written by compaction, flushes and imports.
    Block,
}

impl WritePath {
    /// The write path of a file `rel` (relative to the data directory).
    #[cfg_attr(not(test), allow(dead_code))]
    fn of(rel: &Path) -> WritePath {
        let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
        let first = parts.next().unwrap_or_default();
        let second = parts.next().unwrap_or_default();
        let last = rel
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        match &*first {
            "wal" if second.starts_with("checkpoint") => WritePath::Checkpoint,
            "wal" => WritePath::Wal,
            "chunks_head" => WritePath::HeadChunks,
            "snapshots" => WritePath::Snapshot,
            _ if last.starts_with("tombstones") => WritePath::Tombstones,
            _ => WritePath::Block,
        }
    }
}

/// Fails with the injected error when a fault is registered for `path`'s write path.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn check(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) use injected::{check, inject};

#[cfg(test)]
mod injected {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;

    struct Fault {
        root: PathBuf,
        path: WritePath,
        errno: i32,
        /// Checks that still pass before the fault starts failing them, so a test can fail a
        /// multi-file write part-way through.
        skip: usize,
    }

    static FAULTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

    /// Until the returned guard is dropped, every write on `path` under `root` after the first
    /// `skip` fails with the OS error `errno` (e.g. `libc::EIO`, `libc::ENOSPC`).
    pub(crate) fn inject(root: &Path, path: WritePath, errno: i32, skip: usize) -> FaultGuard {
        let root = root.to_path_buf();
        lock().push(Fault {
            root: root.clone(),
            path,
            errno,
            skip,
        });
        FaultGuard { root, path }
    }

    /// Removes its fault when dropped.
    pub(crate) struct FaultGuard {
        root: PathBuf,
        path: WritePath,
    }

    impl Drop for FaultGuard {
        fn drop(&mut self) {
            lock().retain(|f| !(f.root == self.root && f.path == self.path));
        }
    }

    fn lock() -> std::sync::MutexGuard<'static, Vec<Fault>> {
        FAULTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check(path: &Path) -> io::Result<()> {
        let mut faults = lock();
        for f in faults.iter_mut() {
            let Ok(rel) = path.strip_prefix(&f.root) else {
                continue;
            };
            if WritePath::of(rel) != f.path {
                continue;
            }
            if f.skip > 0 {
                f.skip -= 1;
                continue;
            }
            return Err(io::Error::from_raw_os_error(f.errno));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_where_they_live() {
        let of = |p: &str| WritePath::of(Path::new(p));
        assert_eq!(of("wal/00000003"), WritePath::Wal);
        assert_eq!(
            of("wal/checkpoint.00000002.tmp/00000000"),
            WritePath::Checkpoint
        );
        assert_eq!(of("chunks_head/000001"), WritePath::HeadChunks);
        assert_eq!(of("snapshots/x/01ABC/index"), WritePath::Snapshot);
        assert_eq!(of("tombstones.tmp"), WritePath::Tombstones);
        assert_eq!(of("01ABC/tombstones"), WritePath::Tombstones);
        assert_eq!(of("01ABC.tmp/chunks/000001"), WritePath::Block);
        assert_eq!(of("01ABC/meta.json"), WritePath::Block);
    }
}
