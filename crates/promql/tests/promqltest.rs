//! Runs Prometheus's own promqltest corpus (`testdata/promqltest/*.test`, v3.9.1) against the
//! engine, with data written through the real storage engine.
//!
//! Every eval case is identified as `file:line`. Cases listed in `testdata/skip.txt` are run but
//! do not fail the test; any other failing case does. Set `PROMQLTEST_WRITE_SKIP=1` to rewrite the
//! skip list from the current failures (reasons are classified heuristically and then reviewed).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use edgeprom_model::{Appendable, Labels, stale_nan};
use edgeprom_promql::{Engine, EngineOptions, QueryError, QueryResult, Value};
use edgeprom_storage::{Options, Storage};

/// Prometheus's test runner compares floats with this relative epsilon.
const EPSILON: f64 = 0.000001;

fn almost_equal(a: f64, b: f64) -> bool {
    edgeprom_promql::almost_equal(a, b, EPSILON)
}

/// One value of a series description; `None` is an omitted (`_`) value.
type SeqValue = Option<f64>;

#[derive(Debug, Default, Clone)]
struct Expect {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    warn: bool,
    info: bool,
    no_warn: bool,
    no_info: bool,
    warn_msgs: Vec<Matcher>,
    info_msgs: Vec<Matcher>,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Msg(String),
    Regex(String),
}

impl Matcher {
    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Msg(m) => m == s,
            Matcher::Regex(r) => regex::Regex::new(r)
                .map(|re| re.is_match(s))
                .unwrap_or(false),
        }
    }
}

#[derive(Debug, Clone)]
struct EvalCase {
    line: usize,
    expr: String,
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expect,
    scalar: Option<f64>,
    /// Expected series in file order.
    series: Vec<(Labels, Vec<SeqValue>)>,
    histogram: bool,
}

enum Cmd {
    Load {
        interval: i64,
        series: Vec<(Labels, Vec<Option<f64>>)>,
        histogram: bool,
    },
    Clear,
    Eval(Box<EvalCase>),
    Bad(usize, String),
}

fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total: i64 = 0;
    let mut rest = s;
    let units: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (u, mult) = units.iter().find(|(u, _)| rest.starts_with(u))?;
        total += n * mult;
        rest = &rest[u.len()..];
    }
    Some(if neg { -total } else { total })
}

fn parse_time(s: &str) -> Option<i64> {
    parse_duration(s).or_else(|| s.parse::<f64>().ok().map(|f| (f * 1000.0).round() as i64))
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s;
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if t.chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Splits `metric{labels} values` into the metric part and the values part, honouring quotes.
fn split_metric(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut in_q = false;
    let mut esc = false;
    let mut depth = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_q {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_q = false;
            }
            continue;
        }
        match b {
            b'"' => in_q = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], line[i + 1..].trim());
                }
            }
            b' ' | b'\t' if depth == 0 => return (&line[..i], line[i..].trim()),
            _ => {}
        }
    }
    (line, "")
}

fn parse_labels(metric: &str) -> Result<Labels, String> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::Expr;
    if metric.trim() == "{}" {
        return Ok(Labels::new());
    }
    let e = promql_parser::parser::parse(metric)?;
    let Expr::VectorSelector(vs) = e else {
        return Err(format!("not a series: {metric}"));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(format!("bad matcher in series {metric}"));
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

fn parse_values(s: &str) -> Result<(Vec<Option<f64>>, bool), String> {
    let mut out = Vec::new();
    let mut stale = false;
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if tok == "stale" {
            out.push(Some(stale_nan()));
            stale = true;
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad token {tok}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(v) = parse_number(tok) {
            out.push(Some(v));
            continue;
        }
        let Some(xi) = tok.rfind('x') else {
            return Err(format!("bad token {tok}"));
        };
        let n: usize = tok[xi + 1..]
            .parse()
            .map_err(|_| format!("bad token {tok}"))?;
        let head = &tok[..xi];
        let hb = head.as_bytes();
        let mut split = None;
        for i in (1..hb.len()).rev() {
            if (hb[i] == b'+' || hb[i] == b'-') && hb[i - 1] != b'e' && hb[i - 1] != b'E' {
                split = Some(i);
                break;
            }
        }
        let (start, delta) = match split {
            Some(i) => (&head[..i], &head[i..]),
            None => (head, "0"),
        };
        let mut v = if start == "stale" {
            stale_nan()
        } else {
            parse_number(start).ok_or_else(|| format!("bad token {tok}"))?
        };
        let d = parse_number(delta.trim_start_matches('+'))
            .ok_or_else(|| format!("bad token {tok}"))?;
        out.push(Some(v));
        for _ in 0..n {
            v += d;
            out.push(Some(v));
        }
    }
    Ok((out, stale))
}

fn parse_matcher(rest: &str) -> Option<Matcher> {
    let rest = rest.trim();
    if let Some(m) = rest.strip_prefix("msg:") {
        return Some(Matcher::Msg(m.trim().to_string()));
    }
    if let Some(r) = rest.strip_prefix("regex:") {
        return Some(Matcher::Regex(r.trim().to_string()));
    }
    None
}

fn parse_file(text: &str) -> Vec<Cmd> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let lineno = i + 1;
        i += 1;
        if l.is_empty() {
            continue;
        }
        let mut block = Vec::new();
        // `clear` takes no block: the next line is a command of its own.
        while l != "clear" && i < lines.len() && !lines[i].is_empty() {
            block.push(lines[i].clone());
            i += 1;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        match first {
            "clear" => cmds.push(Cmd::Clear),
            "load" | "load_with_nhcb" => {
                let arg = l.split_whitespace().nth(1).unwrap_or("");
                let Some(interval) = parse_duration(arg) else {
                    cmds.push(Cmd::Bad(lineno, format!("bad load interval {arg}")));
                    continue;
                };
                let mut histogram = first == "load_with_nhcb";
                let mut series = Vec::new();
                for b in &block {
                    if b.contains("{{") {
                        histogram = true;
                        continue;
                    }
                    let (m, v) = split_metric(b);
                    match (parse_labels(m), parse_values(v)) {
                        (Ok(l), Ok((vals, _))) => {
                            series.retain(|(x, _): &(Labels, Vec<Option<f64>>)| *x != l);
                            series.push((l, vals));
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            cmds.push(Cmd::Bad(lineno, e));
                        }
                    }
                }
                cmds.push(Cmd::Load {
                    interval,
                    series,
                    histogram,
                });
            }
            _ if first.starts_with("eval") => match parse_eval(l, lineno, &block) {
                Ok(c) => cmds.push(Cmd::Eval(Box::new(c))),
                Err(e) => cmds.push(Cmd::Bad(lineno, e)),
            },
            _ => cmds.push(Cmd::Bad(lineno, format!("unknown command {l}"))),
        }
    }
    cmds
}

fn parse_eval(l: &str, line: usize, block: &[String]) -> Result<EvalCase, String> {
    let (kw, rest) = l.split_once(' ').ok_or("bad eval")?;
    let mut expect = Expect::default();
    match kw {
        "eval" => {}
        "eval_fail" => expect.fail = true,
        "eval_warn" => expect.warn = true,
        "eval_info" => expect.info = true,
        "eval_ordered" => expect.ordered = true,
        _ => return Err(format!("unknown eval form {kw}")),
    }
    let rest = rest.trim();
    let (range, at, expr) = if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, e) = r.trim().split_once(' ').ok_or("bad instant eval")?;
        (None, parse_time(t).ok_or("bad time")?, e.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let parts: Vec<&str> = r.trim().splitn(6, ' ').collect();
        if parts.len() < 6 || parts[1] != "to" || parts[3] != "step" {
            return Err("bad range eval".into());
        }
        let s = parse_time(parts[0]).ok_or("bad start")?;
        let e = parse_time(parts[2]).ok_or("bad end")?;
        let st = parse_duration(parts[4]).ok_or("bad step")?;
        (Some((s, e, st)), s, parts[5].trim().to_string())
    } else {
        return Err("bad eval".into());
    };
    let mut case = EvalCase {
        line,
        expr,
        range,
        at,
        expect,
        scalar: None,
        series: Vec::new(),
        histogram: false,
    };
    for b in block {
        if let Some(e) = b.strip_prefix("expect ") {
            let e = e.trim();
            let (word, tail) = e.split_once(' ').unwrap_or((e, ""));
            match word {
                "fail" => {
                    case.expect.fail = true;
                    match parse_matcher(tail) {
                        Some(Matcher::Msg(m)) => case.expect.fail_msg = Some(m),
                        Some(Matcher::Regex(r)) => case.expect.fail_regex = Some(r),
                        None => {}
                    }
                }
                "warn" => {
                    case.expect.warn = true;
                    if let Some(m) = parse_matcher(tail) {
                        case.expect.warn_msgs.push(m);
                    }
                }
                "info" => {
                    case.expect.info = true;
                    if let Some(m) = parse_matcher(tail) {
                        case.expect.info_msgs.push(m);
                    }
                }
                "no_warn" => case.expect.no_warn = true,
                "no_info" => case.expect.no_info = true,
                "ordered" => case.expect.ordered = true,
                "string" => {
                    let s = tail.trim();
                    let s = s
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| s.strip_prefix('`').and_then(|s| s.strip_suffix('`')))
                        .ok_or("bad expect string")?;
                    case.expect.string = Some(s.to_string());
                }
                "range" => {
                    let p: Vec<&str> = tail.split_whitespace().collect();
                    if p.len() != 7 || p[0] != "vector" {
                        return Err("bad expect range vector".into());
                    }
                    case.expect.range_vector = Some((
                        parse_time(p[2]).ok_or("bad time")?,
                        parse_time(p[4]).ok_or("bad time")?,
                        parse_duration(p[6]).ok_or("bad step")?,
                    ));
                }
                _ => return Err(format!("unknown expect {word}")),
            }
            continue;
        }
        if let Some(m) = b.strip_prefix("expected_fail_message ") {
            case.expect.fail_msg = Some(m.trim().to_string());
            continue;
        }
        if let Some(r) = b.strip_prefix("expected_fail_regexp ") {
            case.expect.fail_regex = Some(r.trim().to_string());
            continue;
        }
        if b.contains("{{") {
            case.histogram = true;
            continue;
        }
        if let Some(v) = parse_number(b) {
            case.scalar = Some(v);
            continue;
        }
        let (m, v) = split_metric(b);
        let labels = parse_labels(m)?;
        let (vals, _) = parse_values(v)?;
        case.series.push((labels, vals));
    }
    Ok(case)
}

struct Runner {
    engine: Engine,
    storage: Option<Storage>,
    dirs: Vec<tempfile::TempDir>,
}

impl Runner {
    fn fresh(&mut self) {
        self.storage = None;
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            chunk_file_size: 1 << 20,
            ..Options::default()
        };
        self.storage = Some(Storage::open(dir.path(), opts).expect("open storage"));
        self.dirs.push(dir);
    }

    fn storage(&self) -> &Storage {
        self.storage.as_ref().expect("storage open")
    }

    fn load(&mut self, interval: i64, series: &[(Labels, Vec<Option<f64>>)]) -> Result<(), String> {
        let st = self.storage();
        let mut app = st.appender();
        for (labels, vals) in series {
            for (i, v) in vals.iter().enumerate() {
                if let Some(v) = v {
                    app.append(None, labels, i as i64 * interval, *v)
                        .map_err(|e| format!("append {labels}: {e}"))?;
                }
            }
        }
        app.commit().map_err(|e| e.to_string())
    }
}

fn check_annotations(c: &EvalCase, r: &QueryResult) -> Result<(), String> {
    let e = &c.expect;
    if e.warn && r.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if e.info && r.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    for (kind, exp, actual) in [
        ("warn", &e.warn_msgs, &r.warnings),
        ("info", &e.info_msgs, &r.infos),
    ] {
        if exp.is_empty() {
            continue;
        }
        for m in exp {
            if !actual.iter().any(|a| m.matches(a)) {
                return Err(format!("expected {kind} annotation {m:?}, got {actual:?}"));
            }
        }
        for a in actual {
            if !exp.iter().any(|m| m.matches(a)) {
                return Err(format!("unexpected {kind} annotation {a:?}"));
            }
        }
    }
    if e.no_warn && !r.warnings.is_empty() {
        return Err(format!("unexpected warnings {:?}", r.warnings));
    }
    if e.no_info && !r.infos.is_empty() {
        return Err(format!("unexpected infos {:?}", r.infos));
    }
    Ok(())
}

fn check_failure(c: &EvalCase, err: &QueryError) -> Result<(), String> {
    let msg = err.to_string();
    if let Some(m) = &c.expect.fail_msg
        && *m != msg
    {
        return Err(format!("expected error {m:?}, got {msg:?}"));
    }
    if let Some(r) = &c.expect.fail_regex {
        let re = regex::Regex::new(r).map_err(|e| e.to_string())?;
        if !re.is_match(&msg) {
            return Err(format!("expected error matching {r:?}, got {msg:?}"));
        }
    }
    Ok(())
}

/// Compares a result with the expectation the way Prometheus's `compareResult` does.
fn compare(c: &EvalCase, v: &Value, start: i64, end: i64, step: i64) -> Result<(), String> {
    let expected: HashMap<&Labels, (usize, &Vec<SeqValue>)> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, (l, v))| (l, (i + 1, v)))
        .collect();
    match v {
        Value::Matrix(m) => {
            if c.expect.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if c.scalar.is_some() {
                return Err("expected scalar result, but got matrix".into());
            }
            for w in m.windows(2) {
                if w[0].labels > w[1].labels {
                    return Err("matrix results should always be sorted by labels".into());
                }
            }
            for s in m {
                let Some((_, vals)) = expected.get(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has {:?}",
                        s.labels, s.points
                    ));
                };
                let mut exp = Vec::new();
                for (i, e) in vals.iter().enumerate() {
                    let ts = start + i as i64 * step;
                    if ts > end {
                        return Err(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            vals.len(),
                            s.labels
                        ));
                    }
                    if let Some(v) = e {
                        exp.push((ts, *v));
                    }
                }
                if exp.len() != s.points.len() {
                    return Err(format!(
                        "expected {} float points for {}, but got {:?}",
                        exp.len(),
                        s.labels,
                        s.points
                    ));
                }
                for (e, a) in exp.iter().zip(&s.points) {
                    if e.0 != a.0 {
                        return Err(format!(
                            "expected timestamp {} for {}, got {}",
                            e.0, s.labels, a.0
                        ));
                    }
                    if !almost_equal(a.1, e.1) {
                        return Err(format!(
                            "expected {} at t={} for {}, got {} (result {:?})",
                            e.1, a.0, s.labels, a.1, s.points
                        ));
                    }
                }
            }
            for l in expected.keys() {
                if !m.iter().any(|s| s.labels == **l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
        }
        Value::Vector(vec) => {
            if c.scalar.is_some() {
                return Err("expected scalar result, but got vector".into());
            }
            let mut seen = 0;
            for (pos, s) in vec.iter().enumerate() {
                let Some((epos, vals)) = expected.get(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {}",
                        s.labels, s.v
                    ));
                };
                if c.expect.ordered && *epos != pos + 1 {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        epos,
                        pos + 1
                    ));
                }
                let e = vals.first().copied().flatten().unwrap_or(f64::NAN);
                if !almost_equal(e, s.v) {
                    return Err(format!("expected {} for {} but got {}", e, s.labels, s.v));
                }
                seen += 1;
            }
            if seen != expected.len() {
                for l in expected.keys() {
                    if !vec.iter().any(|s| s.labels == **l) {
                        return Err(format!("expected metric {l} not found"));
                    }
                }
            }
        }
        Value::Scalar(_, v) => {
            let Some(e) = c.scalar else {
                return Err(format!(
                    "expected vector or matrix result, but got scalar {v}"
                ));
            };
            if !almost_equal(e, *v) {
                return Err(format!("expected scalar {e} but got {v}"));
            }
        }
        Value::String(_, s) => {
            if c.expect.string.as_deref() != Some(s.as_str()) {
                return Err(format!(
                    "expected string {:?} but got {s:?}",
                    c.expect.string
                ));
            }
        }
    }
    Ok(())
}

fn run_case(r: &Runner, c: &EvalCase) -> Result<(), String> {
    let st = r.storage();
    if let Some((s, e, step)) = c.range {
        let res = r.engine.range_query(st, &c.expr, s, e, step);
        return match res {
            Err(err) if c.expect.fail => check_failure(c, &err),
            Err(err) => Err(format!("error evaluating query: {err}")),
            Ok(_) if c.expect.fail => Err("expected error but got none".into()),
            Ok(res) => {
                check_annotations(c, &res)?;
                compare(c, &res.value, s, e, step)
            }
        };
    }
    let res = r.engine.instant_query(st, &c.expr, c.at);
    let res = match res {
        Err(err) if c.expect.fail => return check_failure(c, &err),
        Err(err) => return Err(format!("error evaluating query: {err}")),
        Ok(_) if c.expect.fail => return Err("expected error but got none".into()),
        Ok(res) => res,
    };
    check_annotations(c, &res)?;
    if std::env::var("PROMQLTEST_VERBOSE").is_ok() {
        println!("RESULT line {}: {:?}", c.line, res.value);
    }
    match c.expect.range_vector {
        Some((s, e, step)) => compare(c, &res.value, s, e, step)?,
        None => compare(c, &res.value, c.at, c.at, 0)?,
    }
    if c.expect.range_vector.is_some() || c.expect.string.is_some() || c.expr.contains("range()") {
        return Ok(());
    }
    // Prometheus re-runs every instant query as a range query around the same time and checks
    // the middle step.
    let rr = r
        .engine
        .range_query(st, &c.expr, c.at - 60_000, c.at + 60_000, 60_000)
        .map_err(|e| format!("error evaluating query in range mode: {e}"))?;
    if c.expect.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = rr.value else {
        return Err("range mode did not return a matrix".into());
    };
    for w in m.windows(2) {
        if w[0].labels > w[1].labels {
            return Err("range mode: matrix not sorted".into());
        }
    }
    let vec: Vec<edgeprom_promql::Sample> = m
        .iter()
        .filter_map(|s| {
            s.points
                .iter()
                .find(|p| p.0 == c.at)
                .map(|p| edgeprom_promql::Sample {
                    labels: s.labels.clone(),
                    t: p.0,
                    v: p.1,
                })
        })
        .collect();
    let v = if matches!(res.value, Value::Scalar(..)) {
        Value::Scalar(c.at, vec.first().map(|s| s.v).unwrap_or(f64::NAN))
    } else {
        Value::Vector(vec)
    };
    compare(c, &v, c.at, c.at, 0).map_err(|e| format!("range mode: {e}"))
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn load_skips() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(testdata().join("skip.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

/// A first-cut reason for a failing case, for `PROMQLTEST_WRITE_SKIP`.
fn classify(file: &str, c: Option<&EvalCase>, hist_block: bool, msg: &str) -> String {
    let expr = c.map(|c| c.expr.as_str()).unwrap_or("");
    if hist_block
        || c.is_some_and(|c| c.histogram)
        || expr.contains("histogram_") && !expr.contains("histogram_quantile")
    {
        return "native histograms".into();
    }
    if file == "duration_expression.test" {
        return "duration expression".into();
    }
    if file == "extended_vectors.test" || expr.contains("anchored") || expr.contains("smoothed") {
        return "anchored/smoothed".into();
    }
    if file == "name_label_dropping.test" {
        return "delayed name removal".into();
    }
    if expr.contains("\\x") {
        return "invalid UTF-8 in a string literal (Rust strings are UTF-8)".into();
    }
    if file == "type_and_unit.test" {
        return "type_and_unit".into();
    }
    if expr.contains("info(") && !expr.contains("_info(") {
        return "experimental function info".into();
    }
    for f in [
        "limit_ratio",
        "sort_by_label",
        "double_exponential_smoothing",
        "mad_over_time",
        "ts_of_",
        "first_over_time",
        "step()",
        "range()",
    ] {
        if expr.contains(f) {
            return format!("experimental function {f}");
        }
    }
    if msg.contains("expected error") {
        return format!("error message differs: {}", short(msg));
    }
    format!("not implemented yet: {}", short(msg))
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(110).collect();
    s.replace('\n', " ")
}

#[test]
fn promqltest_corpus() {
    let dir = testdata().join("promqltest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let skips = load_skips();
    // Prometheus's runner enables the experimental functions too.
    let engine = Engine::new(EngineOptions {
        max_samples: 50_000_000,
        experimental_functions: true,
        ..EngineOptions::default()
    });
    let filter = std::env::var("PROMQLTEST_FILE").ok();
    let verbose = std::env::var("PROMQLTEST_VERBOSE").is_ok();
    let mut new_skips: Vec<String> = Vec::new();
    let (mut tp, mut tf, mut ts, mut t_skip_pass) = (0, 0, 0, 0);
    let mut unexpected: Vec<String> = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read test file");
        let mut runner = Runner {
            engine: engine.clone(),
            storage: None,
            dirs: Vec::new(),
        };
        runner.fresh();
        let (mut p, mut f, mut s) = (0, 0, 0);
        let mut hist_block = false;
        let mut load_error: Option<String> = None;
        for cmd in parse_file(&text) {
            let (id, case, outcome) = match cmd {
                Cmd::Clear => {
                    runner.fresh();
                    hist_block = false;
                    load_error = None;
                    continue;
                }
                Cmd::Load {
                    interval,
                    series,
                    histogram,
                } => {
                    hist_block |= histogram;
                    if let Err(e) = runner.load(interval, &series) {
                        load_error = Some(e);
                    }
                    continue;
                }
                Cmd::Bad(line, e) => (
                    format!("{name}:{line}"),
                    None,
                    Err(format!("test parse: {e}")),
                ),
                Cmd::Eval(c) => {
                    let id = format!("{}:{}", name, c.line);
                    let outcome = match &load_error {
                        Some(e) => Err(format!("load failed: {e}")),
                        None => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_case(&runner, &c)
                        }))
                        .unwrap_or_else(|_| Err("panic".into())),
                    };
                    (id, Some(c), outcome)
                }
            };
            let skipped = skips.contains_key(&id);
            match (&outcome, skipped) {
                (Ok(()), false) => p += 1,
                (Ok(()), true) => {
                    s += 1;
                    t_skip_pass += 1;
                    if verbose {
                        println!("SKIPPED BUT PASSES {id}");
                    }
                }
                (Err(_), true) => s += 1,
                (Err(e), false) => {
                    f += 1;
                    unexpected.push(format!("{id}: {}", short(e)));
                }
            }
            if let Err(e) = &outcome {
                if verbose {
                    println!(
                        "FAIL {id} [{}]: {e}",
                        case.as_ref().map(|c| c.expr.as_str()).unwrap_or("")
                    );
                }
                let reason = skips
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| classify(&name, case.as_deref(), hist_block, e));
                new_skips.push(format!("{id} {reason}"));
            }
        }
        println!("{name}: {p} passed, {f} failed, {s} skipped");
        tp += p;
        tf += f;
        ts += s;
    }
    println!(
        "TOTAL: {tp} passed, {tf} failed, {ts} skipped ({t_skip_pass} of the skipped now pass)"
    );
    if std::env::var("PROMQLTEST_WRITE_SKIP").is_ok() {
        let mut out = String::from(
            "# promqltest cases that do not pass yet: `file:line reason`, one per line.\n\
             # Generated by PROMQLTEST_WRITE_SKIP=1 from the failures, then reviewed.\n",
        );
        for l in &new_skips {
            out.push_str(l);
            out.push('\n');
        }
        std::fs::write(testdata().join("skip.txt"), out).expect("write skip.txt");
    }
    for u in &unexpected {
        println!("UNEXPECTED FAILURE {u}");
    }
    assert!(
        unexpected.is_empty(),
        "{} promqltest cases failed that are not on the skip list",
        unexpected.len()
    );
}
