//! The compactor's Prometheus metrics.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::runner::CycleReport;

/// Counters of the compactor's work. Cheap to clone; clones share values.
#[derive(Clone, Debug, Default)]
pub struct CompactorMetrics {
    pub(crate) cycles: Counter,
    pub(crate) failures: Counter,
    pub(crate) jobs: Counter,
    pub(crate) spans_in: Counter,
    pub(crate) spans_out: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) deleted: Counter,
    pub(crate) last_cycle_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl CompactorMetrics {
    /// Registers every metric under `strata_compactor_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_compactor");
        r.register("cycles", "Compaction cycles run", self.cycles.clone());
        r.register(
            "cycle_failures",
            "Tenant compactions that failed",
            self.failures.clone(),
        );
        r.register(
            "jobs",
            "Block merge and rewrite jobs run",
            self.jobs.clone(),
        );
        r.register("spans_read", "Spans read by jobs", self.spans_in.clone());
        r.register(
            "spans_written",
            "Spans written by jobs",
            self.spans_out.clone(),
        );
        r.register(
            "bytes_read",
            "data.parquet bytes read by jobs",
            self.bytes_in.clone(),
        );
        r.register(
            "bytes_written",
            "data.parquet bytes written by jobs",
            self.bytes_out.clone(),
        );
        r.register(
            "entries_deleted",
            "Blocks and rollup segments deleted",
            self.deleted.clone(),
        );
        r.register(
            "last_cycle_seconds",
            "Duration of the last cycle",
            self.last_cycle_seconds.clone(),
        );
    }

    pub(crate) fn observe(&self, report: &CycleReport, took: Duration) {
        self.cycles.inc();
        self.jobs.inc_by(report.jobs);
        self.spans_in.inc_by(report.spans_in);
        self.spans_out.inc_by(report.spans_out);
        self.bytes_in.inc_by(report.bytes_in);
        self.bytes_out.inc_by(report.bytes_out);
        self.deleted.inc_by(report.deleted);
        self.last_cycle_seconds.set(took.as_secs_f64());
    }
}
