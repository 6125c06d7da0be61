//! Property tests: no input makes the parser panic or stall, and rendered series round-trip.

use edgeprom_exposition::{Entry, Format, Parser};
use proptest::prelude::*;

/// Pulls every entry, touching every accessor; fails if the parser stops making progress.
fn drive(body: &[u8], format: Format) {
    let Ok(mut p) = Parser::new(body, format) else {
        return;
    };
    // Every entry consumes at least one byte, so more entries than bytes means a stall.
    for _ in 0..=body.len() + 1 {
        match p.next() {
            Ok(Some(Entry::Series(s))) => {
                let _ = (
                    s.raw(),
                    s.name(),
                    s.value(),
                    s.timestamp_ms(),
                    s.metric_type(),
                );
                let _ = s.labels().count();
                let _ = s.to_labels();
                if let Some(e) = s.exemplar() {
                    let _ = (e.labels().count(), e.value(), e.timestamp_ms());
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!(
        "parser made no progress on {:?}",
        String::from_utf8_lossy(body)
    );
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    quoted: bool,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
}

fn case() -> impl Strategy<Value = Case> {
    let plain = "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}".prop_map(|n| (n, false));
    let quoted = "\\PC{1,12}".prop_map(|n| (n, true));
    (
        prop_oneof![3 => plain, 1 => quoted],
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,10}", any::<String>(), 0..6),
        any::<f64>(),
        proptest::option::of(0i64..4_000_000_000),
    )
        .prop_filter("__name__ is reserved", |(_, l, _, _)| {
            !l.contains_key("__name__")
        })
        .prop_map(|((name, quoted), labels, value, ts)| Case {
            name,
            quoted,
            labels: labels.into_iter().collect(),
            value,
            ts,
        })
}

/// Renders one sample line; OpenMetrics timestamps are whole seconds so milliseconds round-trip.
fn render(c: &Case, om: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    if c.quoted {
        parts.push(format!("\"{}\"", escape(&c.name)));
    }
    parts.extend(
        c.labels
            .iter()
            .map(|(n, v)| format!("{n}=\"{}\"", escape(v))),
    );
    let mut line = if c.quoted {
        String::new()
    } else {
        c.name.clone()
    };
    if !parts.is_empty() {
        line.push('{');
        line.push_str(&parts.join(","));
        line.push('}');
    }
    line.push_str(&format!(" {:?}", c.value));
    match (c.ts, om) {
        (Some(t), false) => line.push_str(&format!(" {t}")),
        (Some(t), true) => line.push_str(&format!(" {}", t / 1000)),
        (None, _) => {}
    }
    line.push('\n');
    line
}

fn check_round_trip(cases: &[Case], om: bool) {
    let mut body: String = cases.iter().map(|c| render(c, om)).collect();
    if om {
        body.push_str("# EOF\n");
    }
    let format = if om {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    let mut p = Parser::new(body.as_bytes(), format).expect("utf8");
    for c in cases {
        let e = p.next().unwrap_or_else(|e| panic!("{e} in {body:?}"));
        let Some(Entry::Series(s)) = e else {
            panic!("expected series for {c:?}")
        };
        assert_eq!(s.name(), c.name.as_str());
        let labels: Vec<(String, String)> = s
            .labels()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(labels, c.labels);
        if c.value.is_nan() {
            assert!(s.value().is_nan());
        } else {
            assert_eq!(s.value().to_bits(), c.value.to_bits());
        }
        let want_ts = c.ts.map(|t| if om { t / 1000 * 1000 } else { t });
        assert_eq!(s.timestamp_ms(), want_ts);
    }
    assert!(matches!(p.next(), Ok(None)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        drive(&bytes, Format::Text);
        drive(&bytes, Format::OpenMetrics);
    }

    #[test]
    fn exposition_like_noise_never_panics(s in "[a-z_:{}=\",# \\n\\\\0-9.+\\-eEINaf\t@]{0,200}") {
        drive(s.as_bytes(), Format::Text);
        drive(s.as_bytes(), Format::OpenMetrics);
        let om = format!("{s}\n# EOF\n");
        drive(om.as_bytes(), Format::OpenMetrics);
    }

    #[test]
    fn rendered_series_round_trip(cases in proptest::collection::vec(case(), 1..8)) {
        check_round_trip(&cases, false);
        check_round_trip(&cases, true);
    }
}
