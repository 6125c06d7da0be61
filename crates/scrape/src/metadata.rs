//! Per-target metric metadata (`# HELP`, `# TYPE`, `# UNIT`) kept from scrapes, as Prometheus's
//! scrape cache keeps it for `/api/v1/metadata` and `/api/v1/targets/metadata`.
//!
//! The scrape loop owns a [`MetadataCache`]; readers see an immutable snapshot that is rebuilt
//! only when an entry was added, changed or expired, so a scrape of an unchanged body neither
//! allocates nor takes a lock for metadata.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edgeprom_model::MetricType;

/// A metric family's metadata as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    /// The family name as written in the HELP/TYPE/UNIT line.
    pub metric_family: String,
    /// The declared type (`unknown` when only HELP or UNIT was seen).
    pub kind: MetricType,
    /// The help text, unescaped.
    pub help: String,
    /// The unit (OpenMetrics only).
    pub unit: String,
}

/// A target's metadata, sorted by family name, shared with readers.
pub type MetadataSnapshot = Arc<[MetricMetadata]>;

/// Prometheus keeps a family's metadata for this many successful scrapes after its last
/// HELP/TYPE/UNIT line, so a family that flaps does not vanish from the API at once.
const KEEP_ITERATIONS: u64 = 10;

#[derive(Debug)]
struct Entry {
    kind: MetricType,
    help: Box<str>,
    unit: Box<str>,
    last_iter: u64,
}

/// The loop-owned metadata of one target plus the snapshot readers see.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    entries: HashMap<Box<str>, Entry>,
    iter: u64,
    dirty: bool,
    published: Arc<Mutex<MetadataSnapshot>>,
}

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            kind: MetricType::Unknown,
            help: Box::from(""),
            unit: Box::from(""),
            last_iter: 0,
        }
    }
}

impl MetadataCache {
    /// The handle readers keep; it always holds the latest published snapshot.
    pub(crate) fn handle(&self) -> Arc<Mutex<MetadataSnapshot>> {
        self.published.clone()
    }

    /// Applies `change` to the entry of `family` (created, the one allocation, only when new);
    /// `change` says whether it modified anything.
    fn update(&mut self, family: &str, change: impl FnOnce(&mut Entry) -> bool) {
        let iter = self.iter;
        let changed = match self.entries.get_mut(family) {
            Some(e) => {
                e.last_iter = iter;
                change(e)
            }
            None => {
                let mut e = Entry {
                    last_iter: iter,
                    ..Entry::default()
                };
                change(&mut e);
                self.entries.insert(Box::from(family), e);
                true
            }
        };
        self.dirty |= changed;
    }

    /// Records a `# TYPE` line.
    pub(crate) fn set_type(&mut self, family: &str, kind: MetricType) {
        self.update(family, |e| {
            let changed = e.kind != kind;
            e.kind = kind;
            changed
        });
    }

    /// Records a `# HELP` line.
    pub(crate) fn set_help(&mut self, family: &str, help: &str) {
        self.update(family, |e| {
            if *e.help == *help {
                return false;
            }
            e.help = Box::from(help);
            true
        });
    }

    /// Records a `# UNIT` line.
    pub(crate) fn set_unit(&mut self, family: &str, unit: &str) {
        self.update(family, |e| {
            if *e.unit == *unit {
                return false;
            }
            e.unit = Box::from(unit);
            true
        });
    }

    /// Ends a successful scrape: drops families not declared for [`KEEP_ITERATIONS`] scrapes and
    /// publishes a new snapshot if anything changed.
    pub(crate) fn scrape_done(&mut self) {
        let iter = self.iter;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| iter.saturating_sub(e.last_iter) <= KEEP_ITERATIONS);
        if self.entries.len() != before {
            self.dirty = true;
        }
        self.iter += 1;
        self.publish();
    }

    /// Publishes the current entries if they changed since the last snapshot (also used after
    /// a failed scrape, whose HELP/TYPE lines Prometheus has already applied).
    pub(crate) fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let mut list: Vec<MetricMetadata> = self
            .entries
            .iter()
            .map(|(name, e)| MetricMetadata {
                metric_family: name.to_string(),
                kind: e.kind,
                help: e.help.to_string(),
                unit: e.unit.to_string(),
            })
            .collect();
        list.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = list.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(c: &MetadataCache) -> MetadataSnapshot {
        c.handle().lock().expect("lock").clone()
    }

    #[test]
    fn snapshots_change_only_when_metadata_does() {
        let mut c = MetadataCache::default();
        c.set_help("a", "Help of a.");
        c.set_type("a", MetricType::Counter);
        c.set_help("b", "only help");
        c.scrape_done();
        let first = snapshot(&c);
        assert_eq!(
            *first,
            [
                MetricMetadata {
                    metric_family: "a".into(),
                    kind: MetricType::Counter,
                    help: "Help of a.".into(),
                    unit: String::new(),
                },
                MetricMetadata {
                    metric_family: "b".into(),
                    kind: MetricType::Unknown,
                    help: "only help".into(),
                    unit: String::new(),
                },
            ]
        );
        // The same lines again: the very same snapshot stays published.
        c.set_help("a", "Help of a.");
        c.set_type("a", MetricType::Counter);
        c.set_help("b", "only help");
        c.scrape_done();
        assert!(Arc::ptr_eq(&first, &snapshot(&c)));
        c.set_unit("a", "seconds");
        c.scrape_done();
        assert_eq!(snapshot(&c)[0].unit, "seconds");
    }

    #[test]
    fn families_expire_ten_scrapes_after_their_last_declaration() {
        let mut c = MetadataCache::default();
        c.set_type("gone", MetricType::Gauge);
        c.scrape_done();
        for _ in 0..10 {
            c.set_type("kept", MetricType::Gauge);
            c.scrape_done();
        }
        assert_eq!(snapshot(&c).len(), 2);
        c.scrape_done();
        let names: Vec<String> = snapshot(&c)
            .iter()
            .map(|m| m.metric_family.clone())
            .collect();
        assert_eq!(names, ["kept"]);
    }
}
