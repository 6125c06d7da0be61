//! Scraping with Prometheus's semantics: targets from `static_configs` and `file_sd_configs`,
//! target relabelling, one loop per target at its job's interval with start offsets spread by a
//! hash of the target, timestamps aligned to the interval grid, per-scrape timeouts and body limits,
//! metric relabelling, the synthetic `up`/`scrape_*` series, and stale markers.
//!
//! Every scrape reaches storage as one atomic batch through [`edgeprom_model::Appendable`].

#![warn(missing_docs)]

mod client;
mod discovery;
mod manager;
mod metrics;
mod scrape_loop;
mod target;

pub use manager::{Manager, TargetHealth, TargetStatus};
pub use metrics::ScrapeMetrics;
pub use target::{Target, TargetError, populate_labels};
