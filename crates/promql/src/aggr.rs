//! Aggregation operators.

use std::collections::HashMap;

use edgeprom_model::Labels;
use promql_parser::parser::token;
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::QueryError;
use crate::eval::{Ctx, Elem, Val, err};
use crate::functions::{fmt_float, kahan_inc, quantile};

fn grouping_labels(l: &Labels, m: &Option<LabelModifier>) -> Labels {
    match m {
        None => Labels::new(),
        Some(LabelModifier::Include(ls)) => {
            let mut b = l.to_builder();
            b.retain(|lab| ls.labels.contains(&lab.name));
            b.build()
        }
        Some(LabelModifier::Exclude(ls)) => {
            let mut b = l.to_builder();
            b.retain(|lab| lab.name != "__name__" && !ls.labels.contains(&lab.name));
            b.build()
        }
    }
}

/// Running state of one aggregation group.
struct Group {
    labels: Labels,
    value: f64,
    comp: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    members: Vec<Elem>,
}

fn param_int(v: f64, name: &str) -> Result<i64, QueryError> {
    if v.is_nan() {
        return err(format!("Parameter value is NaN for {name}"));
    }
    if v >= 9.223_372_036_854_776e18 {
        return err(format!("Scalar value {} overflows int64", fmt_float(v)));
    }
    if v <= -9.223_372_036_854_776e18 {
        return err(format!("Scalar value {} underflows int64", fmt_float(v)));
    }
    Ok(v as i64)
}

pub(crate) fn eval_aggregate(
    ctx: &mut Ctx<'_>,
    a: &AggregateExpr,
    t: i64,
) -> Result<Val, QueryError> {
    let id = a.op.id();
    let param = match &a.param {
        Some(p) => Some(eval_param(ctx, p, t)?),
        None => None,
    };
    let input = ctx.eval_vector(&a.expr, t)?;
    let mut order: Vec<Group> = Vec::new();
    // By the interned group labels' storage id (see `Ctx::group_key`).
    let mut index: rustc_hash::FxHashMap<usize, usize> = Default::default();

    if id == token::T_COUNT_VALUES {
        let Some(Val::Str(label)) = param else {
            return err("count_values: expected string parameter");
        };
        if !valid_label_name(&label) {
            return err(format!("invalid label name {label:?}"));
        }
        let mut counts: Vec<(Labels, f64)> = Vec::new();
        let mut ci: HashMap<Labels, usize> = HashMap::new();
        for e in &input {
            let mut b = e.labels.to_builder();
            b.set(label.clone(), fmt_float(e.v));
            let with = b.build();
            let g = grouping_labels(&with, &a.modifier);
            let mut gb = g.to_builder();
            gb.set(label.clone(), fmt_float(e.v));
            let g = gb.build();
            match ci.get(&g) {
                Some(&i) => counts[i].1 += 1.0,
                None => {
                    ci.insert(g.clone(), counts.len());
                    counts.push((g, 1.0));
                }
            }
        }
        return Ok(Val::Vector(
            counts
                .into_iter()
                .map(|(labels, v)| Elem { labels, v, ts: t })
                .collect(),
        ));
    }

    let scalar_param = match &param {
        Some(Val::Scalar(v)) => Some(*v),
        _ => None,
    };
    let (k, ratio) = match id {
        token::T_TOPK | token::T_BOTTOMK | token::T_LIMITK => {
            let name = match id {
                token::T_TOPK => "topk",
                token::T_BOTTOMK => "bottomk",
                _ => "limitk",
            };
            let v = scalar_param.unwrap_or(f64::NAN);
            if v.is_nan() {
                return err("Parameter value is NaN");
            }
            let k = param_int(v, name)?;
            if k < 1 {
                return Ok(Val::Vector(Vec::new()));
            }
            (k as usize, 0.0)
        }
        token::T_LIMIT_RATIO => {
            let v = scalar_param.unwrap_or(f64::NAN);
            if v.is_nan() {
                return err("Ratio value is NaN");
            }
            let r = if v < -1.0 {
                ctx.warnings.insert(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                    fmt_float(v)
                ));
                -1.0
            } else if v > 1.0 {
                ctx.warnings.insert(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                    fmt_float(v)
                ));
                1.0
            } else {
                v
            };
            (0, r)
        }
        token::T_QUANTILE => {
            let q = scalar_param.unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&q) {
                ctx.warnings.insert(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    fmt_float(q)
                ));
            }
            (0, q)
        }
        _ => (0, 0.0),
    };

    let aggr_id = a as *const AggregateExpr as usize;
    for e in input {
        let g = ctx.group_key(aggr_id, &e.labels, |l| grouping_labels(l, &a.modifier));
        let gi = match index.get(&g.storage_id()) {
            Some(&i) => i,
            None => {
                index.insert(g.storage_id(), order.len());
                order.push(Group {
                    labels: g,
                    value: e.v,
                    comp: 0.0,
                    mean: 0.0,
                    count: 0.0,
                    incremental: false,
                    members: Vec::new(),
                });
                let gr = order.len() - 1;
                let grp = &mut order[gr];
                grp.count = 1.0;
                match id {
                    token::T_STDDEV | token::T_STDVAR => {
                        grp.mean = e.v;
                        // A NaN or infinite member makes the spread undefined from the start.
                        grp.value = if e.v.is_finite() { 0.0 } else { f64::NAN };
                    }
                    token::T_SUM | token::T_AVG | token::T_MIN | token::T_MAX => {}
                    token::T_COUNT | token::T_GROUP => {}
                    _ => {
                        grp.count = 0.0;
                        gr_fallthrough(grp, e, id, k, ratio);
                        continue;
                    }
                }
                continue;
            }
        };
        let g = &mut order[gi];
        match id {
            token::T_SUM => {
                let (s, c) = kahan_inc(e.v, g.value, g.comp);
                g.value = s;
                g.comp = c;
            }
            token::T_AVG => {
                g.count += 1.0;
                if !g.incremental {
                    let (s, c) = kahan_inc(e.v, g.value, g.comp);
                    if !s.is_infinite() {
                        g.value = s;
                        g.comp = c;
                        continue;
                    }
                    // The direct sum would overflow: continue as an incremental mean instead.
                    g.incremental = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.comp /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                let (m, c) = kahan_inc(e.v / g.count, q * g.mean, q * g.comp);
                g.mean = m;
                g.comp = c;
            }
            token::T_COUNT => g.count += 1.0,
            token::T_GROUP => {}
            token::T_MIN => {
                if g.value > e.v || g.value.is_nan() {
                    g.value = e.v;
                }
            }
            token::T_MAX => {
                if g.value < e.v || g.value.is_nan() {
                    g.value = e.v;
                }
            }
            token::T_STDDEV | token::T_STDVAR => {
                g.count += 1.0;
                let delta = e.v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (e.v - g.mean);
            }
            _ => gr_fallthrough(g, e, id, k, ratio),
        }
    }

    let mut out = Vec::with_capacity(order.len());
    for g in order {
        let v = match id {
            token::T_SUM => {
                if g.value.is_infinite() {
                    g.value
                } else {
                    g.value + g.comp
                }
            }
            token::T_AVG => {
                if g.incremental {
                    if g.mean.is_infinite() {
                        g.mean
                    } else {
                        g.mean + g.comp
                    }
                } else {
                    let s = if g.value.is_infinite() {
                        g.value
                    } else {
                        g.value + g.comp
                    };
                    s / g.count
                }
            }
            token::T_COUNT => g.count,
            token::T_GROUP => 1.0,
            token::T_MIN | token::T_MAX => g.value,
            token::T_STDDEV => (g.value / g.count).sqrt(),
            token::T_STDVAR => g.value / g.count,
            token::T_QUANTILE => {
                let vals: Vec<f64> = g.members.iter().map(|e| e.v).collect();
                quantile(ratio, vals)
            }
            token::T_TOPK | token::T_BOTTOMK => {
                let mut m = g.members;
                let top = id == token::T_TOPK;
                // NaN sorts away from the interesting end in both directions.
                m.sort_by(|a, b| crate::functions::cmp_nan_last(a.v, b.v, top));
                m.truncate(k);
                out.extend(m);
                continue;
            }
            token::T_LIMITK | token::T_LIMIT_RATIO => {
                out.extend(g.members);
                continue;
            }
            _ => return err(format!("unsupported aggregation {}", a.op)),
        };
        out.push(Elem {
            labels: g.labels,
            v,
            ts: t,
        });
    }
    Ok(Val::Vector(out))
}

/// Collects members for the aggregations that keep whole elements.
fn gr_fallthrough(g: &mut Group, e: Elem, id: u16, k: usize, ratio: f64) {
    match id {
        token::T_LIMITK => {
            if g.members.len() < k {
                g.members.push(e);
            }
        }
        token::T_LIMIT_RATIO => {
            if ratio_keeps(&e.labels, ratio) {
                g.members.push(e);
            }
        }
        _ => g.members.push(e),
    }
}

fn eval_param(ctx: &mut Ctx<'_>, p: &Expr, t: i64) -> Result<Val, QueryError> {
    ctx.eval(p, t)
}

/// `limit_ratio` keeps a series when its label hash falls on the kept side of the ratio. The hash is
/// not Prometheus's xxhash, so the chosen subset differs (documented deviation).
fn ratio_keeps(l: &Labels, ratio: f64) -> bool {
    let h = l.stable_hash() as f64 / u64::MAX as f64;
    if ratio >= 0.0 {
        h < ratio
    } else {
        h >= 1.0 + ratio
    }
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && std::str::from_utf8(s.as_bytes()).is_ok() && !s.contains('\u{fffd}')
}
