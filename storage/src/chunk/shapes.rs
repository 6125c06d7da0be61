//! Dynamo-shaped sample sequences for the tests and the bench (the bench includes this file).
//!
//! Every shape is scraped on a fixed 15 s grid whose timestamps now and then land 1–5 ms off,
//! as a real scrape loop's do; the values follow the series kinds a Dynamo frontend and worker
//! export.

/// Small deterministic PRNG (xorshift64*) so that runs are repeatable without a dependency.
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
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Scrape timestamps: a 15 s grid, one in eight landing 1–5 ms early or late.
pub fn timestamps(rng: &mut Rng, n: usize) -> Vec<i64> {
    let start = 1_717_000_000_000 + rng.below(15_000) as i64;
    (0..n as i64)
        .map(|i| {
            let jitter = if rng.below(8) == 0 {
                let ms = 1 + rng.below(5) as i64;
                if rng.below(2) == 0 { ms } else { -ms }
            } else {
                0
            };
            start + i * 15_000 + jitter
        })
        .collect()
}

/// The shapes by name: `(name, samples)`.
pub fn all(seed: u64, n: usize) -> Vec<(&'static str, Vec<(i64, f64)>)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();

    // Request counter: integer increments, some scrapes seeing no traffic.
    let ts = timestamps(&mut rng, n);
    let mut c = rng.below(1_000_000) as f64;
    let counter = ts
        .iter()
        .map(|&t| {
            if rng.below(4) != 0 {
                c += rng.below(40) as f64;
            }
            (t, c)
        })
        .collect();
    out.push(("counter", counter));

    // KV-cache usage: blocks in use over a fixed pool, a fraction that wanders.
    let ts = timestamps(&mut rng, n);
    let mut used = rng.below(8192) as i64;
    let gauge = ts
        .iter()
        .map(|&t| {
            used = (used + rng.below(401) as i64 - 200).clamp(0, 8192);
            (t, used as f64 / 8192.0)
        })
        .collect();
    out.push(("gauge", gauge));

    // One cumulative histogram bucket: small increments, often none.
    let ts = timestamps(&mut rng, n);
    let mut b = rng.below(10_000) as f64;
    let bucket = ts
        .iter()
        .map(|&t| {
            if rng.below(2) == 0 {
                b += (1 + rng.below(5)) as f64;
            }
            (t, b)
        })
        .collect();
    out.push(("histogram_bucket", bucket));

    // Histogram sum of request latencies in seconds: full-mantissa floats.
    let ts = timestamps(&mut rng, n);
    let mut s = rng.unit() * 10_000.0;
    let sum = ts
        .iter()
        .map(|&t| {
            for _ in 0..rng.below(20) {
                s += 0.005 + rng.unit() * 2.0;
            }
            (t, s)
        })
        .collect();
    out.push(("float_sum", sum));

    // `up` and info-style series: the value never changes.
    let ts = timestamps(&mut rng, n);
    out.push(("constant", ts.iter().map(|&t| (t, 1.0)).collect()));

    out
}
