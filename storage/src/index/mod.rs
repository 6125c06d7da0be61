//! The head's in-memory series index and label matchers.
//!
//! Every label name and value is interned once ([`Symbols`]); a series' labels are a boxed slice of
//! symbol-id pairs ([`SymbolLabels`]); postings map a name id and a value id to the sorted refs of the
//! series carrying that pair, as Prometheus's `MemPostings` does. Selection follows Prometheus's
//! `PostingsForMatchers`: a matcher that cannot match `""` intersects, one that can subtracts the
//! series whose value it rejects, and series lacking a label are treated as having the value `""`.

mod fastregex;
mod matcher;
mod postings;
mod symbols;
#[cfg(test)]
mod tests;

use std::hash::BuildHasher;

use edgeprom_model::Labels;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

pub use matcher::{MatchType, Matcher, MatcherError};

use crate::deadline::{Deadline, DeadlineExceeded, Ticker};
pub use symbols::{SymbolLabels, Symbols};

/// Removed series whose refs are still in postings lists; past this (plus a quarter of the live
/// series) the lists are swept in one pass, so removal costs amortised O(labels) instead of a
/// memmove of every list it touches.
const PURGE_SLACK: usize = 1024;

/// Cardinality figures for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Live series.
    pub num_series: usize,
    /// Distinct `name=value` pairs over live series.
    pub num_label_pairs: usize,
    /// Metric names with the most series, descending.
    pub series_count_by_metric_name: Vec<(String, usize)>,
    /// Label names with the most distinct values, descending.
    pub label_value_count_by_label_name: Vec<(String, usize)>,
    /// Label names whose distinct values take the most bytes, descending.
    pub memory_in_bytes_by_label_name: Vec<(String, usize)>,
    /// `name=value` pairs carried by the most series, descending.
    pub series_count_by_label_value_pair: Vec<(String, usize)>,
}

/// The series index of the head: refs to label sets, label pairs to refs, and matcher selection.
#[derive(Debug, Default)]
pub struct MemIndex {
    symbols: Symbols,
    /// Indexed by series ref; `None` for refs never added or removed.
    series_labels: Vec<Option<SymbolLabels>>,
    /// Name id → value id → sorted refs.
    postings: FxHashMap<u32, FxHashMap<u32, Vec<u32>>>,
    /// Every ref, sorted.
    all: Vec<u32>,
    /// Refs hashed by their symbol ids, for exact lookup without a second copy of the labels.
    by_labels: HashTable<u32>,
    live: usize,
    /// Removed refs not yet swept out of `postings` and `all`.
    dead: usize,
}

fn hash_ids(ids: &[(u32, u32)]) -> u64 {
    // Symbol ids are dense integers the index assigns, so nothing outside can aim for collisions.
    FxBuildHasher.hash_one(ids)
}

impl MemIndex {
    /// An empty index.
    pub fn new() -> MemIndex {
        MemIndex::default()
    }

    /// The interner behind the index. Ids are stable until a [`MemIndex::remove`] sweeps removed
    /// series, which may renumber them to drop symbols no series uses any more.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Number of live series.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no series is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds series `r` with `labels`. Refs are expected in increasing order, which keeps every postings
    /// append O(1); an older ref is inserted in place. Re-adding a live ref replaces its labels.
    pub fn add(&mut self, r: u32, labels: &Labels) {
        let ri = r as usize;
        if ri < self.series_labels.len() {
            if self.series_labels[ri].is_some() {
                self.remove(r);
            }
            // Stale postings of an earlier series with this ref would otherwise look live again.
            if self.dead > 0 {
                self.purge();
            }
        } else {
            self.series_labels.resize(ri + 1, None);
        }
        let sl = SymbolLabels::intern(&mut self.symbols, labels);
        for &(n, v) in sl.iter() {
            let list = self.postings.entry(n).or_default().entry(v).or_default();
            postings::insert(list, r);
        }
        postings::insert(&mut self.all, r);
        let hash = hash_ids(&sl.0);
        let series = &self.series_labels;
        self.by_labels.insert_unique(hash, r, |&x| {
            series[x as usize].as_ref().map_or(0, |s| hash_ids(&s.0))
        });
        self.series_labels[ri] = Some(sl);
        self.live += 1;
    }

    /// Removes series `r` (head truncation). Unknown refs are ignored. Postings are swept lazily in
    /// batches; symbol ids may be renumbered when a sweep runs.
    pub fn remove(&mut self, r: u32) {
        let Some(sl) = self
            .series_labels
            .get_mut(r as usize)
            .and_then(Option::take)
        else {
            return;
        };
        if let Ok(e) = self.by_labels.find_entry(hash_ids(&sl.0), |&x| x == r) {
            e.remove();
        }
        self.live -= 1;
        self.dead += 1;
        if self.dead > PURGE_SLACK + self.live / 4 {
            self.purge();
        }
    }

    /// Sweeps removed refs out of every postings list and drops emptied lists.
    fn purge(&mut self) {
        let series = &self.series_labels;
        let live = |r: &u32| series[*r as usize].is_some();
        self.all.retain(live);
        self.postings.retain(|_, values| {
            values.retain(|_, list| {
                list.retain(live);
                if list.len() * 2 < list.capacity() {
                    list.shrink_to_fit();
                }
                !list.is_empty()
            });
            !values.is_empty()
        });
        self.dead = 0;
        if self.symbols.len() > PURGE_SLACK {
            self.rebuild_symbols();
        }
    }

    /// Re-interns the symbols still in use, so label churn does not grow the interner forever.
    fn rebuild_symbols(&mut self) {
        let mut used = vec![false; self.symbols.len()];
        for sl in self.series_labels.iter().flatten() {
            for &(n, v) in sl.iter() {
                used[n as usize] = true;
                used[v as usize] = true;
            }
        }
        if used.iter().filter(|&&u| u).count() * 4 > self.symbols.len() * 3 {
            return;
        }
        let mut fresh = Symbols::new();
        let map: Vec<u32> = (0..self.symbols.len() as u32)
            .map(|id| {
                if used[id as usize] {
                    fresh.intern(self.symbols.resolve(id))
                } else {
                    u32::MAX
                }
            })
            .collect();
        for sl in self.series_labels.iter_mut().flatten() {
            for p in sl.0.iter_mut() {
                *p = (map[p.0 as usize], map[p.1 as usize]);
            }
        }
        self.postings = std::mem::take(&mut self.postings)
            .into_iter()
            .map(|(n, values)| {
                let values = values
                    .into_iter()
                    .map(|(v, list)| (map[v as usize], list))
                    .collect();
                (map[n as usize], values)
            })
            .collect();
        // Hashes are of symbol ids, which have just changed.
        let series = &self.series_labels;
        let mut table = HashTable::with_capacity(self.live);
        for (r, sl) in series.iter().enumerate() {
            if let Some(sl) = sl {
                table.insert_unique(hash_ids(&sl.0), r as u32, |&x| {
                    series[x as usize].as_ref().map_or(0, |s| hash_ids(&s.0))
                });
            }
        }
        self.by_labels = table;
        self.symbols = fresh;
    }

    fn is_live(&self, r: u32) -> bool {
        matches!(self.series_labels.get(r as usize), Some(Some(_)))
    }

    /// The labels of series `r`.
    pub fn labels(&self, r: u32) -> Option<Labels> {
        self.series_labels
            .get(r as usize)?
            .as_ref()
            .map(|sl| sl.to_labels(&self.symbols))
    }

    /// The symbol-id labels of series `r`, for callers that resolve only the names they need.
    pub fn symbol_labels(&self, r: u32) -> Option<&SymbolLabels> {
        self.series_labels.get(r as usize)?.as_ref()
    }

    /// The ref of the live series with exactly `labels`.
    pub fn get_ref(&self, labels: &Labels) -> Option<u32> {
        let sl = SymbolLabels::lookup(&self.symbols, labels)?;
        self.by_labels
            .find(hash_ids(&sl.0), |&r| {
                self.series_labels[r as usize].as_ref() == Some(&sl)
            })
            .copied()
    }

    /// Postings lists of `name` whose value satisfies `pred`; with `set`, only those values are looked
    /// up (they are exactly the values satisfying `pred`).
    /// Stops with `Err` once `ticks`' deadline passes: a regex tested against every value of a
    /// name is where a hostile selector spends its time.
    fn lists<'a>(
        &'a self,
        name: &str,
        set: Option<&[String]>,
        pred: impl Fn(&str) -> bool,
        ticks: &mut Ticker,
    ) -> Result<Vec<&'a [u32]>, DeadlineExceeded> {
        let Some(values) = self.symbols.get(name).and_then(|n| self.postings.get(&n)) else {
            return Ok(Vec::new());
        };
        match set {
            Some(set) if set.len() < values.len() => Ok(set
                .iter()
                .filter_map(|v| values.get(&self.symbols.get(v)?))
                .map(Vec::as_slice)
                .collect()),
            _ => {
                let mut out = Vec::new();
                for (v, l) in values {
                    ticks.tick()?;
                    if pred(self.symbols.resolve(*v)) {
                        out.push(l.as_slice());
                    }
                }
                Ok(out)
            }
        }
    }

    /// Sorted refs of the live series satisfying every matcher; no matchers selects every series.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u32> {
        // Without a deadline the walk cannot stop early.
        self.select_until(matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`MemIndex::select`], giving up once `deadline` passes.
    pub fn select_until(
        &self,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<u32>, DeadlineExceeded> {
        let mut ticks = deadline.ticker();
        let universe = self.series_labels.len();
        let mut positive: Vec<Vec<u32>> = Vec::new();
        let mut negative: Vec<&[u32]> = Vec::new();
        for m in matchers {
            if m.matches_everything() {
                continue;
            }
            if m.matches_empty() {
                // Keeps series lacking the label: subtract those whose value the matcher rejects.
                // For `!=`/`!~` with a known literal set, those values are exactly the set.
                let set = m.kind().is_negative().then(|| m.literal_set()).flatten();
                negative.extend(self.lists(m.name(), set, |v| !m.matches(v), &mut ticks)?);
            } else {
                let set = (!m.kind().is_negative()).then(|| m.literal_set()).flatten();
                let lists = self.lists(m.name(), set, |v| m.matches(v), &mut ticks)?;
                if lists.is_empty() {
                    return Ok(Vec::new());
                }
                ticks.check()?;
                positive.push(postings::union(&lists, universe));
            }
        }
        positive.sort_by_key(Vec::len);
        let mut it = positive.into_iter();
        let mut out = match it.next() {
            Some(first) => it.fold(first, |acc, l| {
                if acc.is_empty() {
                    acc
                } else {
                    postings::intersect(&acc, &l)
                }
            }),
            None => self.all.clone(),
        };
        if !negative.is_empty() && !out.is_empty() {
            out = postings::without(out, &postings::union(&negative, universe));
        }
        if self.dead > 0 {
            out.retain(|&r| self.is_live(r));
        }
        Ok(out)
    }

    fn has_live(&self, list: &[u32]) -> bool {
        self.dead == 0 || list.iter().any(|&r| self.is_live(r))
    }

    fn live_count(&self, list: &[u32]) -> usize {
        if self.dead == 0 {
            list.len()
        } else {
            list.iter().filter(|&&r| self.is_live(r)).count()
        }
    }

    /// Sorted label names of the series matching `matchers`, or of all series when there are none.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_names_until(matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`MemIndex::label_names`], giving up once `deadline` passes.
    pub fn label_names_until(
        &self,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let mut names: Vec<String> = if matchers.is_empty() {
            self.postings
                .iter()
                .filter(|(_, values)| values.values().any(|l| self.has_live(l)))
                .map(|(n, _)| self.symbols.resolve(*n).to_string())
                .collect()
        } else {
            let mut ticks = deadline.ticker();
            let mut ids = FxHashSet::default();
            for r in self.select_until(matchers, deadline)? {
                ticks.tick()?;
                if let Some(sl) = self.symbol_labels(r) {
                    ids.extend(sl.iter().map(|&(n, _)| n));
                }
            }
            ids.into_iter()
                .map(|n| self.symbols.resolve(n).to_string())
                .collect()
        };
        names.sort_unstable();
        Ok(names)
    }

    /// Sorted values of `name` over the series matching `matchers` (all series when there are none).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        // Without a deadline the walk cannot stop early.
        self.label_values_until(name, matchers, Deadline::NONE)
            .unwrap_or_default()
    }

    /// [`MemIndex::label_values`], giving up once `deadline` passes.
    pub fn label_values_until(
        &self,
        name: &str,
        matchers: &[Matcher],
        deadline: Deadline,
    ) -> Result<Vec<String>, DeadlineExceeded> {
        let Some(n) = self.symbols.get(name) else {
            return Ok(Vec::new());
        };
        let Some(values) = self.postings.get(&n) else {
            return Ok(Vec::new());
        };
        let mut ticks = deadline.ticker();
        let mut out: Vec<String> = if matchers.is_empty() {
            values
                .iter()
                .filter(|(_, l)| self.has_live(l))
                .map(|(v, _)| self.symbols.resolve(*v).to_string())
                .collect()
        } else {
            let selected = self.select_until(matchers, deadline)?;
            if values.len() * 16 < selected.len() {
                // Few values, many series: probe each value's list against the selection.
                let mut kept = Vec::new();
                for (v, l) in values {
                    ticks.tick()?;
                    if !postings::intersect(&selected, l).is_empty() {
                        kept.push(self.symbols.resolve(*v).to_string());
                    }
                }
                kept
            } else {
                let mut ids = FxHashSet::default();
                for r in selected {
                    ticks.tick()?;
                    if let Some(v) = self.symbol_labels(r).and_then(|sl| sl.get_id(n)) {
                        ids.insert(v);
                    }
                }
                ids.into_iter()
                    .map(|v| self.symbols.resolve(v).to_string())
                    .collect()
            }
        };
        out.sort_unstable();
        Ok(out)
    }

    /// Cardinality figures, each list cut to the `top` largest entries.
    pub fn stats(&self, top: usize) -> IndexStats {
        fn top_n(mut v: Vec<(String, usize)>, top: usize) -> Vec<(String, usize)> {
            v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(top);
            v
        }
        let mut stats = IndexStats {
            num_series: self.live,
            ..IndexStats::default()
        };
        let mut by_metric = Vec::new();
        let mut value_counts = Vec::new();
        let mut value_bytes = Vec::new();
        let mut pairs = Vec::new();
        let metric_name = self.symbols.get(edgeprom_model::names::METRIC_NAME);
        for (&n, values) in &self.postings {
            let name = self.symbols.resolve(n);
            let (mut count, mut bytes) = (0, 0);
            for (&v, list) in values {
                let series = self.live_count(list);
                if series == 0 {
                    continue;
                }
                let value = self.symbols.resolve(v);
                count += 1;
                bytes += value.len();
                if Some(n) == metric_name {
                    by_metric.push((value.to_string(), series));
                }
                pairs.push((format!("{name}={value}"), series));
            }
            if count > 0 {
                stats.num_label_pairs += count;
                value_counts.push((name.to_string(), count));
                value_bytes.push((name.to_string(), bytes));
            }
        }
        stats.series_count_by_metric_name = top_n(by_metric, top);
        stats.label_value_count_by_label_name = top_n(value_counts, top);
        stats.memory_in_bytes_by_label_name = top_n(value_bytes, top);
        stats.series_count_by_label_value_pair = top_n(pairs, top);
        stats
    }

    /// Estimated heap bytes held by the index, symbols included, by capacity. Allocator overhead is
    /// counted as 16 bytes per allocation, glibc's usual header plus rounding.
    pub fn memory_bytes(&self) -> usize {
        const ALLOC: usize = 16;
        let mut total = self.symbols.memory_bytes();
        total += self.series_labels.capacity() * size_of::<Option<SymbolLabels>>();
        for sl in self.series_labels.iter().flatten() {
            total += sl.len() * size_of::<(u32, u32)>() + ALLOC;
        }
        // Each hash map bucket holds key, value and one control byte; `capacity()` counts items,
        // and a table keeps 1/8 of its buckets free.
        let buckets = |cap: usize| cap * 8 / 7;
        total += buckets(self.postings.capacity())
            * (size_of::<u32>() + size_of::<FxHashMap<u32, Vec<u32>>>() + 1);
        for values in self.postings.values() {
            total +=
                buckets(values.capacity()) * (size_of::<u32>() + size_of::<Vec<u32>>() + 1) + ALLOC;
            for list in values.values() {
                total += list.capacity() * size_of::<u32>() + ALLOC;
            }
        }
        total += self.all.capacity() * size_of::<u32>();
        total += buckets(self.by_labels.capacity()) * (size_of::<u32>() + 1);
        total
    }
}
