//! Generated exposition bodies shaped like a Dynamo inference deployment, for benches and tests
//! (enabled by the `testgen` feature; this crate's own tests and benches turn it on).
//!
//! The mix follows what an edgeprom scrape of a Dynamo cluster sees: frontend latency histograms
//! with `model`/`le` labels, `dynamo_component_*` counters labelled by namespace, component and
//! endpoint, `vllm:*` gauges (names with colons) and DCGM exporter GPU gauges with `gpu`, `UUID`
//! and `Hostname` labels. Output is deterministic for a given size.

use std::fmt::Write;

/// Frontend histogram bucket bounds, as the Dynamo frontend exposes for latencies in seconds.
const LE: [&str; 14] = [
    "0", "0.0019", "0.0035", "0.0067", "0.013", "0.024", "0.045", "0.084", "0.16", "0.3", "0.56",
    "1.1", "2", "+Inf",
];

const MODELS: [&str; 6] = [
    "qwen/qwen3-0.6b",
    "meta-llama/llama-3.1-8b-instruct",
    "deepseek-ai/deepseek-r1-distill-llama-8b",
    "mistralai/mistral-7b-instruct-v0.3",
    "google/gemma-2-9b-it",
    "qwen/qwen2.5-coder-32b-instruct",
];

/// Tiny xorshift so values look varied without a dependency; the sequence is fixed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Body {
    out: String,
    left: usize,
}

impl Body {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    /// Appends one sample line; false once the requested series count is reached.
    fn sample(&mut self, line: std::fmt::Arguments<'_>) -> bool {
        if self.left == 0 {
            return false;
        }
        let _ = self.out.write_fmt(line);
        self.out.push('\n');
        self.left -= 1;
        true
    }
}

/// A text-format (0.0.4) body with exactly `series` sample lines in the Dynamo mix: about half
/// histogram series, a fifth component counters, a tenth `vllm:` gauges and a fifth DCGM gauges.
pub fn dynamo_body(series: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut b = Body {
        out: String::with_capacity(series * 110),
        left: series,
    };
    let hist_share = series / 2;
    let counter_share = series / 5;
    let vllm_share = series / 10;

    // Frontend histograms: 16 series per (family, model, instance).
    let hists = [
        (
            "dynamo_frontend_request_duration_seconds",
            "LLM request duration in seconds",
        ),
        (
            "dynamo_frontend_time_to_first_token_seconds",
            "Time to first token in seconds",
        ),
        (
            "dynamo_frontend_inter_token_latency_seconds",
            "Inter-token latency in seconds",
        ),
    ];
    let per_family = hist_share / hists.len();
    for (name, help) in hists {
        b.family(name, help, "histogram");
        let mut emitted = 0;
        let mut inst = 0;
        while emitted + LE.len() + 2 <= per_family.max(LE.len() + 2) {
            let model = MODELS[inst % MODELS.len()];
            let frontend = inst / MODELS.len();
            let mut cum = 0u64;
            for le in LE {
                cum += rng.below(300);
                if !b.sample(format_args!(
                    "{name}_bucket{{model=\"{model}\",frontend=\"fe-{frontend}\",le=\"{le}\"}} {cum}"
                )) {
                    return b.out;
                }
            }
            let sum = cum as f64 * rng.unit() * 0.05;
            b.sample(format_args!(
                "{name}_sum{{model=\"{model}\",frontend=\"fe-{frontend}\"}} {sum}"
            ));
            b.sample(format_args!(
                "{name}_count{{model=\"{model}\",frontend=\"fe-{frontend}\"}} {cum}"
            ));
            emitted += LE.len() + 2;
            inst += 1;
        }
    }

    // Component counters: one series per (family, component, endpoint, worker).
    let counters = [
        (
            "dynamo_component_requests_total",
            "Total requests processed by the endpoint",
        ),
        (
            "dynamo_component_request_bytes_total",
            "Total request bytes received",
        ),
        (
            "dynamo_component_response_bytes_total",
            "Total response bytes sent",
        ),
        (
            "dynamo_component_errors_total",
            "Total errors by the endpoint",
        ),
    ];
    let components = ["backend", "prefill", "decode", "router", "planner"];
    let endpoints = ["generate", "load_metrics", "clear_kv_blocks", "health"];
    for (name, help) in counters {
        b.family(name, help, "counter");
        for k in 0..(counter_share / counters.len()).max(1) {
            let comp = components[k % components.len()];
            let ep = endpoints[(k / components.len()) % endpoints.len()];
            let worker = k / (components.len() * endpoints.len());
            let v = rng.below(5_000_000);
            if !b.sample(format_args!(
                "{name}{{dynamo_namespace=\"dynamo\",dynamo_component=\"{comp}\",dynamo_endpoint=\"{ep}\",worker_id=\"{worker:x}\"}} {v}"
            )) {
                return b.out;
            }
        }
    }

    // vLLM engine gauges: names with colons, as vLLM exposes them.
    let vllm = [
        (
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
        ),
        (
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
        ),
        (
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage.",
        ),
    ];
    for (name, help) in vllm {
        b.family(name, help, "gauge");
        for k in 0..(vllm_share / vllm.len()).max(1) {
            let model = MODELS[k % MODELS.len()];
            let engine = k / MODELS.len();
            let v = if name.ends_with("perc") {
                rng.unit()
            } else {
                rng.below(64) as f64
            };
            if !b.sample(format_args!(
                "{name}{{engine=\"{engine}\",model_name=\"{model}\"}} {v}"
            )) {
                return b.out;
            }
        }
    }

    // DCGM exporter GPU gauges fill the rest.
    let dcgm = [
        ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."),
        ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."),
        ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."),
        ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)."),
    ];
    let rest = b.left;
    for (fi, (name, help)) in dcgm.iter().enumerate() {
        b.family(name, help, "gauge");
        let n = if fi + 1 == dcgm.len() {
            b.left
        } else {
            rest / dcgm.len()
        };
        for k in 0..n {
            let gpu = k % 8;
            let host = k / 8;
            let uuid = 0x1f2e_3d4c_u64.wrapping_mul(k as u64 + 1) & 0xffff_ffff;
            let v = match fi {
                3 => format!("{:.3}", 60.0 + rng.unit() * 600.0),
                _ => rng.below(81_559).to_string(),
            };
            if !b.sample(format_args!(
                "{name}{{gpu=\"{gpu}\",UUID=\"GPU-{uuid:08x}-5b7e-4c1a-9d2f-{host:012x}\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-{host}\",DCGM_FI_DRIVER_VERSION=\"570.124.06\"}} {v}"
            )) {
                return b.out;
            }
        }
    }
    b.out
}

#[cfg(test)]
mod tests {
    #[test]
    fn exact_series_count() {
        for n in [0, 1, 17, 100, 10_000] {
            let body = super::dynamo_body(n);
            let samples = body
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(samples, n);
        }
    }
}
