use std::fmt;

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value; an empty value means the label is absent.
    pub value: String,
}

/// A label set, sorted by name, with unique names and no empty values — the identity of a series.
///
/// Immutable and shared: cloning is a reference-count increment, because query evaluation hands
/// the same label sets from step to step and series to series; changes go through
/// [`Labels::to_builder`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(std::sync::Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn new() -> Labels {
        Labels(std::sync::Arc::from([]))
    }

    /// Builds a label set from pairs; later duplicates win, empty values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.build()
    }

    /// The value of `name`, or `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), or `""`.
    pub fn metric_name(&self) -> &str {
        self.get(crate::names::METRIC_NAME).unwrap_or("")
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The identity of this label set's shared storage: clones share it, so it can key caches of
    /// what is derived from a label set. Whoever keys a cache by it must hold a clone while the
    /// entry lives: a dropped set's address can be reused by another.
    pub fn storage_id(&self) -> usize {
        std::sync::Arc::as_ptr(&self.0) as *const Label as usize
    }

    /// A builder starting from these labels.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// A 64-bit FNV-1a hash over names and values with separators, stable across runs and
    /// platforms (it spreads scrape offsets, so it must not change between restarts).
    pub fn stable_hash(&self) -> u64 {
        const SEP: u8 = 0xff;
        let mut h = Fnv64a::new();
        for l in self.0.iter() {
            h.write(l.name.as_bytes());
            h.write(&[SEP]);
            h.write(l.value.as_bytes());
            h.write(&[SEP]);
        }
        h.finish()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prints like Prometheus: `name{a="1", b="2"}` with Go-style quoting of values.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        f.write_str(name)?;
        let mut rest = self
            .0
            .iter()
            .filter(|l| l.name != crate::names::METRIC_NAME)
            .peekable();
        if rest.peek().is_none() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, l) in rest.enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"", l.name)?;
            for c in l.value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Accumulates label changes and produces a valid [`Labels`].
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> LabelsBuilder {
        LabelsBuilder::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label, as in Prometheus.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.iter_mut().position(|l| l.name == name) {
            Some(i) if value.is_empty() => {
                self.labels.swap_remove(i);
            }
            Some(i) => self.labels[i].value = value,
            None if value.is_empty() => {}
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    /// Removes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// Keeps only labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    /// The labels as they stand, unsorted.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    /// Sorts and returns the label set.
    pub fn build(mut self) -> Labels {
        self.labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels(self.labels.into())
    }
}

struct Fnv64a(u64);

impl Fnv64a {
    fn new() -> Fnv64a {
        Fnv64a(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sorts_overwrites_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        let pairs: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "1"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn setting_an_empty_value_deletes() {
        let mut b = Labels::from_pairs([("a", "1"), ("b", "2")]).to_builder();
        b.set("a", "");
        assert_eq!(b.build(), Labels::from_pairs([("b", "2")]));
    }

    #[test]
    fn display_matches_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b"), ("instance", "x:1")]);
        assert_eq!(l.to_string(), r#"up{instance="x:1", job="a\"b"}"#);
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
        assert_eq!(Labels::from_pairs([("a", "1")]).to_string(), r#"{a="1"}"#);
    }

    #[test]
    fn stable_hash_distinguishes_name_value_boundaries() {
        let a = Labels::from_pairs([("ab", "c")]);
        let b = Labels::from_pairs([("a", "bc")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(
            a.stable_hash(),
            Labels::from_pairs([("ab", "c")]).stable_hash()
        );
    }
}
