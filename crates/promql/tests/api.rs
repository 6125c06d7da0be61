//! Public API behaviour: errors instead of panics, result shapes, limits.

use edgeprom_model::{Appendable, Labels};
use edgeprom_promql::{Engine, EngineOptions, QueryError, Value};
use edgeprom_storage::Storage;

mod support;

fn storage() -> (tempfile::TempDir, Storage) {
    let (dir, st) = support::empty_storage();
    let mut app = st.appender();
    let l = Labels::from_pairs([("__name__", "up_total"), ("job", "a")]);
    for i in 0..=20 {
        app.append(None, &l, i * 15_000, i as f64).expect("append");
    }
    app.commit().expect("commit");
    (dir, st)
}

#[test]
fn bad_queries_are_errors_not_panics() {
    let (_d, st) = storage();
    let e = Engine::default();
    for q in [
        "",
        "sum(",
        "rate(up_total)",
        "foo{",
        "up_total[5m:1m] @ 1e300",
        "up_total offset 10000000w",
        "label_replace(up_total, \"x\", \"y\", \"job\", \"(\")",
        "topk(NaN, up_total)",
    ] {
        let r = std::panic::catch_unwind(|| e.instant_query(&st, q, 300_000));
        assert!(r.is_ok(), "query {q:?} panicked");
    }
    assert!(matches!(
        e.instant_query(&st, "sum(", 0),
        Err(QueryError::Parse(_))
    ));
}

#[test]
fn range_query_rejects_range_vectors_and_sorts_output() {
    let (_d, st) = storage();
    let e = Engine::default();
    // Refused as an invalid query (HTTP 400 `bad_data` in Prometheus), not as an evaluation error.
    assert!(matches!(
        e.range_query(&st, "up_total[1m]", 0, 60_000, 15_000),
        Err(QueryError::Parse(_))
    ));
    let r = e
        .range_query(&st, "rate(up_total[1m])", 60_000, 120_000, 30_000)
        .expect("range query");
    let Value::Matrix(m) = r.value else {
        panic!("expected a matrix")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 3);
    assert!((m[0].points[0].1 - 1.0 / 15.0).abs() < 1e-12);
}

#[test]
fn max_samples_bounds_memory() {
    let (_d, st) = storage();
    let e = Engine::new(EngineOptions {
        max_samples: 5,
        ..EngineOptions::default()
    });
    assert_eq!(
        e.instant_query(&st, "count_over_time(up_total[5m])", 300_000),
        Err(QueryError::TooManySamples)
    );
}

#[test]
fn experimental_functions_need_the_feature_flag() {
    let (_d, st) = storage();
    let off = Engine::default();
    for q in [
        "sort_by_label(up_total, \"job\")",
        "limitk(1, up_total)",
        "sum(limit_ratio(0.5, up_total))",
    ] {
        assert!(
            matches!(
                off.instant_query(&st, q, 300_000),
                Err(QueryError::Parse(_))
            ),
            "{q} ran without the feature flag"
        );
    }
    let on = Engine::new(EngineOptions {
        experimental_functions: true,
        ..EngineOptions::default()
    });
    assert!(
        on.instant_query(&st, "limitk(1, up_total)", 300_000)
            .is_ok()
    );
    assert!(
        off.instant_query(&st, "sort_desc(up_total)", 300_000)
            .is_ok()
    );
}

/// Regression (issue #12, hostile API battery): each subquery counted only its own points
/// against `max_samples`, so nested subqueries with tiny steps held several times the limit at
/// once; they now share one budget with the loaded samples, as Prometheus's `currentSamples`.
#[test]
fn nested_subqueries_share_the_max_samples_budget() {
    let (_d, st) = storage();
    let q = "max_over_time(max_over_time(up_total[4m:1s])[4m:1s])";
    // The inner subquery alone holds ~240 points and the outer one up to ~240.
    let e = Engine::new(EngineOptions {
        max_samples: 300,
        ..EngineOptions::default()
    });
    assert_eq!(
        e.instant_query(&st, q, 300_000),
        Err(QueryError::TooManySamples)
    );
    let roomy = Engine::new(EngineOptions {
        max_samples: 10_000,
        ..EngineOptions::default()
    });
    assert!(roomy.instant_query(&st, q, 300_000).is_ok());
}

/// Regression (issue #12, hostile API battery): `up @ 1e300` was clamped by the parser to a
/// far-future time and answered 200; Prometheus refuses it as out of bounds.
#[test]
fn at_modifier_of_1e300_is_out_of_bounds() {
    let (_d, st) = storage();
    let e = Engine::default();
    for q in [
        "up_total @ 1e300",
        "rate(up_total[1m] @ -1e300)",
        "up_total[5m:1m] @ 1e300",
    ] {
        assert!(
            matches!(e.instant_query(&st, q, 300_000), Err(QueryError::Parse(m)) if m.contains("out of bounds")),
            "{q}"
        );
    }
    assert!(e.instant_query(&st, "up_total @ 300", 300_000).is_ok());
}

#[test]
fn regexes_go_refuses_are_refused_as_prometheus_refuses_them() {
    let (_d, st) = storage();
    let e = Engine::default();
    let go = |op: &str| format!("error parsing regexp: invalid repeat count: `{op}`");
    // In a selector: a parse error (400 `bad_data`), wherever the selector sits.
    for (q, op) in [
        (r#"up_total{job=~"(a|b){10000}"}"#, "{10000}"),
        (r#"{__name__=~"(a|b){10000}"}"#, "{10000}"),
        (r#"sum(rate(up_total{job!~"(a{10}){101}"}[5m]))"#, "{101}"),
        (r#"1 + up_total{job="a" or job=~"a{1001}"}"#, "{1001}"),
    ] {
        assert_eq!(
            e.instant_query(&st, q, 300_000),
            Err(QueryError::Parse(go(op))),
            "{q}"
        );
    }
    assert!(
        e.instant_query(&st, r#"up_total{job=~"(a{10}){100}"}"#, 300_000)
            .is_ok()
    );
    // In label_replace: an evaluation error (422 `execution`), as in Prometheus.
    assert_eq!(
        e.instant_query(
            &st,
            r#"label_replace(up_total, "x", "$1", "job", "(a|b){10000}")"#,
            300_000
        ),
        Err(QueryError::Execution(format!(
            "invalid regular expression in label_replace(): (a|b){{10000}}: {}",
            go("{10000}")
        )))
    );
}
