//! Label matchers with Prometheus's semantics.

use std::fmt;

use super::fastregex::FastRegex;

/// Why a matcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// The regex does not parse on its own (before anchoring).
    #[error("invalid regex {pattern:?}: {source}")]
    Syntax {
        /// The pattern as given.
        pattern: String,
        /// The parser's complaint.
        source: Box<regex_syntax::Error>,
    },
    /// The regex repeats more than Go's `regexp` allows, which Prometheus refuses.
    #[error(transparent)]
    GoLimit(#[from] edgeprom_model::goregex::GoRegexError),
    /// The regex parses but cannot be compiled, usually because it exceeds the size limit.
    #[error("cannot compile regex {pattern:?}: {source}")]
    Regex {
        /// The pattern as given.
        pattern: String,
        /// The compiler's complaint.
        source: regex::Error,
    },
}

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`: equal to the value.
    Equal,
    /// `!=`: not equal to the value.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchType {
    /// The operator as written in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }

    /// Whether this is `!=` or `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegex)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `name op "value"` term of a series selector. A series lacking the label is matched as if its
/// value were `""`.
#[derive(Debug, Clone)]
pub struct Matcher {
    kind: MatchType,
    name: String,
    value: String,
    re: Option<FastRegex>,
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher; regexes are anchored at both ends and `.` matches newlines, as in Prometheus.
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Matcher, MatcherError> {
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(FastRegex::new(value)?),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        let mut m = Matcher {
            kind,
            name: name.to_string(),
            value: value.to_string(),
            re,
            matches_empty: false,
        };
        m.matches_empty = m.matches("");
        Ok(m)
    }

    /// Whether a label value satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.kind, &self.re) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regex, Some(re)) => re.is_match(value),
            (MatchType::NotRegex, Some(re)) => !re.is_match(value),
            // `new` always builds the regex for the regex kinds.
            (MatchType::Regex | MatchType::NotRegex, None) => false,
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value or pattern as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The comparison.
    pub fn kind(&self) -> MatchType {
        self.kind
    }

    /// Whether `""` matches, in which case series lacking the label are selected too.
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// The exact values the positive form of this matcher accepts, when that set is small and known:
    /// the value of `=`/`!=`, or the literal alternation of `=~`/`!~`. `!=`/`!~` reject exactly these.
    pub(crate) fn literal_set(&self) -> Option<&[String]> {
        match self.kind {
            MatchType::Equal | MatchType::NotEqual => Some(std::slice::from_ref(&self.value)),
            MatchType::Regex | MatchType::NotRegex => self.re.as_ref().and_then(FastRegex::set),
        }
    }

    /// Whether every value, `""` included, matches (`=~".*"`), so the matcher filters nothing.
    pub(crate) fn matches_everything(&self) -> bool {
        self.kind == MatchType::Regex && self.re.as_ref().is_some_and(FastRegex::matches_all)
    }
}

/// Matchers are equal when they are written the same; the compiled form follows from that.
impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Prints like Prometheus: `name="value"`, `name=~"re"`, with the name quoted when it is not a plain
/// identifier and the value quoted Go-style.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.name.is_empty()
            && self
                .name
                .char_indices()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if plain {
            f.write_str(&self.name)?;
        } else {
            go_quote(f, &self.name)?;
        }
        f.write_str(self.kind.as_str())?;
        go_quote(f, &self.value)
    }
}

/// Go's `strconv.Quote`: printable characters as they are, the rest escaped.
fn go_quote(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\u{7}' => f.write_str("\\a")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{b}' => f.write_str("\\v")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
            // Go's IsPrint is narrower than this (it also escapes other non-graphic code points); the
            // C1 controls and the BOM are the ones that show up in real label values.
            c if ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{feff}' => {
                write!(f, "\\u{:04x}", c as u32)?
            }
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}
