//! Persistent blocks: an immutable directory holding the series and samples of one time range.
//!
//! The head hands its series to [`write_block`]; blocks are later merged by [`compact`]. An open
//! [`Block`] memory-maps its `index` and `samples` files and reads them in place, so its RAM is a
//! few hundred bytes whatever its size. Each series' samples are two pco streams: timestamps, and
//! values as decimal mantissas (or raw floats); series scraped together share one timestamp
//! stream. Reading a series decodes just its two streams straight from the map. The byte layout is
//! specified in `storage/FORMAT-block.md`; the encodings measured against it are in the bench and
//! `experiments.rs`.

mod codec;
#[cfg(test)]
mod corpus;
#[cfg(test)]
mod experiments;
mod index;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use edgeprom_model::Labels;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::deadline::{Deadline, DeadlineExceeded, Ticker};
use crate::index::Matcher;
use index::{
    FILE_HEADER_LEN, FORMAT_VERSION, INDEX_MAGIC, IndexHeader, IndexReader, SAMPLES_MAGIC,
    SeriesRef,
};

/// Name of the block's metadata file.
pub const META_FILE: &str = "meta.json";
/// Name of the block's index file.
pub const INDEX_FILE: &str = "index";
/// Name of the block's sample data file.
pub const SAMPLES_FILE: &str = "samples";
/// Suffix of a block directory still being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// What `meta.json` holds: the block's identity, time range and lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// 26-character, time-sortable, unique id (ULID layout); also the directory name.
    pub id: String,
    /// Start of the time range, inclusive, in ms.
    pub min_time: i64,
    /// End of the time range, exclusive, in ms (as in Prometheus).
    pub max_time: i64,
    /// Number of series stored.
    pub num_series: u64,
    /// Number of samples stored.
    pub num_samples: u64,
    /// Compaction level: 1 for a block written from the head, one more than its inputs' highest
    /// level after a compaction.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds.
    pub sources: Vec<String>,
}

/// Why a block could not be written, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's checksum, magic, version or structure is wrong.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// `meta.json` does not parse.
    #[error("{path}: invalid JSON: {source}")]
    Meta {
        /// The meta file.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The series handed to the writer break its contract (order, time range).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The sample encoder refused the input (never seen; pco fails only on invalid settings).
    #[error("encoding samples: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlockError + '_ {
    move |source| BlockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> BlockError {
    BlockError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Crockford's base32, as ULIDs use.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID-layout id: 48 bits of milliseconds then 80 random bits, in 26 base32 characters.
/// Within one process ids are strictly increasing even within one millisecond (the random part
/// is incremented), so blocks written back to back still sort in write order.
fn new_block_id() -> String {
    static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = (now.as_millis() as u64) & ((1 << 48) - 1);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let (ms, rand) = if ms <= last.0 {
        (last.0, last.1.wrapping_add(1) & ((1 << 80) - 1))
    } else {
        // splitmix64 over time and pid: ids only need to differ, not to be unpredictable.
        let mut seed = now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        let mut next = || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        // The top bit stays clear so that increments within a millisecond cannot wrap.
        let r = ((u128::from(next()) << 64) | u128::from(next())) & ((1 << 79) - 1);
        (ms, r)
    };
    *last = (ms, rand);
    let v = (u128::from(ms) << 80) | rand;
    (0..26)
        .rev()
        .map(|i| CROCKFORD[((v >> (5 * i)) & 31) as usize] as char)
        .collect()
}

/// Writes a file and fsyncs it.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BlockError> {
    crate::fault::check(path).map_err(io_err(path))?;
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn sync_dir(path: &Path) -> Result<(), BlockError> {
    crate::fault::check(path).map_err(io_err(path))?;
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))
}

/// The samples file being written: a buffered file, its running CRC and length.
struct SamplesWriter {
    path: PathBuf,
    out: BufWriter<File>,
    crc: u32,
    len: u64,
}

impl SamplesWriter {
    fn create(path: PathBuf) -> Result<SamplesWriter, BlockError> {
        crate::fault::check(&path).map_err(io_err(&path))?;
        let f = File::create(&path).map_err(io_err(&path))?;
        let mut w = SamplesWriter {
            path,
            out: BufWriter::with_capacity(256 << 10, f),
            crc: 0,
            len: 0,
        };
        let mut header = SAMPLES_MAGIC.to_le_bytes().to_vec();
        header.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        crate::fault::check(&self.path).map_err(io_err(&self.path))?;
        self.out.write_all(b).map_err(io_err(&self.path))?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.len += b.len() as u64;
        Ok(())
    }

    /// Appends a stream; returns its offset and length.
    fn append(&mut self, b: &[u8]) -> Result<(u64, u64), BlockError> {
        let at = self.len;
        self.write(b)?;
        Ok((at, b.len() as u64))
    }

    fn finish(mut self) -> Result<u64, BlockError> {
        let crc = self.crc;
        self.write(&crc.to_le_bytes())?;
        let f = self
            .out
            .into_inner()
            .map_err(|e| io_err(&self.path)(e.into_error()))?;
        f.sync_all().map_err(io_err(&self.path))?;
        Ok(self.len)
    }
}

/// Writes a block from series sorted by labels, each with samples sorted by time within
/// `[mint, maxt)`. Written into `<parent>/<id>.tmp`, fsynced, then renamed to `<parent>/<id>`: a
/// half-written block is never visible; a crash leaves only a `.tmp` dir that [`cleanup_tmp`]
/// removes. Series without samples are skipped.
pub fn write_block(
    parent: &Path,
    series: impl Iterator<Item = (Labels, Vec<(i64, f64)>)>,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
) -> Result<BlockMeta, BlockError> {
    write_block_with(parent, series.map(Ok), mint, maxt, level, sources)
}

/// [`write_block`] over fallible input: compaction reads its input from other blocks.
pub(crate) fn write_block_with(
    parent: &Path,
    series: impl Iterator<Item = Result<(Labels, Vec<(i64, f64)>), BlockError>>,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
) -> Result<BlockMeta, BlockError> {
    if mint > maxt {
        return Err(BlockError::InvalidInput(format!(
            "time range [{mint}, {maxt}) is reversed"
        )));
    }
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let id = new_block_id();
    let tmp = parent.join(format!("{id}{TMP_SUFFIX}"));
    crate::fault::check(&tmp).map_err(io_err(&tmp))?;
    fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let dst = parent.join(&id);
    let written = write_tmp(&tmp, &id, series, mint, maxt, level, sources)
        .and_then(|meta| sync_dir(&tmp).map(|()| meta))
        .and_then(|meta| {
            crate::fault::check(&dst)
                .and_then(|()| fs::rename(&tmp, &dst))
                .map_err(io_err(&dst))?;
            Ok(meta)
        });
    let meta = match written {
        Ok(meta) => meta,
        Err(e) => {
            // On a full disk a leftover would hold the space the retry needs; `cleanup_tmp`
            // removes what this cannot (after a crash).
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = sync_dir(parent) {
        // The rename may not survive a power loss, and the caller treats an error as "no block":
        // take it back so that a retry does not leave two copies.
        let _ = fs::remove_dir_all(&dst);
        return Err(e);
    }
    Ok(meta)
}

/// Series encoded together, half of them on a second thread: encoding is most of the cost of
/// writing a block, and a block written from the head or an import would otherwise use one core.
const ENCODE_BATCH: usize = 512;

type Encoded = (Vec<u8>, Vec<u8>);

/// The timestamp and value streams of each series of `batch`, in order.
fn encode_batch(batch: &[(Labels, Vec<(i64, f64)>)]) -> Result<Vec<Encoded>, BlockError> {
    fn encode(part: &[(Labels, Vec<(i64, f64)>)]) -> Result<Vec<Encoded>, BlockError> {
        part.iter()
            .map(|(_, s)| {
                let ts: Vec<i64> = s.iter().map(|x| x.0).collect();
                let vs: Vec<f64> = s.iter().map(|x| x.1).collect();
                Ok((
                    codec::encode_timestamps_pco(&ts).map_err(BlockError::Encode)?,
                    codec::encode_values_pco(&vs).map_err(BlockError::Encode)?,
                ))
            })
            .collect()
    }
    if batch.len() < 16 {
        return encode(batch);
    }
    let (a, b) = batch.split_at(batch.len() / 2);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| encode(b));
        let mut out = encode(a)?;
        let rest = second
            .join()
            .map_err(|_| BlockError::InvalidInput("block encoder thread panicked".into()))??;
        out.extend(rest);
        Ok(out)
    })
}

fn write_tmp(
    tmp: &Path,
    id: &str,
    series: impl Iterator<Item = Result<(Labels, Vec<(i64, f64)>), BlockError>>,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
) -> Result<BlockMeta, BlockError> {
    let mut samples = SamplesWriter::create(tmp.join(SAMPLES_FILE))?;
    // Series of one target share their scrape times, so identical timestamp streams are stored
    // once and referenced by every series that has them.
    let mut ts_streams: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut entries: Vec<(Labels, SeriesRef)> = Vec::new();
    let mut num_samples = 0u64;
    let mut series = series.peekable();
    let mut batch: Vec<(Labels, Vec<(i64, f64)>)> = Vec::with_capacity(ENCODE_BATCH);
    while series.peek().is_some() {
        batch.clear();
        while batch.len() < ENCODE_BATCH
            && let Some(item) = series.next()
        {
            let (labels, s) = item?;
            let prev = batch.last().map(|b| &b.0).or(entries.last().map(|e| &e.0));
            if let Some(prev) = prev
                && *prev >= labels
            {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels} is not after {prev} in label order"
                )));
            }
            let (Some(first), Some(last)) = (s.first(), s.last()) else {
                continue;
            };
            if first.0 < mint || last.0 >= maxt {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels} has samples outside [{mint}, {maxt})"
                )));
            }
            if s.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels} has samples out of time order or at a repeated timestamp"
                )));
            }
            batch.push((labels, s));
        }
        let encoded = encode_batch(&batch)?;
        for ((labels, s), encoded) in batch.drain(..).zip(encoded) {
            let (ts_bytes, val_bytes) = encoded;
            let ts_ref = match ts_streams.get(&ts_bytes) {
                Some(&r) => r,
                None => {
                    let r = samples.append(&ts_bytes)?;
                    ts_streams.insert(ts_bytes, r);
                    r
                }
            };
            let val_ref = samples.append(&val_bytes)?;
            let (first, last) = (s[0].0, s[s.len() - 1].0);
            entries.push((
                labels,
                SeriesRef {
                    ts: ts_ref,
                    values: val_ref,
                    mint: first,
                    maxt: last,
                    samples: s.len() as u64,
                },
            ));
            num_samples += s.len() as u64;
        }
    }
    drop(ts_streams);
    samples.finish()?;

    let meta = BlockMeta {
        id: id.to_string(),
        min_time: mint,
        max_time: maxt,
        num_series: entries.len() as u64,
        num_samples,
        level,
        sources,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|source| BlockError::Meta {
        path: tmp.join(META_FILE),
        source,
    })?;
    let index = index::build_index(&entries, crc32c::crc32c(&meta_json))
        .map_err(BlockError::InvalidInput)?;
    write_file(&tmp.join(INDEX_FILE), &index)?;
    write_file(&tmp.join(META_FILE), &meta_json)?;
    Ok(meta)
}

/// Removes every `<id>.tmp` directory under `parent` (blocks a crash left half-written); returns
/// how many were removed. A missing `parent` counts as empty.
pub fn cleanup_tmp(parent: &Path) -> Result<usize, BlockError> {
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(parent)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_err(parent))?;
        let path = entry.path();
        let is_tmp = entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX);
        if is_tmp && entry.file_type().map_err(io_err(&path))?.is_dir() {
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(parent)?;
    }
    Ok(removed)
}

/// Maps a block file read-only after checking its length, magic, version and trailing CRC32C.
fn map_checked(path: &Path, magic: u32) -> Result<Mmap, BlockError> {
    let f = File::open(path).map_err(io_err(path))?;
    // SAFETY: block files are immutable once the block directory is renamed into place, and this
    // code never writes or truncates them; an outside process doing so is outside the contract.
    let map = unsafe { Mmap::map(&f) }.map_err(io_err(path))?;
    if map.len() < FILE_HEADER_LEN + 4 {
        return Err(corrupt(
            path,
            format!("file of {} bytes is too short", map.len()),
        ));
    }
    let (body, tail) = map.split_at(map.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Err(corrupt(
            path,
            format!("checksum mismatch: stored CRC32C {stored:08x}, computed {actual:08x}"),
        ));
    }
    if body[..4] != magic.to_le_bytes() {
        return Err(corrupt(path, "bad magic number"));
    }
    if body[4] != FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!("unsupported format version {}", body[4]),
        ));
    }
    Ok(map)
}

/// An opened block: its files memory-mapped read-only and read in place.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: Mmap,
    samples: Mmap,
    header: IndexHeader,
    size: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Block {
    /// Opens the block in `dir`, verifying `meta.json` (its CRC32C is recorded in the index) and
    /// every file's checksum. An error names the file and what failed.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta_path = dir.join(META_FILE);
        let index_path = dir.join(INDEX_FILE);
        let samples_path = dir.join(SAMPLES_FILE);
        let meta_bytes = fs::read(&meta_path).map_err(io_err(&meta_path))?;
        let meta: BlockMeta =
            serde_json::from_slice(&meta_bytes).map_err(|source| BlockError::Meta {
                path: meta_path.clone(),
                source,
            })?;
        let index = map_checked(&index_path, INDEX_MAGIC)?;
        let samples = map_checked(&samples_path, SAMPLES_MAGIC)?;
        let idx_body = &index[..index.len() - 4];
        let header =
            IndexHeader::parse(idx_body).map_err(|e| corrupt(&index_path, e.0.to_string()))?;
        if header.meta_crc != crc32c::crc32c(&meta_bytes) {
            return Err(corrupt(
                &meta_path,
                "checksum does not match the one recorded in the index",
            ));
        }
        if dir.file_name().and_then(|n| n.to_str()) != Some(meta.id.as_str()) {
            return Err(corrupt(
                &meta_path,
                format!("id {} is not the directory name", meta.id),
            ));
        }
        if header.num_series as u64 != meta.num_series {
            return Err(corrupt(
                &index_path,
                format!(
                    "{} series, meta.json says {}",
                    header.num_series, meta.num_series
                ),
            ));
        }
        Ok(Block {
            dir: dir.to_path_buf(),
            size: (meta_bytes.len() + index.len() + samples.len()) as u64,
            meta,
            index,
            samples,
            header,
        })
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of all the block's files.
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    fn reader(&self) -> IndexReader<'_> {
        IndexReader {
            data: &self.index[..self.index.len() - 4],
            h: &self.header,
        }
    }

    /// Reports a structure error found after the checksums passed (a bug or a file changed under
    /// the map); queries then see the affected part as empty rather than failing.
    fn warn(&self, what: &str, e: &codec::DecodeError) {
        tracing::warn!(block = %self.dir.display(), "block read failed: {what}: {}", e.0);
    }

    /// Sorted ids of the series satisfying every matcher, with Prometheus's semantics: a matcher
    /// that matches `""` also selects series lacking the label.
    fn select_ids(&self, matchers: &[Matcher], ticks: &mut Ticker) -> Result<Vec<u32>, Stop> {
        let r = self.reader();
        let mut positive: Vec<Vec<u32>> = Vec::new();
        let mut negative: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            if m.matches_everything() {
                continue;
            }
            let want_matching = !m.matches_empty();
            let name = r.find_name(m.name())?;
            let mut lists = Vec::new();
            if let Some(n) = name {
                // For `=`, `=~"a|b"` (and the rejected set of `!=`, `!~"a|b"`) look up only the
                // literal values instead of testing every value of the name.
                let set = (m.kind().is_negative() != want_matching)
                    .then(|| m.literal_set())
                    .flatten();
                match set {
                    Some(set) => {
                        for v in set {
                            if let Some((_, at, len)) = r.find_value(&n, v)? {
                                lists.push(r.postings(at, len)?);
                            }
                        }
                    }
                    None => {
                        for (v, at, len) in r.values(&n)? {
                            ticks.tick()?;
                            if m.matches(r.symbol(v)?) == want_matching {
                                lists.push(r.postings(at, len)?);
                            }
                        }
                    }
                }
            }
            if want_matching {
                if lists.is_empty() {
                    return Ok(Vec::new());
                }
                positive.push(union(lists));
            } else {
                negative.extend(lists);
            }
        }
        positive.sort_by_key(Vec::len);
        let mut it = positive.into_iter();
        let mut out = match it.next() {
            Some(first) => it.fold(first, |acc, l| intersect(&acc, &l)),
            None => (0..self.header.num_series as u32).collect(),
        };
        if !negative.is_empty() {
            let neg = union(negative);
            out = without(out, &neg);
        }
        Ok(out)
    }

    /// Series matching all `matchers` whose samples overlap `[mint, maxt]`, sorted by labels.
    /// Samples are decoded when [`BlockSeries::samples`] is called.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<BlockSeries<'_>> {
        // Without a deadline the walk cannot stop early.
        self.select_until(matchers, mint, maxt, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Block::select`], giving up once `deadline` passes.
    pub fn select_until(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        deadline: Deadline,
    ) -> Result<Vec<BlockSeries<'_>>, DeadlineExceeded> {
        if mint > maxt || self.meta.max_time <= mint || self.meta.min_time > maxt {
            return Ok(Vec::new());
        }
        let mut ticks = deadline.ticker();
        let ids = match self.select_ids(matchers, &mut ticks) {
            Ok(ids) => ids,
            Err(Stop::Deadline(e)) => return Err(e),
            Err(Stop::Decode(e)) => {
                self.warn("postings", &e);
                return Ok(Vec::new());
            }
        };
        let r = self.reader();
        let mut out = Vec::new();
        for id in ids {
            ticks.tick()?;
            let read = r.series(id).and_then(|(ids, sr)| Ok((r.labels(&ids)?, sr)));
            let (labels, sr) = match read {
                Ok(x) => x,
                Err(e) => {
                    self.warn("series entry", &e);
                    continue;
                }
            };
            if sr.maxt < mint || sr.mint > maxt {
                continue;
            }
            out.push(BlockSeries {
                labels,
                block: self,
                series: sr,
                mint,
                maxt,
            });
        }
        Ok(out)
    }

    /// Sorted label names of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_names_until(matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Block::label_names`], giving up once `deadline` passes.
    pub fn label_names_until(
        &self,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let r = self.reader();
        let mut ticks = deadline.ticker();
        let res = (|| -> Result<Vec<String>, Stop> {
            if matchers.is_empty() {
                return Ok(r
                    .names()?
                    .iter()
                    .map(|n| r.symbol(n.name).map(str::to_string))
                    .collect::<Result<_, _>>()?);
            }
            let mut names = BTreeSet::new();
            for id in self.select_ids(matchers, &mut ticks)? {
                ticks.tick()?;
                names.extend(r.series(id)?.0.into_iter().map(|(n, _)| n));
            }
            // Symbol ids sort like their strings.
            Ok(names
                .into_iter()
                .map(|n| r.symbol(n).map(str::to_string))
                .collect::<Result<_, _>>()?)
        })();
        self.settle("label names", res)
    }

    /// Sorted values of label `name` over the series matching `matchers` (all series when empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_values_until(name, matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`Block::label_values`], giving up once `deadline` passes.
    pub fn label_values_until(
        &self,
        name: &str,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let r = self.reader();
        let mut ticks = deadline.ticker();
        let res = (|| -> Result<Vec<String>, Stop> {
            let Some(n) = r.find_name(name)? else {
                return Ok(Vec::new());
            };
            let values = r.values(&n)?;
            let keep: Vec<u32> = if matchers.is_empty() {
                values.iter().map(|v| v.0).collect()
            } else {
                let selected = self.select_ids(matchers, &mut ticks)?;
                let mut keep = Vec::new();
                for (v, at, len) in values {
                    ticks.tick()?;
                    if !intersect(&selected, &r.postings(at, len)?).is_empty() {
                        keep.push(v);
                    }
                }
                keep
            };
            Ok(keep
                .into_iter()
                .map(|v| r.symbol(v).map(str::to_string))
                .collect::<Result<_, _>>()?)
        })();
        self.settle("label values", res)
    }

    /// A read's result as its callers see it: a decode error is warned about and reads as
    /// nothing (see [`Block::warn`]); a passed deadline is passed on.
    fn settle<T: Default>(&self, what: &str, res: Result<T, Stop>) -> Result<T, DeadlineExceeded> {
        match res {
            Ok(v) => Ok(v),
            Err(Stop::Deadline(e)) => Err(e),
            Err(Stop::Decode(e)) => {
                self.warn(what, &e);
                Ok(T::default())
            }
        }
    }

    /// A stream of the samples file, range-checked.
    fn stream(&self, (at, len): (u64, u64)) -> Result<&[u8], codec::DecodeError> {
        let end = self.samples.len() - 4;
        usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok())
            .filter(|&(a, l)| a >= FILE_HEADER_LEN && a.checked_add(l).is_some_and(|e| e <= end))
            .map(|(a, l)| &self.samples[a..a + l])
            .ok_or(codec::DecodeError("stream lies outside the samples file"))
    }

    /// Decodes all samples of a series.
    fn decode(&self, sr: &SeriesRef) -> Result<Vec<(i64, f64)>, codec::DecodeError> {
        let n = usize::try_from(sr.samples).map_err(|_| codec::DecodeError("sample count"))?;
        let ts = codec::decode_timestamps_pco(self.stream(sr.ts)?, n)?;
        let vs = codec::decode_values_pco(self.stream(sr.values)?, n)?;
        Ok(ts.into_iter().zip(vs).collect())
    }

    /// Every series with all its samples, in label order.
    pub(crate) fn all_series(
        &self,
    ) -> impl Iterator<Item = Result<(Labels, Vec<(i64, f64)>), BlockError>> + '_ {
        let index_path = self.dir.join(INDEX_FILE);
        let samples_path = self.dir.join(SAMPLES_FILE);
        (0..self.header.num_series as u32).map(move |id| {
            let r = self.reader();
            let (ids, sr) = r
                .series(id)
                .map_err(|e| corrupt(&index_path, e.0.to_string()))?;
            let labels = r
                .labels(&ids)
                .map_err(|e| corrupt(&index_path, e.0.to_string()))?;
            let samples = self
                .decode(&sr)
                .map_err(|e| corrupt(&samples_path, e.0.to_string()))?;
            Ok((labels, samples))
        })
    }
}

/// One series returned by [`Block::select`].
pub struct BlockSeries<'a> {
    /// The series' labels.
    pub labels: Labels,
    block: &'a Block,
    series: SeriesRef,
    mint: i64,
    maxt: i64,
}

impl std::fmt::Debug for BlockSeries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSeries")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl<'a> BlockSeries<'a> {
    /// The series' samples within `[mint, maxt]` of the select call, in time order. A series
    /// whose bytes fail to decode (impossible after `open`'s checksums unless the files changed
    /// underneath) yields nothing and logs a warning.
    pub fn samples(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let decoded = self.block.decode(&self.series).unwrap_or_else(|e| {
            self.block.warn("series samples", &e);
            Vec::new()
        });
        let (mint, maxt) = (self.mint, self.maxt);
        decoded
            .into_iter()
            .filter(move |&(t, _)| t >= mint && t <= maxt)
    }
}

/// Sorted union of sorted lists.
fn union(mut lists: Vec<Vec<u32>>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            let mut all: Vec<u32> = lists.into_iter().flatten().collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn without(mut a: Vec<u32>, b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.retain(|&x| {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        !(j < b.len() && b[j] == x)
    });
    a
}

/// Merges `blocks` (overlapping or adjacent) into one new block under `parent` at level max+1,
/// covering the union of their time ranges; sources are the union of theirs. Series with the same
/// labels are merged; of samples at the same timestamp the one from the block earliest in `blocks`
/// is kept. The input blocks are left in place for the caller to delete.
pub fn compact(parent: &Path, blocks: &[&Block]) -> Result<BlockMeta, BlockError> {
    if blocks.is_empty() {
        return Err(BlockError::InvalidInput(
            "compact needs at least one block".into(),
        ));
    }
    let mint = blocks.iter().map(|b| b.meta.min_time).min().unwrap_or(0);
    let maxt = blocks.iter().map(|b| b.meta.max_time).max().unwrap_or(0);
    let level = blocks.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
    let sources: BTreeSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta.sources.iter().cloned())
        .collect();
    let mut inputs: Vec<_> = blocks.iter().map(|b| b.all_series().peekable()).collect();
    let merged = std::iter::from_fn(move || {
        // Surface the first read error as the merged stream's item.
        for it in inputs.iter_mut() {
            if let Some(Err(_)) = it.peek() {
                return it.next();
            }
        }
        let smallest = inputs
            .iter_mut()
            .filter_map(|it| match it.peek() {
                Some(Ok((l, _))) => Some(l.clone()),
                _ => None,
            })
            .min()?;
        let mut samples: Vec<(i64, f64)> = Vec::new();
        for it in inputs.iter_mut() {
            if let Some(Ok((l, _))) = it.peek()
                && *l == smallest
                && let Some(Ok((_, s))) = it.next()
            {
                samples.extend(s);
            }
        }
        // Stable sort then dedup keeps the first block's sample at a repeated timestamp.
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
        Some(Ok((smallest, samples)))
    });
    write_block_with(
        parent,
        merged,
        mint,
        maxt,
        level,
        sources.into_iter().collect(),
    )
}

/// A series of a block held through an `Arc`, for query results that outlive the `select` call;
/// samples are decoded when asked for.
#[derive(Clone)]
pub(crate) struct SharedBlockSeries {
    block: std::sync::Arc<Block>,
    series: SeriesRef,
    mint: i64,
    maxt: i64,
}

impl SharedBlockSeries {
    /// The series' samples within the select range, in time order.
    pub(crate) fn samples(&self) -> Vec<(i64, f64)> {
        let mut decoded = self.block.decode(&self.series).unwrap_or_else(|e| {
            self.block.warn("series samples", &e);
            Vec::new()
        });
        decoded.retain(|&(t, _)| t >= self.mint && t <= self.maxt);
        decoded
    }
}

/// [`Block::select`] for a shared block: the same series, detached from the borrow.
pub(crate) fn select_shared(
    block: &std::sync::Arc<Block>,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    deadline: Deadline,
) -> Result<Vec<(Labels, SharedBlockSeries)>, DeadlineExceeded> {
    Ok(block
        .select_until(matchers, mint, maxt, deadline)?
        .into_iter()
        .map(|s| {
            let shared = SharedBlockSeries {
                block: block.clone(),
                series: s.series,
                mint: s.mint,
                maxt: s.maxt,
            };
            (s.labels, shared)
        })
        .collect())
}

/// Why a block read stopped early.
enum Stop {
    /// The block's bytes did not decode.
    Decode(codec::DecodeError),
    /// The caller's deadline passed.
    Deadline(DeadlineExceeded),
}

impl From<codec::DecodeError> for Stop {
    fn from(e: codec::DecodeError) -> Stop {
        Stop::Decode(e)
    }
}

impl From<DeadlineExceeded> for Stop {
    fn from(e: DeadlineExceeded) -> Stop {
        Stop::Deadline(e)
    }
}
