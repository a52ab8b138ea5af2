//! Counters of object-storage traffic, exported to Prometheus and read by benchmarks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

/// Requests and bytes per operation. Cheap to clone; clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct StorageMetrics {
    requests: Family<OpLabel, Counter>,
    errors: Family<OpLabel, Counter>,
    bytes_read: Counter,
    bytes_written: Counter,
}

impl StorageMetrics {
    /// Registers the counters under `strata_storage_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "strata_storage_requests",
            "Object storage requests by operation",
            self.requests.clone(),
        );
        registry.register(
            "strata_storage_errors",
            "Object storage requests that failed, by operation",
            self.errors.clone(),
        );
        registry.register(
            "strata_storage_read_bytes",
            "Bytes read from object storage",
            self.bytes_read.clone(),
        );
        registry.register(
            "strata_storage_written_bytes",
            "Bytes written to object storage",
            self.bytes_written.clone(),
        );
    }

    pub(crate) fn request(&self, op: &'static str) {
        self.requests.get_or_create(&OpLabel { op }).inc();
    }

    pub(crate) fn error(&self, op: &'static str) {
        self.errors.get_or_create(&OpLabel { op }).inc();
    }

    pub(crate) fn read(&self, bytes: usize) {
        self.bytes_read.inc_by(bytes as u64);
    }

    pub(crate) fn written(&self, bytes: usize) {
        self.bytes_written.inc_by(bytes as u64);
    }

    /// Requests made so far for one operation (`get`, `get_range`, `put`, `list`, `delete`,
    /// `head`).
    pub fn requests(&self, op: &'static str) -> u64 {
        self.requests.get_or_create(&OpLabel { op }).get()
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.get()
    }
}
