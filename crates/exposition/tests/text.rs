//! Prometheus text format 0.0.4 rules, with cases modelled on Prometheus's promparse tests.

mod common;

use std::borrow::Cow;

use common::*;
use edgeprom_exposition::{Entry, Format, Parser};
use edgeprom_model::{Labels, MetricType};

use MetricType::{Counter, Gauge, Histogram, Summary, Unknown};

#[test]
fn prometheus_style_exposition() {
    let input = "# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# \tTYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05
go_gc_duration_seconds{quantile=\"0.25\",} 7.424100000000001e-05
go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-05
go_gc_duration_seconds{quantile=\"0.8\", a=\"b\"} 8.3835e-05
go_gc_duration_seconds{ quantile=\"0.9\", a=\"b\"} 8.3835e-05
# HELP prometheus_http_request_duration_seconds Histogram of latencies for HTTP requests.
# TYPE prometheus_http_request_duration_seconds histogram
prometheus_http_request_duration_seconds_bucket{handler=\"/\",le=\"1\"} 423
prometheus_http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"} 1423
prometheus_http_request_duration_seconds_sum{handler=\"/\"} 2000
prometheus_http_request_duration_seconds_count{handler=\"/\"} 1423
# Hrandom comment starting with prefix of HELP
#
wind_speed{A=\"2\",c=\"3\"} 12345
# comment with escaped \\n newline
# HELP nohelp1
# HELP nohelp2 \n\
go_gc_duration_seconds { quantile= \"1.0\", a= \"b\", } 8.3835e-05
go_gc_duration_seconds { quantile = \"2.0\" a = \"b\" } 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b=\"c\"}\t1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  \t123123
# TYPE some_counter_total counter
# HELP some_counter_total Help after type.
some_counter_total 12
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore=\"foo\"} 1
testmetric{label=\"\\\"bar\\\"\"} 1
# HELP metric foo\x00bar
null_byte_metric{a=\"abc\x00\"} 1";

    let gc = "go_gc_duration_seconds";
    let h = "prometheus_http_request_duration_seconds";
    let want = vec![
        help(gc, "A summary of the GC invocation durations."),
        typ(gc, Summary),
        s(
            "go_gc_duration_seconds{quantile=\"0\"}",
            gc,
            &[("quantile", "0.0")],
            4.9351e-05,
            Summary,
        ),
        s(
            "go_gc_duration_seconds{quantile=\"0.25\",}",
            gc,
            &[("quantile", "0.25")],
            7.424100000000001e-05,
            Summary,
        ),
        s(
            "go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"}",
            gc,
            &[("quantile", "0.5"), ("a", "b")],
            8.3835e-05,
            Summary,
        ),
        s(
            "go_gc_duration_seconds{quantile=\"0.8\", a=\"b\"}",
            gc,
            &[("quantile", "0.8"), ("a", "b")],
            8.3835e-05,
            Summary,
        ),
        s(
            "go_gc_duration_seconds{ quantile=\"0.9\", a=\"b\"}",
            gc,
            &[("quantile", "0.9"), ("a", "b")],
            8.3835e-05,
            Summary,
        ),
        help(h, "Histogram of latencies for HTTP requests."),
        typ(h, Histogram),
        s(
            "prometheus_http_request_duration_seconds_bucket{handler=\"/\",le=\"1\"}",
            "prometheus_http_request_duration_seconds_bucket",
            &[("handler", "/"), ("le", "1.0")],
            423.0,
            Histogram,
        ),
        s(
            "prometheus_http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"}",
            "prometheus_http_request_duration_seconds_bucket",
            &[("handler", "/"), ("le", "+Inf")],
            1423.0,
            Histogram,
        ),
        s(
            "prometheus_http_request_duration_seconds_sum{handler=\"/\"}",
            "prometheus_http_request_duration_seconds_sum",
            &[("handler", "/")],
            2000.0,
            Histogram,
        ),
        s(
            "prometheus_http_request_duration_seconds_count{handler=\"/\"}",
            "prometheus_http_request_duration_seconds_count",
            &[("handler", "/")],
            1423.0,
            Histogram,
        ),
        E::Comment,
        E::Comment,
        s(
            "wind_speed{A=\"2\",c=\"3\"}",
            "wind_speed",
            &[("A", "2"), ("c", "3")],
            12345.0,
            Unknown,
        ),
        E::Comment,
        help("nohelp1", ""),
        help("nohelp2", ""),
        s(
            "go_gc_duration_seconds { quantile= \"1.0\", a= \"b\", }",
            gc,
            &[("quantile", "1.0"), ("a", "b")],
            8.3835e-05,
            Unknown,
        ),
        s(
            "go_gc_duration_seconds { quantile = \"2.0\" a = \"b\" }",
            gc,
            &[("quantile", "2.0"), ("a", "b")],
            8.3835e-05,
            Unknown,
        ),
        s(
            "go_gc_duration_seconds_count",
            "go_gc_duration_seconds_count",
            &[],
            99.0,
            Unknown,
        ),
        s(
            "some:aggregate:rate5m{a_b=\"c\"}",
            "some:aggregate:rate5m",
            &[("a_b", "c")],
            1.0,
            Unknown,
        ),
        help(
            "go_goroutines",
            "Number of goroutines that currently exist.",
        ),
        typ("go_goroutines", Gauge),
        with_ts(
            s("go_goroutines", "go_goroutines", &[], 33.0, Gauge),
            123123,
        ),
        typ("some_counter_total", Counter),
        help("some_counter_total", "Help after type."),
        s(
            "some_counter_total",
            "some_counter_total",
            &[],
            12.0,
            Counter,
        ),
        s(
            "_metric_starting_with_underscore",
            "_metric_starting_with_underscore",
            &[],
            1.0,
            Unknown,
        ),
        s(
            "testmetric{_label_starting_with_underscore=\"foo\"}",
            "testmetric",
            &[("_label_starting_with_underscore", "foo")],
            1.0,
            Unknown,
        ),
        s(
            "testmetric{label=\"\\\"bar\\\"\"}",
            "testmetric",
            &[("label", "\"bar\"")],
            1.0,
            Unknown,
        ),
        help("metric", "foo\x00bar"),
        s(
            "null_byte_metric{a=\"abc\x00\"}",
            "null_byte_metric",
            &[("a", "abc\x00")],
            1.0,
            Unknown,
        ),
    ];
    let got = parse_all(input, Format::Text).expect("parses");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn utf8_quoted_names() {
    let input = "# HELP \"go.gc_duration_seconds\" A summary.
# TYPE \"go.gc_duration_seconds\" summary
{\"go.gc_duration_seconds\",quantile=\"0\"} 4.9351e-05
{ \"go.gc_duration_seconds\", quantile = \"1.0\", a = \"b\" } 8.3835e-05
{\"go.gc_duration_seconds_count\"} 99
{\"Heizölrückstoßabdämpfung 10€ metric with \\\"interesting\\\" {character\\nchoices}\",\"strange©™\\n'quoted' \\\"name\\\"\"=\"6\"} 10.0
plain{\"label.with.dots\"=\"x\"} 2
";
    let got = parse_all(input, Format::Text).expect("parses");
    let n = "go.gc_duration_seconds";
    assert_eq!(got[0], help(n, "A summary."));
    assert_eq!(got[1], typ(n, Summary));
    assert_eq!(
        got[2],
        s(
            "{\"go.gc_duration_seconds\",quantile=\"0\"}",
            n,
            &[("quantile", "0.0")],
            4.9351e-05,
            Summary
        )
    );
    assert_eq!(
        got[3],
        s(
            "{ \"go.gc_duration_seconds\", quantile = \"1.0\", a = \"b\" }",
            n,
            &[("quantile", "1.0"), ("a", "b")],
            8.3835e-05,
            Summary
        )
    );
    assert_eq!(
        got[4],
        s(
            "{\"go.gc_duration_seconds_count\"}",
            "go.gc_duration_seconds_count",
            &[],
            99.0,
            Summary
        )
    );
    let E::S(weird) = &got[5] else {
        panic!("series expected")
    };
    assert_eq!(
        weird.name,
        "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}"
    );
    assert_eq!(
        weird.labels,
        pairs(&[("strange©™\n'quoted' \"name\"", "6")])
    );
    let E::S(dots) = &got[6] else {
        panic!("series expected")
    };
    assert_eq!(dots.labels, pairs(&[("label.with.dots", "x")]));
}

#[test]
fn values_and_timestamps() {
    let input = "a NaN\nb +Inf\nc -Inf\nd Inf\ne 1e-400\nf -0.5 -0\ng 1.5e3 1700000000000\nh .5\ni infinity\nj 0 9223372036854775807\n";
    let err = parse_err(input, Format::Text);
    // "-0" is not a timestamp (digits only), so line 6 fails.
    assert_eq!(err.line, 6, "{err}");

    let input = "a NaN\nb +Inf\nc -Inf\nd Inf\ne 1e-400\ng 1.5e3 1700000000000\nh .5\ni infinity\nj 0 9223372036854775807\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text).expect("utf8");
    let mut vals = Vec::new();
    while let Some(Entry::Series(s)) = p.next().expect("parses") {
        vals.push((s.value(), s.timestamp_ms()));
    }
    assert_eq!(vals[0].0.to_bits(), NORMAL_NAN_BITS);
    assert!(!edgeprom_model::is_stale_nan(vals[0].0));
    assert_eq!(vals[1].0, f64::INFINITY);
    assert_eq!(vals[2].0, f64::NEG_INFINITY);
    assert_eq!(vals[3].0, f64::INFINITY);
    assert_eq!(vals[4].0, 0.0);
    assert_eq!(vals[5], (1500.0, Some(1_700_000_000_000)));
    assert_eq!(vals[6].0, 0.5);
    assert_eq!(vals[7].0, f64::INFINITY);
    assert_eq!(vals[8], (0.0, Some(i64::MAX)));
}

#[test]
fn blank_lines_whitespace_and_missing_final_newline() {
    let input = "\n   \n\t\na 1\n\n  b{x=\"y\"}   2   \n\nc 3";
    let got = parse_all(input, Format::Text).expect("parses");
    let names: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            E::S(s) => Some((s.name.as_str(), f64::from_bits(s.value_bits))),
            _ => None,
        })
        .collect();
    assert_eq!(names, [("a", 1.0), ("b", 2.0), ("c", 3.0)]);
    assert_eq!(parse_all("", Format::Text).expect("empty"), vec![]);
    assert_eq!(parse_all("   ", Format::Text).expect("blank"), vec![]);
}

#[test]
fn comments_that_look_like_metadata() {
    let input = "#HELP a b\n# HELP\n# HELPX a b\n# TYPE\n#\ta comment\n";
    let got = parse_all(input, Format::Text).expect("parses");
    assert_eq!(got, vec![E::Comment; 5]);
}

#[test]
fn help_escapes_in_text_format() {
    let got = parse_all("# HELP m a\\\\b\\nc\\\"d \\x\n", Format::Text).expect("parses");
    // Text-format HELP knows only \\ and \n; \" and \x stay as written.
    assert_eq!(got, vec![help("m", "a\\b\nc\\\"d \\x")]);
    let got = parse_all("# HELP m    spaced\n", Format::Text).expect("parses");
    assert_eq!(got, vec![help("m", "   spaced")]);
}

#[test]
fn untyped_and_text_only_types() {
    let got = parse_all("# TYPE a untyped\na 1\n", Format::Text).expect("parses");
    assert_eq!(got[0], typ("a", Unknown));
    for bad in [
        "unknown",
        "gaugehistogram",
        "info",
        "stateset",
        "Counter",
        "",
    ] {
        let e = parse_err(&format!("a 1\n# TYPE a {bad}\n"), Format::Text);
        assert_eq!(e.line, 2);
        assert!(e.message.contains("invalid metric type"), "{e}");
    }
    // Two blanks leave a leading blank in the type word, as in Prometheus.
    let e = parse_err("# TYPE a  counter\n", Format::Text);
    assert!(
        e.message.contains("invalid metric type \" counter\""),
        "{e}"
    );
}

#[test]
fn escaped_label_values() {
    let input = "m{a=\"x\\\\y\",b=\"q\\\"q\",c=\"n\\nn\",d=\"t\\tt\"} 1\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text).expect("utf8");
    let Some(Entry::Series(s)) = p.next().expect("parses") else {
        panic!("series expected")
    };
    let labels: Vec<_> = s.labels().collect();
    assert_eq!(
        labels,
        vec![
            (Cow::Borrowed("a"), Cow::Owned::<str>("x\\y".into())),
            (Cow::Borrowed("b"), Cow::Owned("q\"q".into())),
            (Cow::Borrowed("c"), Cow::Owned("n\nn".into())),
            (Cow::Borrowed("d"), Cow::Owned("t\\tt".into())),
        ]
    );
    // A raw line break inside a value is accepted by the text lexer.
    let got = parse_all("m{a=\"x\ny\"} 1\n", Format::Text).expect("parses");
    let E::S(s) = &got[0] else { panic!() };
    assert_eq!(s.labels, pairs(&[("a", "x\ny")]));
}

#[test]
fn borrowed_when_nothing_is_escaped() {
    let input = "m{a=\"1\",b=\"two\"} 1\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text).expect("utf8");
    let Some(Entry::Series(s)) = p.next().expect("parses") else {
        panic!()
    };
    assert!(matches!(s.name(), Cow::Borrowed("m")));
    for (n, v) in s.labels() {
        assert!(matches!(n, Cow::Borrowed(_)) && matches!(v, Cow::Borrowed(_)));
    }
}

#[test]
fn raw_is_the_identity_text() {
    let input = "a{x=\"1\"} 1\na{x=\"1\"} 2 1000\na{x=\"2\"} 3\n a 4\na{ x=\"1\"} 5\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text).expect("utf8");
    let mut raws = Vec::new();
    while let Some(Entry::Series(s)) = p.next().expect("parses") {
        raws.push(s.raw());
    }
    assert_eq!(
        raws,
        ["a{x=\"1\"}", "a{x=\"1\"}", "a{x=\"2\"}", "a", "a{ x=\"1\"}"]
    );
}

#[test]
fn family_types() {
    let input = "# TYPE h histogram
h_bucket{le=\"0.5\"} 1
h_sum 2
h_count 3
h 9
hx_bucket{le=\"1\"} 1
# TYPE c_total counter
c_total 1
# TYPE c2 counter
c2_total 1
c2 1
c2_other 1
# TYPE s summary
s{quantile=\"0.5\"} 1
s_sum 1
s_count 1
s_bucket 1
# TYPE g gauge
g 1
g_sum 1
";
    let got = parse_all(input, Format::Text).expect("parses");
    let types: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            E::S(s) => Some((s.name.as_str(), s.mtype)),
            _ => None,
        })
        .collect();
    assert_eq!(
        types,
        [
            ("h_bucket", Histogram),
            ("h_sum", Histogram),
            ("h_count", Histogram),
            ("h", Histogram),
            ("hx_bucket", Unknown),
            ("c_total", Counter),
            ("c2_total", Counter),
            ("c2", Counter),
            ("c2_other", Unknown),
            ("s", Summary),
            ("s_sum", Summary),
            ("s_count", Summary),
            ("s_bucket", Unknown),
            ("g", Gauge),
            ("g_sum", Unknown),
        ]
    );
    // `le` under a histogram TYPE is normalised even for a sample outside the family, as
    // Prometheus keys it off the last TYPE.
    let E::S(hx) = &got[5] else { panic!() };
    assert_eq!(hx.labels, pairs(&[("le", "1.0")]));
}

#[test]
fn to_labels_includes_name_sorted_and_drops_empty() {
    let input = "m{z=\"1\",a=\"\",b=\"x\\\"y\"} 1\n";
    let mut p = Parser::new(input.as_bytes(), Format::Text).expect("utf8");
    let Some(Entry::Series(s)) = p.next().expect("parses") else {
        panic!()
    };
    assert_eq!(
        s.to_labels(),
        Labels::from_pairs([("__name__", "m"), ("b", "x\"y"), ("z", "1")])
    );
}

#[test]
fn error_cases_with_line_numbers() {
    // (input, line, message fragment)
    let cases: &[(&str, usize, &str)] = &[
        ("a", 1, "expected value after metric"),
        ("a{b='c'} 1\n", 1, "expected label value"),
        ("a{b=\n", 1, "expected label value"),
        ("ok 1\na{b=\"c\n", 2, "unterminated"),
        ("a{\u{ff}=\"foo\"} 1\n", 1, "expected label name"),
        ("{\"a\", \"b = \"c\"}", 1, "expected equal"),
        ("{\"a\",b\\nc=\"d\"} 1", 1, "expected equal"),
        ("a true\n", 1, "invalid syntax"),
        ("something_weird{problem=\"", 1, "unterminated"),
        ("empty_label_name{=\"\"} 0", 1, "expected label name"),
        ("{A}0", 1, "expected equal"),
        ("foo 1_2\n", 1, "unsupported character in float"),
        ("foo 0x1p-3\n", 1, "unsupported character in float"),
        ("foo 0x1P-3\n", 1, "unsupported character in float"),
        ("foo 0 1_2\n", 1, "expected next entry after timestamp"),
        ("{a=\"ok\"} 1", 1, "metric name not set"),
        ("# TYPE #\n", 1, "expected metric name after TYPE"),
        ("# HELP #\n", 1, "expected metric name after HELP"),
        (
            "a 1\nb 2\nc{x=\"1\",x=\"2\"} 3\n",
            3,
            "label name \"x\" is not unique",
        ),
        ("a{__name__=\"b\"} 1\n", 1, "\"__name__\" is not unique"),
        ("{\"a\",\"b\"} 1\n", 1, "metric name already set"),
        ("a{\"b\"} 1\n", 1, "metric name already set"),
        ("a{b-c=\"1\"} 1\n", 1, "expected equal"),
        ("9a 1\n", 1, "expected a valid start token"),
        ("a.b 1\n", 1, "invalid syntax"),
        ("a 1 2 3\n", 1, "expected next entry after timestamp"),
        ("a 1 -5\n", 1, "expected timestamp or new record"),
        ("a 1 99999999999999999999\n", 1, "out of range"),
        ("a 1\r\n", 1, "invalid syntax"),
        ("a +NaN\n", 1, "invalid syntax"),
        ("a 1e999\n", 1, "out of range"),
        ("a{b=\"1\"}{c=\"2\"} 1\n", 1, "expected value after metric"),
        ("a{,} 1\n", 1, "expected label name"),
        ("a{b=\"1\",,} 1\n", 1, "expected label name"),
        ("a{b=\"1\"\n", 1, "expected label name"),
        ("# HELP ok x\n\n\n  \nbad{ 1\n", 5, "expected label name"),
        ("a{\"\"=\"x\"} 1\n", 1, "empty label name"),
        ("{\"\"} 1\n", 1, "empty metric name"),
        ("a 1\n\x00\n", 2, "expected a valid start token"),
    ];
    for (input, line, frag) in cases {
        let e = parse_err(input, Format::Text);
        assert_eq!(e.line, *line, "{input:?}: {e}");
        assert!(
            e.message.contains(frag),
            "{input:?}: got {e}, want {frag:?}"
        );
        assert_eq!(e.to_string(), format!("line {}: {}", e.line, e.message));
    }
}

#[test]
fn invalid_utf8_reports_its_line() {
    let e = Parser::new(b"a 1\nb 2\nc{x=\"\xff\"} 3\n", Format::Text).expect_err("not utf8");
    assert_eq!(e.line, 3);
    let e = parse_bytes(b"ok 1\n# HELP m \xc3\n", Format::Text).expect_err("not utf8");
    assert_eq!(e.line, 2);
}

#[test]
fn errors_and_end_are_sticky() {
    let mut p = Parser::new(b"a 1\nb{\n", Format::Text).expect("utf8");
    assert!(p.next().expect("first").is_some());
    let e1 = p.next().expect_err("second");
    let e2 = p.next().expect_err("again");
    assert_eq!(e1, e2);
    let mut p = Parser::new(b"a 1\n", Format::Text).expect("utf8");
    assert!(p.next().expect("first").is_some());
    assert!(p.next().expect("end").is_none());
    assert!(p.next().expect("still end").is_none());
}

#[test]
fn quirks_prometheus_accepts() {
    // The value may follow the label block without a blank, and the lexer treats anything after
    // a name as the value, so `foo-1 2` is foo = -1 at 2 ms. edgeprom matches this.
    let got = parse_all("a{b=\"c\"}1\nfoo-1 2\n", Format::Text).expect("parses");
    let vals: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            E::S(s) => Some((s.name.clone(), f64::from_bits(s.value_bits), s.ts)),
            _ => None,
        })
        .collect();
    assert_eq!(
        vals,
        [
            ("a".to_string(), 1.0, None),
            ("foo".to_string(), -1.0, Some(2))
        ]
    );
}

/// Regression (issue #12): error messages quoted whatever the body held, so one label name of
/// megabytes became a megabyte `lastError` and log line; they are now cut to 1 KiB.
#[test]
fn error_for_a_megabyte_label_name_is_short() {
    let body = format!("metric{{{}\"=\"v\"}} 1\n", "n".repeat(1 << 20));
    let mut p = Parser::new(body.as_bytes(), Format::Text).expect("utf-8");
    let e = loop {
        match p.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("parsed a malformed body"),
            Err(e) => break e,
        }
    };
    assert!(e.message.len() <= 1100, "{} bytes", e.message.len());
}
