//! Function calls.

use edgeprom_model::Labels;
use promql_parser::parser::{Call, Expr};

use crate::QueryError;
use crate::eval::{Ctx, Elem, RSeries, RangeArg, Val, err};

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

pub(crate) use crate::format_value as fmt_float;

/// Orders sample values for sorting and top/bottom-k: NaN always last, whichever the direction.
pub(crate) fn cmp_nan_last(a: f64, b: f64, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
    }
}

/// Linear-interpolation quantile over values, as Prometheus's `quantile`.
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

const MIN_NORMAL: f64 = 2.2250738585072014e-308;

/// Relative float comparison as Prometheus's `almost.Equal`: NaN equals NaN, and values near
/// zero compare against `eps` scaled to the smallest normal float. Prometheus's test runner and
/// its histogram monotonicity check both use it.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn arg(c: &Call, i: usize) -> Result<&Expr, QueryError> {
    match c.args.args.get(i) {
        Some(a) => Ok(a),
        None => err(format!("missing argument {} to {}", i + 1, c.func.name)),
    }
}

fn unwrap_paren(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Applies `f` to every element, dropping the metric name.
fn map_vec(ctx: &mut Ctx<'_>, v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(
        v.into_iter()
            .map(|e| Elem {
                labels: ctx.drop_name(&e.labels),
                v: f(e.v),
                ts: e.ts,
            })
            .collect(),
    )
}

fn is_counter_name(name: &str) -> bool {
    name.ends_with("_total")
        || name.ends_with("_sum")
        || name.ends_with("_count")
        || name.ends_with("_bucket")
}

pub(crate) fn eval_call(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let name = c.func.name;
    match name {
        "time" => return Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            let v = ctx.eval_scalar(arg(c, 0)?, t)?;
            return Ok(Val::Vector(vec![Elem {
                labels: Labels::new(),
                v,
                ts: t,
            }]));
        }
        "scalar" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            return Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "timestamp" => {
            let a = unwrap_paren(arg(c, 0)?);
            let v = ctx.eval_vector(a, t)?;
            let direct = matches!(a, Expr::VectorSelector(_));
            return Ok(Val::Vector(
                v.into_iter()
                    .map(|e| Elem {
                        labels: ctx.drop_name(&e.labels),
                        v: if direct {
                            e.ts as f64 / 1000.0
                        } else {
                            t as f64 / 1000.0
                        },
                        ts: e.ts,
                    })
                    .collect(),
            ));
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "deg"
        | "rad" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh"
        | "asinh" | "acosh" | "atanh" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "sqrt" => f64::sqrt,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sgn" => |x: f64| {
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        x
                    }
                },
                "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
                "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                _ => f64::atanh,
            };
            return Ok(map_vec(ctx, v, f));
        }
        "round" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            let to = match c.args.args.get(1) {
                Some(a) => ctx.eval_scalar(a, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to;
            return Ok(map_vec(ctx, v, move |x| (x * inv + 0.5).floor() / inv));
        }
        "clamp" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            let lo = ctx.eval_scalar(arg(c, 1)?, t)?;
            let hi = ctx.eval_scalar(arg(c, 2)?, t)?;
            if hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            return Ok(map_vec(ctx, v, move |x| go_max(lo, go_min(hi, x))));
        }
        "clamp_min" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            let lo = ctx.eval_scalar(arg(c, 1)?, t)?;
            return Ok(map_vec(ctx, v, move |x| go_max(lo, x)));
        }
        "clamp_max" => {
            let v = ctx.eval_vector(arg(c, 0)?, t)?;
            let hi = ctx.eval_scalar(arg(c, 1)?, t)?;
            return Ok(map_vec(ctx, v, move |x| go_min(hi, x)));
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let v = match c.args.args.first() {
                Some(a) => ctx.eval_vector(a, t)?,
                None => vec![Elem {
                    labels: Labels::new(),
                    v: t as f64 / 1000.0,
                    ts: t,
                }],
            };
            let out = v
                .into_iter()
                .map(|e| Elem {
                    labels: ctx.drop_name(&e.labels),
                    v: date_part(name, e.v),
                    ts: e.ts,
                })
                .collect();
            return Ok(Val::Vector(out));
        }
        "sort" | "sort_desc" => {
            let mut v = ctx.eval_vector(arg(c, 0)?, t)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| cmp_nan_last(a.v, b.v, desc));
            return Ok(Val::Vector(v));
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ctx.eval_vector(arg(c, 0)?, t)?;
            let mut names = Vec::new();
            for a in c.args.args.iter().skip(1) {
                match ctx.eval(a, t)? {
                    Val::Str(s) => names.push(s),
                    _ => return err("sort_by_label: expected string"),
                }
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for n in &names {
                    let o = a
                        .labels
                        .get(n)
                        .unwrap_or("")
                        .cmp(b.labels.get(n).unwrap_or(""));
                    if o != std::cmp::Ordering::Equal {
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
            return Ok(Val::Vector(v));
        }
        "label_replace" => return label_replace(ctx, c, t),
        "label_join" => return label_join(ctx, c, t),
        "absent" => {
            let a = arg(c, 0)?;
            let v = ctx.eval_vector(a, t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            let labels = match unwrap_paren(a) {
                Expr::VectorSelector(vs) => {
                    Labels::from_pairs(crate::matchers::equality_labels(vs))
                }
                _ => Labels::new(),
            };
            return Ok(Val::Vector(vec![Elem {
                labels,
                v: 1.0,
                ts: t,
            }]));
        }
        "histogram_quantile" => return histogram_quantile(ctx, c, t),
        "histogram_fraction" => return histogram_fraction(ctx, c, t),
        _ => {}
    }

    // Functions over a range vector.
    // quantile_over_time is the only range function whose range argument is not the first.
    let ra_index = if name == "quantile_over_time" { 1 } else { 0 };
    let range_fn = matches!(
        name,
        "rate"
            | "irate"
            | "increase"
            | "delta"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "last_over_time"
            | "first_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "quantile_over_time"
            | "present_over_time"
            | "absent_over_time"
            | "mad_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time"
            | "double_exponential_smoothing"
    );
    if !range_fn {
        return err(format!("function {name} is not implemented yet"));
    }
    let extra = match name {
        "quantile_over_time" => vec![ctx.eval_scalar(arg(c, 0)?, t)?],
        "predict_linear" => vec![ctx.eval_scalar(arg(c, 1)?, t)?],
        "double_exponential_smoothing" => vec![
            ctx.eval_scalar(arg(c, 1)?, t)?,
            ctx.eval_scalar(arg(c, 2)?, t)?,
        ],
        _ => Vec::new(),
    };
    let ra = ctx.eval_range(arg(c, ra_index)?, t)?;
    if name == "absent_over_time" {
        if !ra.series.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        let labels = match &ra.selector {
            Some(vs) => Labels::from_pairs(crate::matchers::equality_labels(vs)),
            None => Labels::new(),
        };
        return Ok(Val::Vector(vec![Elem {
            labels,
            v: 1.0,
            ts: t,
        }]));
    }
    if name == "quantile_over_time" {
        let q = extra[0];
        if !(0.0..=1.0).contains(&q) {
            ctx.warnings.insert(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                fmt_float(q)
            ));
        }
    }
    if name == "double_exponential_smoothing" {
        let (sf, tf) = (extra[0], extra[1]);
        if sf <= 0.0 || sf >= 1.0 {
            return err(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                fmt_float(sf)
            ));
        }
        if tf <= 0.0 || tf >= 1.0 {
            return err(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                fmt_float(tf)
            ));
        }
    }
    let counter_fn = matches!(name, "rate" | "increase" | "irate");
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let mut out = Vec::with_capacity(ra.series.len());
    for s in &ra.series {
        // Once per series and query: reading the name at every step was most of a range
        // query's time (each series' labels are a cache miss away).
        if counter_fn && ra.selector.is_some() && ctx.first_counter_check(&s.labels) {
            let mn = s.labels.metric_name();
            if !is_counter_name(mn) {
                ctx.infos.insert(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {mn:?}"
                ));
            }
        }
        let Some(v) = range_value(name, s, &ra, t, &extra) else {
            continue;
        };
        let labels = if keep_name {
            s.labels.clone()
        } else {
            ctx.drop_name(&s.labels)
        };
        out.push(Elem { labels, v, ts: t });
    }
    Ok(Val::Vector(out))
}

fn range_value(name: &str, s: &RSeries, ra: &RangeArg, t: i64, extra: &[f64]) -> Option<f64> {
    let p: &[(i64, f64)] = &s.points;
    let n = p.len();
    match name {
        "rate" => extrapolated_rate(p, ra, true, true),
        "increase" => extrapolated_rate(p, ra, true, false),
        "delta" => extrapolated_rate(p, ra, false, false),
        "irate" | "idelta" => {
            if n < 2 {
                return None;
            }
            let (lt, lv) = p[n - 1];
            let (pt, pv) = p[n - 2];
            let mut r = if name == "irate" && lv < pv {
                lv
            } else {
                lv - pv
            };
            let interval = lt - pt;
            if interval == 0 {
                return None;
            }
            if name == "irate" {
                r /= interval as f64 / 1000.0;
            }
            Some(r)
        }
        "deriv" => {
            if n < 2 {
                return None;
            }
            Some(linear_regression(p, p[0].0).0)
        }
        "predict_linear" => {
            if n < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(p, t);
            Some(slope * extra[0] + intercept)
        }
        "resets" => {
            let mut r = 0.0;
            for w in p.windows(2) {
                if w[1].1 < w[0].1 {
                    r += 1.0;
                }
            }
            Some(r)
        }
        "changes" => {
            let mut r = 0.0;
            for w in p.windows(2) {
                let (a, b) = (w[0].1, w[1].1);
                if !(a == b || (a.is_nan() && b.is_nan())) {
                    r += 1.0;
                }
            }
            Some(r)
        }
        "avg_over_time" => {
            let (mut sum, mut c, mut mean, mut count) = (0.0, 0.0, 0.0, 0.0);
            let mut incremental = false;
            for (i, &(_, v)) in p.iter().enumerate() {
                count += 1.0;
                if i == 0 {
                    sum = v;
                    continue;
                }
                if !incremental {
                    let (s2, c2) = kahan_inc(v, sum, c);
                    if !s2.is_infinite() {
                        sum = s2;
                        c = c2;
                        continue;
                    }
                    incremental = true;
                    mean = sum / (count - 1.0);
                    c /= count - 1.0;
                }
                let q = (count - 1.0) / count;
                let (m2, c2) = kahan_inc(v / count, q * mean, q * c);
                mean = m2;
                c = c2;
            }
            if incremental {
                Some(if mean.is_infinite() { mean } else { mean + c })
            } else {
                let s = if sum.is_infinite() { sum } else { sum + c };
                Some(s / count)
            }
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for &(_, v) in p {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "count_over_time" => Some(n as f64),
        "present_over_time" => Some(1.0),
        "last_over_time" => p.last().map(|x| x.1),
        "first_over_time" => p.first().map(|x| x.1),
        "ts_of_last_over_time" => p.last().map(|x| x.0 as f64 / 1000.0),
        "ts_of_first_over_time" => p.first().map(|x| x.0 as f64 / 1000.0),
        "min_over_time" | "max_over_time" | "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let min = name.contains("min");
            let (mut bt, mut bv) = *p.first()?;
            for &(pt, v) in p {
                let better = if min { v < bv } else { v > bv };
                if better || bv.is_nan() {
                    bv = v;
                    bt = pt;
                }
            }
            Some(if name.starts_with("ts_of") {
                bt as f64 / 1000.0
            } else {
                bv
            })
        }
        "stddev_over_time" | "stdvar_over_time" => {
            let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(_, v) in p {
                count += 1.0;
                let delta = v - (mean + cm);
                (mean, cm) = kahan_inc(delta / count, mean, cm);
                (aux, ca) = kahan_inc(delta * (v - (mean + cm)), aux, ca);
            }
            let var = (aux + ca) / count;
            Some(if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            })
        }
        "quantile_over_time" => Some(quantile(extra[0], p.iter().map(|x| x.1).collect())),
        "mad_over_time" => {
            let vals: Vec<f64> = p.iter().map(|x| x.1).collect();
            let med = quantile(0.5, vals.clone());
            Some(quantile(
                0.5,
                vals.iter().map(|v| (v - med).abs()).collect(),
            ))
        }
        "double_exponential_smoothing" => {
            if n < 2 {
                return None;
            }
            let (sf, tf) = (extra[0], extra[1]);
            let mut s0 = 0.0;
            let mut s1 = p[0].1;
            let mut b = p[1].1 - p[0].1;
            for (i, &(_, x)) in p.iter().enumerate().skip(1) {
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = sf * x + y;
            }
            Some(s1)
        }
        _ => None,
    }
}

/// `rate`/`increase`/`delta` with Prometheus's extrapolation towards the window edges.
fn extrapolated_rate(p: &[(i64, f64)], ra: &RangeArg, counter: bool, is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (ft, fv) = p[0];
    let (lt, lv) = p[p.len() - 1];
    let mut result = lv - fv;
    if counter {
        let mut last = 0.0;
        for &(_, v) in p {
            if v < last {
                result += last;
            }
            last = v;
        }
    }
    let mut to_start = (ft - ra.start) as f64 / 1000.0;
    let mut to_end = (ra.end - lt) as f64 / 1000.0;
    let sampled = (lt - ft) as f64 / 1000.0;
    let avg = sampled / (p.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result > 0.0 && fv >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past where it would hit zero.
        let to_zero = sampled * (fv / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (ra.end - ra.start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Least-squares slope and intercept (at `intercept_t`), with compensated sums as Prometheus.
fn linear_regression(p: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = p[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in p.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn date_part(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "day_of_month" => d as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
        "days_in_month" => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as f64
        }
        "hour" => (sod / 3600) as f64,
        "minute" => ((sod % 3600) / 60) as f64,
        "month" => m as f64,
        _ => y as f64,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn eval_str(ctx: &mut Ctx<'_>, e: &Expr, t: i64) -> Result<String, QueryError> {
    match ctx.eval(e, t)? {
        Val::Str(s) => Ok(s),
        _ => err("expected string argument"),
    }
}

fn label_replace(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let v = ctx.eval_vector(arg(c, 0)?, t)?;
    let dst = eval_str(ctx, arg(c, 1)?, t)?;
    let repl = eval_str(ctx, arg(c, 2)?, t)?;
    let src = eval_str(ctx, arg(c, 3)?, t)?;
    let re_s = eval_str(ctx, arg(c, 4)?, t)?;
    let invalid = |e: &dyn std::fmt::Display| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {re_s}: {e}"
        ))
    };
    edgeprom_model::goregex::check(&re_s).map_err(|e| invalid(&e))?;
    let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| invalid(&e))?;
    if !crate::aggr::valid_label_name(&dst) {
        return err(format!(
            "invalid destination label name in label_replace(): {dst}"
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let sv = e.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = e.labels.to_builder();
            b.set(dst.clone(), res);
            e.labels = b.build();
        }
        out.push(e);
    }
    Ok(Val::Vector(out))
}

fn label_join(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let v = ctx.eval_vector(arg(c, 0)?, t)?;
    let dst = eval_str(ctx, arg(c, 1)?, t)?;
    let sep = eval_str(ctx, arg(c, 2)?, t)?;
    let mut srcs = Vec::new();
    for a in c.args.args.iter().skip(3) {
        srcs.push(eval_str(ctx, a, t)?);
    }
    if !crate::aggr::valid_label_name(&dst) {
        return err(format!(
            "invalid destination label name in label_join(): {dst}"
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let joined: Vec<&str> = srcs.iter().map(|s| e.labels.get(s).unwrap_or("")).collect();
        let joined = joined.join(&sep);
        let mut b = e.labels.to_builder();
        b.set(dst.clone(), joined);
        e.labels = b.build();
        out.push(e);
    }
    Ok(Val::Vector(out))
}

struct Bucket {
    upper: f64,
    count: f64,
}

/// Groups classic `le` buckets by their series minus `le` and the name, warning about bad `le`s.
type BucketGroups = Vec<(Labels, String, Vec<Bucket>)>;

fn histogram_quantile(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let q = ctx.eval_scalar(arg(c, 0)?, t)?;
    let v = ctx.eval_vector(arg(c, 1)?, t)?;
    if !(0.0..=1.0).contains(&q) {
        ctx.warnings.insert(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            fmt_float(q)
        ));
    }
    let groups = bucket_groups(ctx, v);
    let mut out = Vec::with_capacity(groups.len());
    for (labels, name, buckets) in groups {
        let (v, forced) = bucket_quantile(q, buckets);
        if forced {
            ctx.infos.insert(format!(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
            ));
        }
        out.push(Elem { labels, v, ts: t });
    }
    Ok(Val::Vector(out))
}

fn histogram_fraction(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let lower = ctx.eval_scalar(arg(c, 0)?, t)?;
    let upper = ctx.eval_scalar(arg(c, 1)?, t)?;
    let v = ctx.eval_vector(arg(c, 2)?, t)?;
    let groups = bucket_groups(ctx, v);
    let out = groups
        .into_iter()
        .map(|(labels, _, buckets)| Elem {
            labels,
            v: bucket_fraction(lower, upper, buckets),
            ts: t,
        })
        .collect();
    Ok(Val::Vector(out))
}

fn bucket_fraction(lower: f64, upper: f64, b: Vec<Bucket>) -> f64 {
    let Some(mut b) = sorted_buckets(b) else {
        return f64::NAN;
    };
    ensure_monotonic(&mut b);
    let count = b[b.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, x) in b.iter().enumerate() {
        let lb = if i > 0 {
            b[i - 1].upper
        } else if x.upper > 0.0 {
            // The first bucket of a classic histogram is assumed to start at zero when positive.
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let ub = x.upper;
        let interp = |v: f64| rank + (x.count - rank) * (v - lb) / (ub - lb);
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = if lb.is_infinite() || ub.is_infinite() {
                rank
            } else {
                interp(lower)
            };
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = if lb.is_infinite() || ub.is_infinite() {
                x.count
            } else {
                interp(upper)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = x.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

fn bucket_groups(ctx: &mut Ctx<'_>, v: Vec<Elem>) -> BucketGroups {
    let mut groups: BucketGroups = Vec::new();
    // By the interned group labels' storage id (see `Ctx::intern`).
    let mut index: rustc_hash::FxHashMap<usize, usize> = Default::default();
    for e in v {
        let id = e.labels.storage_id();
        if !ctx.buckets.contains_key(&id) {
            let mut b = e.labels.to_builder();
            b.del("le");
            b.del("__name__");
            let group = ctx.intern(b.build());
            let key = crate::eval::BucketKey {
                group,
                name: e.labels.metric_name().to_string(),
                le: e.labels.get("le").and_then(parse_go_float),
            };
            ctx.buckets.insert(id, (e.labels.clone(), key));
        }
        let Some((_, key)) = ctx.buckets.get(&id) else {
            continue;
        };
        let Some(le) = key.le else {
            let warning = format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                e.labels.get("le").unwrap_or(""),
                key.name
            );
            ctx.warnings.insert(warning);
            continue;
        };
        let i = *index.entry(key.group.storage_id()).or_insert_with(|| {
            groups.push((key.group.clone(), key.name.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push(Bucket {
            upper: le,
            count: e.v,
        });
    }
    groups
}

/// Sorts by bound and merges equal bounds; `None` when there is no `+Inf` bucket.
fn sorted_buckets(mut b: Vec<Bucket>) -> Option<Vec<Bucket>> {
    b.sort_by(|x, y| {
        x.upper
            .partial_cmp(&y.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match b.last() {
        Some(l) if l.upper == f64::INFINITY => {}
        _ => return None,
    }
    // Buckets with the same bound (e.g. `le="1"` and `le="1.0"`) are one bucket.
    let mut merged: Vec<Bucket> = Vec::with_capacity(b.len());
    for x in b {
        match merged.last_mut() {
            Some(l) if l.upper == x.upper => l.count += x.count,
            _ => merged.push(x),
        }
    }
    Some(merged)
}

/// Removes decreases between buckets and float noise; returns whether a real decrease was fixed.
fn ensure_monotonic(b: &mut [Bucket]) -> bool {
    let mut forced = false;
    let mut prev = b[0].count;
    for x in b.iter_mut().skip(1) {
        let cur = x.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            x.count = prev;
            continue;
        }
        if cur < prev {
            x.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    forced
}

/// Parses a float the way Go's `strconv.ParseFloat` accepts `le` values.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t != s || t.is_empty() {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    t.replace('_', "").parse::<f64>().ok()
}

fn bucket_quantile(q: f64, b: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut b) = sorted_buckets(b) else {
        return (f64::NAN, false);
    };
    let forced = ensure_monotonic(&mut b);
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let obs = b[b.len() - 1].count;
    if obs == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * obs;
    let n = b.len() - 1;
    let idx = b[..n].partition_point(|x| x.count < rank);
    if idx == n {
        return (b[n - 1].upper, forced);
    }
    if idx == 0 && b[0].upper <= 0.0 {
        return (b[0].upper, forced);
    }
    let end = b[idx].upper;
    let mut count = b[idx].count;
    let mut start = 0.0;
    if idx > 0 {
        start = b[idx - 1].upper;
        count -= b[idx - 1].count;
        rank -= b[idx - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}
