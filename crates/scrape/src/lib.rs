//! Scraping with Prometheus's semantics: targets from `static_configs` and `file_sd_configs`,
//! target relabelling, one loop per target at its job's interval with start offsets spread by a
//! hash of the target, timestamps aligned to the interval grid, per-scrape timeouts and body limits,
//! metric relabelling, the synthetic `up`/`scrape_*` series, and stale markers.
//!
//! Every scrape reaches storage as one atomic batch through [`edgeprom_model::Appendable`].
//! Each loop also keeps its target's metric metadata (HELP/TYPE/UNIT, [`Manager::metadata`]) and,
//! when given an [`ExemplarStorage`], hands it the exemplars of committed scrapes.

#![warn(missing_docs)]

mod client;
mod discovery;
pub mod exemplars;
mod manager;
mod metadata;
mod metrics;
mod scrape_loop;
mod target;

pub use client::DEFAULT_BODY_SIZE_LIMIT;
pub use exemplars::ExemplarStorage;
pub use manager::{Manager, TargetHealth, TargetMetadata, TargetStatus};
pub use metadata::{MetadataSnapshot, MetricMetadata};
pub use metrics::ScrapeMetrics;
pub use target::{Target, TargetError, populate_labels};

/// Counts heap allocations per thread in this crate's unit tests, so tests can show that a
/// steady-state scrape allocates nothing for metadata or repeated exemplars.
#[cfg(test)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    // SAFETY: every call is forwarded to `System` unchanged; only a thread-local counter is added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Allocations made by this thread so far.
    pub(crate) fn allocations() -> u64 {
        COUNT.with(|c| c.get())
    }
}
