//! Deleted time ranges of series (`delete_series`), hidden from every read until
//! `clean_tombstones` rewrites the blocks that hold them.
//!
//! Prometheus keeps tombstones per block and per head series ref. edgeprom keeps one list for the
//! whole data directory, keyed by label set: a label set names the same series in the head and in
//! every block, so one lookup serves a query that merges them. The list lives in `tombstones.json`
//! (format in `storage/FORMAT.md`), replaced atomically on every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use edgeprom_model::Labels;
use serde::{Deserialize, Serialize};

/// File name under the data directory.
pub(crate) const FILE: &str = "tombstones.json";

/// Why the tombstone file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TombstoneError {
    /// Reading, writing or renaming the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a tombstone list.
    #[error("{path}: not a tombstone file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    series: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    labels: BTreeMap<String, String>,
    /// Inclusive `[mint, maxt]` pairs in milliseconds, sorted and disjoint.
    intervals: Vec<(i64, i64)>,
}

/// Deleted ranges by series.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tombstones {
    /// Sorted, disjoint, non-adjacent inclusive intervals per series.
    by_series: BTreeMap<Labels, Vec<(i64, i64)>>,
}

impl Tombstones {
    /// Reads `dir/tombstones.json`; no file means no tombstones.
    pub(crate) fn load(dir: &Path) -> Result<Tombstones, TombstoneError> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tombstones::default()),
            Err(source) => return Err(TombstoneError::Io { path, source }),
        };
        let corrupt = |reason: String| TombstoneError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: FileFormat = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.version != 1 {
            return Err(corrupt(format!("unknown version {}", file.version)));
        }
        let mut t = Tombstones::default();
        for e in file.series {
            let labels = Labels::from_pairs(e.labels);
            for (mint, maxt) in e.intervals {
                if mint > maxt {
                    return Err(corrupt(format!("interval [{mint}, {maxt}] is reversed")));
                }
                t.add(labels.clone(), mint, maxt);
            }
        }
        Ok(t)
    }

    /// Writes `dir/tombstones.json` through a temporary file, fsynced and renamed into place, so
    /// a crash leaves the old list or the new one. An empty list removes the file.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), TombstoneError> {
        let path = dir.join(FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TombstoneError::Io { path, source }
        };
        if self.by_series.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
                _ => Ok(()),
            };
        }
        let file = FileFormat {
            version: 1,
            series: self
                .by_series
                .iter()
                .map(|(labels, intervals)| Entry {
                    labels: labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    intervals: intervals.clone(),
                })
                .collect(),
        };
        let tmp = dir.join(format!("{FILE}.tmp"));
        let bytes = serde_json::to_vec(&file).map_err(|e| TombstoneError::Corrupt {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        crate::fault::check(&tmp).map_err(io(&tmp))?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Makes the rename durable; a failure only widens the power-loss window.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Whether nothing is deleted (the common case: reads skip all lookups).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// Marks `[mint, maxt]` (inclusive) of `labels` deleted, merging with overlapping or adjacent
    /// ranges.
    pub(crate) fn add(&mut self, labels: Labels, mint: i64, maxt: i64) {
        let list = self.by_series.entry(labels).or_default();
        list.push((mint, maxt));
        list.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(list.len());
        for &(a, b) in list.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *list = merged;
    }

    /// The deleted ranges of `labels`, if any.
    pub(crate) fn get(&self, labels: &Labels) -> Option<&[(i64, i64)]> {
        self.by_series.get(labels).map(Vec::as_slice)
    }

    /// Every series with deleted ranges.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Labels, &[(i64, i64)])> {
        self.by_series.iter().map(|(l, v)| (l, v.as_slice()))
    }

    /// Forgets every deleted range before `t`: once blocks have been rewritten without the data,
    /// only ranges the head may still hold (at or after its oldest sample) need hiding.
    #[cfg(test)]
    pub(crate) fn clip_before(&mut self, t: i64) {
        self.clip_before_if(t, |_, _| true);
    }

    /// [`Tombstones::clip_before`] for the ranges `cleaned` says the rewrite covered.
    pub(crate) fn clip_before_if(
        &mut self,
        t: i64,
        cleaned: impl Fn(&Labels, &(i64, i64)) -> bool,
    ) {
        self.by_series.retain(|labels, list| {
            list.retain_mut(|iv| {
                if !cleaned(labels, iv) {
                    return true;
                }
                if iv.1 < t {
                    return false;
                }
                iv.0 = iv.0.max(t);
                true
            });
            !list.is_empty()
        });
    }
}

/// Whether `t` falls into one of the sorted, disjoint `intervals`.
pub(crate) fn covered(intervals: &[(i64, i64)], t: i64) -> bool {
    let i = intervals.partition_point(|&(_, maxt)| maxt < t);
    intervals.get(i).is_some_and(|&(mint, _)| mint <= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("a", v)])
    }

    #[test]
    fn ranges_merge_and_cover_inclusively() {
        let mut t = Tombstones::default();
        t.add(l("x"), 10, 20);
        t.add(l("x"), 21, 30);
        t.add(l("x"), 50, 60);
        t.add(l("x"), 55, 70);
        assert_eq!(t.get(&l("x")), Some(&[(10, 30), (50, 70)][..]));
        assert_eq!(t.get(&l("y")), None);
        let iv = t.get(&l("x")).unwrap_or_default();
        for (ts, want) in [
            (9, false),
            (10, true),
            (30, true),
            (31, false),
            (70, true),
            (71, false),
        ] {
            assert_eq!(covered(iv, ts), want, "t={ts}");
        }
        t.clip_before(25);
        assert_eq!(t.get(&l("x")), Some(&[(25, 30), (50, 70)][..]));
        t.clip_before(71);
        assert!(t.is_empty());
    }

    #[test]
    fn the_file_round_trips_and_bad_content_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Tombstones::default();
        t.add(l("x\"y"), i64::MIN, i64::MAX);
        t.add(l("z"), -5, 5);
        t.save(d.path()).unwrap();
        let back = Tombstones::load(d.path()).unwrap();
        assert_eq!(back.by_series, t.by_series);
        Tombstones::default().save(d.path()).unwrap();
        assert!(!d.path().join(FILE).exists());
        assert!(Tombstones::load(d.path()).unwrap().is_empty());
        std::fs::write(d.path().join(FILE), b"{\"version\":1,\"series\":[{").unwrap();
        assert!(matches!(
            Tombstones::load(d.path()),
            Err(TombstoneError::Corrupt { .. })
        ));
    }
}
