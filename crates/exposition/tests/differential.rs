//! Differential test against the `prometheus-parse` crate on inputs it handles correctly:
//! text format, no `,` `=` `}` or escapes in label values, no `:` in names, no blanks inside
//! label blocks.

use std::collections::BTreeMap;

use edgeprom_exposition::{Entry, Format, Parser, testgen};
use prometheus_parse::{Scrape, Value};

const FE_LOG: &str = include_str!("../../../fixtures/exposition/fe.log");

/// (name, labels, value) with `le`/`quantile` compared as numbers, since prometheus-parse folds
/// them into floats and edgeprom canonicalises their text.
type Flat = (String, BTreeMap<String, String>, u64);

fn canon_float_label(v: &str) -> String {
    let f: f64 = match v.to_ascii_lowercase().as_str() {
        "+inf" | "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        other => other.parse().expect("numeric le/quantile"),
    };
    format!("{f:?}")
}

/// Value bits with every NaN folded to one pattern (edgeprom keeps Prometheus's normal-NaN bits,
/// prometheus-parse Rust's default NaN).
fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn ours(body: &str) -> Vec<Flat> {
    let mut p = Parser::new(body.as_bytes(), Format::Text).expect("utf8");
    let mut out = Vec::new();
    while let Some(e) = p.next().expect("edgeprom parses") {
        let Entry::Series(s) = e else { continue };
        // prometheus-parse's `\w+` name pattern skips colon names entirely.
        if s.name().contains(':') {
            continue;
        }
        let labels = s
            .labels()
            .map(|(n, v)| {
                let v = if n == "le" || n == "quantile" {
                    canon_float_label(&v)
                } else {
                    v.into_owned()
                };
                (n.into_owned(), v)
            })
            .collect();
        out.push((s.name().into_owned(), labels, bits(s.value())));
    }
    out.sort();
    out
}

fn theirs(body: &str) -> Vec<Flat> {
    let scrape =
        Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("prometheus-parse parses");
    let mut out = Vec::new();
    for s in scrape.samples {
        let labels: BTreeMap<String, String> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                out.push((s.metric.clone(), labels, bits(v)));
            }
            Value::Histogram(buckets) => {
                for b in buckets {
                    let mut l = labels.clone();
                    l.insert("le".into(), format!("{:?}", b.less_than));
                    out.push((format!("{}_bucket", s.metric), l, bits(b.count)));
                }
            }
            Value::Summary(qs) => {
                for q in qs {
                    let mut l = labels.clone();
                    l.insert("quantile".into(), format!("{:?}", q.quantile));
                    out.push((s.metric.clone(), l, bits(q.count)));
                }
            }
        }
    }
    out.sort();
    out
}

fn assert_same(body: &str, expect_at_least: usize) {
    let a = ours(body);
    let b = theirs(body);
    assert!(a.len() >= expect_at_least, "only {} samples", a.len());
    assert_eq!(a.len(), b.len(), "sample counts differ");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}

#[test]
fn fe_log_matches_prometheus_parse() {
    assert_same(FE_LOG, 89);
}

#[test]
fn generated_dynamo_body_matches_prometheus_parse() {
    let body = testgen::dynamo_body(10_000);
    // A tenth of the generated series are `vllm:` names, which prometheus-parse cannot read.
    assert_same(&body, 8_900);
}

#[test]
fn summaries_and_timestamps_match_prometheus_parse() {
    let body = "# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service=\"a\",quantile=\"0.5\"} 0.0123
rpc_duration_seconds{service=\"a\",quantile=\"0.99\"} 0.5
rpc_duration_seconds_sum{service=\"a\"} 17.5
rpc_duration_seconds_count{service=\"a\"} 1000
# TYPE up gauge
up{job=\"node\",instance=\"host/9100\"} 1 1700000000000
plain_untyped 3.25e-3
nan_gauge NaN
";
    assert_same(body, 6);
}
