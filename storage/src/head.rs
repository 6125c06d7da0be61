//! The head: the recent, writable part of the database.
//!
//! Each series keeps one open XOR chunk in RAM; a full chunk goes to the memory-mapped head-chunk
//! files and only its location stays in RAM. Every commit is first written to the WAL (one
//! `write(2)`), then applied, so a `kill -9` loses nothing that was committed. On start the head is
//! rebuilt from the head-chunk files plus the WAL samples those files do not cover.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use edgeprom_model::{AppendError, Appender, Labels, SeriesRef};

use crate::chunk::{MAX_OPEN_CHUNK_BYTES, MAX_SAMPLES_PER_CHUNK, XorAppender, XorIterator};
use crate::deadline::{Deadline, DeadlineExceeded};
use crate::head_chunks::{ChunkDiskMapper, ChunkRef, MappedChunk};
use crate::index::{Matcher, MemIndex};
use crate::wal::{ChunkRecord, Record, SampleRecord, SeriesRecord, Wal, WalOptions};
use crate::{OpenReport, StorageError};

struct MemSeries {
    /// Low 32 bits of the label hash: a [`SeriesRef`] handed out for this series carries it, so a
    /// stale or foreign ref is detected without comparing labels.
    hash32: u32,
    /// Whether the WAL has the series record. A series is created at `append` but its record is
    /// written at commit; until then (or after a failed write) the next batch that uses it writes it.
    logged: bool,
    /// The open chunk's newest sample is a placeholder: its timestamp came from a chunk header at
    /// start-up, its value is still on disk (see `check`).
    newest_value_on_disk: bool,
    /// Full chunks in head-chunk files, oldest first. Only the 8-byte location is kept in RAM, in
    /// an exactly sized slice; the time bounds are read from the mapped record header when needed.
    disk: Box<[ChunkRef]>,
    /// The open chunk. It also remembers the series' newest sample across chunk cuts, for
    /// Prometheus's out-of-order and duplicate rules.
    open: XorAppender,
}

impl MemSeries {
    fn new(hash32: u32) -> MemSeries {
        MemSeries {
            hash32,
            logged: false,
            newest_value_on_disk: false,
            disk: Box::default(),
            open: XorAppender::new(),
        }
    }

    /// Prometheus's order rules. After a restart the newest value may still be on disk only: it
    /// is read back the first time a sample arrives at that same timestamp (rarely), not for every
    /// series at start-up.
    fn check(&mut self, t: i64, v: f64, chunks: &ChunkDiskMapper) -> Result<(), AppendError> {
        let Some((lt, mut lv)) = self.open.newest() else {
            return Ok(());
        };
        if t < lt {
            return Err(AppendError::OutOfOrder);
        }
        if t == lt && self.newest_value_on_disk {
            let newest = self.disk.last().and_then(|c| last_sample(chunks, *c));
            if let Some((_, bits)) = newest {
                lv = bits;
                if self.open.num_samples() == 0 {
                    self.open = XorAppender::continuing(lt, bits);
                }
            }
            self.newest_value_on_disk = false;
        }
        if t == lt && lv != v.to_bits() {
            return Err(AppendError::DuplicateSample);
        }
        Ok(())
    }

    fn push_disk(&mut self, cref: ChunkRef) {
        let mut disk = std::mem::take(&mut self.disk).into_vec();
        disk.push(cref);
        self.disk = disk.into_boxed_slice();
    }
}

/// Counters the head keeps for self-metrics and tests.
/// How long full head chunks stay in memory after a write to disk failed before the next try.
const CHUNK_RETRY_MS: i64 = 10_000;

#[derive(Debug, Default)]
pub(crate) struct HeadStats {
    pub samples_appended: AtomicU64,
    pub out_of_order: AtomicU64,
    pub duplicates: AtomicU64,
    pub chunks_written: AtomicU64,
    pub wal_failures: AtomicU64,
    pub chunk_write_failures: AtomicU64,
}

pub(crate) struct Head {
    index: RwLock<MemIndex>,
    series: RwLock<Vec<Option<Arc<Mutex<MemSeries>>>>>,
    /// Serialises commits: the WAL order is the order samples are applied in.
    wal: Mutex<Wal>,
    chunks: ChunkDiskMapper,
    /// After a head chunk could not be written, no series tries again before this instant
    /// (milliseconds since `started`): on a full disk every append would otherwise retry and log.
    chunk_retry_at: AtomicI64,
    started: std::time::Instant,
    min_time: AtomicI64,
    max_time: AtomicI64,
    pub(crate) stats: HeadStats,
}

/// The newest sample of a chunk on disk.
fn last_sample(chunks: &ChunkDiskMapper, cref: ChunkRef) -> Option<(i64, u64)> {
    let chunk = chunks.chunk(cref).ok()?;
    let it = XorIterator::new(chunk.bytes()).ok()?;
    it.last().map(|(t, v)| (t, v.to_bits()))
}

/// A label-set hash carried in [`SeriesRef`]s. Refs live only as long as the process (the scrape
/// cache), so the hash need not be stable across restarts: a fast word-at-a-time hasher will do.
fn hash32(labels: &Labels) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    labels.hash(&mut h);
    h.finish() as u32
}

fn to_ref(r: u32, hash: u32) -> SeriesRef {
    SeriesRef((u64::from(hash) << 32) | u64::from(r))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the data consistent before it can panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Head {
    /// Opens the head under `dir`, replaying head chunks and the WAL.
    pub(crate) fn open(
        dir: &Path,
        wal_options: WalOptions,
        chunk_file_size: u64,
    ) -> Result<(Head, OpenReport), StorageError> {
        let (chunks, disk_chunks, chunk_repair) =
            ChunkDiskMapper::open(&dir.join("chunks_head"), chunk_file_size)?;
        let wal_dir = dir.join("wal");
        let (wal, wal_repair) = match Wal::open(&wal_dir, wal_options) {
            // Damage before the tail: keep every readable record, before and after the damage,
            // rather than refusing to start or dropping later segments wholesale.
            Err(crate::wal::WalError::Corrupt { .. }) => {
                let repaired =
                    crate::wal::repair(&wal_dir, crate::wal::RepairMode::TruncateKeepLater)?;
                tracing::warn!(report = ?repaired, "WAL damaged before its tail; repaired keeping later segments");
                Wal::open(&wal_dir, wal_options)?
            }
            other => other?,
        };
        let head = Head {
            index: RwLock::new(MemIndex::new()),
            series: RwLock::new(Vec::new()),
            wal: Mutex::new(wal),
            chunks,
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            chunk_retry_at: AtomicI64::new(0),
            started: std::time::Instant::now(),
            stats: HeadStats::default(),
        };

        let mut by_series: HashMap<u64, Vec<crate::head_chunks::ReplayedChunk>> =
            HashMap::with_capacity(disk_chunks.len());
        for c in disk_chunks {
            by_series.entry(c.series).or_default().push(c);
        }
        let mut replayed = 0u64;
        let mut skipped = 0u64;
        let mut chunks_loaded = 0u64;
        let replay = crate::wal::replay(&wal_dir, |record| match record {
            Record::Series(series) => {
                for s in series {
                    if head.get(s.r as u32).is_some() {
                        // Already defined by the checkpoint, which may hold series whose record
                        // is also in a segment written while the checkpoint was taken.
                        continue;
                    }
                    let mut ms = MemSeries::new(hash32(&s.labels));
                    ms.logged = true;
                    if let Some(mut disk) = by_series.remove(&s.r) {
                        disk.sort_by_key(|c| c.mint);
                        if let (Some(first), Some(last)) = (disk.first(), disk.last()) {
                            head.min_time.fetch_min(first.mint, Ordering::Relaxed);
                            head.max_time.fetch_max(last.maxt, Ordering::Relaxed);
                            ms.open = XorAppender::continuing(last.maxt, 0);
                            ms.newest_value_on_disk = true;
                        }
                        ms.disk = disk.iter().map(|c| c.cref).collect();
                    }
                    head.insert_series(s.r as u32, &s.labels, ms);
                }
            }
            Record::Samples(samples) => {
                for s in samples {
                    if head.replay_sample(s) {
                        replayed += 1;
                    } else {
                        skipped += 1;
                    }
                }
            }
            Record::Chunks(open) => {
                for c in open {
                    if head.load_open_chunk(c) {
                        chunks_loaded += 1;
                    }
                }
            }
            Record::Tombstones(_) => {}
        })?;
        let report = OpenReport {
            wal_repair: format!("{wal_repair:?}"),
            wal_replay: format!("{replay:?}"),
            head_chunk_problems: chunk_repair.problems,
            samples_replayed: replayed,
            samples_already_in_chunks: skipped,
            open_chunks_loaded: chunks_loaded,
            orphan_chunks: by_series.values().map(Vec::len).sum(),
            ..OpenReport::default()
        };
        Ok((head, report))
    }

    fn insert_series(&self, r: u32, labels: &Labels, ms: MemSeries) {
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let i = r as usize;
        if series.len() <= i {
            series.resize(i + 1, None);
        }
        series[i] = Some(Arc::new(Mutex::new(ms)));
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(r, labels);
    }

    /// Installs a checkpointed open chunk as the series' open chunk, unless a head-chunk file
    /// already holds its samples (the chunk filled up and was written out after the checkpoint
    /// copied it). Returns whether it was installed.
    fn load_open_chunk(&self, c: ChunkRecord) -> bool {
        let Some(series) = self.get(c.r as u32) else {
            return false;
        };
        let Ok(open) = XorAppender::from_bytes(c.bytes) else {
            tracing::warn!(
                series = c.r,
                "checkpointed open chunk undecodable; its samples come from the WAL"
            );
            return false;
        };
        let (Some(first), Some(last)) = (open.first_time(), open.last_time()) else {
            return false;
        };
        let mut ms = lock(&series);
        if ms.open.newest().is_some_and(|(lt, _)| lt >= first) {
            return false;
        }
        ms.open = open;
        ms.newest_value_on_disk = false;
        self.min_time.fetch_min(first, Ordering::Relaxed);
        self.max_time.fetch_max(last, Ordering::Relaxed);
        true
    }

    /// Applies a replayed WAL sample unless a head chunk already holds it.
    fn replay_sample(&self, s: SampleRecord) -> bool {
        let Some(series) = self.get(s.r as u32) else {
            return false;
        };
        let mut ms = lock(&series);
        // The newest sample starts as the newest head-chunk one, so anything not after it is on
        // disk already (or a repeat the append path refused): no chunk header is read per sample.
        if ms.open.newest().is_some_and(|(lt, _)| s.t <= lt) {
            return false;
        }
        self.apply(s.r as u32, &mut ms, s.t, s.v);
        self.min_time.fetch_min(s.t, Ordering::Relaxed);
        self.max_time.fetch_max(s.t, Ordering::Relaxed);
        true
    }

    fn get(&self, r: u32) -> Option<Arc<Mutex<MemSeries>>> {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r as usize)
            .and_then(|s| s.clone())
    }

    /// Appends to the series' open chunk, moving it to disk when full.
    fn apply(&self, r: u32, ms: &mut MemSeries, t: i64, v: f64) {
        if ms.open.newest().is_some_and(|(lt, _)| lt == t) {
            return; // an identical repeat: stored once
        }
        ms.open.append(t, v);
        ms.newest_value_on_disk = false;
        if ms.open.num_samples() >= MAX_SAMPLES_PER_CHUNK
            || ms.open.bytes().len() >= MAX_OPEN_CHUNK_BYTES
        {
            let (Some(mint), Some(maxt)) = (ms.open.first_time(), ms.open.last_time()) else {
                return;
            };
            let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            if now < self.chunk_retry_at.load(Ordering::Relaxed) {
                return;
            }
            match self.chunks.write(u64::from(r), mint, maxt, ms.open.bytes()) {
                Ok(cref) => {
                    ms.push_disk(cref);
                    ms.open.reset();
                    self.stats.chunks_written.fetch_add(1, Ordering::Relaxed);
                }
                // The samples are safe in the WAL; keep the chunk open (it grows past 120 samples,
                // which XOR allows) and retry after a pause.
                Err(e) => {
                    self.stats
                        .chunk_write_failures
                        .fetch_add(1, Ordering::Relaxed);
                    self.chunk_retry_at
                        .store(now.saturating_add(CHUNK_RETRY_MS), Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in_ms = CHUNK_RETRY_MS, "writing a full head chunk failed; kept in memory");
                }
            }
        }
    }

    /// Ends the pause after a failed head-chunk write, so tests need not wait it out.
    #[cfg(test)]
    pub(crate) fn retry_chunk_writes_now(&self) {
        self.chunk_retry_at.store(0, Ordering::Relaxed);
    }

    pub(crate) fn appender(&self) -> HeadAppender<'_> {
        HeadAppender {
            head: self,
            new_series: Vec::new(),
            samples: Vec::new(),
            targets: Vec::new(),
            newest: rustc_hash::FxHashMap::default(),
            unlogged: HashSet::new(),
        }
    }

    fn mark_logged(&self, refs: &HashSet<u32>) {
        for r in refs {
            if let Some(series) = self.get(*r) {
                lock(&series).logged = true;
            }
        }
    }

    /// The series ref and label hash for `labels`, creating the series if needed.
    fn get_or_create(&self, labels: &Labels) -> Result<(u32, u32), AppendError> {
        if labels.metric_name().is_empty() {
            return Err(AppendError::InvalidSeries(
                labels.to_string(),
                "no metric name",
            ));
        }
        let hash = hash32(labels);
        if let Some(r) = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get_ref(labels)
        {
            return Ok((r, hash));
        }
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = index.get_ref(labels) {
            return Ok((r, hash));
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let r = u32::try_from(series.len())
            .map_err(|_| AppendError::Storage("series ref space exhausted".into()))?;
        series.push(Some(Arc::new(Mutex::new(MemSeries::new(hash)))));
        index.add(r, labels);
        Ok((r, hash))
    }

    /// Series matching `matchers` with data in `[mint, maxt]`, in label order.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        deadline: Deadline,
    ) -> Result<Vec<HeadSeries>, DeadlineExceeded> {
        let mut ticks = deadline.ticker();
        let (refs, labels): (Vec<u32>, Vec<Labels>) = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            let refs = index.select_until(matchers, deadline)?;
            let mut pairs = Vec::with_capacity(refs.len());
            for r in refs {
                ticks.tick()?;
                if let Some(l) = index.labels(r) {
                    pairs.push((r, l));
                }
            }
            pairs.into_iter().unzip()
        };
        let mut out = Vec::with_capacity(refs.len());
        for (r, labels) in refs.into_iter().zip(labels) {
            ticks.tick()?;
            out.extend(self.series_data(r, labels, mint, maxt));
        }
        ticks.check()?;
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// One series' chunks overlapping `[mint, maxt]`, or `None` when it has none there.
    fn series_data(&self, r: u32, labels: Labels, mint: i64, maxt: i64) -> Option<HeadSeries> {
        let series = self.get(r)?;
        let ms = lock(&series);
        let mut chunks = Vec::new();
        let overlapping = ms.disk.iter().filter(|c| {
            self.chunks
                .bounds(**c)
                .is_some_and(|(cmin, cmax)| cmax >= mint && cmin <= maxt)
        });
        for c in overlapping {
            match self.chunks.chunk(*c) {
                Ok(m) => chunks.push(ChunkData::Mapped(m)),
                Err(e) => tracing::warn!(error = %e, "head chunk unreadable; skipped"),
            }
        }
        if ms.open.num_samples() > 0
            && ms.open.last_time().is_some_and(|t| t >= mint)
            && ms.open.first_time().is_some_and(|t| t <= maxt)
        {
            chunks.push(ChunkData::Open(ms.open.bytes().to_vec()));
        }
        drop(ms);
        (!chunks.is_empty()).then_some(HeadSeries {
            labels,
            chunks,
            mint,
            maxt,
        })
    }

    pub(crate) fn label_names(
        &self,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .label_names_until(matchers, deadline)
    }

    pub(crate) fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .label_values_until(name, matchers, deadline)
    }

    pub(crate) fn num_series(&self) -> usize {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.is_some())
            .count()
    }

    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (
            self.min_time.load(Ordering::Relaxed),
            self.max_time.load(Ordering::Relaxed),
        );
        (min <= max).then_some((min, max))
    }

    /// Every series with samples in `[mint, maxt)`, sorted by labels, samples decoded one series at
    /// a time: the input of a block written from the head.
    pub(crate) fn series_in_range(
        &self,
        mint: i64,
        maxt: i64,
    ) -> impl Iterator<Item = (Labels, Vec<(i64, f64)>)> + '_ {
        let mut refs: Vec<(Labels, u32)> = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            let series = self.series.read().unwrap_or_else(|e| e.into_inner());
            series
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some())
                .filter_map(|(r, _)| Some((index.labels(r as u32)?, r as u32)))
                .collect()
        };
        refs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        refs.into_iter().filter_map(move |(labels, r)| {
            let data = self.series_data(r, labels.clone(), mint, maxt.saturating_sub(1))?;
            let samples: Vec<(i64, f64)> = data.samples().collect();
            (!samples.is_empty()).then_some((labels, samples))
        })
    }

    /// Every live series with its ref, taken under one short read lock so the caller can lock
    /// series one at a time without holding up series creation.
    fn live_series(&self) -> Vec<(u32, Arc<Mutex<MemSeries>>)> {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.clone()?)))
            .collect()
    }

    /// Drops data older than `cutoff`: disk chunks that end before it, whole head-chunk files, and
    /// series with nothing left. Returns the number of series removed.
    pub(crate) fn truncate_before(&self, cutoff: i64) -> Result<usize, StorageError> {
        let all = self.live_series();
        let mut dead = Vec::new();
        for (r, series) in all {
            let mut ms = lock(&series);
            if ms
                .disk
                .iter()
                .any(|c| self.chunks.bounds(*c).is_none_or(|(_, maxt)| maxt < cutoff))
            {
                let mut disk = std::mem::take(&mut ms.disk).into_vec();
                disk.retain(|c| {
                    self.chunks
                        .bounds(*c)
                        .is_some_and(|(_, maxt)| maxt >= cutoff)
                });
                ms.disk = disk.into_boxed_slice();
            }
            let open_is_old = ms.open.last_time().is_none_or(|t| t < cutoff);
            if ms.disk.is_empty() && open_is_old {
                dead.push(r);
            }
        }
        if !dead.is_empty() {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            for r in &dead {
                series[*r as usize] = None;
                index.remove(*r);
            }
        }
        self.chunks.delete_files_before(cutoff)?;
        self.min_time.fetch_max(cutoff, Ordering::Relaxed);
        Ok(dead.len())
    }

    /// Replaces the WAL's older segments with a checkpoint of the head itself: every live series
    /// and its open chunk. Full chunks are in head-chunk files already, so after a crash replay
    /// reads the checkpoint and only the segments written since; no sample is re-appended one by
    /// one except those.
    ///
    /// `hold` is the oldest segment a WAL reader (a remote-write sender) still needs: it and later
    /// segments are kept, unless the segments on disk exceed `max_hold_bytes` (0: no limit), when
    /// the reader loses them rather than the disk filling up.
    pub(crate) fn checkpoint_wal(
        &self,
        hold: Option<u32>,
        max_hold_bytes: u64,
    ) -> Result<(), StorageError> {
        // Commits write the WAL and apply to the head under the WAL lock, so once a segment is cut
        // under it, every commit in the older segments is in the head. What is copied below may
        // also hold later samples; replay skips those as already present.
        let plan = {
            let mut wal = lock(&self.wal);
            // A checkpoint rewrites every live series and open chunk (≈130 MB at 460k series), so
            // it is taken only once the segments it would replace reach half its size: disk
            // writes stay within 3× the WAL's own, and replay after a crash reads at most the
            // checkpoint plus half as much again.
            let sizes = wal.sizes();
            let (first, current) = wal.segment_range();
            let hold = hold.filter(|_| {
                let over = max_hold_bytes > 0 && sizes.segments > max_hold_bytes;
                if over {
                    tracing::warn!(
                        bytes = sizes.segments,
                        limit = max_hold_bytes,
                        "WAL kept for a remote-write reader exceeds its limit; releasing it"
                    );
                }
                !over
            });
            let releasable = match hold {
                Some(h) => wal.segments_size(first, h.min(current + 1)),
                None => sizes.segments,
            };
            if releasable == 0 || releasable.saturating_mul(2) < sizes.checkpoint {
                return Ok(());
            }
            let upto = match hold {
                Some(h) if h <= current => h - 1,
                _ => wal.cut_segment()?.saturating_sub(1),
            };
            if upto < first {
                return Ok(());
            }
            wal.plan_checkpoint(upto)?
        };
        let refs = self.live_series();
        let records = CheckpointRecords {
            head: self,
            refs: refs.into_iter(),
            chunks: None,
        };
        let stats = plan.write_records(records)?;
        lock(&self.wal).finish_checkpoint(plan, stats)?;
        Ok(())
    }

    pub(crate) fn wal_position(&self) -> crate::wal::WalPosition {
        lock(&self.wal).position()
    }

    pub(crate) fn sync_wal(&self) -> Result<(), StorageError> {
        Ok(lock(&self.wal).sync()?)
    }
}

/// The records of a head checkpoint, produced a batch at a time so that the whole head is never
/// copied at once: a series record batch, then the open chunks of the same series.
struct CheckpointRecords<'a, I> {
    head: &'a Head,
    refs: I,
    /// The open chunks of the series batch just returned.
    chunks: Option<Record>,
}

impl<I: Iterator<Item = (u32, Arc<Mutex<MemSeries>>)>> Iterator for CheckpointRecords<'_, I> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        const BATCH: usize = 4096;
        if let Some(chunks) = self.chunks.take() {
            return Some(chunks);
        }
        let mut series = Vec::new();
        let mut chunks = Vec::new();
        while series.len() < BATCH {
            let Some((r, s)) = self.refs.next() else {
                break;
            };
            // A series never logged was created by a batch not yet committed (or rolled back):
            // its record will be in a later segment if the batch commits.
            let (logged, open) = {
                let ms = lock(&s);
                let open = (ms.open.num_samples() > 0).then(|| ms.open.bytes().to_vec());
                (ms.logged, open)
            };
            if !logged {
                continue;
            }
            let Some(labels) = self
                .head
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .labels(r)
            else {
                continue;
            };
            series.push(SeriesRecord {
                r: u64::from(r),
                labels,
            });
            if let Some(bytes) = open {
                chunks.push(ChunkRecord {
                    r: u64::from(r),
                    bytes,
                });
            }
        }
        if series.is_empty() {
            return None;
        }
        // Series first: replay defines a series before it loads its chunk.
        if !chunks.is_empty() {
            self.chunks = Some(Record::Chunks(chunks));
        }
        Some(Record::Series(series))
    }
}

/// One head series' chunks overlapping a query range; samples are decoded lazily.
pub(crate) struct HeadSeries {
    /// The series' labels.
    pub(crate) labels: Labels,
    chunks: Vec<ChunkData>,
    mint: i64,
    maxt: i64,
}

enum ChunkData {
    Mapped(MappedChunk),
    /// A copy of the open chunk taken under the series lock: it is small and still changing.
    Open(Vec<u8>),
}

impl ChunkData {
    fn bytes(&self) -> &[u8] {
        match self {
            ChunkData::Mapped(m) => m.bytes(),
            ChunkData::Open(v) => v,
        }
    }
}

impl HeadSeries {
    /// The samples in the query range, oldest first, stale markers included.
    pub(crate) fn samples(&self) -> SampleIter<'_> {
        SampleIter {
            series: self,
            next_chunk: 0,
            current: None,
        }
    }
}

/// Iterates a series' samples chunk by chunk, decoding straight from the mapped bytes.
pub(crate) struct SampleIter<'a> {
    series: &'a HeadSeries,
    next_chunk: usize,
    current: Option<XorIterator<'a>>,
}

impl Iterator for SampleIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        loop {
            if let Some(it) = self.current.as_mut() {
                for (t, v) in it.by_ref() {
                    if t > self.series.maxt {
                        break;
                    }
                    if t >= self.series.mint {
                        return Some((t, v));
                    }
                }
                self.current = None;
            }
            let chunk = self.series.chunks.get(self.next_chunk)?;
            self.next_chunk += 1;
            self.current = XorIterator::new(chunk.bytes()).ok();
        }
    }
}

/// A batch for the head: new series and samples, validated as they are added, written to the WAL
/// and applied at commit.
pub(crate) struct HeadAppender<'a> {
    head: &'a Head,
    new_series: Vec<SeriesRecord>,
    samples: Vec<SampleRecord>,
    /// The series of each pending sample, so commit need not look them up again.
    targets: Vec<Arc<Mutex<MemSeries>>>,
    /// The newest pending sample per series, so order is checked within the batch too.
    newest: rustc_hash::FxHashMap<u32, (i64, u64)>,
    /// Series whose record this batch carries.
    unlogged: HashSet<u32>,
}

impl HeadAppender<'_> {
    /// Checks and stages one sample for a resolved series, under a single lock of the series (the
    /// path every sample of a steady-state scrape takes). `None` when `verify` finds the ref's label
    /// hash does not match the series (a stale or foreign hint): the caller looks the labels up.
    #[allow(clippy::too_many_arguments)]
    fn append_to(
        &mut self,
        r: u32,
        hash: u32,
        series: Arc<Mutex<MemSeries>>,
        verify: bool,
        labels: Option<&Labels>,
        t: i64,
        v: f64,
    ) -> Option<Result<SeriesRef, AppendError>> {
        let mut guard = lock(&series);
        if verify && guard.hash32 != hash {
            return None;
        }
        if !guard.logged && !self.unlogged.contains(&r) {
            // The series' WAL record is still to be written (a batch that created it failed):
            // that needs its labels.
            let Some(labels) = labels else {
                return Some(Err(AppendError::NeedLabels));
            };
            self.unlogged.insert(r);
            self.new_series.push(SeriesRecord {
                r: u64::from(r),
                labels: labels.clone(),
            });
        }
        let check = match self.newest.get(&r) {
            Some(&(lt, _)) if t < lt => Err(AppendError::OutOfOrder),
            Some(&(lt, lv)) if t == lt && lv != v.to_bits() => Err(AppendError::DuplicateSample),
            Some(_) => Ok(()),
            None => guard.check(t, v, &self.head.chunks),
        }
        .and_then(|()| {
            // A chunk that cannot be moved to disk (full disk) keeps growing; stop before the
            // 16-bit sample count of the XOR header would overflow.
            if guard.open.num_samples() >= 8 * MAX_SAMPLES_PER_CHUNK {
                Err(AppendError::Storage(
                    "head chunk cannot be written to disk".into(),
                ))
            } else {
                Ok(())
            }
        });
        drop(guard);
        let stats = &self.head.stats;
        match check {
            Err(AppendError::OutOfOrder) => {
                stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                return Some(Err(AppendError::OutOfOrder));
            }
            Err(AppendError::DuplicateSample) => {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return Some(Err(AppendError::DuplicateSample));
            }
            Err(e) => return Some(Err(e)),
            Ok(()) => {}
        }
        self.newest.insert(r, (t, v.to_bits()));
        self.samples.push(SampleRecord {
            r: u64::from(r),
            t,
            v,
        });
        self.targets.push(series);
        Some(Ok(to_ref(r, hash)))
    }
}

impl Appender for HeadAppender<'_> {
    fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let head = self.head;
        if let Some(h) = hint {
            let (r, hash) = (h.0 as u32, (h.0 >> 32) as u32);
            if let Some(series) = head.get(r)
                && let Some(result) = self.append_to(r, hash, series, true, Some(labels), t, v)
            {
                return result;
            }
        }
        let (r, hash) = head.get_or_create(labels)?;
        let series = head
            .get(r)
            .ok_or_else(|| AppendError::Storage("series vanished".into()))?;
        self.append_to(r, hash, series, false, Some(labels), t, v)
            .unwrap_or_else(|| Err(AppendError::Storage("series changed under append".into())))
    }

    fn append_ref(&mut self, hint: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let (r, hash) = (hint.0 as u32, (hint.0 >> 32) as u32);
        let series = self.head.get(r).ok_or(AppendError::NeedLabels)?;
        match self.append_to(r, hash, series, true, None, t, v) {
            Some(result) => result.map(|_| ()),
            None => Err(AppendError::NeedLabels),
        }
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        let head = self.head;
        if self.samples.is_empty() && self.new_series.is_empty() {
            return Ok(());
        }
        let mut wal = lock(&head.wal);
        let mut records = Vec::with_capacity(2);
        if !self.new_series.is_empty() {
            records.push(Record::Series(self.new_series));
        }
        records.push(Record::Samples(self.samples));
        if let Err(e) = wal.log(&records) {
            head.stats.wal_failures.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::Storage(e.to_string()));
        }
        head.mark_logged(&self.unlogged);
        let Some(Record::Samples(samples)) = records.pop() else {
            return Ok(());
        };
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        for (s, series) in samples.iter().zip(&self.targets) {
            let mut ms = lock(series);
            // Another batch may have advanced the series since `append` checked it.
            if ms.check(s.t, s.v, &head.chunks).is_ok() {
                head.apply(s.r as u32, &mut ms, s.t, s.v);
                mint = mint.min(s.t);
                maxt = maxt.max(s.t);
            }
        }
        head.min_time.fetch_min(mint, Ordering::Relaxed);
        head.max_time.fetch_max(maxt, Ordering::Relaxed);
        head.stats
            .samples_appended
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The samples are dropped; the series created for them stay in the head (as in Prometheus) and
    /// are logged now so later samples of theirs replay.
    fn rollback(self: Box<Self>) {
        if self.new_series.is_empty() {
            return;
        }
        let head = self.head;
        let mut wal = lock(&head.wal);
        if wal.log(&[Record::Series(self.new_series)]).is_ok() {
            head.mark_logged(&self.unlogged);
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// Every active series holds one `MemSeries` behind an `Arc<Mutex<_>>`; at 460k series each
    /// byte here is 460 kB of RSS. This pins the layout so a new field is a deliberate choice.
    #[test]
    fn mem_series_stays_small() {
        let size = size_of::<std::sync::Mutex<super::MemSeries>>() + 16;
        assert!(size <= 112, "Arc<Mutex<MemSeries>> block is {size} bytes");
    }
}
