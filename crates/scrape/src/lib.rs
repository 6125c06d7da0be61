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

pub use exemplars::ExemplarStorage;
pub use manager::{Manager, TargetHealth, TargetMetadata, TargetStatus};
pub use metadata::{MetadataSnapshot, MetricMetadata};
pub use metrics::ScrapeMetrics;
pub use target::{Target, TargetError, populate_labels};
