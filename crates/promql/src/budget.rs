//! A budget of samples shared by every query being evaluated at once.
//!
//! `--query.max-samples` bounds one query; with `--query.max-concurrency` queries at once (and
//! rule evaluations beside them) the worst case is their product, 20 × 50M samples by default,
//! far beyond an edge node's memory. Each query charges the budget as its held count grows and a
//! guard gives everything back when the query ends, however it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::QueryError;

/// Samples all queries holding a clone of this budget may hold together.
#[derive(Debug, Clone)]
pub struct SampleBudget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    limit: usize,
    held: AtomicUsize,
}

impl SampleBudget {
    /// A budget of `limit` samples.
    pub fn new(limit: usize) -> SampleBudget {
        SampleBudget(Arc::new(Shared {
            limit,
            held: AtomicUsize::new(0),
        }))
    }

    /// A budget nothing exhausts (engines built without a shared one).
    pub fn unlimited() -> SampleBudget {
        SampleBudget::new(usize::MAX)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Samples charged by queries now being evaluated.
    pub fn in_use(&self) -> usize {
        self.0.held.load(Ordering::Acquire)
    }

    /// Takes `n` samples from the budget, or nothing and `false` when they would not fit.
    fn try_take(&self, n: usize) -> bool {
        let mut cur = self.0.held.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(n).filter(|&t| t <= self.0.limit) else {
                return false;
            };
            match self
                .0
                .held
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.0.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One query's share of a [`SampleBudget`]; dropping it (at the query's end, on error, timeout
/// or unwinding panic alike) gives the share back.
pub(crate) struct Charge<'a> {
    budget: &'a SampleBudget,
    charged: usize,
}

impl<'a> Charge<'a> {
    pub(crate) fn new(budget: &'a SampleBudget) -> Charge<'a> {
        Charge { budget, charged: 0 }
    }

    /// Makes the query's share `held` samples: takes the growth from the budget, or gives back
    /// the shrinkage. Fails, keeping the previous share, when the growth does not fit.
    pub(crate) fn set(&mut self, held: usize) -> Result<(), QueryError> {
        if held > self.charged {
            if !self.budget.try_take(held - self.charged) {
                return Err(QueryError::TooManySamplesTotal(self.budget.limit()));
            }
        } else {
            self.budget.give_back(self.charged - held);
        }
        self.charged = held;
        Ok(())
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_or_fail_and_come_back_on_drop() {
        let b = SampleBudget::new(100);
        let mut one = Charge::new(&b);
        one.set(60).expect("fits");
        let mut two = Charge::new(&b);
        assert_eq!(two.set(41), Err(QueryError::TooManySamplesTotal(100)));
        two.set(40).expect("fits exactly");
        assert_eq!(b.in_use(), 100);
        one.set(10).expect("shrinking always fits");
        assert_eq!(b.in_use(), 50);
        drop(one);
        assert_eq!(b.in_use(), 40);
        drop(two);
        assert_eq!(b.in_use(), 0);
        let mut big = Charge::new(&b);
        assert!(big.set(usize::MAX).is_err());
        assert_eq!(b.in_use(), 0);
        // A panicking query unwinds through its charge, which gives its share back.
        let r = std::panic::catch_unwind(|| {
            let mut c = Charge::new(&b);
            c.set(70).expect("fits");
            panic!("evaluation bug");
        });
        assert!(r.is_err());
        assert_eq!(b.in_use(), 0);
    }

    /// `up{job="a"}`..`up{job="j"}`: ten series with 41 samples each, every 15 s from 0 to 600 s.
    fn storage() -> (tempfile::TempDir, edgeprom_storage::Storage) {
        use edgeprom_model::{Appendable, Labels};
        let dir = tempfile::tempdir().expect("tempdir");
        let st = edgeprom_storage::Storage::open(
            dir.path(),
            edgeprom_storage::Options {
                chunk_file_size: 1 << 20,
                ..edgeprom_storage::Options::default()
            },
        )
        .expect("open");
        let mut app = st.appender();
        for job in "abcdefghij".chars() {
            let l = Labels::from_pairs([("__name__", "up"), ("job", &job.to_string())]);
            for i in 0..=40 {
                app.append(None, &l, i * 15_000, 1.0).expect("append");
            }
        }
        app.commit().expect("commit");
        (dir, st)
    }

    fn engine(budget: &SampleBudget) -> crate::Engine {
        crate::Engine::new(crate::EngineOptions {
            max_samples: 1_000,
            sample_budget: budget.clone(),
            ..crate::EngineOptions::default()
        })
    }

    #[test]
    fn a_query_fails_while_others_hold_the_budget_and_everything_comes_back() {
        let (_d, st) = storage();
        // `up[10m]` at 600 s loads 40 samples of each of the ten series (the window is
        // left-open): 400, within the per-query bound of 1,000.
        let q = "count_over_time(up[10m])";
        let budget = SampleBudget::new(500);
        let e = engine(&budget);
        assert!(e.instant_query(&st, q, 600_000).is_ok());
        assert_eq!(budget.in_use(), 0);

        // Another query (a rule evaluation, say) holds 200: 400 more do not fit.
        let mut other = Charge::new(&budget);
        other.set(200).expect("fits");
        assert_eq!(
            e.instant_query(&st, q, 600_000),
            Err(QueryError::TooManySamplesTotal(500))
        );
        assert_eq!(budget.in_use(), 200, "the failed query gave back its share");
        let message = QueryError::TooManySamplesTotal(500).to_string();
        assert!(message.contains("--query.max-samples-total"), "{message}");
        // A range query is charged for its result points too, and gives them back: over
        // 0..120 s it loads 9 samples a series and returns 3 points a series, 120 in all.
        assert!(e.range_query(&st, "up", 0, 120_000, 60_000).is_ok());
        assert_eq!(budget.in_use(), 200);
        // Over 0..600 s, 410 loaded and 110 result points do not fit beside the other 200.
        assert_eq!(
            e.range_query(&st, "up", 0, 600_000, 60_000),
            Err(QueryError::TooManySamplesTotal(500))
        );
        assert_eq!(budget.in_use(), 200);
        drop(other);
        assert!(e.instant_query(&st, q, 600_000).is_ok());
        assert_eq!(budget.in_use(), 0);

        // A query that times out gives its share back too.
        let hasty = crate::Engine::new(crate::EngineOptions {
            timeout: std::time::Duration::ZERO,
            sample_budget: budget.clone(),
            ..crate::EngineOptions::default()
        });
        assert_eq!(
            hasty.range_query(&st, q, 0, 600_000, 15_000),
            Err(QueryError::Timeout)
        );
        assert_eq!(budget.in_use(), 0);

        // The per-query bound keeps Prometheus's message and comes first.
        let small = crate::Engine::new(crate::EngineOptions {
            max_samples: 100,
            sample_budget: budget.clone(),
            ..crate::EngineOptions::default()
        });
        assert_eq!(
            small.instant_query(&st, q, 600_000),
            Err(QueryError::TooManySamples)
        );
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn queries_on_many_threads_share_one_budget() {
        let (_d, st) = storage();
        // Room for two of the 400-sample queries at once, not for eight.
        let budget = SampleBudget::new(800);
        let ok = std::sync::atomic::AtomicUsize::new(0);
        let refused = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let e = engine(&budget);
                    for _ in 0..20 {
                        match e.instant_query(&st, "count_over_time(up[10m])", 600_000) {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(QueryError::TooManySamplesTotal(800)) => {
                                refused.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => panic!("unexpected {e}"),
                        };
                        assert!(budget.in_use() <= 800);
                    }
                });
            }
        });
        assert_eq!(
            ok.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed),
            160
        );
        assert!(ok.load(Ordering::Relaxed) > 0);
        assert_eq!(budget.in_use(), 0);
    }
}
