//! OpenMetrics 1.0 rules, with cases modelled on Prometheus's openmetricsparse tests.

mod common;

use common::*;
use edgeprom_exposition::{Entry, Format, Parser};
use edgeprom_model::MetricType;

use MetricType::{Counter, Gauge, GaugeHistogram, Histogram, Info, StateSet, Summary, Unknown};

const OM: Format = Format::OpenMetrics;

#[test]
fn prometheus_style_exposition() {
    let input = "# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05
go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-05
# HELP nohelp1 \n\
# HELP help2 escape \\ \\n \\\\ \\\" \\x chars
# UNIT nounit \n\
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b=\"c\"} 1
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hhh histogram
hhh_bucket{le=\"+Inf\"} 1 # {id=\"histogram-bucket-test\"} 4
hhh_count 1 # {id=\"histogram-count-test\"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le=\"+Inf\"} 1 # {id=\"gaugehistogram-bucket-test\",xx=\"yy\"} 4 123.123
ggh_gcount 1 # {id=\"gaugehistogram-count-test\",xx=\"yy\"} 4 123.123
ggh_gsum 2
# TYPE smr_seconds summary
smr_seconds_count 2.0 # {id=\"summary-count-test\"} 1 123.321
# TYPE ii info
ii_info{foo=\"bar\"} 1
# TYPE ss stateset
ss{ss=\"foo\"} 1
ss{ss=\"bar\"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{label=\"\\\"bar\\\"\"} 1
# HELP foo Counter with and without labels
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id=\"counter-test\"} 5
foo_created 1520872607.123
foo_total{le=\"1\"} 10.0
# TYPE bar summary
bar_count 17.0
bar{quantile=\"0.95\"} 123.7
bar_created 1520872608.124
# TYPE baz histogram
baz_bucket{le=\"0.0\"} 0
baz_created 1520872609.125
# TYPE fizz_created gauge
fizz_created 17.0
# EOF
";
    let gc = "go_gc_duration_seconds";
    let want = vec![
        help(gc, "A summary of the GC invocation durations."),
        typ(gc, Summary),
        E::Unit(gc.into(), "seconds".into()),
        s(
            "go_gc_duration_seconds{quantile=\"0\"}",
            gc,
            &[("quantile", "0.0")],
            4.9351e-05,
            Summary,
        ),
        s(
            "go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"}",
            gc,
            &[("quantile", "0.5"), ("a", "b")],
            8.3835e-05,
            Summary,
        ),
        help("nohelp1", ""),
        help("help2", "escape \\ \n \\ \" \\x chars"),
        E::Unit("nounit".into(), "".into()),
        s(
            "go_gc_duration_seconds_count",
            "go_gc_duration_seconds_count",
            &[],
            99.0,
            Summary,
        ),
        s(
            "some:aggregate:rate5m{a_b=\"c\"}",
            "some:aggregate:rate5m",
            &[("a_b", "c")],
            1.0,
            Unknown,
        ),
        typ("go_goroutines", Gauge),
        with_ts(
            s("go_goroutines", "go_goroutines", &[], 33.0, Gauge),
            123123,
        ),
        typ("hhh", Histogram),
        with_ex(
            s(
                "hhh_bucket{le=\"+Inf\"}",
                "hhh_bucket",
                &[("le", "+Inf")],
                1.0,
                Histogram,
            ),
            &[("id", "histogram-bucket-test")],
            4.0,
            None,
        ),
        with_ex(
            s("hhh_count", "hhh_count", &[], 1.0, Histogram),
            &[("id", "histogram-count-test")],
            4.0,
            None,
        ),
        typ("ggh", GaugeHistogram),
        with_ex(
            s(
                "ggh_bucket{le=\"+Inf\"}",
                "ggh_bucket",
                &[("le", "+Inf")],
                1.0,
                GaugeHistogram,
            ),
            &[("id", "gaugehistogram-bucket-test"), ("xx", "yy")],
            4.0,
            Some(123123),
        ),
        with_ex(
            s("ggh_gcount", "ggh_gcount", &[], 1.0, GaugeHistogram),
            &[("id", "gaugehistogram-count-test"), ("xx", "yy")],
            4.0,
            Some(123123),
        ),
        s("ggh_gsum", "ggh_gsum", &[], 2.0, GaugeHistogram),
        typ("smr_seconds", Summary),
        with_ex(
            s("smr_seconds_count", "smr_seconds_count", &[], 2.0, Summary),
            &[("id", "summary-count-test")],
            1.0,
            Some(123321),
        ),
        typ("ii", Info),
        s(
            "ii_info{foo=\"bar\"}",
            "ii_info",
            &[("foo", "bar")],
            1.0,
            Info,
        ),
        typ("ss", StateSet),
        s("ss{ss=\"foo\"}", "ss", &[("ss", "foo")], 1.0, StateSet),
        s("ss{ss=\"bar\"}", "ss", &[("ss", "bar")], 0.0, StateSet),
        typ("un", Unknown),
        s(
            "_metric_starting_with_underscore",
            "_metric_starting_with_underscore",
            &[],
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
        help("foo", "Counter with and without labels"),
        typ("foo", Counter),
        with_ex(
            with_ts(
                s("foo_total", "foo_total", &[], 17.0, Counter),
                1520879607789,
            ),
            &[("id", "counter-test")],
            5.0,
            None,
        ),
        // Prometheus 3 without created-timestamp zero ingestion stores `_created` as a series.
        s("foo_created", "foo_created", &[], 1520872607.123, Counter),
        s(
            "foo_total{le=\"1\"}",
            "foo_total",
            &[("le", "1")],
            10.0,
            Counter,
        ),
        typ("bar", Summary),
        s("bar_count", "bar_count", &[], 17.0, Summary),
        s(
            "bar{quantile=\"0.95\"}",
            "bar",
            &[("quantile", "0.95")],
            123.7,
            Summary,
        ),
        s("bar_created", "bar_created", &[], 1520872608.124, Summary),
        typ("baz", Histogram),
        s(
            "baz_bucket{le=\"0.0\"}",
            "baz_bucket",
            &[("le", "0.0")],
            0.0,
            Histogram,
        ),
        s("baz_created", "baz_created", &[], 1520872609.125, Histogram),
        typ("fizz_created", Gauge),
        s("fizz_created", "fizz_created", &[], 17.0, Gauge),
    ];
    let got = parse_all(input, OM).expect("parses");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn utf8_names_and_quoted_exemplar_labels() {
    let input = "# HELP \"go.gc_duration_seconds\" A summary.
# TYPE \"go.gc_duration_seconds\" summary
# UNIT \"go.gc_duration_seconds\" seconds
{\"go.gc_duration_seconds\",quantile=\"0\"} 4.9351e-05
{\"go.gc_duration_seconds_created\"} 1520872607.123
{q=\"0.9\",\"http.status\",a=\"b\"} 8.3835e-05
quotedexemplar_count 1 # {\"id.thing\"=\"histogram-count-test\",other=\"hello\"} 4
# EOF";
    let got = parse_all(input, OM).expect("parses");
    assert_eq!(
        got[2],
        E::Unit("go.gc_duration_seconds".into(), "seconds".into())
    );
    assert_eq!(
        got[3],
        s(
            "{\"go.gc_duration_seconds\",quantile=\"0\"}",
            "go.gc_duration_seconds",
            &[("quantile", "0.0")],
            4.9351e-05,
            Summary
        )
    );
    let E::S(created) = &got[4] else { panic!() };
    assert_eq!(created.name, "go.gc_duration_seconds_created");
    assert_eq!(created.mtype, Summary);
    let E::S(mid) = &got[5] else { panic!() };
    assert_eq!(mid.name, "http.status");
    assert_eq!(mid.labels, pairs(&[("q", "0.9"), ("a", "b")]));
    let E::S(ex) = &got[6] else { panic!() };
    assert_eq!(
        ex.exemplar,
        Some((
            pairs(&[("id.thing", "histogram-count-test"), ("other", "hello")]),
            4.0f64.to_bits(),
            None
        ))
    );
}

#[test]
fn eof_handling() {
    assert_eq!(parse_all("# EOF", OM).expect("ok"), vec![]);
    assert_eq!(parse_all("# EOF\n", OM).expect("ok"), vec![]);
    let mut p = Parser::new(b"a 1\n# EOF\n", OM).expect("utf8");
    assert!(matches!(p.next(), Ok(Some(Entry::Series(_)))));
    assert!(matches!(p.next(), Ok(None)));
    assert!(matches!(p.next(), Ok(None)));
}

#[test]
fn timestamps_are_float_seconds() {
    let got = parse_all("a 1 1520879607.789\nb 1 -1.5\nc 1 1e3\n# EOF\n", OM).expect("ok");
    let ts: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            E::S(s) => s.ts,
            _ => None,
        })
        .collect();
    assert_eq!(ts, [1520879607789, -1500, 1_000_000]);
}

#[test]
fn free_comments_and_blank_lines_are_errors() {
    for input in ["# a comment\n# EOF\n", "\n# EOF\n", "#comment\n# EOF\n"] {
        let e = parse_err(input, OM);
        assert_eq!(e.line, 1, "{input:?}: {e}");
    }
}

#[test]
fn error_cases_with_line_numbers() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "data does not end with # EOF"),
        ("\n", 1, "expected a valid start token"),
        ("metric", 1, "expected value after metric"),
        ("metric 1", 1, "data does not end with # EOF"),
        ("metric 1\n", 2, "data does not end with # EOF"),
        (
            "metric_total 1 # {aa=\"bb\"} 4",
            1,
            "data does not end with # EOF",
        ),
        ("a\n# EOF\n", 1, "expected value after metric"),
        ("\n\n# EOF\n", 1, "expected a valid start token"),
        (" a 1\n# EOF\n", 1, "expected a valid start token"),
        ("9\n# EOF\n", 1, "expected a valid start token"),
        (
            "# TYPE u untyped\n# EOF\n",
            1,
            "invalid metric type \"untyped\"",
        ),
        (
            "# TYPE c counter \n# EOF\n",
            1,
            "invalid metric type \"counter \"",
        ),
        (
            "#  TYPE c counter\n# EOF\n",
            1,
            "expected HELP, TYPE, UNIT or EOF",
        ),
        ("# TYPE \n# EOF\n", 1, "expected metric name after TYPE"),
        ("# TYPE m\n# EOF\n", 1, "expected text in TYPE"),
        (
            "# UNIT metric suffix\n# EOF\n",
            1,
            "unit \"suffix\" not a suffix of metric \"metric\"",
        ),
        ("# UNIT metricsuffix suffix\n# EOF\n", 1, "not a suffix"),
        ("# UNIT m suffix\n# EOF\n", 1, "not a suffix"),
        ("# UNIT \n# EOF\n", 1, "expected metric name after UNIT"),
        ("# UNIT m\n# EOF\n", 1, "expected text in UNIT"),
        ("# HELP \n# EOF\n", 1, "expected metric name after HELP"),
        ("# HELP m\n# EOF\n", 1, "expected text in HELP"),
        ("# HELP m text", 1, "expected text in HELP"),
        ("a\t1\n# EOF\n", 1, "expected value after metric"),
        ("a 1\t2\n# EOF\n", 1, "invalid syntax"),
        ("a 1 2 \n# EOF\n", 1, "expected next entry"),
        ("a 1 2 #\n# EOF\n", 1, "expected next entry"),
        ("a 1 1z\n# EOF\n", 1, "invalid syntax"),
        ("a  1\n# EOF\n", 1, "expected value after metric"),
        (" # EOF\n", 1, "expected a valid start token"),
        ("# EOF\na 1", 1, "unexpected data after # EOF"),
        ("# EOF\n\n", 1, "unexpected data after # EOF"),
        ("# EOFa 1", 1, "unexpected data after # EOF"),
        ("#\tTYPE c counter\n", 1, "expected a valid start token"),
        ("# TYPE c  counter\n", 1, "invalid metric type \" counter\""),
        ("a 1 1 1\n# EOF\n", 1, "expected next entry"),
        ("a{b='c'} 1\n# EOF\n", 1, "expected label value"),
        ("a{,b=\"c\"} 1\n# EOF\n", 1, "expected label name"),
        (
            "a{b=\"c\"d=\"e\"} 1\n# EOF\n",
            1,
            "expected comma or brace close",
        ),
        ("a{b=\"c\",,d=\"e\"} 1\n# EOF\n", 1, "expected label name"),
        ("a{b=\"c\", d=\"e\"} 1\n# EOF\n", 1, "expected label name"),
        ("a {b=\"c\"} 1\n# EOF\n", 1, "invalid syntax"),
        ("a{b=\n# EOF\n", 1, "expected label value"),
        (
            "a{b=\"x\ny\"} 1\n# EOF\n",
            1,
            "line break inside quoted label value",
        ),
        ("{\"a\",\"b = \"c\"}\n# EOF\n", 1, "expected equal"),
        ("a true\n# EOF\n", 1, "invalid syntax"),
        ("something_weird{problem=\"\n# EOF\n", 1, "line break"),
        (
            "empty_label_name{=\"\"} 0\n# EOF\n",
            1,
            "expected label name",
        ),
        ("{A}0\n# EOF\n", 1, "expected equal"),
        ("foo 1_2\n\n# EOF\n", 1, "unsupported character in float"),
        ("foo 0x1p-3\n\n# EOF\n", 1, "unsupported character in float"),
        ("foo 0 1_2\n\n# EOF\n", 1, "unsupported character in float"),
        (
            "ok 1\ncustom_metric_total 1 # {aa=bb}\n# EOF\n",
            2,
            "expected label value",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n",
            1,
            "expected value after exemplar labels",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\"}",
            1,
            "expected value after exemplar labels",
        ),
        ("custom_metric_total 1 # {bb}\n# EOF\n", 1, "expected equal"),
        (
            "custom_metric_total 1 # {bb, a=\"dd\"}\n# EOF\n",
            1,
            "expected equal",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1\n# EOF\n",
            1,
            "expected label name",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\"} 1_2\n# EOF\n",
            1,
            "unsupported character",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\"} true\n# EOF\n",
            1,
            "invalid syntax",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\",cc=}\n# EOF\n",
            1,
            "expected label value",
        ),
        (
            "custom_metric_total 1 # {\"aa\"} 1\n# EOF\n",
            1,
            "expected label name in exemplar",
        ),
        (
            "custom_metric_total 1 # {aa=\"bb\"} 1 2 3\n# EOF\n",
            1,
            "expected next entry",
        ),
        ("{b=\"c\",} 1\n# EOF\n", 1, "metric name not set"),
        ("a 1 NaN\n# EOF\n", 1, "invalid timestamp NaN"),
        ("a 1 -Inf\n# EOF\n", 1, "invalid timestamp -Inf"),
        ("a 1 Inf\n# EOF\n", 1, "invalid timestamp +Inf"),
        (
            "# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN\n# EOF\n",
            2,
            "invalid exemplar timestamp NaN",
        ),
        (
            "# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 -Inf\n# EOF\n",
            2,
            "invalid exemplar timestamp -Inf",
        ),
        ("a{x=\"1\",x=\"1\"} 1\n# EOF\n", 1, "is not unique"),
        ("a 1 ct@123\n# EOF\n", 1, "invalid syntax"),
    ];
    for (input, line, frag) in cases {
        let e = parse_err(input, OM);
        assert_eq!(e.line, *line, "{input:?}: {e}");
        assert!(
            e.message.contains(frag),
            "{input:?}: got {e}, want {frag:?}"
        );
    }
}

#[test]
fn exemplar_labels_are_not_checked_for_duplicates() {
    // Prometheus never fails a scrape over an exemplar; only the series labels are checked.
    let got = parse_all("a_total 1 # {x=\"1\",x=\"2\"} 1\n# EOF\n", OM).expect("ok");
    let E::S(s) = &got[0] else { panic!() };
    assert_eq!(s.exemplar.as_ref().map(|e| e.0.len()), Some(2));
}

#[test]
fn same_body_differs_between_formats() {
    // Text accepts what OpenMetrics rejects: blank lines, comments, spaces in label blocks.
    let body = "# a comment\n\nm{ a=\"1\" } 1\n";
    assert!(parse_all(body, Format::Text).is_ok());
    assert!(parse_all(&format!("{body}# EOF\n"), OM).is_err());
}
