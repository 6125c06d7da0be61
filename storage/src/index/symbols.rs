//! The string interner and the symbol-id form of a label set.

use std::hash::{BuildHasher, RandomState};

use edgeprom_model::Labels;
use hashbrown::HashTable;

/// Interns label names and values: every distinct string is stored once and named by a dense `u32`.
///
/// All strings live back to back in one arena so a symbol costs its bytes plus an offset and a table
/// slot, with no allocation of its own. Symbols are never freed one by one; [`super::MemIndex`] rebuilds
/// its table when churn has left too many unused.
pub struct Symbols {
    arena: String,
    /// `ends[i]` is the end of symbol `i` in the arena; it starts where symbol `i - 1` ends.
    ends: Vec<usize>,
    /// Ids hashed by their string, so the table holds no copy of the key.
    table: HashTable<u32>,
    // Label values come from scrape targets, so the string hash must resist chosen collisions.
    hasher: RandomState,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols").field("len", &self.len()).finish()
    }
}

impl Symbols {
    /// An empty interner.
    pub fn new() -> Symbols {
        Symbols {
            arena: String::new(),
            ends: Vec::new(),
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }

    /// The id of `s`, interning it first if it is new.
    ///
    /// # Panics
    /// If more than `u32::MAX` distinct strings are interned.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.get(s) {
            return id;
        }
        let id = u32::try_from(self.ends.len()).expect("more than u32::MAX symbols");
        self.arena.push_str(s);
        self.ends.push(self.arena.len());
        let hash = self.hasher.hash_one(s);
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.table
            .insert_unique(hash, id, |&i| hasher.hash_one(slice(arena, ends, i)));
        id
    }

    /// The id of `s` if it has been interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        self.table
            .find(hash, |&i| slice(&self.arena, &self.ends, i) == s)
            .copied()
    }

    /// The string of `id`.
    ///
    /// # Panics
    /// If `id` was not returned by this interner.
    pub fn resolve(&self, id: u32) -> &str {
        slice(&self.arena, &self.ends, id)
    }

    /// Number of interned strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing has been interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes held, by capacity (what the allocator has handed out, not what is in use).
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity()
            + self.ends.capacity() * size_of::<usize>()
            // One u32 slot and one control byte per bucket; 1/8 of the buckets stay free.
            + self.table.capacity() * 8 / 7 * (size_of::<u32>() + 1)
    }
}

fn slice<'a>(arena: &'a str, ends: &[usize], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &arena[start..ends[i]]
}

/// A series' labels as `(name id, value id)` pairs, sorted by name string like [`Labels`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SymbolLabels(pub(crate) Box<[(u32, u32)]>);

impl SymbolLabels {
    /// Interns `labels`; the pairs keep the label set's name order.
    pub fn intern(syms: &mut Symbols, labels: &Labels) -> SymbolLabels {
        SymbolLabels(
            labels
                .iter()
                .map(|l| (syms.intern(&l.name), syms.intern(&l.value)))
                .collect(),
        )
    }

    /// The symbol-id form of `labels` if every name and value is already interned; `None` means no
    /// series can carry these labels.
    pub fn lookup(syms: &Symbols, labels: &Labels) -> Option<SymbolLabels> {
        labels
            .iter()
            .map(|l| Some((syms.get(&l.name)?, syms.get(&l.value)?)))
            .collect::<Option<Box<[_]>>>()
            .map(SymbolLabels)
    }

    /// The labels as strings.
    pub fn to_labels(&self, syms: &Symbols) -> Labels {
        Labels::from_pairs(
            self.0
                .iter()
                .map(|&(n, v)| (syms.resolve(n), syms.resolve(v))),
        )
    }

    /// The value of `name`, or `None` when the series lacks it.
    pub fn get<'s>(&self, syms: &'s Symbols, name: &str) -> Option<&'s str> {
        self.0
            .binary_search_by(|&(n, _)| syms.resolve(n).cmp(name))
            .ok()
            .map(|i| syms.resolve(self.0[i].1))
    }

    /// The value id of the name id `name`.
    pub fn get_id(&self, name: u32) -> Option<u32> {
        self.0.iter().find(|&&(n, _)| n == name).map(|&(_, v)| v)
    }

    /// The `(name id, value id)` pairs in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, (u32, u32)> {
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
}

impl<'a> IntoIterator for &'a SymbolLabels {
    type Item = &'a (u32, u32);
    type IntoIter = std::slice::Iter<'a, (u32, u32)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
