//! Set operations on sorted, duplicate-free lists of series refs.

/// Refs in `a` and in `b`.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if large.len() / 16 > small.len() {
        // Galloping: far fewer comparisons than a merge when one side is tiny.
        let mut rest = large;
        for &x in small {
            match gallop(rest, x) {
                (i, true) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                (i, false) => rest = &rest[i..],
            }
            if rest.is_empty() {
                break;
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Refs in `a` but not in `b`.
pub(crate) fn without(a: Vec<u32>, b: &[u32]) -> Vec<u32> {
    if b.is_empty() || a.is_empty() {
        return a;
    }
    let mut a = a;
    if b.len() / 16 > a.len() {
        let mut rest = b;
        a.retain(|&x| {
            let (i, found) = gallop(rest, x);
            rest = &rest[i..];
            !found
        });
        return a;
    }
    let mut j = 0;
    a.retain(|&x| {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        !(j < b.len() && b[j] == x)
    });
    a
}

/// The union of lists. `universe` bounds every ref, so a bitmap of that size can replace sorting when
/// the lists are large (a `=~".+"` over a label carried by most series).
pub(crate) fn union(lists: &[&[u32]], universe: usize) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let total: usize = lists.iter().map(|l| l.len()).sum();
            if total.saturating_mul(8) >= universe / 8 {
                let mut bits = vec![0u64; universe.div_ceil(64)];
                for &r in lists.iter().flat_map(|l| l.iter()) {
                    if let Some(w) = bits.get_mut(r as usize / 64) {
                        *w |= 1 << (r % 64);
                    }
                }
                let mut out = Vec::with_capacity(total);
                for (wi, &w) in bits.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        out.push((wi * 64) as u32 + w.trailing_zeros());
                        w &= w - 1;
                    }
                }
                out
            } else {
                let mut out = Vec::with_capacity(total);
                for l in lists {
                    out.extend_from_slice(l);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
        }
    }
}

/// Index of the first element `>= x` in `s` and whether it equals `x`, probing 1, 2, 4, … ahead first.
fn gallop(s: &[u32], x: u32) -> (usize, bool) {
    let mut hi = 1;
    while hi < s.len() && s[hi - 1] < x {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(s.len());
    let i = lo + s[lo..hi].partition_point(|&y| y < x);
    (i, i < s.len() && s[i] == x)
}

/// Inserts `r` keeping `list` sorted; refs normally arrive in increasing order, so this is a push.
pub(crate) fn insert(list: &mut Vec<u32>, r: u32) {
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(i) = list.binary_search(&r) {
                list.insert(i, r);
            }
        }
        _ => list.push(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: Vec<u32>) -> Vec<u32> {
        let mut v = v;
        v.sort_unstable();
        v.dedup();
        v
    }

    proptest! {
        #[test]
        fn ops_match_btreeset(a in proptest::collection::vec(0u32..2000, 0..300),
                              b in proptest::collection::vec(0u32..2000, 0..30),
                              c in proptest::collection::vec(0u32..2000, 0..3)) {
            let (a, b, c) = (set(a), set(b), set(c));
            let sa: std::collections::BTreeSet<u32> = a.iter().copied().collect();
            let sb: std::collections::BTreeSet<u32> = b.iter().copied().collect();
            let sc: std::collections::BTreeSet<u32> = c.iter().copied().collect();
            for (x, y, sx, sy) in [(&a, &b, &sa, &sb), (&b, &a, &sb, &sa), (&a, &c, &sa, &sc), (&c, &a, &sc, &sa)] {
                prop_assert_eq!(intersect(x, y), sx.intersection(sy).copied().collect::<Vec<_>>());
                prop_assert_eq!(without(x.clone(), y), sx.difference(sy).copied().collect::<Vec<_>>());
            }
            let all: Vec<u32> = sa.union(&sb).chain(sc.iter()).copied().collect();
            prop_assert_eq!(union(&[&a, &b, &c], 2000), set(all.clone()));
            prop_assert_eq!(union(&[&a, &b, &c], 1 << 20), set(all));
            let mut ins = Vec::new();
            for &x in b.iter().rev().chain(&a) {
                insert(&mut ins, x);
            }
            prop_assert_eq!(ins, sa.union(&sb).copied().collect::<Vec<_>>());
        }
    }
}
