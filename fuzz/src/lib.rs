//! Fuzz targets for every parser of outside input, and a mutation-based driver that runs them on
//! the stable toolchain (no `cargo fuzz`, no nightly).
//!
//! A target takes arbitrary bytes and feeds them to one parser the way the server would: the
//! exposition parser (text and OpenMetrics), PromQL through the whole evaluation, `prometheus.yml`,
//! rule files, the HTTP API's parameter parsers and matchers, remote-write bodies, and the files
//! storage reads at start-up (WAL segments, head chunks, blocks). A target returns normally
//! whether or not the input was valid; a panic is a finding, and so is an input that runs longer
//! than the driver's per-input budget (see [`driver`]).

pub mod driver;
pub mod mutate;
pub mod targets;

pub use driver::{DriverError, Finding, RunOptions, RunReport, replay, run};
pub use targets::{TARGETS, Target, target};
