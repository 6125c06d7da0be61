//! Deadlines for index reads. A read driven by user input (`match[]` selectors with regexes over
//! many label values, selectors matching millions of series) can run for seconds; the API bounds
//! it by `--query.timeout`, and the read has to notice inside its loops, not only between calls.

use std::time::{Duration, Instant};

/// How many loop iterations pass between two clock reads: a read of the clock costs about as
/// much as a few regex tests, so reading it every iteration would slow the walks it guards.
const STRIDE: u32 = 256;

/// When a read should give up; [`Deadline::NONE`] never passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

/// A read stopped because its [`Deadline`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// A deadline at `at`.
    pub fn at(at: Instant) -> Deadline {
        Deadline(Some(at))
    }

    /// A deadline `timeout` from now (none when that is beyond what [`Instant`] can hold).
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|at| Instant::now() > at)
    }

    /// `Err` once the deadline has passed.
    pub fn check(&self) -> Result<(), DeadlineExceeded> {
        if self.passed() {
            Err(DeadlineExceeded)
        } else {
            Ok(())
        }
    }

    /// A counter that reads the clock only every few hundred calls, for tight loops.
    pub(crate) fn ticker(self) -> Ticker {
        Ticker {
            deadline: self,
            n: 0,
        }
    }
}

/// Checks a [`Deadline`] every [`STRIDE`] ticks.
pub(crate) struct Ticker {
    deadline: Deadline,
    n: u32,
}

impl Ticker {
    /// Counts one iteration; `Err` when this is a checking one and the deadline has passed.
    pub(crate) fn tick(&mut self) -> Result<(), DeadlineExceeded> {
        if self.deadline.0.is_none() {
            return Ok(());
        }
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(STRIDE) {
            self.deadline.check()
        } else {
            Ok(())
        }
    }

    /// Reads the clock now, whatever the count (between coarse steps such as matchers or blocks).
    pub(crate) fn check(&self) -> Result<(), DeadlineExceeded> {
        self.deadline.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_never_passes_and_a_past_deadline_stops_within_a_stride() {
        assert!(Deadline::NONE.check().is_ok());
        let mut t = Deadline::NONE.ticker();
        assert!((0..10_000).all(|_| t.tick().is_ok()));

        let past = Deadline::at(Instant::now() - Duration::from_millis(1));
        assert_eq!(past.check(), Err(DeadlineExceeded));
        let mut t = past.ticker();
        let ok = (0..10_000).take_while(|_| t.tick().is_ok()).count();
        assert_eq!(ok, STRIDE as usize - 1);

        assert!(Deadline::after(Duration::from_secs(60)).check().is_ok());
        assert!(Deadline::after(Duration::MAX).check().is_ok());
    }
}
