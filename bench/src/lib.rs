//! Measurement programs for edgeprom's storage, groundwork for the `bench/compare` harness:
//!
//! - `dynamo-corpus`: a deterministic, Dynamo-shaped OpenMetrics corpus ([`corpus`]).
//! - `load-storage`: loads a corpus into [`edgeprom_storage::Storage`] the way the scraper
//!   appends, and reports ingest rate and bytes per sample ([`load`]).
//! - `rss-bench`: resident memory per active series and restart-to-ready time.
//! - `remote-bench`: remote-write forwarding rate per CPU core and the sender's memory.
//!
//! See `bench/README.md` for the commands and `bench/compare-size.sh` for the size comparison
//! against Prometheus and VictoriaMetrics.
#![warn(missing_docs)]

/// The generator lives in `edgeprom-fixtures` (the demo and checked-in fixtures use it too).
pub use edgeprom_fixtures::corpus;
pub mod active;
pub mod load;
pub mod sys;
