//! Bounds on a query's text checked before it reaches the parser.
//!
//! `promql-parser`, the checks that follow it, this engine's evaluator and even dropping the AST
//! recurse once per nesting level, so a query such as `((((…up…))))` ten thousand levels deep, or
//! `up or up or …` three thousand times, overflows a thread's stack, and a stack overflow aborts
//! the whole process. Go's growable stacks let Prometheus take such queries; here they are refused
//! with `bad_data` before anything recursive runs. The parser also takes time quadratic in the
//! length of a chain of binary operators, which the same bound keeps small.
//!
//! The bound is computed from the text alone, in one pass and without recursion: an upper bound on
//! the depth of the tree the parser would build. Every node on a path from the root is a binary or
//! unary operator (counted as operator tokens outside `{…}`), a parenthesis, call or aggregation
//! (counted by the deepest bracket nesting), or a range/subquery (counted by `[`; subqueries can
//! follow one another without nesting, `x[1m:][1m:]`). Strings and comments are skipped.

use crate::QueryError;

/// Limits on a query's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Longest query text in bytes (`--query.max-length`).
    pub max_length: usize,
    /// Deepest expression tree, as bounded from the text (`--query.max-expression-depth`).
    pub max_depth: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            max_length: 1 << 20,
            max_depth: 1000,
        }
    }
}

/// Keywords that combine two expressions (each adds a level like a symbol operator).
const BINARY_KEYWORDS: [&str; 4] = ["and", "or", "unless", "atan2"];

/// An upper bound on the depth of the expression tree `query` parses into (see the module doc).
pub fn depth_bound(query: &str) -> usize {
    let b = query.as_bytes();
    let mut i = 0;
    let (mut nesting, mut max_nesting) = (0usize, 0usize);
    let mut braces = 0usize;
    let mut operators = 0usize;
    let mut ranges = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                // Skip the string; a backslash escapes the next byte except in raw strings.
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                nesting += 1;
                max_nesting = max_nesting.max(nesting);
                if c == b'{' {
                    braces += 1;
                }
                if c == b'[' {
                    ranges += 1;
                }
            }
            b')' | b']' | b'}' => {
                nesting = nesting.saturating_sub(1);
                if c == b'}' {
                    braces = braces.saturating_sub(1);
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' if braces == 0 => {
                operators += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                if braces == 0 && BINARY_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word)) {
                    operators += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    max_nesting
        .saturating_add(operators)
        .saturating_add(ranges)
        .saturating_add(1)
}

/// Refuses `query` when it is longer or (by [`depth_bound`]) deeper than `limits` allow.
pub fn check(query: &str, limits: &QueryLimits) -> Result<(), QueryError> {
    if query.len() > limits.max_length {
        return Err(QueryError::Parse(format!(
            "query is {} bytes long, more than the limit of {} bytes (--query.max-length)",
            query.len(),
            limits.max_length
        )));
    }
    let depth = depth_bound(query);
    if depth > limits.max_depth {
        return Err(QueryError::Parse(format!(
            "query nests up to {depth} levels of operators, brackets and ranges, more than the limit of {} (--query.max-expression-depth)",
            limits.max_depth
        )));
    }
    Ok(())
}

/// Parses `query` with `promql-parser` once it has passed [`check`].
pub fn parse_bounded(
    query: &str,
    limits: &QueryLimits,
) -> Result<promql_parser::parser::Expr, QueryError> {
    check(query, limits)?;
    // `promql-parser` 0.11 panics on a number used as a duration that `Duration::from_secs_f64`
    // cannot hold (`x[1e309:]`, `x offset -1e400`, `x[1m:Inf]`); such a query is bad input, not
    // a reason to lose the thread, so the panic becomes a parse error.
    match std::panic::catch_unwind(|| promql_parser::parser::parse(query)) {
        Ok(r) => {
            let expr = r.map_err(|e| QueryError::Parse(truncate_message(e)))?;
            go_regex_limits(&expr)?;
            Ok(expr)
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser failed".into());
            Err(QueryError::Parse(format!(
                "invalid query: {}",
                truncate_message(why)
            )))
        }
    }
}

/// Refuses, as Prometheus's parser does, a selector regex Go's `regexp` would not compile
/// (`promql-parser` compiles them with Rust's `regex`, which takes `(a|b){10000}`). The depth of
/// `expr` is bounded by [`check`], so the recursion is too.
fn go_regex_limits(expr: &promql_parser::parser::Expr) -> Result<(), QueryError> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::{Expr, VectorSelector};
    let selector = |vs: &VectorSelector| {
        let all = vs
            .matchers
            .matchers
            .iter()
            .chain(vs.matchers.or_matchers.iter().flatten());
        for m in all {
            if matches!(m.op, MatchOp::Re(_) | MatchOp::NotRe(_)) {
                edgeprom_model::goregex::check(&m.value)
                    .map_err(|e| QueryError::Parse(e.to_string()))?;
            }
        }
        Ok(())
    };
    match expr {
        Expr::VectorSelector(vs) => selector(vs),
        Expr::MatrixSelector(ms) => selector(&ms.vs),
        Expr::Aggregate(a) => {
            go_regex_limits(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), go_regex_limits)
        }
        Expr::Unary(u) => go_regex_limits(&u.expr),
        Expr::Binary(b) => {
            go_regex_limits(&b.lhs)?;
            go_regex_limits(&b.rhs)
        }
        Expr::Paren(p) => go_regex_limits(&p.expr),
        Expr::Subquery(s) => go_regex_limits(&s.expr),
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| go_regex_limits(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// Error messages quote the query; a megabyte regex must not come back as a megabyte message.
pub fn truncate_message(mut msg: String) -> String {
    const MAX: usize = 4096;
    if msg.len() > MAX {
        let mut cut = MAX;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = msg.len();
        msg.truncate(cut);
        msg.push_str(&format!("… ({total} bytes in all)"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_at_least_the_real_depth_of_common_shapes() {
        assert!(depth_bound("up") >= 1);
        assert!(depth_bound("((up))") >= 3);
        assert!(depth_bound("1+2*3") >= 3);
        assert!(depth_bound("up or up or up") >= 3);
        assert!(depth_bound("rate(x[1m:][1m:])") >= 3);
        // Matchers and strings do not count.
        assert_eq!(
            depth_bound(r#"up{a=~"(((((", b!="-+-+"}"#),
            depth_bound("up{}")
        );
    }

    #[test]
    fn ten_thousand_parentheses_are_refused_before_parsing() {
        let q = format!("{}up{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = parse_bounded(&q, &QueryLimits::default()).unwrap_err();
        assert!(
            e.to_string().contains("--query.max-expression-depth"),
            "{e}"
        );
    }

    #[test]
    fn long_or_chain_is_refused_before_parsing() {
        let q = format!("up{}", " or up".repeat(3000));
        assert!(parse_bounded(&q, &QueryLimits::default()).is_err());
    }

    #[test]
    fn dashboard_sized_queries_pass() {
        let q = "sum by (job) (rate(http_requests_total{job=~\"a|b\"}[5m])) / ignoring(x) group_left sum(up) > 0.5 and on() vector(1)";
        assert!(parse_bounded(q, &QueryLimits::default()).is_ok());
    }

    /// Regression (fuzz target `promql`): durations the parser cannot represent panicked
    /// inside `promql-parser` (`Duration::from_secs_f64`); they are now parse errors.
    #[test]
    fn durations_beyond_duration_are_parse_errors_not_panics() {
        for q in [
            "sum_over_time((metric1_total)[301e308:10] offset 3)",
            "metric1_total offset Inf-min(step(), 1s)+8000",
            "metric offset -1e30850 @ 0",
            "up[1m:1e400]",
        ] {
            let r = parse_bounded(q, &QueryLimits::default());
            assert!(matches!(r, Err(QueryError::Parse(_))), "{q}: {r:?}");
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let m = truncate_message("é".repeat(10_000));
        assert!(m.len() < 4200 && m.ends_with("bytes in all)"));
    }
}
