//! Series index benchmarks on Dynamo-shaped series: selection with the matchers dashboards send, label
//! values, and the index's bytes per series against the head's 0.5 MiB per 1,000 series budget.

use criterion::{Criterion, criterion_group, criterion_main};
use edgeprom_model::Labels;
use edgeprom_storage::index::{MatchType, Matcher, MemIndex};
use std::hint::black_box;

const METRICS: &[&str] = &[
    "dynamo_frontend_time_to_first_token_seconds_bucket",
    "dynamo_frontend_inter_token_latency_seconds_bucket",
    "dynamo_frontend_requests_total",
    "dynamo_frontend_input_sequence_tokens_sum",
    "dynamo_component_kv_cache_usage_percent",
    "dynamo_component_request_duration_seconds_bucket",
    "nv_inference_request_success",
    "up",
];
const LES: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const MODELS: &[&str] = &[
    "llama-3-8b",
    "llama-3-70b",
    "qwen2-7b",
    "mistral-7b",
    "deepseek-r1",
];

/// Series number `i` of a deployment: pods spread over namespaces, each exporting every metric for
/// every model, histograms with the usual buckets.
fn series(i: usize) -> Labels {
    let le = LES[i % LES.len()];
    let rest = i / LES.len();
    let model = MODELS[rest % MODELS.len()];
    let rest = rest / MODELS.len();
    let metric = METRICS[rest % METRICS.len()];
    let pod = rest / METRICS.len();
    let mut pairs = vec![
        ("__name__", metric.to_string()),
        (
            "job",
            format!(
                "dynamo-{}",
                if matches!(pod % 3, 0) {
                    "frontend"
                } else {
                    "worker"
                }
            ),
        ),
        (
            "instance",
            format!(
                "10.{}.{}.{}:9090",
                pod / 65536 % 256,
                pod / 256 % 256,
                pod % 256
            ),
        ),
        ("namespace", format!("ns-{}", pod % 16)),
        ("pod", format!("dynamo-{}-{:05}", pod % 16, pod)),
        ("model", model.to_string()),
    ];
    if metric.ends_with("_bucket") {
        pairs.push(("le", le.to_string()));
    } else {
        // Non-histograms have no `le`; keep their count distinct by a label of their own.
        pairs.push(("slot", le.to_string()));
    }
    Labels::from_pairs(pairs)
}

fn build(n: usize) -> MemIndex {
    let mut ix = MemIndex::new();
    for i in 0..n {
        ix.add(i as u32, &series(i));
    }
    ix
}

fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
    Matcher::new(kind, name, value).expect("bench matcher")
}

fn bench(c: &mut Criterion) {
    for n in [100_000, 460_000] {
        let ix = build(n);
        eprintln!(
            "index at {n} series: {} bytes/series ({} symbols, {:.1} MiB)",
            ix.memory_bytes() / n,
            ix.symbols().len(),
            ix.memory_bytes() as f64 / (1 << 20) as f64
        );
    }
    let ix = build(100_000);
    let name = m(
        MatchType::Equal,
        "__name__",
        "dynamo_frontend_time_to_first_token_seconds_bucket",
    );
    let cases = [
        ("eq_name", vec![name.clone()]),
        (
            "eq_name_eq_pod",
            vec![name.clone(), m(MatchType::Equal, "pod", "dynamo-3-00003")],
        ),
        (
            "eq_name_re_set",
            vec![
                name.clone(),
                m(MatchType::Regex, "model", "llama-3-8b|qwen2-7b|mistral-7b"),
            ],
        ),
        (
            "eq_name_re_any",
            vec![name.clone(), m(MatchType::Regex, "pod", ".*")],
        ),
        (
            "eq_name_ne",
            vec![name.clone(), m(MatchType::NotEqual, "le", "+Inf")],
        ),
        (
            "re_set_only",
            vec![m(
                MatchType::Regex,
                "model",
                "llama-3-8b|qwen2-7b|mistral-7b",
            )],
        ),
        ("ne_only", vec![m(MatchType::NotEqual, "namespace", "ns-1")]),
        (
            "re_prefix_pod",
            vec![m(MatchType::Regex, "pod", "dynamo-1-.*")],
        ),
    ];
    let mut g = c.benchmark_group("select_100k");
    for (label, ms) in &cases {
        eprintln!("{label}: {} series", ix.select(ms).len());
        g.bench_function(*label, |b| b.iter(|| black_box(ix.select(black_box(ms)))));
    }
    g.finish();
    let mut g = c.benchmark_group("label_values_100k");
    g.bench_function("pod_all", |b| {
        b.iter(|| black_box(ix.label_values("pod", &[])))
    });
    g.bench_function("pod_by_name", |b| {
        b.iter(|| black_box(ix.label_values("pod", std::slice::from_ref(&name))))
    });
    g.bench_function("model_by_namespace", |b| {
        let ms = [m(MatchType::Equal, "namespace", "ns-2")];
        b.iter(|| black_box(ix.label_values("model", &ms)))
    });
    g.finish();
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("add_100k", |b| b.iter(|| black_box(build(100_000).len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
