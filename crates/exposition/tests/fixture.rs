//! The real Dynamo frontend scrape in fixtures/exposition/fe.log.

mod common;

use common::*;
use edgeprom_exposition::{Entry, Format, Parser};
use edgeprom_model::MetricType;

const FE_LOG: &str = include_str!("../../../fixtures/exposition/fe.log");

#[test]
fn fe_log_parses_exactly() {
    let got = parse_all(FE_LOG, Format::Text).expect("fe.log parses");
    let series: Vec<&S> = got
        .iter()
        .filter_map(|e| match e {
            E::S(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(series.len(), 89);
    let helps = got.iter().filter(|e| matches!(e, E::Help(..))).count();
    let types = got.iter().filter(|e| matches!(e, E::Type(..))).count();
    assert_eq!((helps, types), (16, 16));

    let find = |raw: &str| {
        series
            .iter()
            .find(|s| s.raw == raw)
            .unwrap_or_else(|| panic!("{raw} missing"))
    };
    let itl = find(
        "dynamo_frontend_inter_token_latency_seconds_bucket{model=\"qwen/qwen3-0.6b\",le=\"0.0035\"}",
    );
    assert_eq!(f64::from_bits(itl.value_bits), 298.0);
    assert_eq!(itl.mtype, MetricType::Histogram);
    assert_eq!(
        itl.labels,
        pairs(&[("model", "qwen/qwen3-0.6b"), ("le", "0.0035")])
    );
    let sum = find("dynamo_frontend_inter_token_latency_seconds_sum{model=\"qwen/qwen3-0.6b\"}");
    assert_eq!(f64::from_bits(sum.value_bits), 0.6126917290000005);
    let reqs = find(
        "dynamo_frontend_requests_total{endpoint=\"chat_completions\",model=\"qwen/qwen3-0.6b\",request_type=\"unary\",status=\"success\"}",
    );
    assert_eq!(f64::from_bits(reqs.value_bits), 1.0);
    assert_eq!(reqs.mtype, MetricType::Counter);
    assert_eq!(reqs.labels.len(), 4);
    let ctx = find("dynamo_frontend_model_context_length{model=\"Qwen/Qwen3-0.6B\"}");
    assert_eq!(f64::from_bits(ctx.value_bits), 40960.0);
    assert_eq!(ctx.mtype, MetricType::Gauge);
    // Integer bucket bounds come out in Prometheus 3's canonical float form.
    let ist = find(
        "dynamo_frontend_input_sequence_tokens_bucket{model=\"qwen/qwen3-0.6b\",le=\"130000\"}",
    );
    assert_eq!(ist.labels[1], ("le".to_string(), "130000.0".to_string()));
    assert!(
        series
            .iter()
            .all(|s| s.ts.is_none() && s.exemplar.is_none())
    );
}

#[test]
fn fe_log_to_labels() {
    let mut p = Parser::new(FE_LOG.as_bytes(), Format::Text).expect("utf8");
    let (mut n, mut with_model) = (0, 0);
    while let Some(e) = p.next().expect("parses") {
        if let Entry::Series(s) = e {
            let l = s.to_labels();
            assert_eq!(l.metric_name(), s.name());
            with_model += usize::from(l.get("model").is_some());
            n += 1;
        }
    }
    // Only dynamo_frontend_disconnected_clients has no model label.
    assert_eq!((n, with_model), (89, 88));
}
