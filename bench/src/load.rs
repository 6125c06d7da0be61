//! Loading a corpus into the storage engine the way the scraper appends: samples in file order
//! (which the corpus writes in timestamp order), one commit per (target, scrape timestamp), series
//! refs cached by the raw series text and passed back as hints.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use edgeprom_exposition::{Entry, Format, Parser};
use edgeprom_model::{Appendable, Appender, Labels, SeriesRef};
use edgeprom_storage::Storage;

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The corpus does not parse as OpenMetrics.
    #[error("corpus: {0}")]
    Parse(#[from] edgeprom_exposition::ParseError),
    /// A sample has no timestamp; a corpus line must carry one.
    #[error("corpus line {0}: sample without a timestamp")]
    NoTimestamp(String),
    /// The storage refused a batch.
    #[error("append: {0}")]
    Append(#[from] edgeprom_model::AppendError),
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Samples the storage accepted.
    pub samples: u64,
    /// Samples it refused one by one (out of order, duplicates).
    pub rejected: u64,
    /// Distinct series.
    pub series: usize,
    /// Commits (one per target scrape).
    pub commits: u64,
    /// Time spent parsing and appending.
    pub elapsed: Duration,
}

/// One scrape cache entry: the engine's ref, the labels (needed on a hint miss) and the target.
struct Cached {
    r: Option<SeriesRef>,
    labels: Labels,
    target: u32,
}

/// Parses `body` (OpenMetrics) and appends it to `storage`, committing whenever the target or the
/// timestamp changes — exactly the batches a scrape loop would hand the engine.
pub fn load(storage: &Storage, body: &[u8]) -> Result<LoadReport, LoadError> {
    let start = Instant::now();
    let mut parser = Parser::new(body, Format::OpenMetrics)?;
    let mut cache: HashMap<&str, Cached> = HashMap::new();
    let mut targets: HashMap<(String, String), u32> = HashMap::new();
    let mut report = LoadReport::default();
    let mut app: Option<Box<dyn Appender + '_>> = None;
    let mut batch_key: Option<(u32, i64)> = None;
    while let Some(entry) = parser.next()? {
        let Entry::Series(s) = entry else { continue };
        let t = s
            .timestamp_ms()
            .ok_or_else(|| LoadError::NoTimestamp(s.raw().to_string()))?;
        let c = cache.entry(s.raw()).or_insert_with(|| {
            let labels = s.to_labels();
            let key = (
                labels.get("job").unwrap_or("").to_string(),
                labels.get("instance").unwrap_or("").to_string(),
            );
            let next = targets.len() as u32;
            let target = *targets.entry(key).or_insert(next);
            Cached {
                r: None,
                labels,
                target,
            }
        });
        let key = (c.target, t);
        if batch_key != Some(key) {
            if let Some(a) = app.take() {
                a.commit()?;
                report.commits += 1;
            }
            batch_key = Some(key);
        }
        let a = app.get_or_insert_with(|| storage.appender());
        match a.append(c.r, &c.labels, t, s.value()) {
            Ok(r) => {
                c.r = Some(r);
                report.samples += 1;
            }
            Err(e) if e.is_per_sample() => report.rejected += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(a) = app.take() {
        a.commit()?;
        report.commits += 1;
    }
    report.series = cache.len();
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Where the bytes of a data directory are, after the steps that shape it on disk.
#[derive(Debug, Clone, Default)]
pub struct SizeReport {
    /// The whole directory.
    pub total: crate::sys::DirSize,
    /// `wal/`.
    pub wal: crate::sys::DirSize,
    /// `chunks_head/`.
    pub chunks_head: crate::sys::DirSize,
    /// Blocks written by the flush: (id, bytes).
    pub blocks: Vec<(String, u64)>,
}

/// Brings the directory to the state its size is measured in, then measures it: the head is
/// flushed into blocks (one per 2 h block range the corpus touches) and the WAL checkpointed, as
/// `promtool tsdb create-blocks-from` leaves Prometheus's data directory.
pub fn settle_and_measure(storage: &Storage) -> std::io::Result<SizeReport> {
    storage
        .flush_head()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    storage
        .sync()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = storage.dir();
    let part = |p: &str| {
        let d: &Path = &dir.join(p);
        if d.exists() {
            crate::sys::dir_size(d)
        } else {
            Ok(crate::sys::DirSize::default())
        }
    };
    Ok(SizeReport {
        total: crate::sys::dir_size(dir)?,
        wal: part("wal")?,
        chunks_head: part("chunks_head")?,
        blocks: storage
            .block_list()
            .into_iter()
            .map(|(id, _, _, bytes)| (id, bytes))
            .collect(),
    })
}
