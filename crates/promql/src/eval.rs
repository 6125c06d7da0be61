//! The evaluator: instant evaluation of an expression at one timestamp, and range queries as a
//! sequence of instant evaluations over data loaded once per selector.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use edgeprom_model::{Labels, is_stale_nan};
use edgeprom_storage::Storage;
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, SubqueryExpr, VectorMatchCardinality,
    VectorSelector,
};

use crate::budget::Charge;
use crate::{EngineOptions, QueryError, QueryResult, Sample, Series, Value};

/// A loaded series: labels and every sample the query can need, stale markers included.
pub(crate) struct Loaded {
    pub labels: Labels,
    pub points: Arc<[(i64, f64)]>,
}

/// Window positions in one selector's loaded series, valid while evaluation times only grow.
#[derive(Default)]
struct Cursor {
    /// The window `(start, end]` the positions are for.
    start: i64,
    end: i64,
    /// Per series: index of the first point after `start`, and of the first after `end`.
    pos: Vec<(usize, usize)>,
}

/// Index of the first point in `points[from..]` later than `t`, given that none before `from`
/// is: a short forward walk (the usual case, one step on), then a binary search for long jumps.
fn first_after(points: &[(i64, f64)], from: usize, t: i64) -> usize {
    let walk_end = (from + 8).min(points.len());
    let mut i = from;
    while i < walk_end {
        if points[i].0 > t {
            return i;
        }
        i += 1;
    }
    i + points[i..].partition_point(|p| p.0 <= t)
}

impl Cursor {
    /// Moves to the window `(start, end]` over `series`; positions are recomputed from scratch
    /// when it does not lie at or after the previous one.
    fn seek(&mut self, series: &[Loaded], start: i64, end: i64) {
        let forward = self.pos.len() == series.len() && start >= self.start && end >= self.end;
        if forward {
            for (p, s) in self.pos.iter_mut().zip(series) {
                p.0 = first_after(&s.points, p.0, start);
                p.1 = first_after(&s.points, p.1.max(p.0), end);
            }
        } else {
            self.pos.clear();
            self.pos.extend(series.iter().map(|s| {
                let lo = s.points.partition_point(|p| p.0 <= start);
                (lo, lo + s.points[lo..].partition_point(|p| p.0 <= end))
            }));
        }
        self.start = start;
        self.end = end;
    }
}

/// The output series of each label set across the steps of a range query or subquery: by
/// storage id first (a series' labels are usually the same storage at every step, coming from the
/// per-query caches), by content otherwise. Only ids of label sets the output holds are keys, so
/// an id cannot be reused by another set while the index lives.
#[derive(Default)]
struct SeriesIndex {
    by_id: FxHashMap<usize, usize>,
    by_content: FxHashMap<Labels, usize>,
}

impl SeriesIndex {
    /// The slot of `labels`; `new` stores a label set seen for the first time and returns its slot.
    fn slot(&mut self, labels: Labels, new: impl FnOnce(Labels) -> usize) -> usize {
        if let Some(&i) = self.by_id.get(&labels.storage_id()) {
            return i;
        }
        if let Some(&i) = self.by_content.get(&labels) {
            return i;
        }
        let id = labels.storage_id();
        let i = new(labels.clone());
        self.by_content.insert(labels, i);
        self.by_id.insert(id, i);
        i
    }
}

/// What `histogram_quantile` and friends take from one bucket series, once per query.
pub(crate) struct BucketKey {
    /// The series without `le` and `__name__`, interned.
    pub group: Labels,
    /// Its metric name.
    pub name: String,
    /// Its `le` bound, when present and valid.
    pub le: Option<f64>,
}

/// One element of an intermediate instant vector.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub labels: Labels,
    pub v: f64,
    /// The timestamp of the underlying sample; only `timestamp()` looks at it.
    pub ts: i64,
}

/// One series of an intermediate range vector.
#[derive(Debug, Clone)]
pub(crate) struct RSeries {
    pub labels: Labels,
    pub points: Points,
}

/// The points of a range-vector series.
#[derive(Debug, Clone)]
pub(crate) enum Points {
    /// A window of a loaded series, shared rather than copied: a range query cuts one window per
    /// series per step, and copying them was most of its allocations.
    Window(Arc<[(i64, f64)]>, std::ops::Range<usize>),
    /// Points of their own: a subquery's, or a window with stale markers taken out.
    Owned(Vec<(i64, f64)>),
}

impl std::ops::Deref for Points {
    type Target = [(i64, f64)];

    fn deref(&self) -> &[(i64, f64)] {
        match self {
            Points::Window(all, range) => &all[range.clone()],
            Points::Owned(v) => v,
        }
    }
}

/// A range-vector argument with the window it was cut from, `(start, end]`.
pub(crate) struct RangeArg {
    pub series: Vec<RSeries>,
    pub start: i64,
    pub end: i64,
    /// The selector, when the argument is a plain matrix selector (for `absent_over_time`).
    pub selector: Option<VectorSelector>,
}

/// An intermediate value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Elem>),
    Matrix(Vec<RSeries>),
}

/// Per-query state.
pub(crate) struct Ctx<'a> {
    pub opts: &'a EngineOptions,
    pub start: i64,
    pub end: i64,
    pub lookback: i64,
    data: HashMap<usize, Vec<Loaded>>,
    /// Per selector, where the previous evaluation's window ended in each loaded series: a range
    /// query moves forward one step at a time, so the next window is found by stepping on from
    /// there instead of two binary searches per series and step (cache misses over the whole
    /// series, the largest cost of range queries before).
    cursors: HashMap<usize, Cursor>,
    /// Label sets with `__name__` dropped, by the input set's [`Labels::storage_id`] (the input
    /// is held, so the id stays its own): a range query drops the same names at every step.
    name_dropped: FxHashMap<usize, (Labels, Labels)>,
    /// Grouping labels by (aggregation expression, input labels' id), interned in `interned` so
    /// that equal groups share one storage id.
    group_keys: FxHashMap<(usize, usize), (Labels, Labels)>,
    interned: FxHashSet<Labels>,
    /// Binary-operation match signatures by (expression, labels' id), as dense ids from
    /// `signature_ids`: equal signatures, equal ids.
    signatures: FxHashMap<(usize, usize), (Labels, u32)>,
    signature_ids: FxHashMap<String, u32>,
    /// Result labels of a vector match by (expression, many side's id, one side's id), interned.
    match_results: FxHashMap<(usize, usize, usize), (Labels, Labels, Labels)>,
    /// Per bucket series (by id; the series held): its labels without `le` and `__name__`
    /// (interned), its metric name, and its parsed `le`.
    pub(crate) buckets: FxHashMap<usize, (Labels, BucketKey)>,
    /// Content hashes of label sets by storage id (the labels held), for `check_dups`.
    content_hashes: FxHashMap<usize, (Labels, u64)>,
    /// Series whose name `rate` and friends have checked for a counter suffix (by storage id,
    /// the labels held).
    counter_checked: FxHashMap<usize, Labels>,
    ranges: HashMap<usize, (i64, i64)>,
    storage: &'a Storage,
    deadline: Instant,
    loaded_samples: usize,
    /// Points held by subqueries still being evaluated (an outer subquery's partial result while
    /// an inner one runs), counted against `max_samples` with `loaded_samples` as Prometheus
    /// counts its `currentSamples`: nested subqueries share one budget.
    held_samples: usize,
    /// Points of a range query's result so far.
    result_samples: usize,
    /// This query's share of the budget shared by all queries (`--query.max-samples-total`):
    /// always the three counts above together, given back when the query ends.
    charge: Charge<'a>,
    pub warnings: BTreeSet<String>,
    pub infos: BTreeSet<String>,
}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError::Execution(msg.into()))
}

pub(crate) fn dur_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => -dur_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => dur_ms(&d),
        Err(e) => -dur_ms(&e.duration()),
    }
}

/// Runs a whole query. `range` distinguishes a range query (matrix result) from an instant one.
pub(crate) fn run(
    opts: &EngineOptions,
    storage: &Storage,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    range: bool,
) -> Result<QueryResult, QueryError> {
    let mut ctx = Ctx {
        opts,
        start,
        end,
        lookback: dur_ms(&opts.lookback_delta),
        data: HashMap::new(),
        cursors: HashMap::new(),
        name_dropped: FxHashMap::default(),
        group_keys: FxHashMap::default(),
        interned: FxHashSet::default(),
        signatures: FxHashMap::default(),
        signature_ids: FxHashMap::default(),
        match_results: FxHashMap::default(),
        buckets: FxHashMap::default(),
        content_hashes: FxHashMap::default(),
        counter_checked: FxHashMap::default(),
        ranges: HashMap::new(),
        storage,
        deadline: Instant::now() + opts.timeout,
        loaded_samples: 0,
        held_samples: 0,
        result_samples: 0,
        charge: Charge::new(&opts.sample_budget),
        warnings: BTreeSet::new(),
        infos: BTreeSet::new(),
    };
    ctx.collect_ranges(expr, start, end)?;
    let value = if !range {
        match ctx.eval(expr, start)? {
            Val::Scalar(v) => Value::Scalar(start, v),
            Val::Str(s) => Value::String(start, s),
            Val::Vector(es) => Value::Vector(
                es.into_iter()
                    .map(|e| Sample {
                        labels: e.labels,
                        t: start,
                        v: e.v,
                    })
                    .collect(),
            ),
            Val::Matrix(ms) => Value::Matrix(
                ms.into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        points: match s.points {
                            Points::Owned(v) => v,
                            w @ Points::Window(..) => w.to_vec(),
                        },
                    })
                    .collect(),
            ),
        }
    } else {
        // Prometheus refuses these when it creates the range query, before evaluating
        // anything, and the API answers them as a bad `query` parameter (400 `bad_data`).
        match expr_type(expr) {
            ExprType::Matrix => {
                return Err(QueryError::Parse(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ));
            }
            ExprType::String => {
                return Err(QueryError::Parse(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ));
            }
            _ => {}
        }
        let mut index = SeriesIndex::default();
        let mut out: Vec<Series> = Vec::new();
        let mut t = start;
        while t <= end {
            ctx.check_deadline()?;
            let elems = match ctx.eval(expr, t)? {
                Val::Scalar(v) => vec![Elem {
                    labels: Labels::new(),
                    v,
                    ts: t,
                }],
                Val::Vector(es) => es,
                _ => return err("unexpected value type in range query"),
            };
            ctx.result_samples += elems.len();
            if ctx.result_samples.saturating_add(ctx.loaded_samples) > opts.max_samples {
                return Err(QueryError::TooManySamples);
            }
            ctx.account()?;
            for e in elems {
                let i = index.slot(e.labels, |labels| {
                    out.push(Series {
                        labels,
                        points: Vec::new(),
                    });
                    out.len() - 1
                });
                if out[i].points.last().is_some_and(|p| p.0 == t) {
                    return err("vector cannot contain metrics with the same labelset");
                }
                out[i].points.push((t, e.v));
            }
            t = match t.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Value::Matrix(out)
    };
    Ok(QueryResult {
        value,
        warnings: ctx.warnings.into_iter().collect(),
        infos: ctx.infos.into_iter().collect(),
    })
}

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExprType {
    Scalar,
    String,
    Vector,
    Matrix,
}

pub(crate) fn expr_type(e: &Expr) -> ExprType {
    use promql_parser::parser::value::ValueType;
    match e.value_type() {
        ValueType::Scalar => ExprType::Scalar,
        ValueType::String => ExprType::String,
        ValueType::Vector => ExprType::Vector,
        ValueType::Matrix => ExprType::Matrix,
    }
}

fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

impl<'a> Ctx<'a> {
    /// `l` without `__name__`, computed once per input label set per query.
    pub(crate) fn drop_name(&mut self, l: &Labels) -> Labels {
        if let Some((_, out)) = self.name_dropped.get(&l.storage_id()) {
            return out.clone();
        }
        let out = drop_name(l);
        self.name_dropped
            .insert(l.storage_id(), (l.clone(), out.clone()));
        out
    }

    /// Refuses a vector holding two equal label sets (Prometheus's "same labelset" error). Each
    /// label set's content is hashed once per query, not at every step.
    pub(crate) fn check_dups(&mut self, es: &[Elem]) -> Result<(), QueryError> {
        if es.len() < 2 {
            return Ok(());
        }
        let mut seen: FxHashMap<u64, usize> = FxHashMap::default();
        seen.reserve(es.len());
        for (i, e) in es.iter().enumerate() {
            let h = match self.content_hashes.get(&e.labels.storage_id()) {
                Some((_, h)) => *h,
                None => {
                    let h = rustc_hash::FxBuildHasher.hash_one(&e.labels);
                    self.content_hashes
                        .insert(e.labels.storage_id(), (e.labels.clone(), h));
                    h
                }
            };
            if let Some(j) = seen.insert(h, i) {
                // Equal hashes: a duplicate, or a collision that only the full check can tell.
                return if es[j].labels == e.labels {
                    err("vector cannot contain metrics with the same labelset")
                } else {
                    check_dups_by_content(es)
                };
            }
        }
        Ok(())
    }

    /// Whether this is the query's first look at series `l`'s name for the counter info.
    pub(crate) fn first_counter_check(&mut self, l: &Labels) -> bool {
        match self.counter_checked.entry(l.storage_id()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(l.clone());
                true
            }
        }
    }

    /// The group an aggregation puts `l` in, computed once per input label set per query and
    /// interned: equal groups are the same storage, so callers may index groups by its id.
    pub(crate) fn group_key(
        &mut self,
        aggr: usize,
        l: &Labels,
        f: impl Fn(&Labels) -> Labels,
    ) -> Labels {
        let k = (aggr, l.storage_id());
        if let Some((_, g)) = self.group_keys.get(&k) {
            return g.clone();
        }
        let g = self.intern(f(l));
        self.group_keys.insert(k, (l.clone(), g.clone()));
        g
    }

    /// The query's one copy of a label set equal to `l`: interned sets are equal exactly when
    /// their storage ids are.
    pub(crate) fn intern(&mut self, l: Labels) -> Labels {
        match self.interned.get(&l) {
            Some(same) => same.clone(),
            None => {
                self.interned.insert(l.clone());
                l
            }
        }
    }

    /// `l`'s match signature under `m` in binary expression `expr`, as an id: computed once per
    /// series and expression per query.
    fn signature_id(&mut self, expr: usize, l: &Labels, m: &Matching<'_>) -> u32 {
        let k = (expr, l.storage_id());
        if let Some((_, id)) = self.signatures.get(&k) {
            return *id;
        }
        let next = u32::try_from(self.signature_ids.len()).unwrap_or(u32::MAX);
        let id = *self.signature_ids.entry(signature(l, m)).or_insert(next);
        self.signatures.insert(k, (l.clone(), id));
        id
    }

    /// The labels of a vector-match result, once per (many, one) pair and expression per query.
    fn match_result(
        &mut self,
        expr: usize,
        many: &Labels,
        one: &Labels,
        build: impl FnOnce() -> Labels,
    ) -> Labels {
        let k = (expr, many.storage_id(), one.storage_id());
        if let Some((_, _, r)) = self.match_results.get(&k) {
            return r.clone();
        }
        let r = self.intern(build());
        self.match_results
            .insert(k, (many.clone(), one.clone(), r.clone()));
        r
    }

    /// Brings the query's share of the shared budget up (or down) to what it holds now.
    fn account(&mut self) -> Result<(), QueryError> {
        let held = self
            .loaded_samples
            .saturating_add(self.held_samples)
            .saturating_add(self.result_samples);
        self.charge.set(held)
    }

    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Walks the tree once to learn the time span every selector needs, so each is loaded once.
    fn collect_ranges(&mut self, e: &Expr, s: i64, en: i64) -> Result<(), QueryError> {
        match e {
            Expr::VectorSelector(vs) => {
                self.note_range(vs, s, en, self.lookback);
            }
            Expr::MatrixSelector(ms) => {
                let r = dur_ms(&ms.range);
                self.note_range(&ms.vs, s, en, r);
            }
            Expr::Subquery(sq) => {
                let (s2, e2) = match self.at_time(&sq.at) {
                    Some(t) => (t, t),
                    None => (s, en),
                };
                let off = offset_ms(&sq.offset);
                let r = dur_ms(&sq.range);
                self.collect_ranges(
                    &sq.expr,
                    s2.saturating_sub(off).saturating_sub(r),
                    e2.saturating_sub(off),
                )?;
            }
            Expr::Aggregate(a) => {
                self.collect_ranges(&a.expr, s, en)?;
                if let Some(p) = &a.param {
                    self.collect_ranges(p, s, en)?;
                }
            }
            Expr::Unary(u) => self.collect_ranges(&u.expr, s, en)?,
            Expr::Binary(b) => {
                self.collect_ranges(&b.lhs, s, en)?;
                self.collect_ranges(&b.rhs, s, en)?;
            }
            Expr::Paren(p) => self.collect_ranges(&p.expr, s, en)?,
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.collect_ranges(a, s, en)?;
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            Expr::Extension(_) => return err("unsupported expression"),
        }
        Ok(())
    }

    fn note_range(&mut self, vs: &VectorSelector, s: i64, e: i64, width: i64) {
        let (s, e) = match self.at_time(&vs.at) {
            Some(t) => (t, t),
            None => (s, e),
        };
        let off = offset_ms(&vs.offset);
        let mint = s.saturating_sub(off).saturating_sub(width);
        let maxt = e.saturating_sub(off);
        let r = self.ranges.entry(key(vs)).or_insert((mint, maxt));
        r.0 = r.0.min(mint);
        r.1 = r.1.max(maxt);
    }

    fn load(&mut self, vs: &VectorSelector) -> Result<(), QueryError> {
        let k = key(vs);
        if self.data.contains_key(&k) {
            return Ok(());
        }
        let (mint, maxt) = self.ranges.get(&k).copied().unwrap_or((i64::MIN, i64::MAX));
        let groups = crate::matchers::selector_matchers(vs)?;
        // `select` answers one matcher group sorted and without repeats; only the union of
        // several (`or` in a selector) needs deduplicating and sorting again.
        let several = groups.len() > 1;
        let mut seen: HashSet<Labels> = HashSet::new();
        let mut out = Vec::new();
        let deadline = edgeprom_storage::Deadline::at(self.deadline);
        for g in groups {
            let selected = self
                .storage
                .select_until(&g, mint, maxt, deadline)
                .map_err(|_| QueryError::Timeout)?;
            for sd in selected {
                // Decoding a series costs far more than reading the clock.
                self.check_deadline()?;
                if several && !seen.insert(sd.labels.clone()) {
                    continue;
                }
                let points: Vec<(i64, f64)> = sd
                    .samples()
                    .filter(|(t, _)| *t >= mint && *t <= maxt)
                    .collect();
                self.loaded_samples += points.len();
                if self.loaded_samples > self.opts.max_samples {
                    return Err(QueryError::TooManySamples);
                }
                self.account()?;
                out.push(Loaded {
                    labels: sd.labels,
                    points: points.into(),
                });
            }
        }
        if several {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        self.data.insert(k, out);
        Ok(())
    }

    /// Evaluates `e` at `t` (ms).
    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vs(vs, t)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let ra = self.eval_range(e, t)?;
                Ok(Val::Matrix(ra.series))
            }
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(es) => {
                    let out: Vec<Elem> = es
                        .into_iter()
                        .map(|mut e| {
                            e.v = -e.v;
                            e.labels = self.drop_name(&e.labels);
                            e
                        })
                        .collect();
                    self.check_dups(&out)?;
                    Ok(Val::Vector(out))
                }
                _ => err(
                    "unary expression only allowed on expressions of type scalar or instant vector",
                ),
            },
            Expr::Binary(b) => self.eval_binary(b, t),
            Expr::Aggregate(a) => crate::aggr::eval_aggregate(self, a, t),
            Expr::Call(c) => {
                let v = crate::functions::eval_call(self, c, t)?;
                if let Val::Vector(es) = &v {
                    self.check_dups(es)?;
                }
                Ok(v)
            }
            Expr::Extension(_) => err("unsupported expression"),
        }
    }

    pub(crate) fn eval_vector(&mut self, e: &Expr, t: i64) -> Result<Vec<Elem>, QueryError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            _ => err("expected instant vector"),
        }
    }

    pub(crate) fn eval_scalar(&mut self, e: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            _ => err("expected scalar"),
        }
    }

    /// The instant-vector selection: the newest sample in `(t - lookback, t]`, unless stale.
    pub(crate) fn eval_vs(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Elem>, QueryError> {
        self.load(vs)?;
        let te = self
            .at_time(&vs.at)
            .unwrap_or(t)
            .saturating_sub(offset_ms(&vs.offset));
        let lb = self.lookback;
        let k = key(vs);
        let Some(series) = self.data.get(&k) else {
            return Ok(Vec::new());
        };
        let cursor = self.cursors.entry(k).or_default();
        cursor.seek(series, te.saturating_sub(lb), te);
        let mut out = Vec::new();
        for (s, &(_, i)) in series.iter().zip(&cursor.pos) {
            if i == 0 {
                continue;
            }
            let (pt, pv) = s.points[i - 1];
            if pt <= te.saturating_sub(lb) || is_stale_nan(pv) {
                continue;
            }
            out.push(Elem {
                labels: s.labels.clone(),
                v: pv,
                ts: pt,
            });
        }
        Ok(out)
    }

    /// Evaluates a range-vector expression (matrix selector or subquery) at `t`.
    pub(crate) fn eval_range(&mut self, e: &Expr, t: i64) -> Result<RangeArg, QueryError> {
        match e {
            Expr::Paren(p) => self.eval_range(&p.expr, t),
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                self.load(vs)?;
                let end = self
                    .at_time(&vs.at)
                    .unwrap_or(t)
                    .saturating_sub(offset_ms(&vs.offset));
                let start = end.saturating_sub(dur_ms(&ms.range));
                let mut out = Vec::new();
                let k = key(vs);
                if let Some(series) = self.data.get(&k) {
                    let cursor = self.cursors.entry(k).or_default();
                    cursor.seek(series, start, end);
                    for (s, &(lo, hi)) in series.iter().zip(&cursor.pos) {
                        let window = &s.points[lo..hi];
                        let points = if window.iter().any(|p| is_stale_nan(p.1)) {
                            Points::Owned(
                                window
                                    .iter()
                                    .filter(|p| !is_stale_nan(p.1))
                                    .copied()
                                    .collect(),
                            )
                        } else {
                            Points::Window(Arc::clone(&s.points), lo..hi)
                        };
                        if !points.is_empty() {
                            out.push(RSeries {
                                labels: s.labels.clone(),
                                points,
                            });
                        }
                    }
                }
                Ok(RangeArg {
                    series: out,
                    start,
                    end,
                    selector: Some(vs.clone()),
                })
            }
            Expr::Subquery(sq) => self.eval_subquery(sq, t),
            _ => err("expected range vector"),
        }
    }

    fn eval_subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<RangeArg, QueryError> {
        let held_before = self.held_samples;
        let r = self.eval_subquery_points(sq, t);
        // Whatever happened, this subquery's points are the caller's now (or dropped).
        self.held_samples = held_before;
        // Giving back cannot fail; the subquery's own error comes first anyway.
        let released = self.account();
        let v = r?;
        released?;
        Ok(v)
    }

    fn eval_subquery_points(&mut self, sq: &SubqueryExpr, t: i64) -> Result<RangeArg, QueryError> {
        let end = self
            .at_time(&sq.at)
            .unwrap_or(t)
            .saturating_sub(offset_ms(&sq.offset));
        let range = dur_ms(&sq.range);
        let step = match &sq.step {
            Some(s) if !s.is_zero() => dur_ms(s),
            _ => dur_ms(&self.opts.default_subquery_step),
        }
        .max(1);
        let start = end.saturating_sub(range);
        // Subquery steps sit on absolute multiples of the step, the first one strictly after the
        // window start (Go's truncating division, as Prometheus computes it).
        let mut ts = step.saturating_mul(start / step);
        if ts <= start {
            ts = ts.saturating_add(step);
        }
        let mut index = SeriesIndex::default();
        let mut out: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        let mut count = 0usize;
        while ts <= end {
            self.check_deadline()?;
            let elems = match self.eval(&sq.expr, ts)? {
                Val::Scalar(v) => vec![Elem {
                    labels: Labels::new(),
                    v,
                    ts,
                }],
                Val::Vector(es) => es,
                _ => return err("subquery is only allowed on instant vector or scalar"),
            };
            count += elems.len();
            self.held_samples += elems.len();
            if count > self.opts.max_samples
                || self.held_samples.saturating_add(self.loaded_samples) > self.opts.max_samples
            {
                return Err(QueryError::TooManySamples);
            }
            self.account()?;
            for e in elems {
                let i = index.slot(e.labels, |labels| {
                    out.push((labels, Vec::new()));
                    out.len() - 1
                });
                out[i].1.push((ts, e.v));
            }
            ts = match ts.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(RangeArg {
            series: out
                .into_iter()
                .map(|(labels, points)| RSeries {
                    labels,
                    points: Points::Owned(points),
                })
                .collect(),
            start,
            end,
            selector: None,
        })
    }

    fn eval_binary(&mut self, b: &BinaryExpr, t: i64) -> Result<Val, QueryError> {
        let op = b.op;
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        let return_bool = b.return_bool();
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let (v, keep) = binop(op, l, r)?;
                if is_comparison(op) {
                    Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }))
                } else {
                    Ok(Val::Scalar(v))
                }
            }
            (Val::Vector(l), Val::Scalar(r)) => {
                let out = vector_scalar(self, op, l, r, false, return_bool)?;
                self.check_dups(&out)?;
                Ok(Val::Vector(out))
            }
            (Val::Scalar(l), Val::Vector(r)) => {
                let out = vector_scalar(self, op, r, l, true, return_bool)?;
                self.check_dups(&out)?;
                Ok(Val::Vector(out))
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let out = vector_vector(self, b, l, r)?;
                self.check_dups(&out)?;
                Ok(Val::Vector(out))
            }
            _ => err("binary expression must contain only scalar and instant vector types"),
        }
    }
}

/// Fails like Prometheus when one step's output holds two elements with the same labels.
/// The check behind [`Ctx::check_dups`], hashing every label set.
fn check_dups_by_content(es: &[Elem]) -> Result<(), QueryError> {
    let mut seen: FxHashSet<&Labels> = FxHashSet::default();
    seen.reserve(es.len());
    for e in es {
        if !seen.insert(&e.labels) {
            return err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

pub(crate) fn drop_name(l: &Labels) -> Labels {
    if !l.contains("__name__") {
        return l.clone();
    }
    let mut b = l.to_builder();
    b.del("__name__");
    b.build()
}

pub(crate) fn is_comparison(op: TokenType) -> bool {
    op.is_comparison_operator()
}

/// Applies an arithmetic or comparison operator; comparisons return the left value and whether
/// the comparison held.
pub(crate) fn binop(op: TokenType, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    let id = op.id();
    Ok(match id {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        token::T_MOD => (l % r, true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        _ => return err(format!("operator {op} not allowed here")),
    })
}

fn vector_scalar(
    ctx: &mut Ctx<'_>,
    op: TokenType,
    vec: Vec<Elem>,
    scalar: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Elem>, QueryError> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(vec.len());
    for mut e in vec {
        let (l, r) = if swap { (scalar, e.v) } else { (e.v, scalar) };
        let (mut v, keep) = binop(op, l, r)?;
        // The vector element's value is the output of a filter even when the scalar is on the left.
        if cmp && swap {
            v = r;
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        if !cmp || return_bool {
            e.labels = ctx.drop_name(&e.labels);
        }
        e.v = v;
        out.push(e);
    }
    Ok(out)
}

/// The matching configuration of a vector-vector operation.
struct Matching<'m> {
    card: &'m VectorMatchCardinality,
    on: bool,
    names: Vec<String>,
}

fn matching_of(b: &BinaryExpr) -> Matching<'_> {
    static ONE_TO_ONE: VectorMatchCardinality = VectorMatchCardinality::OneToOne;
    static MANY: VectorMatchCardinality = VectorMatchCardinality::ManyToMany;
    let set_op = b.op.is_set_operator();
    match &b.modifier {
        None => Matching {
            card: if set_op { &MANY } else { &ONE_TO_ONE },
            on: false,
            names: Vec::new(),
        },
        Some(m) => {
            let (on, names) = match &m.matching {
                Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
                None => (false, Vec::new()),
            };
            let card = if set_op { &MANY } else { &m.card };
            Matching { card, on, names }
        }
    }
}

/// The signature a vector-matching operation groups by, as a string of `name\xffvalue\xff` pairs.
fn signature(l: &Labels, m: &Matching<'_>) -> String {
    let mut s = String::new();
    for lab in l.iter() {
        let inc = if m.on {
            m.names.contains(&lab.name)
        } else {
            lab.name != "__name__" && !m.names.contains(&lab.name)
        };
        if inc {
            s.push_str(&lab.name);
            s.push('\u{ff}');
            s.push_str(&lab.value);
            s.push('\u{ff}');
        }
    }
    s
}

fn match_labels(l: &Labels, m: &Matching<'_>) -> Labels {
    let mut b = l.to_builder();
    if m.on {
        b.retain(|lab| m.names.contains(&lab.name));
    } else {
        b.retain(|lab| lab.name != "__name__" && !m.names.contains(&lab.name));
    }
    b.build()
}

fn vector_vector(
    ctx: &mut Ctx<'_>,
    b: &BinaryExpr,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
) -> Result<Vec<Elem>, QueryError> {
    let m = matching_of(b);
    let id = b.op.id();
    // Signatures and result labels are cached per series for this expression: a range query
    // matches the same series at every step.
    let expr = b as *const BinaryExpr as usize;
    match id {
        token::T_LAND | token::T_LUNLESS => {
            let rs: FxHashSet<u32> = rhs
                .iter()
                .map(|e| ctx.signature_id(expr, &e.labels, &m))
                .collect();
            let keep_matched = id == token::T_LAND;
            let mut out = Vec::with_capacity(lhs.len());
            for e in lhs {
                if rs.contains(&ctx.signature_id(expr, &e.labels, &m)) == keep_matched {
                    out.push(e);
                }
            }
            return Ok(out);
        }
        token::T_LOR => {
            let ls: FxHashSet<u32> = lhs
                .iter()
                .map(|e| ctx.signature_id(expr, &e.labels, &m))
                .collect();
            let mut out = lhs;
            for e in rhs {
                if !ls.contains(&ctx.signature_id(expr, &e.labels, &m)) {
                    out.push(e);
                }
            }
            return Ok(out);
        }
        _ => {}
    }
    let cmp = is_comparison(b.op);
    let return_bool = b.return_bool();
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let include: Vec<String> = match m.card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
            l.labels.clone()
        }
        _ => Vec::new(),
    };
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: FxHashMap<u32, &Elem> = FxHashMap::default();
    right.reserve(one.len());
    for e in &one {
        let sig = ctx.signature_id(expr, &e.labels, &m);
        if let Some(prev) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return err(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                fmt_labels(&match_labels(&e.labels, &m)),
                side,
                fmt_labels(&e.labels),
                fmt_labels(&prev.labels)
            ));
        }
        right.insert(sig, e);
    }
    // One-to-one: the signatures already matched. Otherwise: per signature, the (interned)
    // result label sets produced, by storage id.
    let mut matched_once: FxHashSet<u32> = FxHashSet::default();
    let mut matched: FxHashMap<u32, FxHashSet<usize>> = FxHashMap::default();
    let mut out = Vec::new();
    for ls in &many {
        let sig = ctx.signature_id(expr, &ls.labels, &m);
        let Some(rs) = right.get(&sig) else {
            continue;
        };
        let (fl, fr) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut v, keep) = binop(b.op, fl, fr)?;
        // One-to-one uniqueness is checked before comparison filtering, as Prometheus does, so
        // an ambiguous match errors even when the filter would drop it.
        if one_to_one && !matched_once.insert(sig) {
            return err(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
            );
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        // Result labels: the "many" side's, minus the name for arithmetic, reduced to the
        // matching labels for one-to-one, plus the `group_x` labels taken from the "one" side.
        let metric = ctx.match_result(expr, &ls.labels, &rs.labels, || {
            let mut lb = ls.labels.to_builder();
            if !cmp || return_bool {
                lb.del("__name__");
            }
            if one_to_one {
                if m.on {
                    lb.retain(|l| m.names.contains(&l.name));
                } else {
                    lb.retain(|l| !m.names.contains(&l.name));
                }
            }
            for n in &include {
                match rs.labels.get(n) {
                    Some(v) => {
                        lb.set(n.clone(), v.to_string());
                    }
                    None => {
                        lb.del(n);
                    }
                }
            }
            lb.build()
        });
        if !one_to_one && !matched.entry(sig).or_default().insert(metric.storage_id()) {
            return err("multiple matches for labels: grouping labels must ensure unique matches");
        }
        out.push(Elem {
            labels: metric,
            v,
            ts: ls.ts,
        });
    }
    Ok(out)
}

/// Formats labels like Prometheus's `Labels.String()`: `{a="1", b="2"}` with the name inside.
pub(crate) fn fmt_labels(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, lab) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&lab.name);
        s.push('=');
        s.push_str(&format!("{:?}", lab.value));
    }
    s.push('}');
    s
}
