//! edgeprom's storage engine.
//!
//! Today this is the in-memory *head*: every committed batch becomes visible atomically, series are
//! identified by their sorted label set, and out-of-order or conflicting samples are refused per sample
//! as Prometheus refuses them. It keeps nothing across restarts yet: the WAL, memory-mapped chunks and
//! blocks described in the storage issue replace the sample vectors behind the same [`Appendable`] API.

#![warn(missing_docs)]

pub mod chunk;
pub mod index;
pub mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use edgeprom_model::{AppendError, Appendable, Appender, Labels, Sample, SeriesRef};

/// Why the storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data directory could not be created.
    #[error("creating data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Options fixed when the storage is opened.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Samples older than the newest sample minus this many milliseconds are dropped; 0 keeps everything.
    pub retention_ms: i64,
}

struct MemSeries {
    labels: Labels,
    samples: Vec<Sample>,
}

impl MemSeries {
    /// Prometheus's rule: a sample older than the newest is out of order; one at the same timestamp is
    /// accepted only if it carries the same value (bit-for-bit, so repeated NaNs and stale markers pass).
    fn check(&self, t: i64, v: f64) -> Result<(), AppendError> {
        match self.samples.last() {
            Some(last) if t < last.t => Err(AppendError::OutOfOrder),
            Some(last) if t == last.t && last.v.to_bits() != v.to_bits() => {
                Err(AppendError::DuplicateSample)
            }
            _ => Ok(()),
        }
    }
}

/// The storage engine handle shared by scrape loops and (later) queries.
pub struct Storage {
    dir: PathBuf,
    options: Options,
    index: RwLock<HashMap<Labels, SeriesRef>>,
    series: RwLock<Vec<Mutex<MemSeries>>>,
}

impl Storage {
    /// Opens (creating if needed) the storage under `dir`.
    pub fn open(dir: &Path, options: Options) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Storage {
            dir: dir.to_path_buf(),
            options,
            index: RwLock::new(HashMap::new()),
            series: RwLock::new(Vec::new()),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of series ever created.
    pub fn num_series(&self) -> usize {
        read(&self.series).len()
    }

    /// Every series' labels, in creation order.
    pub fn series_labels(&self) -> Vec<Labels> {
        read(&self.series)
            .iter()
            .map(|s| lock(s).labels.clone())
            .collect()
    }

    /// The samples of the series with exactly `labels` within `[mint, maxt]`, stale markers included.
    pub fn samples(&self, labels: &Labels, mint: i64, maxt: i64) -> Vec<Sample> {
        let Some(r) = read(&self.index).get(labels).copied() else {
            return Vec::new();
        };
        let series = read(&self.series);
        let Some(s) = series.get(r.0 as usize) else {
            return Vec::new();
        };
        lock(s)
            .samples
            .iter()
            .filter(|s| s.t >= mint && s.t <= maxt)
            .copied()
            .collect()
    }

    /// Drops samples older than the retention window, measured back from `now_ms`.
    pub fn apply_retention(&self, now_ms: i64) {
        if self.options.retention_ms <= 0 {
            return;
        }
        let cutoff = now_ms - self.options.retention_ms;
        for s in read(&self.series).iter() {
            let mut s = lock(s);
            let keep_from = s.samples.partition_point(|x| x.t < cutoff);
            s.samples.drain(..keep_from);
        }
    }

    fn get_or_create(&self, labels: &Labels) -> Result<SeriesRef, AppendError> {
        if let Some(r) = read(&self.index).get(labels) {
            return Ok(*r);
        }
        validate(labels)?;
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = index.get(labels) {
            return Ok(*r);
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let r = SeriesRef(series.len() as u64);
        series.push(Mutex::new(MemSeries {
            labels: labels.clone(),
            samples: Vec::new(),
        }));
        index.insert(labels.clone(), r);
        Ok(r)
    }
}

fn validate(labels: &Labels) -> Result<(), AppendError> {
    if labels.metric_name().is_empty() {
        return Err(AppendError::InvalidSeries(
            labels.to_string(),
            "no metric name",
        ));
    }
    Ok(())
}

// A poisoned lock only means another appender panicked mid-update; every update here is a single
// push or drain, so the data is still consistent and refusing all later writes would lose more.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Appendable for Storage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(HeadAppender {
            storage: self,
            pending: Vec::new(),
            newest: HashMap::new(),
        })
    }
}

struct HeadAppender<'a> {
    storage: &'a Storage,
    pending: Vec<(SeriesRef, Sample)>,
    newest: HashMap<SeriesRef, Sample>,
}

impl Appender for HeadAppender<'_> {
    fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let r = match hint {
            Some(r) if self.hint_matches(r, labels) => r,
            _ => self.storage.get_or_create(labels)?,
        };
        // Within one batch the newest pending sample of the series counts as its last sample.
        if let Some(prev) = self.newest.get(&r) {
            if t < prev.t {
                return Err(AppendError::OutOfOrder);
            }
            if t == prev.t && prev.v.to_bits() != v.to_bits() {
                return Err(AppendError::DuplicateSample);
            }
        } else {
            let series = read(&self.storage.series);
            if let Some(s) = series.get(r.0 as usize) {
                lock(s).check(t, v)?;
            }
        }
        self.pending.push((r, Sample { t, v }));
        self.newest.insert(r, Sample { t, v });
        Ok(r)
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        let series = read(&self.storage.series);
        for (r, sample) in self.pending {
            let Some(s) = series.get(r.0 as usize) else {
                continue;
            };
            let mut s = lock(s);
            // Another batch may have appended to the series since our check; re-check so that the
            // per-series order invariant holds whatever the interleaving of commits. An identical
            // sample at the newest timestamp is accepted but stored once.
            let repeat = s.samples.last().is_some_and(|l| l.t == sample.t);
            if s.check(sample.t, sample.v).is_ok() && !repeat {
                s.samples.push(sample);
            }
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

impl HeadAppender<'_> {
    fn hint_matches(&self, r: SeriesRef, labels: &Labels) -> bool {
        read(&self.storage.series)
            .get(r.0 as usize)
            .is_some_and(|s| lock(s).labels == *labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (Storage, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "edgeprom-storage-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        (Storage::open(&dir, Options::default()).unwrap(), dir)
    }

    fn up() -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", "a")])
    }

    #[test]
    fn batch_is_invisible_until_commit_and_gone_after_rollback() {
        let (s, _) = open();
        let mut app = s.appender();
        app.append(None, &up(), 1000, 1.0).unwrap();
        assert!(s.samples(&up(), 0, i64::MAX).is_empty());
        app.rollback();
        assert!(s.samples(&up(), 0, i64::MAX).is_empty());

        let mut app = s.appender();
        app.append(None, &up(), 1000, 1.0).unwrap();
        app.commit().unwrap();
        assert_eq!(
            s.samples(&up(), 0, i64::MAX),
            vec![Sample { t: 1000, v: 1.0 }]
        );
    }

    #[test]
    fn out_of_order_and_duplicates_are_refused_per_sample() {
        let (s, _) = open();
        let mut app = s.appender();
        let r = app.append(None, &up(), 2000, 1.0).unwrap();
        app.commit().unwrap();
        let mut app = s.appender();
        assert!(matches!(
            app.append(Some(r), &up(), 1000, 1.0),
            Err(AppendError::OutOfOrder)
        ));
        assert!(matches!(
            app.append(Some(r), &up(), 2000, 2.0),
            Err(AppendError::DuplicateSample)
        ));
        // Same timestamp, same value: accepted and stored once.
        app.append(Some(r), &up(), 2000, 1.0).unwrap();
        app.append(Some(r), &up(), 3000, 3.0).unwrap();
        app.commit().unwrap();
        assert_eq!(s.samples(&up(), 0, i64::MAX).len(), 2);
    }

    #[test]
    fn a_wrong_hint_never_attaches_a_sample_to_another_series() {
        let (s, _) = open();
        let other = Labels::from_pairs([("__name__", "other")]);
        let mut app = s.appender();
        let r = app.append(None, &other, 1000, 1.0).unwrap();
        app.append(Some(r), &up(), 1000, 5.0).unwrap();
        app.commit().unwrap();
        assert_eq!(
            s.samples(&up(), 0, i64::MAX),
            vec![Sample { t: 1000, v: 5.0 }]
        );
        assert_eq!(
            s.samples(&other, 0, i64::MAX),
            vec![Sample { t: 1000, v: 1.0 }]
        );
    }

    #[test]
    fn retention_drops_old_samples() {
        let dir = std::env::temp_dir().join(format!("edgeprom-retention-{}", std::process::id()));
        let s = Storage::open(&dir, Options { retention_ms: 1000 }).unwrap();
        let mut app = s.appender();
        for t in [0, 500, 1500, 2500] {
            app.append(None, &up(), t, 1.0).unwrap();
        }
        app.commit().unwrap();
        s.apply_retention(2500);
        let ts: Vec<i64> = s.samples(&up(), 0, i64::MAX).iter().map(|s| s.t).collect();
        assert_eq!(ts, [1500, 2500]);
    }

    #[test]
    fn series_without_a_name_are_refused() {
        let (s, _) = open();
        let mut app = s.appender();
        assert!(matches!(
            app.append(None, &Labels::from_pairs([("a", "b")]), 0, 1.0),
            Err(AppendError::InvalidSeries(..))
        ));
    }
}
