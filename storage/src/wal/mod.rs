//! The write-ahead log: every committed batch is written here before the commit returns, so that
//! the head can be rebuilt after a crash.
//!
//! The on-disk format (directory layout, frames, record layouts) and the durability bound of each
//! [`SyncPolicy`] are specified in `storage/FORMAT.md` (section "WAL"). In short: the log is a
//! directory of numbered segment files plus at most one `checkpoint.NNNNNNNN` directory; each
//! record is one CRC32C-checked frame; the frames of one [`Wal::log`] call form a *commit* that
//! replay and repair treat as all-or-nothing.
//!
//! Records are written Snappy-compressed whenever that makes them smaller (a scrape's samples
//! shrink from about 10 bytes each to about 4); readers accept both forms, so WALs written before
//! compression existed replay unchanged. The CRC covers the compressed bytes as they are on disk,
//! and a record that does not decompress is a damaged frame like any other.
//!
//! Guarantees:
//! * A commit is handed to the kernel with one `write(2)` before [`Wal::log`] returns (no buffering
//!   in user space across commits), so it survives `kill -9` of the process.
//! * Power loss loses at most what the [`SyncPolicy`] allows; see its docs.
//! * A torn or corrupt tail of the last segment is cut off by [`Wal::open`] at the start of the
//!   first incomplete commit; everything before it is kept. Damage anywhere else is reported as
//!   [`WalError::Corrupt`] and nothing is deleted until the caller chooses a [`RepairMode`] with
//!   [`repair`].

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use edgeprom_model::Labels;

mod encoding;
mod segment;
mod tail;
#[cfg(test)]
mod tests;

pub use tail::{RecordKinds, TailStep, WalPosition, WalTail, series_before};

use segment::{
    Scan, TMP_SUFFIX, checkpoint_path, io_err, list_checkpoints, list_segments, scan, segment_path,
    sync_dir,
};

/// A series definition: the head's series ref and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRecord {
    /// The head's reference for the series.
    pub r: u64,
    /// The series' labels.
    pub labels: Labels,
}

/// One sample of a series known by ref.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRecord {
    /// The series' ref, as defined by an earlier [`SeriesRecord`].
    pub r: u64,
    /// Timestamp in milliseconds.
    pub t: i64,
    /// Value; stored bit-exact, so NaN payloads and the stale marker survive.
    pub v: f64,
}

/// One WAL record. A commit ([`Wal::log`]) is a slice of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series.
    Series(Vec<SeriesRecord>),
    /// Samples of series defined earlier.
    Samples(Vec<SampleRecord>),
    /// Deletions: `(ref, mint, maxt)`, both bounds inclusive.
    Tombstones(Vec<(u64, i64, i64)>),
    /// Open head chunks. Written only into checkpoints: replay then loads each series' open chunk
    /// whole instead of re-appending every sample it holds, which keeps restart time short.
    Chunks(Vec<ChunkRecord>),
}

/// A series' open head chunk at checkpoint time: the XOR chunk bytes (see the chunk format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// The series' ref, as defined by an earlier [`SeriesRecord`].
    pub r: u64,
    /// The complete XOR chunk.
    pub bytes: Vec<u8>,
}

/// When the current segment is fsynced. Each policy's loss bound on power failure is stated on
/// its variant; none of them affects `kill -9`, which never loses a commit that [`Wal::log`]
/// returned `Ok` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never fsync segments; the kernel writes them back when it chooses (on Linux by default
    /// within about `vm.dirty_expire_centisecs` = 30 s plus the 5 s writeback period). Power loss
    /// may lose that much. Directory entries are not fsynced either.
    Never,
    /// A background thread fsyncs the current segment every interval if anything was written since
    /// the last fsync. A commit is on stable storage at most `interval` plus one fsync's duration
    /// after [`Wal::log`] returned. Segments are fsynced when they are finished, so the bound holds
    /// across cuts. A zero interval behaves as [`SyncPolicy::EveryCommit`].
    Interval(Duration),
    /// fsync (`fdatasync`) after every commit, before [`Wal::log`] returns: power loss loses
    /// nothing that `log` returned `Ok` for, at the cost of one device flush per commit.
    EveryCommit,
}

impl Default for SyncPolicy {
    /// `Interval(1 s)`: at most about one second of scrapes lost on power failure, with the flush
    /// kept off the commit path.
    fn default() -> Self {
        SyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Options fixed when the WAL is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started before a commit that would make the current one exceed this many
    /// bytes. A single commit larger than this gets a segment of its own. Default 128 MiB.
    pub segment_size: u64,
    /// When segments are fsynced. Default [`SyncPolicy::Interval`] of one second.
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 128 << 20,
            sync: SyncPolicy::default(),
        }
    }
}

/// Why a WAL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A segment other than the last one (or a checkpoint) is damaged. Nothing was changed on disk;
    /// call [`repair`] with the [`RepairMode`] of your choice, then open again.
    #[error("corrupt WAL file {path} (segment {segment}): {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Its segment number (within its checkpoint, for a checkpoint file).
        segment: u32,
        /// Offset of the first bad byte.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Segment numbers are not contiguous: a segment that replay needs is missing.
    #[error("WAL segment {missing} is missing in {dir}")]
    MissingSegment {
        /// The WAL directory.
        dir: PathBuf,
        /// The first missing segment number.
        missing: u32,
    },
    /// One record's encoding exceeds the 4 GiB frame limit.
    #[error("record of {len} bytes exceeds the 4 GiB frame limit")]
    RecordTooLarge {
        /// Encoded payload size.
        len: usize,
    },
    /// The background fsync of [`SyncPolicy::Interval`] failed. Commits written since the last
    /// successful fsync may not survive power loss; reported once, on the next call.
    #[error("background fsync of {path}: {source}")]
    BackgroundSync {
        /// The segment.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A checkpoint was asked for segments that are already checkpointed.
    #[error(
        "cannot checkpoint up to segment {upto}: segments before {first} are already checkpointed"
    )]
    CheckpointRange {
        /// The requested last segment.
        upto: u32,
        /// The first segment still in the WAL.
        first: u32,
    },
}

/// One cut made by [`Wal::open`] or [`repair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The file that was cut.
    pub path: PathBuf,
    /// Its segment number.
    pub segment: u32,
    /// The new length: the end of the last complete commit.
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Intact records removed because their commit was incomplete, plus the bad record itself if
    /// there was one. Records after a bad one cannot be counted (framing is lost there); their
    /// bytes are in `bytes`.
    pub records: u64,
    /// What was wrong.
    pub reason: String,
}

/// What [`Wal::open`] or [`repair`] changed on disk. Empty when the WAL was clean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Files cut at their first bad or incomplete commit.
    pub truncated: Vec<Truncation>,
    /// Files deleted because they followed a damaged one ([`RepairMode::DropLater`] only).
    pub deleted: Vec<PathBuf>,
    /// Segments deleted because a finished checkpoint already covers them (a checkpoint that
    /// crashed between its rename and its cleanup).
    pub deleted_covered: Vec<u32>,
    /// Unfinished checkpoint directories (`checkpoint.*.tmp`) removed.
    pub removed_tmp: Vec<PathBuf>,
}

impl RepairReport {
    /// Whether nothing holding data was dropped (`removed_tmp` and `deleted_covered` lose nothing).
    pub fn is_clean(&self) -> bool {
        self.truncated.is_empty() && self.deleted.is_empty()
    }

    /// Total bytes of records dropped by truncation.
    pub fn dropped_bytes(&self) -> u64 {
        self.truncated.iter().map(|t| t.bytes).sum()
    }
}

/// How [`repair`] treats damage that [`Wal::open`] refuses to repair on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairMode {
    /// Cut each damaged file at its first bad commit and keep every later segment. Replay then
    /// skips the lost stretch and continues; samples of series whose definition was lost are the
    /// head's to drop.
    TruncateKeepLater,
    /// Cut the first damaged file there and delete everything after it, as Prometheus does:
    /// replay ends at the damage, never past a gap.
    DropLater,
}

/// A checkpoint decided by [`Wal::plan_checkpoint`]: which closed files it folds together.
#[derive(Debug)]
pub struct CheckpointPlan {
    dir: PathBuf,
    sources: Vec<(PathBuf, u32)>,
    upto: u32,
    first: u32,
    segment_size: u64,
}

impl CheckpointPlan {
    /// Writes the checkpoint directory atomically (tmp dir, fsync, rename). Reads only files no
    /// commit writes to any more, so it needs no lock on the WAL.
    pub fn write(
        &self,
        keep_series: &impl Fn(u64) -> bool,
        keep_samples_after: i64,
    ) -> Result<CheckpointStats, WalError> {
        self.publish(|tmp, stats| {
            write_checkpoint(
                tmp,
                &self.sources,
                self.segment_size,
                keep_series,
                keep_samples_after,
                stats,
            )
        })
    }

    /// Writes the checkpoint from `records` instead of from the files it replaces: the caller
    /// (the head) knows exactly what replay still needs, e.g. every live series and its open chunk.
    /// Atomic like [`CheckpointPlan::write`]; each record is one commit.
    pub fn write_records(
        &self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<CheckpointStats, WalError> {
        self.publish(|tmp, stats| {
            let mut w = CheckpointWriter::new(tmp, self.segment_size);
            let mut out = Vec::new();
            let mut compressor = encoding::Compressor::default();
            for rec in records {
                match &rec {
                    Record::Series(v) => stats.series_total += v.len() as u64,
                    Record::Samples(v) => stats.samples_total += v.len() as u64,
                    Record::Tombstones(v) => stats.tombstones_total += v.len() as u64,
                    Record::Chunks(_) => {}
                }
                compressor
                    .encode_frame(&mut out, &rec, false)
                    .map_err(|len| WalError::RecordTooLarge { len })?;
                if out.len() >= CHECKPOINT_FLUSH_AT {
                    w.write(&out)?;
                    out.clear();
                }
            }
            w.write(&out)?;
            w.finish_file()?;
            stats.bytes_written = w.total;
            Ok(())
        })
    }

    /// Builds the checkpoint in `checkpoint.UPTO.tmp` with `fill`, fsyncs it and renames it into
    /// place: the rename is the commit point.
    fn publish(
        &self,
        fill: impl FnOnce(&Path, &mut CheckpointStats) -> Result<(), WalError>,
    ) -> Result<CheckpointStats, WalError> {
        let mut stats = CheckpointStats {
            checkpoint: self.upto,
            ..CheckpointStats::default()
        };
        let final_dir = checkpoint_path(&self.dir, self.upto);
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", final_dir.display()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_err("removing", &tmp))?;
        }
        crate::fault::check(&tmp)
            .and_then(|()| std::fs::create_dir(&tmp))
            .map_err(io_err("creating", &tmp))?;
        let written = fill(&tmp, &mut stats).and_then(|()| sync_dir(&tmp));
        if let Err(e) = written {
            // On a full disk the leftover would hold the space the retry needs.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if final_dir.exists() {
            // A checkpoint of the same segment from a run that crashed before its cleanup: the new
            // one was built from it and supersedes it.
            std::fs::remove_dir_all(&final_dir).map_err(io_err("removing", &final_dir))?;
        }
        if let Err(e) = crate::fault::check(&tmp).and_then(|()| std::fs::rename(&tmp, &final_dir)) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err("renaming", &tmp)(e));
        }
        sync_dir(&self.dir)?;
        Ok(stats)
    }
}

/// What [`Wal::sizes`] measured, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalSizes {
    /// The current checkpoint's files.
    pub checkpoint: u64,
    /// The segments after the checkpoint, the active one included.
    pub segments: u64,
}

/// What [`replay`] delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records delivered.
    pub records: u64,
    /// Samples in delivered records.
    pub samples: u64,
    /// Series in delivered records.
    pub series: u64,
    /// Tombstones in delivered records.
    pub tombstones: u64,
    /// Open chunks in delivered records.
    pub chunks: u64,
    /// Bytes of the files read (checkpoint and segments).
    pub bytes: u64,
    /// Segment files read, checkpoint files included.
    pub segments: u64,
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    /// The damage that ended replay in the last segment, if any: records from there on were not
    /// delivered (the next [`Wal::open`] cuts them off).
    pub corrupt: Option<String>,
    /// Commits skipped whole because a record in them, written intact (its CRC matches), does not
    /// decode — only a buggy or foreign writer makes one — with the first reason. The commits
    /// after them are still delivered: the framing around such a record is sound.
    pub undecodable_commits: u64,
    /// Why the first undecodable commit did not decode.
    pub undecodable: Option<String>,
}

/// What [`Wal::checkpoint`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint written: `checkpoint.NNNNNNNN` with this number.
    pub checkpoint: u32,
    /// Series read.
    pub series_total: u64,
    /// Series dropped by `keep_series`.
    pub series_dropped: u64,
    /// Samples read.
    pub samples_total: u64,
    /// Samples dropped (too old, or of a series not kept).
    pub samples_dropped: u64,
    /// Tombstones read.
    pub tombstones_total: u64,
    /// Tombstones dropped (ending before the cutoff, or of a series not kept).
    pub tombstones_dropped: u64,
    /// Size of the new checkpoint.
    pub bytes_written: u64,
    /// Segments deleted after the checkpoint was in place.
    pub segments_deleted: u64,
    /// Older checkpoints deleted.
    pub checkpoints_deleted: u64,
}

/// Shared with the [`SyncPolicy::Interval`] thread.
struct SyncState {
    file: Arc<File>,
    path: PathBuf,
    dirty: bool,
    error: Option<(PathBuf, io::Error)>,
}

struct Syncer {
    state: Arc<Mutex<SyncState>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start(interval: Duration, file: Arc<File>, path: PathBuf) -> Result<Syncer, WalError> {
        let state = Arc::new(Mutex::new(SyncState {
            file,
            path: path.clone(),
            dirty: false,
            error: None,
        }));
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    let job = {
                        let mut s = lock(&shared);
                        if s.dirty {
                            s.dirty = false;
                            Some((Arc::clone(&s.file), s.path.clone()))
                        } else {
                            None
                        }
                    };
                    // fsync outside the lock so that commits never wait for the device.
                    if let Some((f, p)) = job
                        && let Err(e) = f.sync_data()
                    {
                        let mut s = lock(&shared);
                        s.dirty = true;
                        s.error.get_or_insert((p, e));
                    }
                }
            })
            .map_err(io_err("starting sync thread", &path))?;
        Ok(Syncer {
            state,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    fn take_error(&self) -> Result<(), WalError> {
        match lock(&self.state).error.take() {
            Some((path, source)) => Err(WalError::BackgroundSync { path, source }),
            None => Ok(()),
        }
    }

    fn mark_dirty(&self) {
        lock(&self.state).dirty = true;
    }

    fn set_file(&self, file: Arc<File>, path: PathBuf) {
        let mut s = lock(&self.state);
        s.file = file;
        s.path = path;
        s.dirty = false;
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// The sync thread only swaps plain fields under the lock, so a poisoned lock still holds
// consistent state.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An open write-ahead log. Not shared between threads: the head serialises commits.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    first: u32,
    current: u32,
    file: Arc<File>,
    path: PathBuf,
    /// End of the last commit written whole; the file is never longer than this between calls
    /// unless `dirty_tail` is set.
    offset: u64,
    /// A failed write may have left a partial commit after `offset`; it is cut off before anything
    /// else is written, so a half record is never followed by a good one.
    dirty_tail: bool,
    buf: Vec<u8>,
    compressor: encoding::Compressor,
    syncer: Option<Syncer>,
    checkpoint: Option<u32>,
    #[cfg(test)]
    fail_write_after: Option<usize>,
}

/// The files replay reads, in order: the checkpoint's segments, then the WAL segments after it.
struct Layout {
    checkpoint: Option<u32>,
    /// `(path, segment number, is a WAL segment)`.
    files: Vec<(PathBuf, u32, bool)>,
    /// Segments at or below the checkpoint (left by an interrupted cleanup).
    covered: Vec<u32>,
    tmp: Vec<PathBuf>,
}

fn layout(dir: &Path) -> Result<Layout, WalError> {
    let cps = list_checkpoints(dir)?;
    let checkpoint = cps.done.last().copied();
    let mut files = Vec::new();
    if let Some(cp) = checkpoint {
        let cdir = checkpoint_path(dir, cp);
        for n in list_segments(&cdir)? {
            files.push((segment_path(&cdir, n), n, false));
        }
    }
    let mut covered = Vec::new();
    let mut expect = checkpoint.map(|c| c + 1);
    for n in list_segments(dir)? {
        if checkpoint.is_some_and(|c| n <= c) {
            covered.push(n);
            continue;
        }
        if let Some(e) = expect
            && n != e
        {
            return Err(WalError::MissingSegment {
                dir: dir.to_path_buf(),
                missing: e,
            });
        }
        expect = Some(n + 1);
        files.push((segment_path(dir, n), n, true));
    }
    Ok(Layout {
        checkpoint,
        files,
        covered,
        tmp: cps.tmp,
    })
}

/// The first WAL segment number whose damage counts as a torn tail: the last segment holding any
/// data. Empty segments after it are what a crash right after a cut leaves (with
/// [`SyncPolicy::Never`] the finished segment's tail may be lost while the new empty file
/// survives); cutting the tail there drops nothing that any later data depends on.
fn tail_segment(l: &Layout) -> Result<Option<u32>, WalError> {
    let mut tail = None;
    for (path, n, is_wal) in l.files.iter().rev() {
        if !is_wal {
            break;
        }
        tail = Some(*n);
        let len = std::fs::metadata(path).map_err(io_err("stat", path))?.len();
        if len > 0 {
            break;
        }
    }
    Ok(tail)
}

fn truncate_file(path: &Path, len: u64) -> Result<(), WalError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    f.set_len(len).map_err(io_err("truncating", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

fn truncation(path: &Path, segment: u32, s: &Scan) -> Truncation {
    Truncation {
        path: path.to_path_buf(),
        segment,
        offset: s.good_end,
        bytes: s.file_len - s.good_end,
        records: s.orphan_frames + u64::from(s.bad.is_some()),
        reason: s.describe(),
    }
}

fn corrupt(path: &Path, segment: u32, s: &Scan) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        segment,
        offset: s.bad.as_ref().map_or(s.good_end, |b| b.0),
        reason: s.describe(),
    }
}

fn remove_tmp_and_covered(
    dir: &Path,
    l: &Layout,
    report: &mut RepairReport,
) -> Result<(), WalError> {
    for t in &l.tmp {
        std::fs::remove_dir_all(t).map_err(io_err("removing", t))?;
        report.removed_tmp.push(t.clone());
    }
    for &n in &l.covered {
        let p = segment_path(dir, n);
        std::fs::remove_file(&p).map_err(io_err("removing", &p))?;
        report.deleted_covered.push(n);
    }
    Ok(())
}

/// Repairs damage that [`Wal::open`] refuses to repair by itself (a damaged segment that is not
/// the last, or a damaged checkpoint), as `mode` says, and returns what was dropped. Also does
/// everything `open` repairs on its own. Open the WAL again afterwards.
pub fn repair(dir: &Path, mode: RepairMode) -> Result<RepairReport, WalError> {
    let mut report = RepairReport::default();
    let l = layout(dir)?;
    remove_tmp_and_covered(dir, &l, &mut report)?;
    let mut iter = l.files.iter();
    while let Some((path, n, _)) = iter.next() {
        let s = scan(path, |_, _, _| Ok(()))?;
        if s.is_clean() {
            continue;
        }
        truncate_file(path, s.good_end)?;
        report.truncated.push(truncation(path, *n, &s));
        if mode == RepairMode::DropLater {
            for (p, _, _) in iter {
                std::fs::remove_file(p).map_err(io_err("removing", p))?;
                report.deleted.push(p.clone());
            }
            break;
        }
    }
    sync_dir(dir)?;
    Ok(report)
}

impl Wal {
    /// Opens (creating) the WAL in `dir` and repairs what can be repaired without losing a
    /// complete commit that anything later depends on:
    ///
    /// * a torn or corrupt tail of the **last** segment is truncated at the start of the first
    ///   incomplete or damaged commit (the bad record and everything after it in that segment go;
    ///   every earlier record stays) and reported. "Last" means the last segment holding data:
    ///   empty segments after it (a crash right after a cut) do not make its tail a mid-log gap;
    /// * leftover `checkpoint.*.tmp` directories and segments already covered by a finished
    ///   checkpoint are removed;
    /// * damage in any **other** segment or in the checkpoint returns [`WalError::Corrupt`] with
    ///   nothing changed on disk: later complete segments are never deleted silently. The caller
    ///   decides with [`repair`].
    ///
    /// Every segment is read and checksummed once, so open costs about one replay's I/O.
    /// Appending continues at the end of the last segment.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, RepairReport), WalError> {
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let l = layout(dir)?;
        let mut report = RepairReport::default();
        let wal_files: Vec<_> = l.files.iter().filter(|f| f.2).collect();
        let last = wal_files.last().map(|f| f.1);
        let tail = tail_segment(&l)?;
        for (path, n, is_wal) in &l.files {
            let s = scan(path, |_, _, _| Ok(()))?;
            if s.is_clean() {
                continue;
            }
            if !(*is_wal && tail.is_some_and(|t| *n >= t)) {
                return Err(corrupt(path, *n, &s));
            }
            truncate_file(path, s.good_end)?;
            report.truncated.push(truncation(path, *n, &s));
        }
        // Only once every check passed, so that a refused open changes nothing.
        remove_tmp_and_covered(dir, &l, &mut report)?;

        let first = wal_files
            .first()
            .map(|f| f.1)
            .unwrap_or_else(|| l.checkpoint.map_or(0, |c| c + 1));
        let current = last.unwrap_or(first);
        let path = segment_path(dir, current);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        let offset = (&file)
            .seek(SeekFrom::End(0))
            .map_err(io_err("seeking", &path))?;
        if opts.sync != SyncPolicy::Never {
            sync_dir(dir)?;
        }
        let file = Arc::new(file);
        let syncer = match opts.sync {
            SyncPolicy::Interval(d) if !d.is_zero() => {
                Some(Syncer::start(d, Arc::clone(&file), path.clone())?)
            }
            _ => None,
        };
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                opts,
                first,
                current,
                file,
                path,
                offset,
                dirty_tail: false,
                buf: Vec::new(),
                compressor: encoding::Compressor::default(),
                syncer,
                checkpoint: l.checkpoint,
                #[cfg(test)]
                fail_write_after: None,
            },
            report,
        ))
    }

    fn every_commit(&self) -> bool {
        match self.opts.sync {
            SyncPolicy::EveryCommit => true,
            SyncPolicy::Interval(d) => d.is_zero(),
            SyncPolicy::Never => false,
        }
    }

    /// Appends one commit's records with a single `write(2)` of their frames. Cuts a new segment
    /// first if the current one would exceed `segment_size`. On error nothing of this commit
    /// remains in the segment (a failed write is cut off again, now or before the next write), so
    /// the caller may treat the commit as not logged.
    pub fn log(&mut self, records: &[Record]) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(s) = &self.syncer {
            s.take_error()?;
        }
        self.buf.clear();
        for (i, r) in records.iter().enumerate() {
            self.compressor
                .encode_frame(&mut self.buf, r, i + 1 < records.len())
                .map_err(|len| WalError::RecordTooLarge { len })?;
        }
        if self.dirty_tail {
            self.truncate_tail()?;
        }
        if self.offset > 0 && self.offset + self.buf.len() as u64 > self.opts.segment_size {
            self.cut_segment()?;
        }
        if let Err(e) = self.write_buf() {
            self.dirty_tail = true;
            // If this fails too, the next call retries before writing anything.
            let _ = self.truncate_tail();
            return Err(io_err("writing", &self.path)(e));
        }
        let written = self.offset + self.buf.len() as u64;
        if self.every_commit()
            && let Err(e) = crate::fault::check(&self.path).and_then(|()| self.file.sync_data())
        {
            // Not durable, so report the commit as failed and take it back out, keeping the
            // promise that an error means "not logged".
            self.dirty_tail = true;
            let _ = self.truncate_tail();
            return Err(io_err("syncing", &self.path)(e));
        }
        self.offset = written;
        if let Some(s) = &self.syncer {
            s.mark_dirty();
        }
        Ok(())
    }

    fn write_buf(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.fail_write_after {
            // Simulates ENOSPC part-way through the commit.
            let n = n.min(self.buf.len());
            (&*self.file).write_all(&self.buf[..n])?;
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected"));
        }
        crate::fault::check(&self.path)?;
        (&*self.file).write_all(&self.buf)
    }

    fn truncate_tail(&mut self) -> Result<(), WalError> {
        self.file
            .set_len(self.offset)
            .map_err(io_err("truncating", &self.path))?;
        (&*self.file)
            .seek(SeekFrom::Start(self.offset))
            .map_err(io_err("seeking", &self.path))?;
        self.dirty_tail = false;
        Ok(())
    }

    /// fsyncs the current segment now, whatever the policy.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if let Some(s) = &self.syncer {
            s.take_error()?;
        }
        self.file.sync_data().map_err(io_err("syncing", &self.path))
    }

    /// Where the next commit will be written: every commit logged so far ends at or before it.
    pub fn position(&self) -> WalPosition {
        WalPosition {
            segment: self.current,
            offset: self.offset,
        }
    }

    /// The first and last segment numbers in the WAL (the last is the one being written).
    pub fn segment_range(&self) -> (u32, u32) {
        (self.first, self.current)
    }

    /// Bytes on disk: the current checkpoint's files, and the segments after it (the active one
    /// included). Files that vanish while being measured count as empty.
    pub fn sizes(&self) -> WalSizes {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let checkpoint = self.checkpoint.map_or(0, |cp| {
            let cdir = checkpoint_path(&self.dir, cp);
            list_segments(&cdir).map_or(0, |ns| {
                ns.iter().map(|&n| len(&segment_path(&cdir, n))).sum()
            })
        });
        let segments = (self.first..=self.current)
            .map(|n| len(&segment_path(&self.dir, n)))
            .sum();
        WalSizes {
            checkpoint,
            segments,
        }
    }

    /// Bytes in segments `from..to` (files that vanish count as empty).
    pub fn segments_size(&self, from: u32, to: u32) -> u64 {
        (from..to)
            .map(|n| std::fs::metadata(segment_path(&self.dir, n)).map_or(0, |m| m.len()))
            .sum()
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finishes the current segment (fsynced unless the policy is [`SyncPolicy::Never`]) and starts
    /// a new, empty one; returns its number.
    pub fn cut_segment(&mut self) -> Result<u32, WalError> {
        if self.dirty_tail {
            self.truncate_tail()?;
        }
        let sync = self.opts.sync != SyncPolicy::Never;
        if sync {
            // Finished segments are not looked at by the sync thread again.
            self.file
                .sync_data()
                .map_err(io_err("syncing", &self.path))?;
        }
        let n = self.current.checked_add(1).ok_or_else(|| {
            io_err("creating", &self.path)(io::Error::other("segment numbers exhausted"))
        })?;
        let path = segment_path(&self.dir, n);
        crate::fault::check(&path).map_err(io_err("creating", &path))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("creating", &path))?;
        if sync && let Err(e) = sync_dir(&self.dir) {
            // Taken back, or the retry's `create_new` of the same number would fail for ever.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.file = Arc::new(file);
        if let Some(s) = &self.syncer {
            s.set_file(Arc::clone(&self.file), path.clone());
        }
        self.path = path;
        self.current = n;
        self.offset = 0;
        Ok(n)
    }

    /// Writes `checkpoint.NNNNNNNN` (NNNNNNNN = `upto`) holding what is still needed from the
    /// previous checkpoint and segments `..=upto`: series for which `keep_series(ref)` is true,
    /// samples of kept series with `t >= keep_samples_after`, tombstones of kept series with
    /// `maxt >= keep_samples_after`. It is written as `checkpoint.NNNNNNNN.tmp`, fsynced, renamed
    /// into place and the directory fsynced; only then are segments `..=upto` and older
    /// checkpoints deleted. A crash at any point leaves either the old state or the new one
    /// (leftovers are removed by the next [`Wal::open`]).
    ///
    /// If `upto` includes the segment being written, a new segment is cut first so that the
    /// active segment is never deleted. Damage in any segment read fails the checkpoint without
    /// deleting anything: dropping data the head still needs is not a checkpoint's decision.
    pub fn checkpoint(
        &mut self,
        upto: u32,
        keep_series: impl Fn(u64) -> bool,
        keep_samples_after: i64,
    ) -> Result<CheckpointStats, WalError> {
        let plan = self.plan_checkpoint(upto)?;
        let stats = plan.write(&keep_series, keep_samples_after)?;
        self.finish_checkpoint(plan, stats)
    }

    /// The quick first part of [`Wal::checkpoint`], done while commits wait: cuts a segment if
    /// `upto` reaches the current one and fixes which files the checkpoint reads. The slow part,
    /// [`CheckpointPlan::write`], then runs without the WAL (the files it reads are closed), and
    /// [`Wal::finish_checkpoint`] deletes what it replaced.
    pub fn plan_checkpoint(&mut self, upto: u32) -> Result<CheckpointPlan, WalError> {
        if let Some(s) = &self.syncer {
            s.take_error()?;
        }
        if upto < self.first {
            return Err(WalError::CheckpointRange {
                upto,
                first: self.first,
            });
        }
        if upto >= self.current {
            self.cut_segment()?;
        }
        let upto = upto.min(self.current - 1);
        let mut sources = Vec::new();
        if let Some(cp) = self.checkpoint {
            let cdir = checkpoint_path(&self.dir, cp);
            for n in list_segments(&cdir)? {
                sources.push((segment_path(&cdir, n), n));
            }
        }
        for n in self.first..=upto {
            sources.push((segment_path(&self.dir, n), n));
        }
        Ok(CheckpointPlan {
            dir: self.dir.clone(),
            sources,
            upto,
            first: self.first,
            segment_size: self.opts.segment_size,
        })
    }

    /// Deletes the segments and older checkpoints a written checkpoint replaces.
    pub fn finish_checkpoint(
        &mut self,
        plan: CheckpointPlan,
        mut stats: CheckpointStats,
    ) -> Result<CheckpointStats, WalError> {
        let upto = plan.upto;
        for n in plan.first..=upto {
            let p = segment_path(&self.dir, n);
            std::fs::remove_file(&p).map_err(io_err("removing", &p))?;
            stats.segments_deleted += 1;
        }
        for c in list_checkpoints(&self.dir)?.done {
            if c < upto {
                let p = checkpoint_path(&self.dir, c);
                std::fs::remove_dir_all(&p).map_err(io_err("removing", &p))?;
                stats.checkpoints_deleted += 1;
            }
        }
        sync_dir(&self.dir)?;
        self.first = upto + 1;
        self.checkpoint = Some(upto);
        Ok(stats)
    }

    /// Flushes the current segment (unless the policy is [`SyncPolicy::Never`]) and closes the WAL,
    /// reporting any error that dropping it would swallow.
    pub fn close(mut self) -> Result<(), WalError> {
        if let Some(s) = self.syncer.take() {
            let err = s.take_error();
            drop(s);
            err?;
        }
        if self.opts.sync != SyncPolicy::Never {
            self.file
                .sync_data()
                .map_err(io_err("syncing", &self.path))?;
        }
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Stop the thread first so that it never syncs a file after we are gone; a final fsync
        // on a clean shutdown makes the loss bound zero there. Errors have nowhere to go: callers
        // that care use `close`.
        drop(self.syncer.take());
        if self.opts.sync != SyncPolicy::Never {
            let _ = self.file.sync_data();
        }
    }
}

/// Checkpoints are flushed in ~1 MiB writes: one is built once and published atomically, so there
/// are no per-commit durability points to respect inside it.
const CHECKPOINT_FLUSH_AT: usize = 1 << 20;

/// Segment writer for a checkpoint under construction.
struct CheckpointWriter {
    dir: PathBuf,
    segment_size: u64,
    n: u32,
    file: Option<(File, PathBuf)>,
    offset: u64,
    total: u64,
}

impl CheckpointWriter {
    fn new(dir: &Path, segment_size: u64) -> CheckpointWriter {
        CheckpointWriter {
            dir: dir.to_path_buf(),
            segment_size,
            n: 0,
            file: None,
            offset: 0,
            total: 0,
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), WalError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.file.is_some()
            && self.offset > 0
            && self.offset + buf.len() as u64 > self.segment_size
        {
            self.finish_file()?;
            self.n += 1;
        }
        if self.file.is_none() {
            let p = segment_path(&self.dir, self.n);
            crate::fault::check(&p).map_err(io_err("creating", &p))?;
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(io_err("creating", &p))?;
            self.file = Some((f, p));
            self.offset = 0;
        }
        if let Some((f, p)) = &mut self.file {
            crate::fault::check(p)
                .and_then(|()| f.write_all(buf))
                .map_err(io_err("writing", p))?;
        }
        self.offset += buf.len() as u64;
        self.total += buf.len() as u64;
        Ok(())
    }

    fn finish_file(&mut self) -> Result<(), WalError> {
        if let Some((f, p)) = self.file.take() {
            f.sync_all().map_err(io_err("syncing", &p))?;
        }
        Ok(())
    }
}

fn write_checkpoint(
    tmp: &Path,
    sources: &[(PathBuf, u32)],
    segment_size: u64,
    keep_series: &impl Fn(u64) -> bool,
    mint: i64,
    stats: &mut CheckpointStats,
) -> Result<(), WalError> {
    let mut w = CheckpointWriter::new(tmp, segment_size);
    let mut out = Vec::new();
    let mut compressor = encoding::Compressor::default();
    let mut write_err = None;
    for (path, n) in sources {
        let s = scan(path, |ty, payload, _| {
            let rec = encoding::decode(ty, payload).map_err(|e| e.to_string())?;
            let kept = match rec {
                Record::Series(mut v) => {
                    let before = v.len() as u64;
                    stats.series_total += before;
                    v.retain(|s| keep_series(s.r));
                    stats.series_dropped += before - v.len() as u64;
                    Record::Series(v)
                }
                Record::Samples(mut v) => {
                    let before = v.len() as u64;
                    stats.samples_total += before;
                    v.retain(|s| s.t >= mint && keep_series(s.r));
                    stats.samples_dropped += before - v.len() as u64;
                    Record::Samples(v)
                }
                Record::Tombstones(mut v) => {
                    let before = v.len() as u64;
                    stats.tombstones_total += before;
                    v.retain(|&(r, _, maxt)| maxt >= mint && keep_series(r));
                    stats.tombstones_dropped += before - v.len() as u64;
                    Record::Tombstones(v)
                }
                Record::Chunks(mut v) => {
                    v.retain(|c| keep_series(c.r));
                    Record::Chunks(v)
                }
            };
            let empty = match &kept {
                Record::Series(v) => v.is_empty(),
                Record::Samples(v) => v.is_empty(),
                Record::Tombstones(v) => v.is_empty(),
                Record::Chunks(v) => v.is_empty(),
            };
            if !empty {
                // A subset's plain encoding is no longer than the record's plain encoding, which
                // fitted a frame (a compressed frame's decompressed length is bounded by 4 GiB),
                // and the compressor never writes more than the plain encoding.
                let _ = compressor.encode_frame(&mut out, &kept, false);
            }
            if out.len() >= CHECKPOINT_FLUSH_AT {
                if let Err(e) = w.write(&out) {
                    write_err = Some(e);
                    return Err("checkpoint write failed".into());
                }
                out.clear();
            }
            Ok(())
        });
        if let Some(e) = write_err.take() {
            return Err(e);
        }
        let s = s?;
        if !s.is_clean() {
            return Err(corrupt(path, *n, &s));
        }
    }
    w.write(&out)?;
    w.finish_file()?;
    stats.bytes_written = w.total;
    Ok(())
}

/// Replays the WAL in `dir`: the newest checkpoint (if any), then every later segment in order,
/// calling `f` once per record. Records of a commit are delivered only once the whole commit has
/// been read, so a torn commit is never half-applied.
///
/// Damage in the last segment (the last holding data, as for [`Wal::open`]) ends replay there and is described in
/// [`ReplayReport::corrupt`] (the next [`Wal::open`] cuts it off). Damage anywhere else, or a
/// missing segment, is an error: replaying past it would hide a gap. A commit written whole (its
/// CRCs match) that does not decode is skipped whole and counted in
/// [`ReplayReport::undecodable_commits`]; the commits after it are delivered. A directory that does
/// not exist replays as empty.
pub fn replay(dir: &Path, mut f: impl FnMut(Record)) -> Result<ReplayReport, WalError> {
    let mut report = ReplayReport::default();
    if !dir.exists() {
        return Ok(report);
    }
    let l = layout(dir)?;
    report.checkpoint = l.checkpoint;
    let tail = tail_segment(&l)?;
    let mut pending: Vec<Record> = Vec::new();
    for (path, n, is_wal) in &l.files {
        pending.clear();
        let mut undecodable = false;
        let s = scan(path, |ty, payload, last| {
            match encoding::decode(ty, payload) {
                Ok(rec) => pending.push(rec),
                Err(e) => {
                    undecodable = true;
                    report
                        .undecodable
                        .get_or_insert_with(|| format!("segment {n}: {e}"));
                }
            }
            if last && std::mem::take(&mut undecodable) {
                // Never half-applied: the commit goes whole, as a torn one does.
                pending.clear();
                report.undecodable_commits += 1;
            }
            if last {
                for rec in pending.drain(..) {
                    report.records += 1;
                    match &rec {
                        Record::Series(v) => report.series += v.len() as u64,
                        Record::Samples(v) => report.samples += v.len() as u64,
                        Record::Tombstones(v) => report.tombstones += v.len() as u64,
                        Record::Chunks(v) => report.chunks += v.len() as u64,
                    }
                    f(rec);
                }
            }
            Ok(())
        })?;
        report.bytes += s.file_len;
        report.segments += 1;
        if !s.is_clean() {
            if *is_wal && tail.is_some_and(|t| *n >= t) {
                report.corrupt = Some(format!("segment {n}: {}", s.describe()));
                break;
            }
            return Err(corrupt(path, *n, &s));
        }
    }
    Ok(report)
}
