//! edgeprom's storage engine.
//!
//! Samples arrive in batches through [`Storage::appender`] (the [`Appendable`] seam scrape sees),
//! are written to the WAL and then into the head: one open XOR chunk per series in RAM, full chunks
//! in memory-mapped head-chunk files. Once the head spans 1.5 block ranges, its oldest range is
//! compacted into an immutable block (pco-compressed columns, < 1 byte/sample) and dropped from the
//! head. Queries read through [`Storage::select`], which merges blocks and head. The on-disk formats
//! are specified byte by byte in `storage/FORMAT.md`.

#![warn(missing_docs)]

pub mod block;
pub mod chunk;
mod deadline;
mod fault;
mod head;
mod head_chunks;
pub mod index;
mod tombstones;
pub mod wal;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use edgeprom_model::{Appendable, Appender, Labels, Sample};

use block::{Block, SharedBlockSeries};
pub use deadline::{Deadline, DeadlineExceeded};
pub use head_chunks::HeadChunksError;
use index::{MatchType, Matcher};
pub use tombstones::TombstoneError;

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
    /// A block could not be written, opened or deleted.
    #[error(transparent)]
    Block(#[from] block::BlockError),
    /// The tombstone file could not be written.
    #[error(transparent)]
    Tombstones(#[from] TombstoneError),
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
    /// Time range of a block written from the head (Prometheus: 2 h).
    pub block_range_ms: i64,
    /// When the data directory (blocks, WAL, head chunks) exceeds this many bytes, the oldest blocks
    /// are deleted; 0 disables.
    pub retention_bytes: u64,
    /// Most WAL segment bytes kept for readers that are behind (see [`Storage::hold_wal`]); beyond
    /// it, the oldest are checkpointed away as if nobody needed them. 0: no limit.
    pub wal_hold_max_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retention_ms: 0,
            wal: wal::WalOptions::default(),
            chunk_file_size: 128 << 20,
            block_range_ms: 2 * 3600 * 1000,
            retention_bytes: 0,
            wal_hold_max_bytes: 0,
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
    /// Open chunks loaded whole from the WAL checkpoint.
    pub open_chunks_loaded: u64,
    /// Why the tombstone file was set aside, if it was unreadable.
    pub tombstone_problem: Option<String>,
    /// Head chunks whose series has no WAL record (dropped).
    pub orphan_chunks: usize,
    /// Blocks loaded.
    pub blocks: usize,
    /// Blocks that failed their checks, moved to `quarantine/`, with the reason.
    pub quarantined: Vec<String>,
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
    /// Full head chunks that could not be written to disk (kept in memory and retried).
    pub chunk_write_failures: u64,
    /// Compactions (head to block, or blocks merged) that failed and will be retried.
    pub compactions_failed: u64,
    /// WAL checkpoints that failed and will be retried.
    pub checkpoints_failed: u64,
    /// Oldest sample in the head (ms), 0 when empty.
    pub min_time: i64,
    /// Newest sample in the head (ms), 0 when empty.
    pub max_time: i64,
}

/// What one [`Storage::maintain`] pass did.
#[derive(Debug, Clone, Default)]
pub struct MaintainReport {
    /// Ids of blocks written from the head.
    pub blocks_written: Vec<String>,
    /// Blocks deleted by retention.
    pub blocks_deleted: usize,
    /// Head series removed because all their data aged out.
    pub series_removed: usize,
}

/// One series of a query result: its labels and where its samples are (blocks, then the head).
pub struct SeriesData {
    /// The series' labels.
    pub labels: Labels,
    sources: Vec<Source>,
    /// Deleted ranges (`delete_series`) to leave out, sorted; empty for almost every series.
    deleted: Vec<(i64, i64)>,
}

type SampleStream<'a> = Box<dyn Iterator<Item = (i64, f64)> + 'a>;

enum Source {
    Block(SharedBlockSeries),
    Head(head::HeadSeries),
}

impl SeriesData {
    /// The samples in the query range, oldest first, stale markers included. Sources are merged by
    /// time; a timestamp that several hold (after a restart, at a block boundary, or where a
    /// backfilled block overlaps) is returned once, from the oldest source.
    pub fn samples(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let merged = self.merged_samples();
        let deleted = self.deleted.as_slice();
        merged.filter(move |&(t, _)| deleted.is_empty() || !tombstones::covered(deleted, t))
    }

    fn merged_samples(&self) -> SampleStream<'_> {
        fn open(s: &Source) -> SampleStream<'_> {
            match s {
                Source::Block(b) => Box::new(b.samples().into_iter()),
                Source::Head(h) => Box::new(h.samples()),
            }
        }
        // Most series live in one source (the head, or one block): no merging needed.
        if let [only] = self.sources.as_slice() {
            return open(only);
        }
        let mut sources: Vec<std::iter::Peekable<SampleStream<'_>>> =
            self.sources.iter().map(|s| open(s).peekable()).collect();
        Box::new(std::iter::from_fn(move || {
            // Sources are few (blocks overlapping the range, plus the head): a linear scan is cheapest.
            let (mut best, mut best_t) = (None, i64::MAX);
            for (i, s) in sources.iter_mut().enumerate() {
                if let Some(&(t, _)) = s.peek()
                    && (best.is_none() || t < best_t)
                {
                    (best, best_t) = (Some(i), t);
                }
            }
            let sample = sources[best?].next()?;
            for s in sources.iter_mut() {
                while s.next_if(|&(t, _)| t == sample.0).is_some() {}
            }
            Some(sample)
        }))
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn block_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.join(block::META_FILE).is_file()
            && !path.to_string_lossy().ends_with(block::TMP_SUFFIX)
        {
            out.push(path);
        }
    }
    Ok(out)
}

/// Moves a damaged block out of the way (not deleted: an operator may want it).
fn quarantine(block: &Path) -> std::io::Result<()> {
    let Some(parent) = block.parent() else {
        return Ok(());
    };
    let q = parent.join("quarantine");
    std::fs::create_dir_all(&q)?;
    let name = block.file_name().unwrap_or_default();
    std::fs::rename(block, q.join(name))
}

/// Hard-links every file under `from` into the same place under `to`.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fault::check(to)?;
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else {
            fault::check(&target)?;
            std::fs::hard_link(entry.path(), target)?;
        }
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            // Sparse head-chunk files: count what is allocated, not the preallocated length.
            Ok(m) => allocated(&m),
            Err(_) => 0,
        })
        .sum()
}

fn allocated(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    (m.blocks() * 512).min(m.len())
}

/// The storage engine handle shared by scrape loops and queries.
pub struct Storage {
    dir: PathBuf,
    head: head::Head,
    /// Sorted by min time; replaced wholesale (copy-on-write) so queries never wait on compaction.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    report: OpenReport,
    options: Options,
    /// Deleted ranges hidden from reads.
    tombstones: RwLock<tombstones::Tombstones>,
    /// Held while blocks are compacted or rewritten, so two passes never replace the same block.
    rewriting: Mutex<()>,
    compactions_failed: std::sync::atomic::AtomicU64,
    checkpoints_failed: std::sync::atomic::AtomicU64,
    /// Per WAL reader, the oldest position it still needs.
    wal_holds: Mutex<std::collections::HashMap<String, wal::WalPosition>>,
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
        block::cleanup_tmp(dir)?;
        let mut quarantined = Vec::new();
        let mut blocks = Vec::new();
        for dir in block_dirs(dir).map_err(dir_err)? {
            match Block::open(&dir) {
                Ok(b) => blocks.push(Arc::new(b)),
                Err(e) => {
                    tracing::error!(block = %dir.display(), error = %e, "block failed its checks; quarantined");
                    quarantine(&dir).map_err(dir_err)?;
                    quarantined.push(format!("{}: {e}", dir.display()));
                }
            }
        }
        blocks.sort_by_key(|b| b.meta().min_time);
        let (head, mut report) = head::Head::open(dir, options.wal, options.chunk_file_size)?;
        // After a restart the WAL may replay samples a block already holds; the block wins.
        if let Some(max) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.truncate_before(max)?;
        }
        report.blocks = blocks.len();
        report.quarantined = quarantined;
        let tombstones = match tombstones::Tombstones::load(dir) {
            Ok(t) => t,
            Err(e) => {
                // Deleted data showing again is better than refusing to start; the file is kept
                // aside for inspection and the problem reported.
                tracing::error!(error = %e, "tombstone file unreadable; deleted series are visible again");
                let bad = dir.join(format!("{}.corrupt", tombstones::FILE));
                let _ = std::fs::rename(dir.join(tombstones::FILE), bad);
                report.tombstone_problem = Some(e.to_string());
                tombstones::Tombstones::default()
            }
        };
        Ok(Storage {
            dir: dir.to_path_buf(),
            head,
            blocks: RwLock::new(Arc::new(blocks)),
            report,
            options,
            tombstones: RwLock::new(tombstones),
            rewriting: Mutex::new(()),
            compactions_failed: Default::default(),
            checkpoints_failed: Default::default(),
            wal_holds: Mutex::new(std::collections::HashMap::new()),
            _lock: lock,
        })
    }

    fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// Oldest and newest sample timestamps, blocks and head together, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let blocks = self.blocks();
        let from_blocks = blocks
            .iter()
            .map(|b| (b.meta().min_time, b.meta().max_time - 1));
        self.head
            .time_range()
            .into_iter()
            .chain(from_blocks)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Series matching all `matchers` that have samples in `[mint, maxt]`, sorted by labels, blocks
    /// and head merged. Samples are decoded lazily by [`SeriesData::samples`]; deleted ranges are
    /// left out, and a series with nothing left in the range is not returned.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        // Without a deadline the walk cannot stop early.
        self.select_until(matchers, mint, maxt, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Storage::select`], giving up once `deadline` passes: the index walks, the series lookups
    /// and the merge all check it, so a selector too costly for the caller's timeout stops
    /// within about a millisecond of it rather than running to the end.
    pub fn select_until(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        deadline: Deadline,
    ) -> Result<Vec<SeriesData>, DeadlineExceeded> {
        let mut out = self.select_undeleted(matchers, mint, maxt, deadline)?;
        let tombstones = self.tombstones.read().unwrap_or_else(|e| e.into_inner());
        if tombstones.is_empty() {
            return Ok(out);
        }
        for s in &mut out {
            if let Some(d) = tombstones.get(&s.labels) {
                s.deleted = d.to_vec();
            }
        }
        drop(tombstones);
        out.retain(|s| s.deleted.is_empty() || s.samples().next().is_some());
        Ok(out)
    }

    /// Marks the data of every series matching any of `matcher_sets` within `[mint, maxt]`
    /// (inclusive) deleted, as Prometheus's `delete_series` does: reads stop returning it at once,
    /// and [`Storage::clean_tombstones`] removes it from blocks. Returns how many series were hit.
    pub fn delete_series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<usize, StorageError> {
        let mut hit = std::collections::BTreeSet::new();
        for set in matcher_sets {
            // Without a deadline the walk cannot stop early.
            hit.extend(
                self.select_undeleted(set, mint, maxt, Deadline::NONE)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.labels),
            );
        }
        if hit.is_empty() {
            return Ok(0);
        }
        let mut tombstones = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        // Applied only once saved: a deletion the disk refused must not hide data until the next
        // restart and then come undone.
        let mut next = tombstones.clone();
        for labels in &hit {
            next.add(labels.clone(), mint, maxt);
        }
        next.save(&self.dir)?;
        *tombstones = next;
        tracing::info!(series = hit.len(), mint, maxt, "series deleted");
        Ok(hit.len())
    }

    /// Rewrites every block holding deleted data without it, then forgets the deleted ranges that
    /// only blocks held (ranges the head may still hold keep hiding its samples). Returns the
    /// number of blocks rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, StorageError> {
        let _exclusive = lock_ignoring_poison(&self.rewriting);
        let snapshot: Vec<(Labels, Vec<(i64, i64)>)> = {
            let t = self.tombstones.read().unwrap_or_else(|e| e.into_inner());
            if t.is_empty() {
                return Ok(0);
            }
            t.entries()
                .map(|(l, iv)| (l.clone(), iv.to_vec()))
                .collect()
        };
        let lookup: BTreeMap<Labels, Vec<(i64, i64)>> = snapshot.into_iter().collect();
        let mut rewritten = 0;
        for b in self.blocks().iter() {
            let m = b.meta();
            let touched = lookup
                .values()
                .flatten()
                .any(|&(a, z)| a < m.max_time && z >= m.min_time);
            if !touched {
                continue;
            }
            let series = b.all_series().map(|r| {
                r.map(|(labels, mut samples)| {
                    if let Some(d) = lookup.get(&labels) {
                        samples.retain(|&(t, _)| !tombstones::covered(d, t));
                    }
                    (labels, samples)
                })
            });
            let meta = block::write_block_with(
                &self.dir,
                series,
                m.min_time,
                m.max_time,
                m.level,
                m.sources.clone(),
            )?;
            self.add_block(Arc::new(Block::open(&self.dir.join(&meta.id))?));
            let old = m.id.clone();
            self.delete_blocks(|b, _| b.meta().id == old)?;
            rewritten += 1;
        }
        let mut t = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        // Ranges added while the blocks were rewritten are kept whole.
        let head_min = self.head.time_range().map_or(i64::MAX, |(min, _)| min);
        t.clip_before_if(head_min, |labels, iv| {
            lookup.get(labels).is_some_and(|old| old.contains(iv))
        });
        t.save(&self.dir)?;
        tracing::info!(blocks = rewritten, "tombstones cleaned");
        Ok(rewritten)
    }

    fn select_undeleted(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        deadline: Deadline,
    ) -> Result<Vec<SeriesData>, DeadlineExceeded> {
        let mut merged: BTreeMap<Labels, Vec<Source>> = BTreeMap::new();
        for b in self.blocks().iter() {
            let m = b.meta();
            if m.max_time <= mint || m.min_time > maxt {
                continue;
            }
            for (labels, s) in block::select_shared(b, matchers, mint, maxt, deadline)? {
                merged.entry(labels).or_default().push(Source::Block(s));
            }
        }
        for s in self.head.select(matchers, mint, maxt, deadline)? {
            merged
                .entry(s.labels.clone())
                .or_default()
                .push(Source::Head(s));
        }
        deadline.check()?;
        Ok(merged
            .into_iter()
            .map(|(labels, sources)| SeriesData {
                labels,
                sources,
                deleted: Vec::new(),
            })
            .collect())
    }

    /// Label names of series matching `matchers` (all series when empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_names_until(matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Storage::label_names`], giving up once `deadline` passes.
    pub fn label_names_until(
        &self,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let mut names = self.head.label_names(matchers, deadline)?;
        for b in self.blocks().iter() {
            names.extend(b.label_names_until(matchers, deadline)?);
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// Values of label `name` on series matching `matchers`, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_values_until(name, matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Storage::label_values`], giving up once `deadline` passes.
    pub fn label_values_until(
        &self,
        name: &str,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let mut values = self.head.label_values(name, matchers, deadline)?;
        for b in self.blocks().iter() {
            values.extend(b.label_values_until(name, matchers, deadline)?);
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }

    /// The blocks on disk: (id, min time, max time exclusive, bytes).
    pub fn block_list(&self) -> Vec<(String, i64, i64, u64)> {
        self.blocks()
            .iter()
            .map(|b| {
                let m = b.meta();
                (m.id.clone(), m.min_time, m.max_time, b.size_bytes())
            })
            .collect()
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

    /// The periodic work off the write path: compacts the head's oldest block range into a block
    /// once the head spans 1.5 ranges, applies retention by time (measured back from `now_ms`) and by
    /// size, and checkpoints the WAL so that replay after a crash stays short.
    ///
    /// A failed stage (a full or failing disk) does not stop the later ones — retention is what
    /// frees space — and is retried by the next pass; the first error is returned.
    pub fn maintain(&self, now_ms: i64) -> Result<MaintainReport, StorageError> {
        use std::sync::atomic::Ordering::Relaxed;
        let _exclusive = lock_ignoring_poison(&self.rewriting);
        let mut report = MaintainReport::default();
        let mut first_error = None;
        let compacted = (|| {
            while let Some(meta) = self.compact_head()? {
                report.blocks_written.push(meta.id);
            }
            while let Some(meta) = self.compact_blocks()? {
                report.blocks_written.push(meta.id);
            }
            Ok::<(), StorageError>(())
        })();
        if let Err(e) = compacted {
            self.compactions_failed.fetch_add(1, Relaxed);
            first_error = Some(e);
        }
        if let Err(e) = self.apply_retention(now_ms, &mut report) {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.checkpoint_wal() {
            self.checkpoints_failed.fetch_add(1, Relaxed);
            first_error.get_or_insert(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn apply_retention(
        &self,
        now_ms: i64,
        report: &mut MaintainReport,
    ) -> Result<(), StorageError> {
        if self.options.retention_ms > 0 {
            let cutoff = now_ms - self.options.retention_ms;
            report.series_removed = self.head.truncate_before(cutoff)?;
            report.blocks_deleted += self.delete_blocks(|b, _| b.meta().max_time <= cutoff)?;
        }
        if self.options.retention_bytes > 0 {
            let mut excess = self
                .disk_bytes()
                .saturating_sub(self.options.retention_bytes);
            report.blocks_deleted += self.delete_blocks(|b, _| {
                // Oldest first, while over the limit; the head is never deleted for size.
                if excess == 0 {
                    return false;
                }
                excess = excess.saturating_sub(b.size_bytes());
                true
            })?;
        }
        Ok(())
    }

    /// Writes the head's oldest full block range to a block and drops it from the head; `None` when
    /// the head does not yet span 1.5 ranges (Prometheus's rule, which leaves room for late samples).
    fn compact_head(&self) -> Result<Option<block::BlockMeta>, StorageError> {
        let range = self.options.block_range_ms.max(1);
        let Some((hmin, hmax)) = self.head.time_range() else {
            return Ok(None);
        };
        if hmax - hmin < range / 2 * 3 {
            return Ok(None);
        }
        let after_blocks = self.blocks().iter().map(|b| b.meta().max_time).max();
        let mint = (hmin.div_euclid(range) * range).max(after_blocks.unwrap_or(i64::MIN));
        let maxt = (mint.div_euclid(range) + 1) * range;
        let meta = block::write_block(
            &self.dir,
            self.head.series_in_range(mint, maxt),
            mint,
            maxt,
            1,
            Vec::new(),
        )?;
        self.add_block(Arc::new(Block::open(&self.dir.join(&meta.id))?));
        // Only now, with the block visible to queries, may the head forget the range.
        self.head.truncate_before(maxt)?;
        tracing::info!(block = %meta.id, mint, maxt, series = meta.num_series, samples = meta.num_samples, "head compacted");
        Ok(Some(meta))
    }

    /// Writes everything in the head to blocks (one per block range it touches) and empties the
    /// head: for imports and backfills, which want compact blocks at once rather than after 3 h.
    /// Blocks may overlap earlier ones; queries merge them sample by sample.
    pub fn flush_head(&self) -> Result<Vec<block::BlockMeta>, StorageError> {
        let range = self.options.block_range_ms.max(1);
        let Some((hmin, hmax)) = self.head.time_range() else {
            return Ok(Vec::new());
        };
        let mut written = Vec::new();
        let mut mint = hmin.div_euclid(range) * range;
        while mint <= hmax {
            let maxt = mint.saturating_add(range);
            // The last block ends just after the head's newest sample, not at its range end: on
            // restart the head drops every WAL sample below the newest block's end, so a block
            // claiming the whole range would hide samples appended after this flush.
            let block_maxt = maxt.min(hmax.saturating_add(1));
            let meta = block::write_block(
                &self.dir,
                self.head.series_in_range(mint, block_maxt),
                mint,
                block_maxt,
                1,
                Vec::new(),
            )?;
            let dir = self.dir.join(&meta.id);
            if meta.num_samples == 0 {
                std::fs::remove_dir_all(&dir)
                    .map_err(|source| StorageError::Dir { path: dir, source })?;
            } else {
                self.add_block(Arc::new(Block::open(&dir)?));
                written.push(meta);
            }
            mint = maxt;
        }
        self.head.truncate_before(hmax.saturating_add(1))?;
        self.checkpoint_wal()?;
        Ok(written)
    }

    /// Writes a snapshot of everything stored into `dir` (which must not exist): the blocks as
    /// hard links (blocks are immutable, so they cost no space until deleted here), the head's
    /// samples after the newest block as one more block unless `skip_head`, and the tombstones. The
    /// result is a data directory `edgeprom --storage.tsdb.path` (or Prometheus) can open. On error
    /// nothing of it is left behind: on a full disk a partial snapshot would hold the space the
    /// retry needs.
    pub fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<(), StorageError> {
        let written = self.write_snapshot(dir, skip_head);
        if written.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        written
    }

    fn write_snapshot(&self, dir: &Path, skip_head: bool) -> Result<(), StorageError> {
        let dir_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Dir { path, source }
        };
        fault::check(dir)
            .and_then(|()| std::fs::create_dir_all(dir))
            .map_err(dir_err(dir))?;
        let blocks = self.blocks();
        for b in blocks.iter() {
            let id = &b.meta().id;
            link_tree(&self.dir.join(id), &dir.join(id)).map_err(dir_err(&dir.join(id)))?;
        }
        let tombstones = self
            .tombstones
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !tombstones.is_empty() {
            tombstones.save(dir)?;
        }
        if skip_head {
            return Ok(());
        }
        let Some((head_min, newest)) = self.time_range() else {
            return Ok(());
        };
        let mint = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(head_min);
        if newest < mint {
            return Ok(());
        }
        let all = index::Matcher::new(index::MatchType::Regex, "__name__", ".+")
            .map_err(|e| StorageError::Block(block::BlockError::InvalidInput(e.to_string())))?;
        let series: Vec<(Labels, Vec<(i64, f64)>)> = self
            .select(&[all], mint, newest)
            .into_iter()
            .map(|s| {
                let samples: Vec<(i64, f64)> = s.samples().filter(|&(t, _)| t >= mint).collect();
                (s.labels, samples)
            })
            .filter(|(_, samples)| !samples.is_empty())
            .collect();
        if !series.is_empty() {
            block::write_block(dir, series.into_iter(), mint, newest + 1, 1, Vec::new())?;
        }
        Ok(())
    }

    fn checkpoint_wal(&self) -> Result<(), StorageError> {
        let hold = self
            .wal_holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|p| p.segment)
            .min();
        self.head
            .checkpoint_wal(hold, self.options.wal_hold_max_bytes)
    }

    /// The write-ahead log's directory, for readers that follow it ([`wal::WalTail`]).
    pub fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }

    /// Where the next commit will be written in the WAL: everything committed so far is before it.
    pub fn wal_position(&self) -> wal::WalPosition {
        self.head.wal_position()
    }

    /// Keeps the WAL segments from `from` on until the reader named `reader` moves its hold
    /// (`None` releases it), within [`Options::wal_hold_max_bytes`].
    pub fn hold_wal(&self, reader: &str, from: Option<wal::WalPosition>) {
        let mut holds = self.wal_holds.lock().unwrap_or_else(|e| e.into_inner());
        match from {
            Some(p) => {
                holds.insert(reader.to_string(), p);
            }
            None => {
                holds.remove(reader);
            }
        }
    }

    fn add_block(&self, b: Arc<Block>) {
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        let mut next: Vec<Arc<Block>> = blocks.as_ref().clone();
        next.push(b);
        next.sort_by_key(|b| b.meta().min_time);
        *blocks = Arc::new(next);
    }

    /// Merges blocks into larger ones, as Prometheus does: the blocks inside one aligned window of
    /// 3, 9 or 27 block ranges become one block once the window is complete (a later block exists).
    /// Fewer, larger blocks compress better (shared timestamps and longer streams) and mean fewer
    /// index lookups per query. Windows longer than a tenth of the retention are not built, so
    /// retention still deletes in small steps.
    fn compact_blocks(&self) -> Result<Option<block::BlockMeta>, StorageError> {
        let range = self.options.block_range_ms.max(1);
        let blocks = self.blocks();
        let newest_end = blocks.iter().map(|b| b.meta().max_time).max();
        for k in 1..=3u32 {
            let window = range.saturating_mul(3i64.pow(k));
            if self.options.retention_ms > 0 && window > self.options.retention_ms / 10 {
                break;
            }
            let mut groups: BTreeMap<i64, Vec<&Arc<Block>>> = BTreeMap::new();
            for b in blocks.iter() {
                let m = b.meta();
                if m.max_time - m.min_time < window {
                    groups
                        .entry(m.min_time.div_euclid(window))
                        .or_default()
                        .push(b);
                }
            }
            for (start, group) in groups {
                let end = (start + 1).saturating_mul(window);
                let closed = newest_end.is_some_and(|n| n > end);
                let fits = group.iter().all(|b| b.meta().max_time <= end);
                if group.len() < 2 || !closed || !fits {
                    continue;
                }
                let inputs: Vec<&Block> = group.iter().map(|b| b.as_ref()).collect();
                let meta = block::compact(&self.dir, &inputs)?;
                let merged: Vec<String> = group.iter().map(|b| b.meta().id.clone()).collect();
                self.add_block(Arc::new(Block::open(&self.dir.join(&meta.id))?));
                // The new block is visible; the inputs can go.
                self.delete_blocks(|b, _| merged.contains(&b.meta().id))?;
                tracing::info!(block = %meta.id, inputs = merged.len(), level = meta.level, "blocks compacted");
                return Ok(Some(meta));
            }
        }
        Ok(None)
    }

    /// Deletes the blocks, oldest first, for which `doomed` says so; returns how many.
    fn delete_blocks(
        &self,
        mut doomed: impl FnMut(&Block, usize) -> bool,
    ) -> Result<usize, StorageError> {
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        let (gone, kept): (Vec<_>, Vec<_>) = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (doomed(b, i), b.clone()))
            .partition(|(d, _)| *d);
        for (_, b) in &gone {
            let dir = b.dir().to_path_buf();
            // Queries holding the block keep their maps; the files go when the last map does.
            std::fs::remove_dir_all(&dir)
                .map_err(|source| StorageError::Dir { path: dir, source })?;
        }
        *blocks = Arc::new(kept.into_iter().map(|(_, b)| b).collect());
        Ok(gone.len())
    }

    /// Bytes on disk: blocks, WAL and head chunks (what `--storage.tsdb.retention.size` limits).
    pub fn disk_bytes(&self) -> u64 {
        let blocks: u64 = self.blocks().iter().map(|b| b.size_bytes()).sum();
        blocks + dir_bytes(&self.dir.join("wal")) + dir_bytes(&self.dir.join("chunks_head"))
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
            chunk_write_failures: s.chunk_write_failures.load(Relaxed),
            compactions_failed: self.compactions_failed.load(Relaxed),
            checkpoints_failed: self.checkpoints_failed.load(Relaxed),
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
mod fault_tests;
#[cfg(test)]
mod tests;
