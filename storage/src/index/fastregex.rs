//! Fully anchored regex matching with the shortcuts Prometheus's `FastRegexMatcher` takes.
//!
//! Most label regexes in practice are Grafana multi-value alternations, `prefix.*`, `.*` or `.+`; those
//! are answered by string operations, and the finite-set case also lets the index look postings up
//! directly instead of testing every value of the label.

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};

use super::MatcherError;

/// Past this many strings a finite regex is matched by the automaton, as in Prometheus (`maxSetMatches`).
const MAX_SET: usize = 256;
/// Bound on the compiled program, so that a hostile selector fails instead of eating memory.
const SIZE_LIMIT: usize = 4 << 20;
/// Bound on the lazy DFA's cache per regex.
const DFA_SIZE_LIMIT: usize = 2 << 20;

/// How one anchored regex is matched.
#[derive(Debug, Clone)]
pub(crate) enum FastRegex {
    /// `.*`: every string.
    Any,
    /// `.+`: every non-empty string.
    NonEmpty,
    /// A finite set of strings, sorted (so lookups binary-search and postings can be fetched directly).
    Set(Box<[String]>),
    /// `(?i)literal` with an ASCII literal.
    FoldAscii(String),
    /// `prefix.*suffix` (or `.+` in the middle): affix checks plus a minimum length.
    Affix {
        prefix: String,
        suffix: String,
        min_middle: usize,
    },
    /// `.*literal.*`.
    Contains(String),
    /// Anything else: the automaton, behind cheap literal prefix/suffix rejections.
    Regex {
        re: Box<Regex>,
        prefix: String,
        suffix: String,
    },
}

impl FastRegex {
    /// Parses `pattern` as Prometheus does (the pattern alone must be valid, `.` matches newlines) and
    /// picks the cheapest exact way to match it anchored at both ends.
    pub(crate) fn new(pattern: &str) -> Result<FastRegex, MatcherError> {
        edgeprom_model::goregex::check(pattern)?;
        let hir = regex_syntax::ParserBuilder::new()
            .dot_matches_new_line(true)
            .build()
            .parse(pattern)
            .map_err(|e| MatcherError::Syntax {
                pattern: pattern.to_string(),
                source: Box::new(e),
            })?;
        let hir = strip_captures(&hir);
        // A set first: the index can then look postings up instead of testing every value.
        if let Some(mut set) = finite_set(hir) {
            set.sort_unstable();
            set.dedup();
            return Ok(FastRegex::Set(set.into_boxed_slice()));
        }
        if let Some(lit) = fold_ascii_literal(pattern) {
            return Ok(FastRegex::FoldAscii(lit));
        }
        match dot_repeat(hir) {
            Some(0) => return Ok(FastRegex::Any),
            Some(_) => return Ok(FastRegex::NonEmpty),
            None => {}
        }
        let parts: &[Hir] = match hir.kind() {
            HirKind::Concat(parts) => parts,
            _ => std::slice::from_ref(hir),
        };
        if let Some(fast) = affix_or_contains(parts) {
            return Ok(fast);
        }
        let re = RegexBuilder::new(&format!("^(?s:{pattern})$"))
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| MatcherError::Regex {
                pattern: pattern.to_string(),
                source: e,
            })?;
        // Required literal ends reject most non-matching values before the automaton runs.
        let (prefix, suffix) = if parts.len() > 1 {
            (
                literal(&parts[0]).unwrap_or_default(),
                literal(&parts[parts.len() - 1]).unwrap_or_default(),
            )
        } else {
            (String::new(), String::new())
        };
        Ok(FastRegex::Regex {
            re: Box::new(re),
            prefix,
            suffix,
        })
    }

    /// Whether the whole of `s` matches.
    pub(crate) fn is_match(&self, s: &str) -> bool {
        match self {
            FastRegex::Any => true,
            FastRegex::NonEmpty => !s.is_empty(),
            FastRegex::Set(set) => {
                if set.len() <= 8 {
                    set.iter().any(|x| x == s)
                } else {
                    set.binary_search_by(|x| x.as_str().cmp(s)).is_ok()
                }
            }
            FastRegex::FoldAscii(lit) => {
                if s.is_ascii() {
                    s.eq_ignore_ascii_case(lit)
                } else {
                    // Unicode simple case folding maps some non-ASCII characters onto ASCII ones
                    // (U+017F ſ to s, U+212A Kelvin to k); only the length bound is safe to use here.
                    s.len() >= lit.len() && fold_eq_unicode(s, lit)
                }
            }
            FastRegex::Affix {
                prefix,
                suffix,
                min_middle,
            } => {
                s.len() >= prefix.len() + suffix.len() + min_middle
                    && s.starts_with(prefix.as_str())
                    && s.ends_with(suffix.as_str())
            }
            FastRegex::Contains(lit) => s.contains(lit.as_str()),
            FastRegex::Regex { re, prefix, suffix } => {
                s.starts_with(prefix.as_str()) && s.ends_with(suffix.as_str()) && re.is_match(s)
            }
        }
    }

    /// The exact set of matching strings when it is small and finite.
    pub(crate) fn set(&self) -> Option<&[String]> {
        match self {
            FastRegex::Set(set) => Some(set),
            _ => None,
        }
    }

    /// Whether every string matches.
    pub(crate) fn matches_all(&self) -> bool {
        matches!(self, FastRegex::Any)
    }
}

/// Case-insensitive equality with Unicode simple case folding, as `(?i)` applies it.
fn fold_eq_unicode(s: &str, lit: &str) -> bool {
    let mut a = s.chars();
    let mut b = lit.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x != y && !simple_fold_eq(x, y) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether `x` and the ASCII `y` fold to each other. Only the two non-ASCII characters whose simple
/// case folding reaches ASCII letters need special handling.
fn simple_fold_eq(x: char, y: char) -> bool {
    match x {
        '\u{017F}' => y.eq_ignore_ascii_case(&'s'),
        '\u{212A}' => y.eq_ignore_ascii_case(&'k'),
        _ => x.is_ascii() && x.eq_ignore_ascii_case(&y),
    }
}

/// `(?i)` followed by ASCII text with no regex syntax in it.
fn fold_ascii_literal(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix("(?i)")?;
    if !rest.is_empty()
        && rest.is_ascii()
        // `-` is syntax only inside a class, which a meta-free pattern cannot open.
        && !rest.chars().any(|c| c != '-' && regex_syntax::is_meta_character(c))
        && !rest.contains(|c: char| c.is_whitespace() || c.is_ascii_control())
    {
        Some(rest.to_string())
    } else {
        None
    }
}

fn strip_captures(mut hir: &Hir) -> &Hir {
    while let HirKind::Capture(c) = hir.kind() {
        hir = &c.sub;
    }
    hir
}

/// The literal text of `hir` if it is one.
fn literal(hir: &Hir) -> Option<String> {
    match strip_captures(hir).kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        _ => None,
    }
}

/// `Some(min)` when `hir` is `.` repeated at least `min` (0 or 1) times without bound.
fn dot_repeat(hir: &Hir) -> Option<u32> {
    let HirKind::Repetition(rep) = strip_captures(hir).kind() else {
        return None;
    };
    if rep.max.is_some() || rep.min > 1 {
        return None;
    }
    let HirKind::Class(Class::Unicode(c)) = strip_captures(&rep.sub).kind() else {
        return None;
    };
    let full =
        c.ranges().len() == 1 && c.ranges()[0].start() == '\0' && c.ranges()[0].end() == char::MAX;
    full.then_some(rep.min)
}

/// `lit.*`, `.*lit`, `lit.*lit`, `.*lit.*` and the `.+` variants.
fn affix_or_contains(parts: &[Hir]) -> Option<FastRegex> {
    let mut parts = parts;
    let prefix = match parts.first().and_then(literal) {
        Some(p) => {
            parts = &parts[1..];
            p
        }
        None => String::new(),
    };
    let suffix = match parts.last().and_then(literal) {
        Some(s) => {
            parts = &parts[..parts.len() - 1];
            s
        }
        None => String::new(),
    };
    match parts {
        [mid] => {
            let min = dot_repeat(mid)?;
            Some(FastRegex::Affix {
                prefix,
                suffix,
                min_middle: min as usize,
            })
        }
        [a, lit, b] if prefix.is_empty() && suffix.is_empty() => {
            let lit = literal(lit)?;
            (dot_repeat(a)? == 0 && dot_repeat(b)? == 0).then_some(FastRegex::Contains(lit))
        }
        _ => None,
    }
}

/// Every string `hir` matches, if that is a set of at most [`MAX_SET`] strings.
fn finite_set(hir: &Hir) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(l) => Some(vec![String::from_utf8(l.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                let n = r.end() as usize - r.start() as usize + 1;
                if out.len() + n > MAX_SET {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(String::from));
            }
            Some(out)
        }
        HirKind::Capture(c) => finite_set(&c.sub),
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(finite_set(s)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Concat(subs) => {
            let mut out = vec![String::new()];
            for s in subs {
                let next = finite_set(s)?;
                if out.len() * next.len() > MAX_SET {
                    return None;
                }
                out = out
                    .iter()
                    .flat_map(|a| next.iter().map(move |b| format!("{a}{b}")))
                    .collect();
            }
            Some(out)
        }
        // `x?`: the empty string or x.
        HirKind::Repetition(rep) if rep.min == 0 && rep.max == Some(1) => {
            let mut out = finite_set(&rep.sub)?;
            out.push(String::new());
            (out.len() <= MAX_SET).then_some(out)
        }
        HirKind::Repetition(rep) if rep.min == 1 && rep.max == Some(1) => finite_set(&rep.sub),
        // Byte classes, look-around and unbounded repetition have no small finite set.
        _ => None,
    }
}
