//! Recording and alerting rules with Prometheus's semantics.
//!
//! Rule files are Prometheus's (`groups` with `interval`, `limit`, `query_offset`, `labels`;
//! `record` and `alert` rules). Each group runs on its own grid; every evaluation queries the
//! PromQL engine at the group's time minus its offset and writes what it produced — recorded
//! series, `ALERTS` and `ALERTS_FOR_STATE` — through the storage `Appendable` seam in one commit,
//! ending vanished series with stale markers. Alerts go pending → firing → resolved as in
//! Prometheus (`for`, `keep_firing_for`, 15 min of resolved retention), have their labels and
//! annotations expanded by the Go-template subset in [`template`], and are sent to Alertmanager by
//! the [`notifier`]. After a restart, `for` state comes back from `ALERTS_FOR_STATE`.

#![warn(missing_docs)]

mod file;
mod gofmt;
mod group;
mod manager;
mod metrics;
pub mod notifier;
pub mod template;

pub use file::{GroupSpec, RuleFile, RuleKind, RuleSpec, check_rules_file};
pub use group::EvalContext;
pub use manager::Manager;
pub use metrics::{NotifierMetrics, RuleMetrics};
pub use notifier::Notifier;

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A rule file is unreadable or invalid; the error says where.
    #[error("{0}")]
    File(edgeprom_config::ConfigError),
}

#[cfg(test)]
mod tests;
