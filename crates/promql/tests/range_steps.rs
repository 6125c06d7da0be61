//! A range query is its instant query at every step: the evaluator keeps per-query state between
//! steps (window cursors that only move forward, cached label sets), and this holds it to that
//! definition on irregular data — gaps, stale markers, series that start late, equal label sets
//! after dropping names — for selectors whose evaluation times do not only grow (subqueries,
//! `@`, `offset`).

use edgeprom_model::{Appendable, Labels, stale_nan};
use edgeprom_promql::{Engine, Value};
use edgeprom_storage::Storage;

mod support;

fn storage() -> (tempfile::TempDir, Storage) {
    let (dir, st) = support::empty_storage();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut app = st.appender();
    for (i, job) in ["a", "b", "c", "d"].iter().enumerate() {
        for name in ["req_total", "other_total"] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]);
            let mut v = 0.0;
            // Irregular scrapes (5–40 s apart), a late start for some, a reset, a stale stretch.
            let mut t = (i as i64) * 37_000;
            while t < 3_600_000 {
                if (1_200_000..1_400_000).contains(&t) && i % 2 == 0 {
                    app.append(None, &l, t, stale_nan()).expect("append");
                } else {
                    v = if rng.u8(..) < 3 {
                        0.0
                    } else {
                        v + rng.f64() * 10.0
                    };
                    app.append(None, &l, t, v).expect("append");
                }
                t += 5_000 + rng.i64(0..35_000);
            }
        }
    }
    // Cumulative histogram buckets per job, scraped every 15 s.
    for job in ["a", "b", "c"] {
        let mut counts = [0.0f64; 3];
        for k in 0..240 {
            counts[0] += rng.f64() * 3.0;
            counts[1] = counts[1].max(counts[0]) + rng.f64() * 2.0;
            counts[2] = counts[2].max(counts[1]) + rng.f64();
            for (le, c) in ["0.1", "1", "+Inf"].iter().zip(counts) {
                let l = Labels::from_pairs([("__name__", "lat_bucket"), ("job", job), ("le", le)]);
                app.append(None, &l, k * 15_000, c).expect("append");
            }
        }
    }
    app.commit().expect("commit");
    (dir, st)
}

fn points(v: &Value, at: i64) -> Vec<(Labels, f64)> {
    let mut out: Vec<(Labels, f64)> = match v {
        Value::Vector(s) => s.iter().map(|s| (s.labels.clone(), s.v)).collect(),
        Value::Scalar(_, v) => vec![(Labels::new(), *v)],
        Value::Matrix(m) => m
            .iter()
            .filter_map(|s| {
                let p = s.points.iter().find(|p| p.0 == at)?;
                Some((s.labels.clone(), p.1))
            })
            .collect(),
        Value::String(..) => Vec::new(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs()
}

#[test]
fn every_step_of_a_range_query_equals_the_instant_query_there() {
    let (_d, st) = storage();
    let engine = Engine::default();
    let queries = [
        "req_total",
        "rate(req_total[1m])",
        "sum by (job) (rate(req_total[2m]))",
        "count by (__name__) ({__name__=~\".+_total\"})",
        "increase(req_total[5m] offset 3m)",
        "max_over_time(rate(req_total[1m])[10m:30s])",
        "rate(req_total[1m] @ 1800)",
        "req_total @ 2400 - req_total",
        "avg_over_time(req_total[3m]) + on(job) group_left rate(other_total[1m])",
        "last_over_time(req_total[30s])",
        "sum_over_time(sum(req_total)[7m:1m])",
        "count(rate(req_total[1m]) > 0.1)",
        "req_total and on(job) other_total > 50",
        "req_total or other_total",
        "req_total unless on(job) rate(other_total[1m]) > 0.2",
        "rate(req_total[1m]) * on(job) group_left other_total",
        "req_total > bool on(job) other_total",
        "histogram_quantile(0.9, rate(lat_bucket[2m]))",
        "histogram_quantile(0.5, sum by (le) (rate(lat_bucket[2m])))",
    ];
    for (start, end, step) in [(0, 3_600_000, 15_000), (100_000, 3_000_000, 61_000)] {
        for q in queries {
            let range = engine
                .range_query(&st, q, start, end, step)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let mut t = start;
            while t <= end {
                let instant = engine
                    .instant_query(&st, q, t)
                    .unwrap_or_else(|e| panic!("{q} at {t}: {e}"));
                let want = points(&instant.value, t);
                let got = points(&range.value, t);
                assert_eq!(
                    got.iter().map(|p| &p.0).collect::<Vec<_>>(),
                    want.iter().map(|p| &p.0).collect::<Vec<_>>(),
                    "{q} at {t}: series"
                );
                for (g, w) in got.iter().zip(&want) {
                    assert!(same(g.1, w.1), "{q} at {t}, {}: {} vs {}", g.0, g.1, w.1);
                }
                t += step;
            }
        }
    }
}

#[test]
fn equal_label_sets_after_dropping_names_are_refused_at_the_step_they_meet() {
    let (_d, st) = storage();
    let engine = Engine::default();
    // req_total and other_total of one job both become {job="a"} under rate.
    let e = engine
        .range_query(
            &st,
            "rate({__name__=~\".+_total\"}[1m])",
            0,
            600_000,
            15_000,
        )
        .expect_err("duplicate label sets");
    assert!(e.to_string().contains("same labelset"), "{e}");
}
