//! In-memory exemplar storage with Prometheus's semantics (`--enable-feature=exemplar-storage`):
//! one bounded circular buffer shared by every series, the oldest exemplar overwritten first.
//!
//! Each series with exemplars has a singly linked list through the buffer, oldest to newest, so
//! a query walks only its series' entries. Because exemplars are only ever added at the newest end
//! of their series (an older one is refused as out of order, Prometheus's behaviour without an
//! out-of-order window) and the buffer is overwritten in insertion order, the entry overwritten
//! is always the oldest of its series.

use std::collections::HashMap;
use std::sync::RwLock;

use edgeprom_model::Labels;

/// OpenMetrics: the label names and values of an exemplar together hold at most 128 UTF-8
/// characters.
pub const MAX_LABEL_SET_CHARS: usize = 128;

/// One exemplar: its own labels (e.g. `trace_id`), value and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's labels.
    pub labels: Labels,
    /// The exemplar's value.
    pub value: f64,
    /// Milliseconds: the exposed timestamp, or the scrape's when none was exposed.
    pub ts: i64,
    /// Whether the target exposed the timestamp.
    pub has_ts: bool,
}

impl Exemplar {
    /// Prometheus's equality for deduplication: same labels and value, and the same timestamp
    /// unless neither was exposed (then the scrape time differs on every scrape but the
    /// exemplar is the same one seen again).
    pub fn same_as(&self, other: &Exemplar) -> bool {
        if self.labels != other.labels {
            return false;
        }
        if (self.has_ts || other.has_ts) && self.ts != other.ts {
            return false;
        }
        self.value == other.value
    }
}

/// Why an exemplar was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    /// Older than the newest exemplar of its series.
    #[error("out of order exemplar")]
    OutOfOrder,
    /// The label set is longer than OpenMetrics allows.
    #[error("exemplar label set exceeds {MAX_LABEL_SET_CHARS} characters")]
    LabelLength,
    /// The buffer has room for no exemplar (`max_exemplars` ≤ 0).
    #[error("exemplar storage is disabled")]
    Disabled,
}

/// What [`ExemplarWriter::add`] did with an exemplar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Stored as the series' newest.
    New,
    /// The same as the series' newest exemplar: nothing to do.
    Duplicate,
}

/// A series' exemplars in a query answer, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    /// The series' labels.
    pub series: Labels,
    /// Its exemplars within the queried range.
    pub exemplars: Vec<Exemplar>,
}

/// Counters and gauges Prometheus exports as `prometheus_tsdb_exemplar_*`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExemplarStats {
    /// Capacity of the buffer.
    pub max_exemplars: usize,
    /// Exemplars held.
    pub exemplars_in_storage: usize,
    /// Series with at least one exemplar held.
    pub series_with_exemplars: usize,
    /// Exemplars stored since start.
    pub appended_total: u64,
    /// Exemplars refused as out of order since start.
    pub out_of_order_total: u64,
    /// Timestamp (ms) of the newest exemplar written to the buffer, 0 when none.
    pub last_ts: i64,
}

const NONE: usize = usize::MAX;

#[derive(Debug)]
struct Slot {
    exemplar: Exemplar,
    /// Index into `Inner::series`, `NONE` while the slot is free.
    series: usize,
    /// The next (newer) exemplar of the same series.
    next: usize,
}

#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    oldest: usize,
    newest: usize,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Slot>,
    capacity: usize,
    /// Where the next exemplar goes; the slot there is the oldest once the buffer has wrapped.
    next: usize,
    series: Vec<Option<SeriesEntry>>,
    free_series: Vec<usize>,
    index: HashMap<Labels, usize>,
    len: usize,
    appended_total: u64,
    out_of_order_total: u64,
    last_ts: i64,
}

/// The shared exemplar store: scrape loops write, `/api/v1/query_exemplars` reads.
#[derive(Debug, Default)]
pub struct ExemplarStorage {
    inner: RwLock<Inner>,
}

impl ExemplarStorage {
    /// A store holding at most `max_exemplars` exemplars (≤ 0: none, as Prometheus allows).
    pub fn new(max_exemplars: i64) -> ExemplarStorage {
        let s = ExemplarStorage::default();
        s.resize(max_exemplars);
        s
    }

    /// Changes the capacity (a reload of `storage.exemplars.max_exemplars`), keeping the newest
    /// exemplars that fit, in the order they were added.
    pub fn resize(&self, max_exemplars: i64) {
        let capacity = usize::try_from(max_exemplars.max(0)).unwrap_or(usize::MAX);
        let mut inner = self.write();
        if capacity == inner.capacity {
            return;
        }
        let old = std::mem::take(&mut *inner);
        let kept = old.in_insertion_order();
        let skip = kept.len().saturating_sub(capacity);
        *inner = Inner {
            capacity,
            slots: Vec::with_capacity(capacity.min(1 << 16)),
            appended_total: old.appended_total,
            out_of_order_total: old.out_of_order_total,
            last_ts: old.last_ts,
            ..Inner::default()
        };
        for (series, e) in kept.into_iter().skip(skip) {
            inner.push(&series, e);
        }
    }

    /// A writer for one scrape's exemplars, holding the lock until dropped.
    pub fn writer(&self) -> ExemplarWriter<'_> {
        ExemplarWriter {
            inner: self.write(),
        }
    }

    /// Exemplars with `start ≤ ts ≤ end` of the series `select` accepts, sorted by series labels.
    pub fn select(
        &self,
        start: i64,
        end: i64,
        select: impl Fn(&Labels) -> bool,
    ) -> Vec<SeriesExemplars> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for s in inner.series.iter().flatten() {
            if inner.slots[s.oldest].exemplar.ts > end || inner.slots[s.newest].exemplar.ts < start
            {
                continue;
            }
            if !select(&s.labels) {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut i = s.oldest;
            while i != NONE {
                let e = &inner.slots[i].exemplar;
                if e.ts > end {
                    break;
                }
                if e.ts >= start {
                    exemplars.push(e.clone());
                }
                i = inner.slots[i].next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    series: s.labels.clone(),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }

    /// Current size and totals, for the self-metrics.
    pub fn stats(&self) -> ExemplarStats {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        ExemplarStats {
            max_exemplars: inner.capacity,
            exemplars_in_storage: inner.len,
            series_with_exemplars: inner.index.len(),
            appended_total: inner.appended_total,
            out_of_order_total: inner.out_of_order_total,
            last_ts: inner.last_ts,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // The structure is consistent between statements that can panic; keep serving.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds exemplars under one lock (one scrape's worth).
pub struct ExemplarWriter<'a> {
    inner: std::sync::RwLockWriteGuard<'a, Inner>,
}

impl ExemplarWriter<'_> {
    /// Adds `e` to the series `series`, unless it repeats the series' newest exemplar. Clones
    /// (reference-count bumps) only when it is stored.
    pub fn add(&mut self, series: &Labels, e: &Exemplar) -> Result<Added, ExemplarError> {
        let inner = &mut *self.inner;
        if inner.capacity == 0 {
            return Err(ExemplarError::Disabled);
        }
        let chars: usize = e
            .labels
            .iter()
            .map(|l| l.name.chars().count() + l.value.chars().count())
            .sum();
        if chars > MAX_LABEL_SET_CHARS {
            return Err(ExemplarError::LabelLength);
        }
        if let Some(&s) = inner.index.get(series)
            && let Some(entry) = &inner.series[s]
        {
            let newest = &inner.slots[entry.newest].exemplar;
            if newest.same_as(e) {
                return Ok(Added::Duplicate);
            }
            // Prometheus orders exemplars of equal timestamp by value (then labels), so a
            // second exemplar at the same time is kept only if it sorts after the newest.
            let older = e.ts < newest.ts
                || (e.ts == newest.ts
                    && (e.value < newest.value
                        || (e.value == newest.value && e.labels < newest.labels)));
            if older {
                inner.out_of_order_total += 1;
                return Err(ExemplarError::OutOfOrder);
            }
        }
        inner.push(series, e.clone());
        Ok(Added::New)
    }
}

impl Inner {
    /// Writes `e` at `next`, evicting the slot's previous exemplar (always its series' oldest).
    fn push(&mut self, series: &Labels, e: Exemplar) {
        let pos = self.next;
        if pos < self.slots.len() {
            self.evict(pos);
        }
        let s = match self.index.get(series) {
            Some(&s) => s,
            None => {
                let entry = SeriesEntry {
                    labels: series.clone(),
                    oldest: pos,
                    newest: pos,
                };
                let s = match self.free_series.pop() {
                    Some(s) => {
                        self.series[s] = Some(entry);
                        s
                    }
                    None => {
                        self.series.push(Some(entry));
                        self.series.len() - 1
                    }
                };
                self.index.insert(series.clone(), s);
                s
            }
        };
        self.last_ts = e.ts;
        let slot = Slot {
            exemplar: e,
            series: s,
            next: NONE,
        };
        if pos < self.slots.len() {
            self.slots[pos] = slot;
        } else {
            self.slots.push(slot);
        }
        if let Some(entry) = self.series[s].as_mut()
            && entry.newest != pos
        {
            let prev = entry.newest;
            entry.newest = pos;
            self.slots[prev].next = pos;
        }
        self.len += 1;
        self.appended_total += 1;
        self.next = (pos + 1) % self.capacity;
    }

    /// Frees slot `pos`, unlinking it from the front of its series' list.
    fn evict(&mut self, pos: usize) {
        let s = self.slots[pos].series;
        if s == NONE {
            return;
        }
        self.slots[pos].series = NONE;
        self.len -= 1;
        let next = self.slots[pos].next;
        let Some(entry) = self.series[s].as_mut() else {
            return;
        };
        if next == NONE {
            let labels = entry.labels.clone();
            self.series[s] = None;
            self.free_series.push(s);
            self.index.remove(&labels);
        } else {
            entry.oldest = next;
        }
    }

    /// Every held exemplar with its series, oldest written first.
    fn in_insertion_order(&self) -> Vec<(Labels, Exemplar)> {
        let n = self.slots.len();
        let mut out = Vec::with_capacity(self.len);
        for k in 0..n {
            // Once the buffer is full, `next` is the oldest slot; before, slot 0 is.
            let pos = if n == self.capacity {
                (self.next + k) % n
            } else {
                k
            };
            let slot = &self.slots[pos];
            if let Some(Some(entry)) = self.series.get(slot.series) {
                out.push((entry.labels.clone(), slot.exemplar.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(trace: &str, value: f64, ts: i64, has_ts: bool) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", trace)]),
            value,
            ts,
            has_ts,
        }
    }

    fn series(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", "j")])
    }

    fn all(s: &ExemplarStorage) -> Vec<(String, Vec<(String, i64)>)> {
        s.select(i64::MIN, i64::MAX, |_| true)
            .into_iter()
            .map(|r| {
                (
                    r.series.metric_name().to_string(),
                    r.exemplars
                        .iter()
                        .map(|e| (e.labels.get("trace_id").unwrap_or("").to_string(), e.ts))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn identical_consecutive_exemplars_are_stored_once() {
        let s = ExemplarStorage::new(10);
        let mut w = s.writer();
        assert_eq!(
            w.add(&series("a"), &ex("t1", 1.0, 1000, false)),
            Ok(Added::New)
        );
        // Without exposed timestamps the scrape time differs but it is the same exemplar.
        assert_eq!(
            w.add(&series("a"), &ex("t1", 1.0, 2000, false)),
            Ok(Added::Duplicate)
        );
        // With one, a new timestamp is a new exemplar.
        assert_eq!(
            w.add(&series("a"), &ex("t1", 1.0, 3000, true)),
            Ok(Added::New)
        );
        assert_eq!(
            w.add(&series("a"), &ex("t1", 1.0, 3000, true)),
            Ok(Added::Duplicate)
        );
        assert_eq!(
            w.add(&series("a"), &ex("t2", 1.0, 3500, true)),
            Ok(Added::New)
        );
        assert_eq!(
            w.add(&series("a"), &ex("t3", 1.0, 100, true)),
            Err(ExemplarError::OutOfOrder)
        );
        drop(w);
        assert_eq!(
            all(&s),
            [(
                "a".into(),
                vec![
                    ("t1".into(), 1000),
                    ("t1".into(), 3000),
                    ("t2".into(), 3500)
                ]
            )]
        );
        assert_eq!(s.stats().out_of_order_total, 1);
    }

    #[test]
    fn the_oldest_exemplar_is_overwritten_and_empty_series_vanish() {
        let s = ExemplarStorage::new(3);
        let mut w = s.writer();
        for (i, name) in ["a", "b", "a", "c"].iter().enumerate() {
            let t = i as i64 * 1000;
            w.add(&series(name), &ex(&format!("t{i}"), 1.0, t, true))
                .expect("added");
        }
        drop(w);
        // a's first exemplar went; b's only one is still there.
        assert_eq!(
            all(&s),
            [
                ("a".into(), vec![("t2".into(), 2000)]),
                ("b".into(), vec![("t1".into(), 1000)]),
                ("c".into(), vec![("t3".into(), 3000)]),
            ]
        );
        s.writer()
            .add(&series("c"), &ex("t4", 1.0, 4000, true))
            .expect("added");
        // b lost its only exemplar, so the series is gone from the index.
        assert_eq!(s.stats().series_with_exemplars, 2);
        assert_eq!(s.stats().exemplars_in_storage, 3);
        let in_range = s.select(2500, 3500, |_| true);
        assert_eq!(in_range.len(), 1);
        assert_eq!(in_range[0].exemplars[0].ts, 3000);
        let only_a = s.select(i64::MIN, i64::MAX, |l| l.metric_name() == "a");
        assert_eq!(only_a.len(), 1);
    }

    #[test]
    fn resize_keeps_the_newest_and_zero_disables() {
        let s = ExemplarStorage::new(4);
        let mut w = s.writer();
        for i in 0..6 {
            w.add(&series("a"), &ex(&format!("t{i}"), 1.0, i * 1000, true))
                .expect("added");
        }
        drop(w);
        s.resize(2);
        assert_eq!(
            all(&s),
            [("a".into(), vec![("t4".into(), 4000), ("t5".into(), 5000)])]
        );
        s.resize(10);
        s.writer()
            .add(&series("a"), &ex("t6", 1.0, 6000, true))
            .expect("added");
        assert_eq!(all(&s)[0].1.len(), 3);
        s.resize(0);
        assert!(all(&s).is_empty());
        assert_eq!(
            s.writer().add(&series("a"), &ex("t7", 1.0, 7000, true)),
            Err(ExemplarError::Disabled)
        );
    }

    #[test]
    fn long_label_sets_are_refused() {
        let s = ExemplarStorage::new(4);
        // `trace_id` plus 120 characters is exactly the 128 allowed; one more is refused.
        let e = ex(&"é".repeat(120), 1.0, 1, true);
        assert_eq!(s.writer().add(&series("a"), &e), Ok(Added::New));
        let e = ex(&"x".repeat(121), 1.0, 2, true);
        assert_eq!(
            s.writer().add(&series("a"), &e),
            Err(ExemplarError::LabelLength)
        );
    }
}
