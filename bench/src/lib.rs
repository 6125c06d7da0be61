//! Measurement programs for edgeprom's storage, groundwork for the `bench/compare` harness:
//!
//! - `dynamo-corpus`: a deterministic, Dynamo-shaped OpenMetrics corpus ([`corpus`]).
//! - `load-storage`: loads a corpus into [`edgeprom_storage::Storage`] the way the scraper
//!   appends, and reports ingest rate and bytes per sample ([`load`]).
//! - `rss-bench`: resident memory per active series and restart-to-ready time.
//!
//! See `bench/README.md` for the commands and `bench/compare-size.sh` for the size comparison
//! against Prometheus and VictoriaMetrics.
#![warn(missing_docs)]

pub mod corpus;
pub mod load;
pub mod sys;
