//! Conversion of promql-parser matchers into storage matchers.
//!
//! promql-parser anchors regexes as `^(?:re)$`, Prometheus as `^(?s:re)$`; the storage matcher has
//! Prometheus's anchoring, so only the raw pattern text is taken from the parser.

use edgeprom_storage::index::{MatchType, Matcher};
use promql_parser::label::{MatchOp, Matcher as PMatcher};
use promql_parser::parser::VectorSelector;

use crate::QueryError;

fn convert(m: &PMatcher) -> Result<Matcher, QueryError> {
    let kind = match m.op {
        MatchOp::Equal => MatchType::Equal,
        MatchOp::NotEqual => MatchType::NotEqual,
        MatchOp::Re(_) => MatchType::Regex,
        MatchOp::NotRe(_) => MatchType::NotRegex,
    };
    Matcher::new(kind, &m.name, &m.value).map_err(|e| QueryError::Parse(e.to_string()))
}

/// The alternatives of a selector: one matcher list per `or` branch (usually exactly one).
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let mut groups: Vec<&[PMatcher]> = Vec::new();
    if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
        groups.push(&vs.matchers.matchers);
    }
    for g in &vs.matchers.or_matchers {
        groups.push(g);
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let mut ms = Vec::with_capacity(g.len() + 1);
        for m in g {
            ms.push(convert(m)?);
        }
        if let Some(name) = &vs.name
            && !g.iter().any(|m| m.name == "__name__")
        {
            ms.push(
                Matcher::new(MatchType::Equal, "__name__", name)
                    .map_err(|e| QueryError::Parse(e.to_string()))?,
            );
        }
        out.push(ms);
    }
    Ok(out)
}

/// Labels set by equality matchers, the way `absent()` reconstructs its output labels: a label
/// named by more than one matcher of any kind is left out because its value is ambiguous.
pub(crate) fn equality_labels(vs: &VectorSelector) -> Vec<(String, String)> {
    let ms = &vs.matchers.matchers;
    ms.iter()
        .filter(|m| m.name != "__name__" && matches!(m.op, MatchOp::Equal))
        .filter(|m| ms.iter().filter(|o| o.name == m.name).count() == 1)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect()
}
