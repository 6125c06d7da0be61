//! What Go's `regexp/syntax` refuses that Rust's `regex` accepts, checked wherever a user's regex
//! is compiled (label matchers, `label_replace`, relabelling), so that edgeprom refuses the same
//! patterns Prometheus does.
//!
//! Go bounds repetition: a count above 1000 in `{n}`, `{n,}` or `{n,m}` is refused outright, and
//! so is a repetition whose nested repetitions together would make more than 1000 copies of the
//! innermost expression (`(a{10}){101}`). Both are `invalid repeat count` errors quoting the
//! repetition operator. Rust's `regex` bounds only the compiled size, which lets
//! `(a|b){10000}` through.

use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// Go's bound on a repetition count, and on the copies nested repetitions may make.
pub const MAX_REPEAT: u32 = 1000;

/// A pattern Go's `regexp` refuses, with Go's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoRegexError {
    /// A repetition count above [`MAX_REPEAT`], or nested repetitions making more copies than
    /// that; the operator as written (`{10000}`, `{2,}?`).
    #[error("error parsing regexp: invalid repeat count: `{0}`")]
    InvalidRepeatCount(String),
}

/// Checks `pattern` (as the user wrote it, before any anchoring) against Go's repetition rules.
/// A pattern that does not parse passes: compiling it reports that error in its own words.
pub fn check(pattern: &str) -> Result<(), GoRegexError> {
    // A pattern without `{` has no counted repetition; most label matchers end here.
    if !pattern.contains('{') {
        return Ok(());
    }
    let Ok(ast) = ast::parse::Parser::new().parse(pattern) else {
        return Ok(());
    };
    walk(&ast, pattern)
}

/// Visits repetitions in the order Go's parser meets their operators: an operand's operators come
/// before its own and siblings go left to right, so the first refusal is the one Go reports.
fn walk(node: &Ast, pattern: &str) -> Result<(), GoRegexError> {
    for child in children(node) {
        walk(child, pattern)?;
    }
    let Ast::Repetition(rep) = node else {
        return Ok(());
    };
    let Some((min, max)) = counts(&rep.op.kind) else {
        return Ok(());
    };
    let refused = min > MAX_REPEAT
        || max.is_some_and(|m| m > MAX_REPEAT)
        // Go checks the nesting only below an operator that can repeat at least twice.
        || ((min >= 2 || max.is_some_and(|m| m >= 2)) && !repeat_is_valid(node, MAX_REPEAT));
    let op = pattern
        .get(rep.op.span.start.offset..rep.op.span.end.offset)
        .unwrap_or_default();
    // Go reads `{,n}` as the literal text, Rust as `{0,n}`: Go has nothing to refuse there.
    if refused && !op.starts_with("{,") {
        return Err(GoRegexError::InvalidRepeatCount(op.to_string()));
    }
    Ok(())
}

/// `{n}`, `{n,}`, `{n,m}` as Go's (min, max), with no max for `{n,}`; `None` for `?`, `*`, `+`,
/// which Go does not count.
fn counts(kind: &RepetitionKind) -> Option<(u32, Option<u32>)> {
    match kind {
        RepetitionKind::Range(RepetitionRange::Exactly(n)) => Some((*n, Some(*n))),
        RepetitionKind::Range(RepetitionRange::AtLeast(n)) => Some((*n, None)),
        RepetitionKind::Range(RepetitionRange::Bounded(m, n)) => Some((*m, Some(*n))),
        RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore | RepetitionKind::OneOrMore => None,
    }
}

/// Go's `repeatIsValid`: whether the counted repetitions from `node` down make at most `n` copies
/// of the innermost expression, each count dividing what is left for those inside it. A
/// repetition of at most zero copies ends the walk.
fn repeat_is_valid(node: &Ast, mut n: u32) -> bool {
    if let Ast::Repetition(rep) = node
        && let Some((min, max)) = counts(&rep.op.kind)
    {
        let m = match max {
            Some(0) => return true,
            Some(m) => m,
            None => min,
        };
        if m > n {
            return false;
        }
        // `{0,}` leaves the count for what is inside unchanged.
        n = n.checked_div(m).unwrap_or(n);
    }
    children(node).iter().all(|c| repeat_is_valid(c, n))
}

fn children(node: &Ast) -> &[Ast] {
    match node {
        Ast::Repetition(r) => std::slice::from_ref(&*r.ast),
        Ast::Group(g) => std::slice::from_ref(&*g.ast),
        Ast::Alternation(a) => &a.asts,
        Ast::Concat(c) => &c.asts,
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &str) -> Option<String> {
        match check(p) {
            Ok(()) => None,
            Err(GoRegexError::InvalidRepeatCount(op)) => Some(op),
        }
    }

    #[test]
    fn counts_up_to_1000_pass_and_above_are_refused_with_the_operator() {
        for ok in [
            "a{1000}",
            "(a|b){1000}",
            "a{0,1000}",
            "a{1000,}",
            "a{2}b{1000}",
            "x*",
            "(a+)+",
            "plain",
            "a\\{10000\\}",
            "[{]10000}",
            "a{,5000}",
        ] {
            assert_eq!(refused(ok), None, "{ok}");
        }
        assert_eq!(refused("a{1001}").as_deref(), Some("{1001}"));
        assert_eq!(refused("(a|b){10000}").as_deref(), Some("{10000}"));
        assert_eq!(refused("a{0,1001}").as_deref(), Some("{0,1001}"));
        assert_eq!(refused("a{1001,}").as_deref(), Some("{1001,}"));
        assert_eq!(refused("a{2000}?").as_deref(), Some("{2000}?"));
        assert_eq!(
            check("(a|b){10000}").map_err(|e| e.to_string()),
            Err("error parsing regexp: invalid repeat count: `{10000}`".into())
        );
    }

    #[test]
    fn nested_counts_multiply_as_in_go() {
        assert_eq!(refused("(a{10}){100}"), None);
        assert_eq!(refused("(a{10}){101}").as_deref(), Some("{101}"));
        assert_eq!(refused("((a{10}){10}){10}"), None);
        assert_eq!(refused("((a{10}){10}){11}").as_deref(), Some("{11}"));
        assert_eq!(refused("((a{100}){100}){100}").as_deref(), Some("{100}"));
        // `{n,}` counts its minimum; `*`, `+`, `?` do not count.
        assert_eq!(refused("(a{10,}){100}"), None);
        assert_eq!(refused("(a{11,}){100}").as_deref(), Some("{100}"));
        assert_eq!(refused("((a{500})*){2}"), None);
        assert_eq!(refused("((a{501})*){2}").as_deref(), Some("{2}"));
        // Go divides with integer division: 1000/3 = 333 copies left inside.
        assert_eq!(refused("(a{333}){3}"), None);
        assert_eq!(refused("(a{334}){3}").as_deref(), Some("{3}"));
        // A repetition that can make at most one copy is not checked below itself, but what
        // sits inside it still is, where Go parsed it.
        assert_eq!(refused("((a{500}){3}){0,1}").as_deref(), Some("{3}"));
        assert_eq!(refused("(a{1000}){0,1}"), None);
        assert_eq!(refused("((a{10}){200}){0}").as_deref(), Some("{200}"));
        // Siblings do not multiply.
        assert_eq!(refused("(a{1000}b{1000}){1}"), None);
    }

    #[test]
    fn unparsable_patterns_are_left_to_the_compiler() {
        assert_eq!(check("a{"), Ok(()));
        assert_eq!(check("(a{5000}"), Ok(()));
    }
}
