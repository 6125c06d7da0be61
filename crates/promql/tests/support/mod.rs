//! What the engine's integration tests share.

use edgeprom_storage::{Options, Storage};

/// An empty storage in a temporary directory (removed when the `TempDir` is dropped), with small
/// head-chunk files.
pub fn empty_storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = Storage::open(
        dir.path(),
        Options {
            chunk_file_size: 1 << 20,
            ..Options::default()
        },
    )
    .expect("open");
    (dir, st)
}
