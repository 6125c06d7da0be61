//! edgeprom's PromQL engine: parses queries with `promql-parser` and evaluates them over
//! [`edgeprom_storage::Storage`] with Prometheus 3.x semantics (left-open lookback and range
//! windows, stale markers, `@`/`offset`, subqueries aligned to absolute step multiples).
//!
//! Range queries are evaluated step by step: every step is an instant evaluation over data that was
//! loaded from storage once per selector, which keeps the evaluator simple and the results
//! identical to instant queries at the same timestamps.

#![warn(missing_docs)]

mod aggr;
mod budget;
mod eval;
mod functions;
pub mod limits;

pub use budget::SampleBudget;
pub use limits::{QueryLimits, parse_bounded};

pub use functions::almost_equal;
mod matchers;

use std::time::Duration;

use edgeprom_model::Labels;
use edgeprom_storage::Storage;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation timestamp in milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// `(timestamp ms, value)` pairs in time order.
    pub points: Vec<(i64, f64)>,
}

/// A query's result value, shaped like Prometheus's API `resultType`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a timestamp (ms).
    Scalar(i64, f64),
    /// A string at a timestamp (ms).
    String(i64, String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector; range queries always return one, sorted by labels.
    Matrix(Vec<Series>),
}

/// A successful query's value plus the annotations Prometheus would attach.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The result.
    pub value: Value,
    /// Warning annotations (e.g. malformed histogram buckets).
    pub warnings: Vec<String>,
    /// Info annotations (e.g. a counter function over a metric not named like a counter).
    pub infos: Vec<String>,
}

/// Why a query failed. The HTTP layer maps `Parse` to `bad_data` (400) and the rest to 422/503.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or is not valid PromQL.
    #[error("{0}")]
    Parse(String),
    /// The query parsed but could not be evaluated.
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than [`EngineOptions::timeout`].
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The query would have held more than [`EngineOptions::max_samples`] samples at once.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query would have pushed the samples held by all queries being evaluated at once past
    /// [`EngineOptions::sample_budget`] (edgeprom's `--query.max-samples-total`).
    #[error(
        "query processing would load too many samples into memory in query execution: queries \
         being evaluated at once would hold more than {0} samples together \
         (--query.max-samples-total)"
    )]
    TooManySamplesTotal(usize),
}

/// Tunables fixed when the engine is created.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus default 5m).
    pub lookback_delta: Duration,
    /// Upper bound on samples held in memory by one query.
    pub max_samples: usize,
    /// Wall-clock bound on one query.
    pub timeout: Duration,
    /// Step used by subqueries written without one (`x[5m:]`); Prometheus uses the global
    /// evaluation interval, 1m by default.
    pub default_subquery_step: Duration,
    /// Whether experimental functions and aggregations (`limitk`, `sort_by_label`, …) may be used
    /// (`--enable-feature=promql-experimental-functions`, as in Prometheus).
    pub experimental_functions: bool,
    /// Bounds on the query text (length, nesting), checked before parsing.
    pub limits: QueryLimits,
    /// The samples all queries evaluated at once may hold together; engines given clones of one
    /// budget share it. Each query charges what it holds, as counted for `max_samples`.
    pub sample_budget: SampleBudget,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            experimental_functions: false,
            limits: QueryLimits::default(),
            sample_budget: SampleBudget::unlimited(),
        }
    }
}

/// The PromQL engine. Stateless between queries; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    /// An engine with the given options.
    pub fn new(options: EngineOptions) -> Engine {
        Engine { options }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluates `query` at `ts_ms`.
    pub fn instant_query(
        &self,
        storage: &Storage,
        query: &str,
        ts_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query, &self.options)?;
        eval::run(&self.options, storage, &expr, ts_ms, ts_ms, 0, false)
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive; the result is always
    /// a matrix sorted by labels.
    pub fn range_query(
        &self,
        storage: &Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = parse(query, &self.options)?;
        eval::run(
            &self.options,
            storage,
            &expr,
            start_ms,
            end_ms,
            step_ms,
            true,
        )
    }
}

/// Parses a query, mapping the parser's message into [`QueryError::Parse`].
/// A sample value as Prometheus writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`): shortest
/// round-trip decimal, and `NaN`, `+Inf`, `-Inf`. Used for label values the engine writes and for
/// the API's JSON.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn parse(query: &str, options: &EngineOptions) -> Result<promql_parser::parser::Expr, QueryError> {
    let expr = parse_bounded(query, &options.limits)?;
    check_at_modifiers(&expr)?;
    if !options.experimental_functions {
        refuse_experimental(&expr)?;
    }
    Ok(expr)
}

/// Prometheus refuses `@` timestamps outside int64 ("timestamp out of bounds for @ modifier");
/// `promql-parser` clamps them to `u64::MAX` milliseconds instead, so a clamped one is refused.
fn check_at_modifiers(e: &promql_parser::parser::Expr) -> Result<(), QueryError> {
    use promql_parser::parser::{AtModifier, Expr};
    let check = |at: &Option<AtModifier>| match at {
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_millis(),
                Err(e) => e.duration().as_millis(),
            };
            if ms >= u128::from(u64::MAX) {
                return Err(QueryError::Parse(
                    "timestamp out of bounds for @ modifier".into(),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    };
    match e {
        Expr::VectorSelector(vs) => check(&vs.at),
        Expr::MatrixSelector(ms) => check(&ms.vs.at),
        Expr::Subquery(s) => {
            check(&s.at)?;
            check_at_modifiers(&s.expr)
        }
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| check_at_modifiers(a)),
        Expr::Aggregate(a) => {
            check_at_modifiers(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), check_at_modifiers)
        }
        Expr::Unary(u) => check_at_modifiers(&u.expr),
        Expr::Binary(b) => {
            check_at_modifiers(&b.lhs)?;
            check_at_modifiers(&b.rhs)
        }
        Expr::Paren(p) => check_at_modifiers(&p.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// Prometheus refuses experimental functions at parse time unless the feature flag is on.
fn refuse_experimental(e: &promql_parser::parser::Expr) -> Result<(), QueryError> {
    use promql_parser::parser::Expr;
    match e {
        Expr::Call(c) => {
            if c.func.experimental {
                return Err(QueryError::Parse(format!(
                    "function {:?} is not enabled",
                    c.func.name
                )));
            }
            c.args.args.iter().try_for_each(|a| refuse_experimental(a))
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string().to_lowercase();
            if op == "limitk" || op == "limit_ratio" {
                return Err(QueryError::Parse(
                    "limitk() and limit_ratio() are experimental and must be enabled with --enable-feature=promql-experimental-functions".into(),
                ));
            }
            refuse_experimental(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), refuse_experimental)
        }
        Expr::Unary(u) => refuse_experimental(&u.expr),
        Expr::Binary(b) => {
            refuse_experimental(&b.lhs)?;
            refuse_experimental(&b.rhs)
        }
        Expr::Paren(p) => refuse_experimental(&p.expr),
        Expr::Subquery(s) => refuse_experimental(&s.expr),
        Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => Ok(()),
    }
}
