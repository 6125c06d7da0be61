//! Issue #12: a battery of hostile HTTP requests against the real binary. Absurd ranges and steps,
//! invalid times, deep nesting, subqueries with tiny steps, huge and catastrophic-looking regexes,
//! giant bodies and `match[]` lists, invalid UTF-8, huge label names and values, every read,
//! admin and federation endpoint, and garbage or oversized remote-write bodies. Each request must
//! be answered within its timeout with the status and error JSON Prometheus would use, `/-/healthy`
//! must answer 200 after each, and the process's resident memory must stay under 1 GiB.
//!
//! The binary runs with `--query.timeout=5s` so that queries which can only end in a timeout
//! (a one-millisecond subquery step over a day) end in seconds; everything else is default.
//! Where edgeprom refuses what Prometheus would take (nesting beyond
//! `--query.max-expression-depth`, text beyond `--query.max-length`, a regex beyond the `regex`
//! crate's compiled size limit) the case says so; regex repeat counts are refused as Go refuses
//! them.

mod common;

use std::time::{Duration, Instant};

use common::{start, temp_dir};
use serde_json::Value;

/// What a request must be answered with.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 200 with `"status":"success"`.
    Success,
    /// This status with Prometheus's error JSON of this `errorType`.
    Error(u16, &'static str),
    /// This status; the body is not JSON (remote write answers in plain text, as Prometheus's,
    /// and so do routing errors).
    Status(u16),
    /// A query that may finish or hit a bound: success, or a timeout or too-many-samples error.
    Bounded,
}

/// Request headers as (name, value).
type Headers = Vec<(&'static str, &'static str)>;

struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    body: Option<(Vec<u8>, Headers)>,
    expect: Expect,
    /// Sent over a plain TCP socket: HTTP client libraries refuse URLs over 64 KiB, a hostile
    /// client does not.
    raw: bool,
}

fn get(name: &str, path: impl Into<String>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        method: reqwest::Method::GET,
        path: path.into(),
        body: None,
        expect,
        raw: false,
    }
}

fn raw_get(name: &str, path: impl Into<String>, expect: Expect) -> Case {
    Case {
        raw: true,
        ..get(name, path, expect)
    }
}

fn post_form(name: &str, path: &str, form: &[(&str, &str)], expect: Expect) -> Case {
    let body = form_urlencoded(form);
    Case {
        name: name.to_string(),
        method: reqwest::Method::POST,
        path: path.to_string(),
        body: Some((
            body.into_bytes(),
            vec![("content-type", "application/x-www-form-urlencoded")],
        )),
        expect,
        raw: false,
    }
}

fn post_raw(
    name: &str,
    path: &str,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    expect: Expect,
) -> Case {
    Case {
        name: name.to_string(),
        method: reqwest::Method::POST,
        path: path.to_string(),
        body: Some((body, headers)),
        expect,
        raw: false,
    }
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn q(query: &str) -> String {
    format!("/api/v1/query?query={}", enc(query))
}

fn qr(query: &str, start: &str, end: &str, step: &str) -> String {
    format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}",
        enc(query),
        enc(start),
        enc(end),
        enc(step)
    )
}

/// A snappy block whose body is `data` as one literal (the format's simplest valid encoding).
fn snappy_literal(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    let len = data.len() - 1;
    if len < 60 {
        out.push((len as u8) << 2);
    } else {
        out.push(63 << 2);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let bad = Error(400, "bad_data");
    let mut c = Vec::new();

    // Absurd ranges and steps (Prometheus: 400 bad_data for each).
    let ten_years = "315360000";
    c.push(get(
        "step 1ms over 10 years",
        qr("up", "0", ten_years, "0.001"),
        bad,
    ));
    c.push(get(
        "step 1ms over 10 years as duration",
        qr("up", "0", ten_years, "1ms"),
        bad,
    ));
    for step in [
        "0", "-1", "-1ms", "NaN", "Inf", "+Inf", "-Inf", "1e300", "-1e300", "abc", "1x",
    ] {
        c.push(get(
            &format!("step {step}"),
            qr("up", "0", "100", step),
            bad,
        ));
    }
    c.push(get("start after end", qr("up", "100", "0", "1"), bad));
    c.push(get(
        "times at both ends of i64",
        qr("up", "-9e15", "9e15", "1e12"),
        bad,
    ));
    c.push(get(
        "times at both ends, huge step",
        qr("up", "-9e15", "9e15", "9e9"),
        bad,
    ));
    for t in [
        "1e300",
        "-1e300",
        "9999-99-99",
        "NaN",
        "Inf",
        "-Inf",
        "2024-02-30T00:00:00Z",
        "0000-00-00T00:00:00Z",
        "yesterday",
        "1e16",
        "99999999999999999999999999",
    ] {
        c.push(get(
            &format!("range start {t}"),
            qr("up", t, "100", "1"),
            bad,
        ));
        c.push(get(
            &format!("instant time {t}"),
            format!("{}&time={}", q("up"), enc(t)),
            bad,
        ));
    }
    c.push(get(
        "missing start",
        "/api/v1/query_range?query=up&end=1&step=1",
        bad,
    ));
    c.push(get(
        "missing step",
        "/api/v1/query_range?query=up&start=0&end=1",
        bad,
    ));
    c.push(get("missing query", "/api/v1/query", bad));
    c.push(get(
        "timeout garbage",
        format!("{}&timeout=abc", q("up")),
        bad,
    ));
    c.push(get(
        "lookback garbage",
        format!("{}&lookback_delta=1e300", q("up")),
        bad,
    ));
    c.push(get(
        "instant at 9e15 s",
        format!("{}&time=9e15", q("up")),
        Success,
    ));
    c.push(get("offset -100000y", q("up offset -100000y"), Success));
    c.push(get("@ 9e15", q("up @ 9e15"), Success));
    c.push(get("@ 1e300", q("up @ 1e300"), bad));
    // Durations `promql-parser` cannot represent (it panicked; found by the promql fuzz target).
    c.push(get("offset -1e30850", q("up offset -1e30850 @ 0"), bad));
    c.push(get(
        "range 301e308",
        q("sum_over_time(up[301e308:10])"),
        bad,
    ));
    c.push(get(
        "subquery step Inf",
        q("max_over_time(up[1m:Inf])"),
        bad,
    ));
    c.push(get("@ -1e300 in a range", q("rate(up[1m] @ -1e300)"), bad));
    c.push(get(
        "range of 100000y",
        q("count_over_time(up[100000y])"),
        Success,
    ));
    c.push(get(
        "range query 11000 points",
        qr("up", "0", "11000", "1"),
        Success,
    ));

    // Subqueries with tiny steps: bounded by --query.timeout and --query.max-samples.
    c.push(get("rate(up[1d:1ms])", q("rate(up[1d:1ms])"), Bounded));
    c.push(get(
        "nested tiny subqueries",
        q("max_over_time(rate(up[1d:1ms])[1d:1ms])"),
        Bounded,
    ));
    c.push(get("bare subquery 1h:1ms", q("up[1h:1ms]"), Bounded));
    c.push(get(
        "quantile over 1000y:1ms",
        q("quantile_over_time(0.5, up[1000y:1ms])"),
        Bounded,
    ));
    c.push(get(
        "range query of a tiny-step subquery",
        qr("max_over_time(up[1h:1ms])", "0", "10000", "1"),
        Bounded,
    ));

    // Deep nesting: refused before parsing (Prometheus's growable Go stacks take these).
    let n = 10_000;
    let deep: Vec<(&str, String)> = vec![
        (
            "parentheses",
            format!("{}up{}", "(".repeat(n), ")".repeat(n)),
        ),
        ("unary minus", format!("{}up", "-".repeat(n))),
        ("-(-(-…))", format!("{}up{}", "-(".repeat(n), ")".repeat(n))),
        (
            "abs(abs(…))",
            format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
        ),
        (
            "sum(sum(…))",
            format!("{}up{}", "sum(".repeat(n), ")".repeat(n)),
        ),
        ("or chain", format!("up{}", " or up".repeat(n))),
        ("+ chain", format!("1{}", "+1".repeat(n))),
        ("subquery chain", format!("up{}", "[1m:]".repeat(n))),
        (
            "nested subqueries",
            format!("{}up{}", "max_over_time(".repeat(n), "[1m:1ms])".repeat(n)),
        ),
        ("unclosed parentheses", "(".repeat(100_000)),
    ];
    for (name, query) in &deep {
        c.push(post_form(
            &format!("deep {name}, POST query"),
            "/api/v1/query",
            &[("query", query)],
            bad,
        ));
    }
    let paren = &deep[0].1;
    c.push(post_form(
        "deep, query_range",
        "/api/v1/query_range",
        &[
            ("query", paren),
            ("start", "0"),
            ("end", "60"),
            ("step", "15"),
        ],
        bad,
    ));
    c.push(post_form(
        "deep, format_query",
        "/api/v1/format_query",
        &[("query", paren)],
        bad,
    ));
    c.push(post_form(
        "deep, parse_query",
        "/api/v1/parse_query",
        &[("query", paren)],
        bad,
    ));
    c.push(post_form(
        "deep, query_exemplars",
        "/api/v1/query_exemplars",
        &[("query", paren)],
        bad,
    ));
    c.push(post_form(
        "deep, series match[]",
        "/api/v1/series",
        &[("match[]", paren)],
        bad,
    ));
    c.push(post_form(
        "deep, labels match[]",
        "/api/v1/labels",
        &[("match[]", paren)],
        bad,
    ));
    c.push(raw_get(
        "deep, targets/metadata match_target",
        format!(
            "/api/v1/targets/metadata?match_target={}",
            enc(&format!("{}up{}", "(".repeat(5000), ")".repeat(5000)))
        ),
        bad,
    ));
    // Over 64 KiB of URL: hyper's limit answers 414 (Go's server takes up to 1 MiB of head).
    c.push(raw_get(
        "deep sum(sum(…)) in a 60 KB URL",
        format!("/api/v1/targets/metadata?match_target={}", enc(&deep[4].1)),
        Status(414),
    ));
    c.push(raw_get(
        "deep, GET query of 10000 parentheses",
        q(paren),
        bad,
    ));
    // Just under the default depth bound the query evaluates (no stack overflow in a debug build).
    let shallow = 300;
    c.push(post_form(
        "300 nested parentheses evaluate",
        "/api/v1/query",
        &[(
            "query",
            &format!("{}up{}", "(".repeat(shallow), ")".repeat(shallow)),
        )],
        Success,
    ));
    c.push(post_form(
        "300 nested abs() evaluate",
        "/api/v1/query",
        &[(
            "query",
            &format!("{}up{}", "abs(".repeat(shallow), ")".repeat(shallow)),
        )],
        Success,
    ));
    c.push(post_form(
        "900-term or chain evaluates",
        "/api/v1/query",
        &[("query", &format!("up{}", " or up".repeat(900)))],
        Success,
    ));

    // Regexes: RE2-style engines have no catastrophic backtracking; oversize ones are bad_data.
    let alts: Vec<String> = (0..10_000).map(|i| format!("v{i}")).collect();
    let big_alternation = format!("up{{job=~\"({})\"}}", alts.join("|"));
    c.push(post_form(
        "alternation of 10000 values",
        "/api/v1/query",
        &[("query", &big_alternation)],
        Success,
    ));
    c.push(get("(a|b){1000}", q("up{job=~\"(a|b){1000}\"}"), Success));
    // Go's regexp refuses repeat counts over 1000, and nested ones making more than 1000 copies
    // (Prometheus: 400 "invalid repeat count"); so does edgeprom, though the `regex` crate would
    // take these within its compiled-size limit.
    c.push(get("(a|b){10000}", q("up{job=~\"(a|b){10000}\"}"), bad));
    c.push(get("(a{10}){101}", q("up{job=~\"(a{10}){101}\"}"), bad));
    c.push(get("(a{10}){100}", q("up{job=~\"(a{10}){100}\"}"), Success));
    c.push(get(
        "(a|b){10000} in series match[]",
        format!(
            "/api/v1/series?match[]={}",
            enc("{__name__=~\"(a|b){10000}\"}")
        ),
        bad,
    ));
    c.push(get(
        "((a{100}){100}){100}",
        q("up{job=~\"((a{100}){100}){100}\"}"),
        bad,
    ));
    c.push(get("a{1000000}", q("up{job=~\"a{1000000}\"}"), bad));
    let mega_regex = format!("up{{job=~\"{}\"}}", "a".repeat(1 << 20));
    c.push(post_form(
        "1 MiB regex (over --query.max-length)",
        "/api/v1/query",
        &[("query", &mega_regex)],
        bad,
    ));
    let big_regex = format!("up{{job=~\"{}\"}}", "(a|b)*c".repeat(20_000));
    c.push(post_form(
        "140 KB regex of (a|b)*c",
        "/api/v1/query",
        &[("query", &big_regex)],
        Success,
    ));
    for pat in [
        "(a*)*b",
        "(a|aa)*c",
        "(x+x+)+y",
        "(.*a){20}",
        "^(([a-z])+.)+[A-Z]([a-z])+$",
    ] {
        c.push(get(
            &format!("catastrophic-looking {pat}"),
            q(&format!("up{{job=~\"{pat}\"}}")),
            Success,
        ));
    }
    c.push(get("invalid regex", q("up{job=~\"(\"}"), bad));
    c.push(get(
        "regex in series match[]",
        format!("/api/v1/series?match[]={}", enc("up{job=~\"(a|b){1000}\"}")),
        Success,
    ));
    c.push(get(
        "oversize regex in series match[]",
        format!("/api/v1/series?match[]={}", enc("up{job=~\"a{1000000}\"}")),
        bad,
    ));

    // Giant bodies and parameter lists.
    let fifty_mb = format!("query={}", "a".repeat(50 << 20));
    c.push(post_raw(
        "50 MB POST form to query",
        "/api/v1/query",
        fifty_mb.clone().into_bytes(),
        vec![("content-type", "application/x-www-form-urlencoded")],
        // The error JSON is sent as soon as 10 MiB have been read and the connection closed
        // (Go's server does the same), so the client may see the status without the body.
        Status(400),
    ));
    c.last_mut().expect("case").raw = true;
    c.push(post_raw(
        "50 MB POST form to series",
        "/api/v1/series",
        fifty_mb.into_bytes(),
        vec![("content-type", "application/x-www-form-urlencoded")],
        Status(400),
    ));
    c.last_mut().expect("case").raw = true;
    let many: Vec<(&str, String)> = (0..20_000)
        .map(|i| ("match[]", format!("up{{job=\"j{i}\"}}")))
        .collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(k, v)| (*k, v.as_str())).collect();
    c.push(post_form(
        "20000 match[] to series",
        "/api/v1/series",
        &many_ref,
        Success,
    ));
    c.push(post_form(
        "20000 match[] to labels",
        "/api/v1/labels",
        &many_ref,
        Success,
    ));
    let re_many: Vec<(&str, String)> = (0..2_000)
        .map(|i| ("match[]", format!("{{__name__=~\".+\",job=~\"j{i}.*\"}}")))
        .collect();
    let re_ref: Vec<(&str, &str)> = re_many.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Each of these regexes is tested against every value of `__name__` and `job`: 2,000 of
    // them keep one blocking thread busy for seconds. `--query.timeout` (5 s here) bounds the
    // walk, so the request ends in success or a timeout.
    c.push(post_form(
        "2000 regex match[] to series",
        "/api/v1/series",
        &re_ref,
        Bounded,
    ));
    // With the request's own, shorter `timeout` (which can only shorten `--query.timeout`), the
    // same walks stop at it: Prometheus's 503 timeout JSON.
    let mut re_short = re_ref.clone();
    re_short.push(("timeout", "0.1"));
    for path in ["/api/v1/series", "/api/v1/labels"] {
        c.push(post_form(
            &format!("2000 regex match[] to {path}, timeout=0.1"),
            path,
            &re_short,
            Error(503, "timeout"),
        ));
    }
    // Label values and federation are GET only, and a URL may not pass 64 KiB (hyper answers
    // 414): 500 of the same match[], still far more than 0.1 s of work.
    let mut re_500 = re_ref[..500].to_vec();
    re_500.push(("timeout", "0.1"));
    let re_query = form_urlencoded(&re_500);
    c.push(raw_get(
        "500 regex match[] to label values, timeout=0.1",
        format!("/api/v1/label/job/values?{re_query}"),
        Error(503, "timeout"),
    ));
    // Federation answers in the text format, its timeout in plain text.
    c.push(raw_get(
        "500 regex match[] to federate, timeout=0.1",
        format!("/federate?{re_query}"),
        Status(503),
    ));
    c.push(raw_get(
        "2 MB URL",
        format!("/api/v1/query?query={}", "a".repeat(2 << 20)),
        Status(431),
    ));

    // Invalid UTF-8 and huge label names and values.
    c.push(get(
        "invalid UTF-8 in query",
        "/api/v1/query?query=up%ff%fe",
        bad,
    ));
    c.push(post_raw(
        "invalid UTF-8 in form body",
        "/api/v1/query",
        b"query=up%ff%fe\xff".to_vec(),
        vec![("content-type", "application/x-www-form-urlencoded")],
        bad,
    ));
    c.push(get(
        "invalid UTF-8 label name",
        "/api/v1/label/%ff%fe/values",
        bad,
    ));
    c.push(get(
        "invalid UTF-8 in match[]",
        "/api/v1/series?match[]=up{job=%22%ff%22}",
        Success,
    ));
    let long_name = "l".repeat(500_000);
    c.push(post_form(
        "500 KB label name in a matcher",
        "/api/v1/query",
        &[("query", &format!("up{{{long_name}=\"x\"}}"))],
        Success,
    ));
    let long_value = "v".repeat(500_000);
    c.push(post_form(
        "500 KB label value in a matcher",
        "/api/v1/query",
        &[("query", &format!("up{{job=\"{long_value}\"}}"))],
        Success,
    ));
    c.push(post_form(
        "2 MB label value (over --query.max-length)",
        "/api/v1/query",
        &[("query", &format!("up{{job=\"{}\"}}", "v".repeat(2 << 20)))],
        bad,
    ));
    c.push(raw_get(
        "100 KB label name in label values",
        format!("/api/v1/label/{}/values", "a".repeat(100_000)),
        Status(414),
    ));
    c.push(get(
        "30 KB label name in label values",
        format!("/api/v1/label/{}/values", "a".repeat(30_000)),
        Success,
    ));
    let many_matchers: Vec<String> = (0..5_000).map(|i| format!("l{i}!=\"x\"")).collect();
    c.push(post_form(
        "5000 matchers in one selector",
        "/api/v1/query",
        &[("query", &format!("up{{{}}}", many_matchers.join(",")))],
        Success,
    ));

    // Every endpoint with bad parameters.
    c.push(get("series without match[]", "/api/v1/series", bad));
    c.push(get(
        "series bad start",
        "/api/v1/series?match[]=up&start=9999-99-99",
        bad,
    ));
    c.push(get(
        "series bad end",
        "/api/v1/series?match[]=up&end=NaN",
        bad,
    ));
    c.push(get(
        "series negative limit",
        "/api/v1/series?match[]=up&limit=-1",
        bad,
    ));
    c.push(get(
        "series limit garbage",
        "/api/v1/series?match[]=up&limit=1e999",
        bad,
    ));
    c.push(get(
        "series aggregate as match[]",
        "/api/v1/series?match[]=sum(up)",
        bad,
    ));
    c.push(get(
        "series empty matcher",
        "/api/v1/series?match[]=%7Bjob%3D%22%22%7D",
        bad,
    ));
    c.push(get("labels bad start", "/api/v1/labels?start=1e300", bad));
    c.push(get(
        "labels bad match[]",
        "/api/v1/labels?match[]=up%7B",
        bad,
    ));
    c.push(get(
        "label values bad end",
        "/api/v1/label/job/values?end=abc",
        bad,
    ));
    c.push(get(
        "label values bad match[]",
        "/api/v1/label/job/values?match[]=%28",
        bad,
    ));
    c.push(get(
        "label values 10y range",
        "/api/v1/label/job/values?start=0&end=315360000",
        Success,
    ));
    c.push(get(
        "metadata limit garbage",
        "/api/v1/metadata?limit=x",
        bad,
    ));
    c.push(get(
        "metadata limit_per_metric garbage",
        "/api/v1/metadata?limit_per_metric=x",
        bad,
    ));
    c.push(get(
        "targets/metadata bad match_target",
        "/api/v1/targets/metadata?match_target=%7B",
        bad,
    ));
    c.push(get(
        "query_exemplars bad start",
        "/api/v1/query_exemplars?query=up&start=abc",
        bad,
    ));
    c.push(get(
        "query_exemplars end before start",
        "/api/v1/query_exemplars?query=up&start=100&end=0",
        bad,
    ));
    c.push(get(
        "query_exemplars all of time",
        "/api/v1/query_exemplars?query=up&start=-9e15&end=9e15",
        Success,
    ));
    c.push(get(
        "format_query garbage",
        "/api/v1/format_query?query=%29%28",
        bad,
    ));
    c.push(get(
        "parse_query garbage",
        "/api/v1/parse_query?query=sum%28",
        bad,
    ));
    c.push(get("rules bad type", "/api/v1/rules?type=nope", bad));
    c.push(get(
        "federate bad match[]",
        "/federate?match[]=%28",
        Status(400),
    ));
    c.push(get(
        "federate everything",
        format!("/federate?match[]={}", enc("{__name__=~\".+\"}")),
        Status(200),
    ));
    c.push(get("unknown endpoint", "/api/v1/nope", Status(404)));
    c.push(Case {
        name: "DELETE on query".into(),
        method: reqwest::Method::DELETE,
        path: q("up"),
        body: None,
        expect: Status(405),
        raw: false,
    });

    // Admin endpoints (enabled).
    c.push(post_form(
        "delete_series without match[]",
        "/api/v1/admin/tsdb/delete_series",
        &[],
        bad,
    ));
    c.push(post_form(
        "delete_series bad start",
        "/api/v1/admin/tsdb/delete_series",
        &[("match[]", "nothing_here"), ("start", "1e300")],
        bad,
    ));
    c.push(post_form(
        "delete_series deep match[]",
        "/api/v1/admin/tsdb/delete_series",
        &[("match[]", paren)],
        bad,
    ));
    c.push(post_form(
        "snapshot skip_head garbage",
        "/api/v1/admin/tsdb/snapshot?skip_head=maybe",
        &[],
        bad,
    ));
    c.push(post_form(
        "clean_tombstones",
        "/api/v1/admin/tsdb/clean_tombstones",
        &[],
        Status(204),
    ));

    // Remote write: garbage and oversized bodies (plain-text answers, as Prometheus's handler).
    let rw = |ct: &'static str| {
        vec![
            ("content-type", ct),
            ("content-encoding", "snappy"),
            ("x-prometheus-remote-write-version", "0.1.0"),
        ]
    };
    let proto = "application/x-protobuf";
    c.push(post_raw(
        "write: empty body",
        "/api/v1/write",
        Vec::new(),
        rw(proto),
        Status(400),
    ));
    c.push(post_raw(
        "write: not snappy",
        "/api/v1/write",
        b"this is not snappy".to_vec(),
        rw(proto),
        Status(400),
    ));
    let noise: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    c.push(post_raw(
        "write: 1 MB of noise",
        "/api/v1/write",
        noise.clone(),
        rw(proto),
        Status(400),
    ));
    c.push(post_raw(
        "write: snappy of noise (bad protobuf)",
        "/api/v1/write",
        snappy_literal(&noise),
        rw(proto),
        Status(400),
    ));
    c.push(post_raw(
        "write: snappy header claims 4 GiB",
        "/api/v1/write",
        vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
        rw(proto),
        Status(413),
    ));
    c.push(post_raw(
        "write: 40 MB decompressed",
        "/api/v1/write",
        snappy_literal(&vec![0u8; 40 << 20]),
        rw(proto),
        Status(413),
    ));
    // Refused before the body is read: sent raw so the answer is seen even if the rest of the
    // upload is cut off.
    c.last_mut().expect("case").raw = true;
    c.push(post_raw(
        "write: 50 MB compressed body",
        "/api/v1/write",
        vec![0u8; 50 << 20],
        rw(proto),
        Status(413),
    ));
    // Refused before the body is read: sent raw so the answer is seen even if the rest of the
    // upload is cut off.
    c.last_mut().expect("case").raw = true;
    c.push(post_raw(
        "write: wrong content type",
        "/api/v1/write",
        snappy_literal(b"x"),
        rw("text/plain"),
        Status(415),
    ));
    c.push(post_raw(
        "write: unknown proto",
        "/api/v1/write",
        snappy_literal(b"x"),
        rw("application/x-protobuf;proto=nope.Request"),
        Status(415),
    ));
    c.push(post_raw(
        "write: gzip encoding",
        "/api/v1/write",
        snappy_literal(b"x"),
        vec![("content-type", proto), ("content-encoding", "gzip")],
        Status(415),
    ));
    // A protobuf WriteRequest whose one time series has a label with a 10 MB length prefix but
    // only a few bytes: a truncated length-delimited field.
    let truncated = vec![0x0a, 0x80, 0x80, 0x80, 0x05, 0x0a, 0x01, 0x41];
    c.push(post_raw(
        "write: truncated protobuf",
        "/api/v1/write",
        snappy_literal(&truncated),
        rw(proto),
        Status(400),
    ));
    c
}

/// Sends a GET over a plain socket and returns the status and body (HTTP/1.1, connection closed
/// by us after the request; the body is whatever follows the head).
async fn send_raw(addr: &str, case: &Case) -> std::io::Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = tokio::net::TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = s.into_split();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        case.method, case.path
    );
    let body = match &case.body {
        Some((body, headers)) => {
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            body.clone()
        }
        None => Vec::new(),
    };
    head.push_str("\r\n");
    // Written from another task while the answer is read: the server may answer and close
    // before it has read the whole request, and a write error then is expected.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        // Dropping the write half would half-close the connection, which the server takes as
        // the client going away; it stays open until the answer has been read.
        std::future::pending::<()>().await;
        drop(wr);
    });
    let mut buf = Vec::new();
    // A reset after the answer loses nothing already read into `buf`.
    let _ = rd.read_to_end(&mut buf).await;
    writer.abort();
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "no status line in {:?}",
                &text[..text.len().min(200)]
            ))
        })?;
    let body = match text.find("\r\n\r\n") {
        Some(i) => buf[i + 4..].to_vec(),
        None => Vec::new(),
    };
    Ok((status, body))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Checks an answer against its expectation; `None` when it matches.
fn check(expect: Expect, status: u16, body: &[u8]) -> Option<String> {
    let json = || serde_json::from_slice::<Value>(body).ok();
    let show = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    match expect {
        Expect::Success => {
            let ok = status == 200 && json().is_some_and(|v| v["status"] == "success");
            (!ok).then(|| format!("want 200 success, got {status}: {}", show()))
        }
        Expect::Error(want, kind) => {
            let ok = status == want
                && json().is_some_and(|v| {
                    v["status"] == "error" && v["errorType"] == kind && v["error"].is_string()
                });
            (!ok).then(|| format!("want {want} {kind}, got {status}: {}", show()))
        }
        Expect::Status(want) => {
            (status != want).then(|| format!("want {want}, got {status}: {}", show()))
        }
        Expect::Bounded => {
            let ok = match json() {
                Some(v) if status == 200 => v["status"] == "success",
                Some(v) if status == 503 => v["errorType"] == "timeout",
                Some(v) if status == 422 => v["errorType"] == "execution",
                _ => false,
            };
            (!ok).then(|| {
                format!(
                    "want success, timeout or execution, got {status}: {}",
                    show()
                )
            })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_prometheus_errors_and_the_server_stays_healthy() {
    let dir = temp_dir("hostile-api");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1s\n").expect("write config");
    let ep = start(
        &dir,
        &config,
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
            "--enable-feature=exemplar-storage",
            "--query.timeout=5s",
        ],
    )
    .await;
    let base = ep.base.clone();
    // Once its port is known the server scrapes itself (SIGHUP reload), so `up` and its own
    // metrics have data to select.
    let addr = base.trim_start_matches("http://");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("write config");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &ep.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    // Wait for a few scrapes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .get(format!("{base}/api/v1/query?query=up"))
            .send()
            .await;
        if let Ok(r) = r
            && r.text().await.is_ok_and(|t| t.contains("\"job\":\"self\""))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no scrape of itself within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let pid = ep.child.id();
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let per_request = Duration::from_secs(30);
    let mut failures = Vec::new();
    let mut max_rss = 0;
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let mut req = client
            .request(case.method.clone(), format!("{base}{}", case.path))
            .timeout(per_request);
        if let Some((body, headers)) = &case.body {
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req = req.body(body.clone());
        }
        let t0 = Instant::now();
        let answer = if case.raw {
            let addr = base.trim_start_matches("http://");
            tokio::time::timeout(per_request, send_raw(addr, case))
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("timed out")))
                .map_err(|e| e.to_string())
        } else {
            match req.send().await {
                Err(e) => Err(e.to_string()),
                Ok(r) => {
                    let status = r.status().as_u16();
                    // A body cut off by the server (an oversized request) reads as empty.
                    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    Ok((status, body))
                }
            }
        };
        let took = t0.elapsed();
        if took > slowest.0 {
            slowest = (took, case.name.clone());
        }
        match answer {
            Err(e) => failures.push(format!(
                "{}: no answer within {per_request:?}: {e}",
                case.name
            )),
            Ok((status, body)) => {
                if let Some(why) = check(case.expect, status, &body) {
                    failures.push(format!("{}: {why}", case.name));
                }
            }
        }
        let healthy = client
            .get(format!("{base}/-/healthy"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if !healthy.is_ok_and(|r| r.status() == 200) {
            let log = std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
            let tail: String = log
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "/-/healthy failed after {:?}; failures so far: {failures:#?}\nlog tail:\n{tail}",
                case.name
            );
        }
        let rss = rss_kib(pid);
        max_rss = max_rss.max(rss);
        if rss > 1 << 20 {
            failures.push(format!(
                "{}: resident memory {rss} KiB, over 1 GiB",
                case.name
            ));
        }
    }
    println!(
        "{} hostile requests; largest RSS {} MiB; slowest {:?} ({})",
        cases.len(),
        max_rss / 1024,
        slowest.0,
        slowest.1
    );
    // Requests and bodies can be megabytes long: each failure is shown cut short.
    let shown: Vec<String> = failures
        .iter()
        .map(|f| f.chars().take(400).collect())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        shown.join("\n")
    );
}
