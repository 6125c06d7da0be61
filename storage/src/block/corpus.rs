//! A Dynamo-shaped one-hour corpus for the block measurements (the bench includes this file).
//!
//! 21 scrape targets (frontends and workers) at 2 s, 5 s, 6 s and 10 s intervals, each exporting
//! 241 series: 96 histogram buckets (8 histograms × 12 `le`), 8 `_count` and 68 other integer
//! counters, 25 integer and 25 one-decimal gauges, 8 `_sum` floats, 5 full-precision float gauges
//! and 6 constants — 40 % buckets, 31 % counters, 21 % gauges, 8 % others, as on the platform.
//! Timestamps sit on each target's interval grid (Prometheus aligns scrape times); a few series go
//! stale part-way, ending in a stale marker.

use edgeprom_model::Labels;

/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// Start of the corpus, on a minute boundary.
pub const START_MS: i64 = 1_717_000_020_000;

/// Small deterministic PRNG (xorshift64*), so runs repeat without a dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator; any seed works.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson-distributed count with mean `lambda` (normal approximation above 30).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

/// Kind of a corpus series, for per-kind figures.
pub type Kind = &'static str;

/// One series: labels, kind and samples.
pub type Series = (Labels, Kind, Vec<(i64, f64)>);

const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const INTERVALS_MS: [i64; 4] = [2_000, 5_000, 6_000, 10_000];

/// The corpus, sorted by labels.
pub fn dynamo_hour(seed: u64, targets: usize) -> Vec<Series> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Series> = Vec::new();
    for target in 0..targets {
        let interval = INTERVALS_MS[target % INTERVALS_MS.len()];
        let offset = rng.below(interval as u64) as i64;
        let n = ((HOUR_MS - offset) + interval - 1) / interval;
        let ts: Vec<i64> = (0..n).map(|i| START_MS + offset + i * interval).collect();
        let job = if target % 3 == 0 {
            "dynamo-frontend"
        } else {
            "dynamo-worker"
        };
        let instance = format!("10.0.{}.{}:9090", target / 8, 10 + target);
        let base = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs: Vec<(String, String)> = vec![
                ("__name__".into(), name.into()),
                ("instance".into(), instance.clone()),
                ("job".into(), job.into()),
                ("namespace".into(), "dynamo-prod".into()),
                ("model".into(), "llama-3-70b".into()),
            ];
            pairs.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
            Labels::from_pairs(pairs)
        };
        let secs = interval as f64 / 1000.0;

        // Histograms: 4 families × 2 endpoints.
        for fam in [
            "request_duration_seconds",
            "time_to_first_token_seconds",
            "inter_token_latency_seconds",
            "kv_transfer_seconds",
        ] {
            for endpoint in ["chat", "completions"] {
                let rate = 0.2 + rng.unit() * 15.0;
                let mu = -3.0 + rng.unit() * 3.0;
                let mut counts = [0u64; 12];
                let mut sum = 0.0f64;
                let mut total = rng.below(100_000);
                counts[11] = total;
                let mut rows: Vec<Vec<(i64, f64)>> =
                    (0..14).map(|_| Vec::with_capacity(ts.len())).collect();
                for &t in &ts {
                    let r = rng.poisson(rate * secs);
                    for _ in 0..r {
                        let lat = (mu + 0.8 * rng.normal()).exp();
                        sum += lat;
                        for (b, &bound) in BOUNDS.iter().enumerate() {
                            if lat <= bound {
                                counts[b] += 1;
                            }
                        }
                        counts[11] += 1;
                    }
                    total += r;
                    for (b, row) in rows.iter_mut().take(12).enumerate() {
                        row.push((t, counts[b] as f64));
                    }
                    rows[12].push((t, total as f64));
                    rows[13].push((t, sum));
                }
                let name = format!("dynamo_{fam}");
                for (b, le) in BUCKETS.iter().enumerate() {
                    out.push((
                        base(
                            &format!("{name}_bucket"),
                            &[("endpoint", endpoint), ("le", le)],
                        ),
                        "hist_bucket",
                        std::mem::take(&mut rows[b]),
                    ));
                }
                out.push((
                    base(&format!("{name}_count"), &[("endpoint", endpoint)]),
                    "counter",
                    std::mem::take(&mut rows[12]),
                ));
                out.push((
                    base(&format!("{name}_sum"), &[("endpoint", endpoint)]),
                    "float_sum",
                    std::mem::take(&mut rows[13]),
                ));
            }
        }

        // Integer counters: tokens, requests by status, errors; a third of them rarely move.
        for i in 0..68 {
            let rate = match i % 3 {
                0 => 500.0 * rng.unit(),
                1 => 5.0 * rng.unit(),
                _ => 0.01 * rng.unit(),
            };
            let mut c = rng.below(1_000_000) as f64;
            let samples = ts
                .iter()
                .map(|&t| {
                    c += rng.poisson(rate * secs) as f64;
                    (t, c)
                })
                .collect();
            let status = ["200", "400", "429", "500"][i % 4];
            let name = format!("dynamo_counter_{}_total", i / 4);
            out.push((base(&name, &[("status", status)]), "counter", samples));
        }

        // Integer gauges (queue depths, blocks in use) and one-decimal gauges (temperatures, %).
        for i in 0..25 {
            let mut g = rng.below(2_000) as i64;
            let step = 1 + rng.below(50) as i64;
            let samples = ts
                .iter()
                .map(|&t| {
                    if rng.below(3) != 0 {
                        g = (g + rng.below(2 * step as u64 + 1) as i64 - step).max(0);
                    }
                    (t, g as f64)
                })
                .collect();
            out.push((
                base(&format!("dynamo_gauge_int_{i}"), &[]),
                "gauge_int",
                samples,
            ));
        }
        for i in 0..25 {
            let mut g = 300 + rng.below(500) as i64;
            let samples = ts
                .iter()
                .map(|&t| {
                    g = (g + rng.below(7) as i64 - 3).clamp(0, 1000);
                    // As a scrape parses "55.3": the nearest double to the decimal.
                    (t, g as f64 / 10.0)
                })
                .collect();
            out.push((
                base(&format!("dynamo_gauge_dec_{i}"), &[]),
                "gauge_dec",
                samples,
            ));
        }

        // Full-precision float gauges: ratios such as KV-cache usage over a non-power-of-two pool.
        for i in 0..5 {
            let pool = 7_000.0 + rng.below(3_000) as f64;
            let mut used = rng.below(5_000) as f64;
            let samples = ts
                .iter()
                .map(|&t| {
                    used = (used + rng.below(201) as f64 - 100.0).clamp(0.0, pool);
                    (t, used / pool)
                })
                .collect();
            out.push((
                base(&format!("dynamo_usage_ratio_{i}"), &[]),
                "gauge_float",
                samples,
            ));
        }

        // Constants: up, build info and friends.
        for name in [
            "up",
            "dynamo_build_info",
            "dynamo_worker_info",
            "dynamo_max_batch_size",
            "dynamo_gpu_count",
            "process_start_time_seconds",
        ] {
            let v = match name {
                "dynamo_max_batch_size" => 256.0,
                "dynamo_gpu_count" => 8.0,
                "process_start_time_seconds" => 1_716_990_000.0 + rng.below(10_000) as f64,
                _ => 1.0,
            };
            out.push((
                base(name, &[]),
                "constant",
                ts.iter().map(|&t| (t, v)).collect(),
            ));
        }
    }
    // A pod restarted: about 1 % of series end early with a stale marker.
    for s in out.iter_mut() {
        if rng.below(100) == 0 && s.2.len() > 10 {
            let cut = s.2.len() * 4 / 5;
            s.2.truncate(cut);
            let t = s.2[cut - 1].0 + (s.2[1].0 - s.2[0].0);
            s.2.push((t, f64::from_bits(0x7ff0_0000_0000_0002)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
