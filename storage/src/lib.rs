//! edgeprom's storage engine.
//!
//! Samples arrive in batches through [`Storage::appender`] (the [`Appendable`] seam scrape sees),
//! are written to the WAL and then into the head: one open XOR chunk per series in RAM, full chunks
//! in memory-mapped head-chunk files. Queries read through [`Storage::select`]. The on-disk formats
//! are specified byte by byte in `storage/FORMAT.md`.

#![warn(missing_docs)]

pub mod block;
pub mod chunk;
mod head;
mod head_chunks;
pub mod index;
pub mod wal;

use std::fs::File;
use std::path::{Path, PathBuf};

use edgeprom_model::{Appendable, Appender, Labels, Sample};

pub use head::{SampleIter, SeriesData};
pub use head_chunks::HeadChunksError;
use index::{MatchType, Matcher};

/// Why the storage could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data directory could not be created or locked.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another process holds the data directory.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    /// The head chunk files failed.
    #[error(transparent)]
    HeadChunks(#[from] HeadChunksError),
}

/// Options fixed when the storage is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Samples older than the newest sample minus this many milliseconds are dropped; 0 keeps everything.
    pub retention_ms: i64,
    /// WAL segment size and fsync policy.
    pub wal: wal::WalOptions,
    /// Size each head-chunk file is preallocated to.
    pub chunk_file_size: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retention_ms: 0,
            wal: wal::WalOptions::default(),
            chunk_file_size: 128 << 20,
        }
    }
}

/// What opening the storage found and repaired.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// What the WAL repair did (torn or corrupt tail).
    pub wal_repair: String,
    /// What WAL replay read.
    pub wal_replay: String,
    /// Damaged head-chunk files, and where their readable records end.
    pub head_chunk_problems: Vec<String>,
    /// WAL samples applied to the head.
    pub samples_replayed: u64,
    /// WAL samples skipped because a head chunk already holds them.
    pub samples_already_in_chunks: u64,
    /// Head chunks whose series has no WAL record (dropped).
    pub orphan_chunks: usize,
}

/// A snapshot of the storage's counters, for self-metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageStats {
    /// Series in the head.
    pub head_series: u64,
    /// Samples committed since start-up.
    pub samples_appended: u64,
    /// Samples refused as out of order since start-up.
    pub out_of_order: u64,
    /// Samples refused as duplicates with a different value since start-up.
    pub duplicates: u64,
    /// Head chunks written to disk since start-up.
    pub chunks_created: u64,
    /// Commits that failed because the WAL could not be written (e.g. a full disk).
    pub wal_failures: u64,
    /// Oldest sample in the head (ms), 0 when empty.
    pub min_time: i64,
    /// Newest sample in the head (ms), 0 when empty.
    pub max_time: i64,
}

/// The storage engine handle shared by scrape loops and queries.
pub struct Storage {
    dir: PathBuf,
    head: head::Head,
    report: OpenReport,
    retention_ms: i64,
    /// Held for the life of the storage: one process per data directory.
    _lock: File,
}

impl Storage {
    /// Opens (creating if needed) the storage under `dir` and replays what a previous run left.
    pub fn open(dir: &Path, options: Options) -> Result<Storage, StorageError> {
        let dir_err = |source| StorageError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let lock = File::create(dir.join("lock")).map_err(dir_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(dir_err(e)),
        }
        let (head, report) = head::Head::open(dir, options.wal, options.chunk_file_size)?;
        Ok(Storage {
            dir: dir.to_path_buf(),
            head,
            report,
            retention_ms: options.retention_ms,
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.head.num_series()
    }

    /// Oldest and newest sample timestamps in the head, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.head.time_range()
    }

    /// Series matching all `matchers` that have samples in `[mint, maxt]`, sorted by labels. Samples
    /// are decoded lazily by [`SeriesData::samples`].
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        self.head.select(matchers, mint, maxt)
    }

    /// Label names of series matching `matchers` (all series when empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_names(matchers)
    }

    /// Values of label `name` on series matching `matchers`, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_values(name, matchers)
    }

    /// The samples of the series with exactly `labels` within `[mint, maxt]`, stale markers included.
    pub fn samples(&self, labels: &Labels, mint: i64, maxt: i64) -> Vec<Sample> {
        let matchers: Vec<Matcher> = labels
            .iter()
            .filter_map(|l| Matcher::new(MatchType::Equal, &l.name, &l.value).ok())
            .collect();
        if matchers.is_empty() {
            return Vec::new();
        }
        self.select(&matchers, mint, maxt)
            .into_iter()
            .filter(|s| s.labels == *labels)
            .flat_map(|s| {
                s.samples()
                    .map(|(t, v)| Sample { t, v })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Drops data older than the retention window measured back from `now_ms`, and rewrites the
    /// WAL's older segments into a checkpoint so that replay after a crash stays short. Returns the
    /// number of series removed.
    pub fn maintain(&self, now_ms: i64) -> Result<usize, StorageError> {
        let removed = if self.retention_ms > 0 {
            self.head.truncate_before(now_ms - self.retention_ms)?
        } else {
            0
        };
        self.head.checkpoint_wal()?;
        Ok(removed)
    }

    /// Forces the WAL to stable storage (for shutdown; commits are already written).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.head.sync_wal()
    }

    /// Counters and sizes for self-metrics.
    pub fn stats(&self) -> StorageStats {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.head.stats;
        let (min_time, max_time) = self.time_range().unwrap_or((0, 0));
        StorageStats {
            head_series: self.num_series() as u64,
            samples_appended: s.samples_appended.load(Relaxed),
            out_of_order: s.out_of_order.load(Relaxed),
            duplicates: s.duplicates.load(Relaxed),
            chunks_created: s.chunks_written.load(Relaxed),
            wal_failures: s.wal_failures.load(Relaxed),
            min_time,
            max_time,
        }
    }
}

impl Appendable for Storage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(self.head.appender())
    }
}

#[cfg(test)]
mod tests;
