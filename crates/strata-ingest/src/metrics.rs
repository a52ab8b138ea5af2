//! Counters and gauges of the write path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Write-path metrics. Clones share the same counters.
#[derive(Clone, Debug, Default)]
pub struct IngestMetrics {
    spans_received: Counter,
    bytes_received: Counter,
    spans_accepted: Counter,
    spans_refused: Family<ReasonLabel, Counter>,
    values_truncated: Counter,
    names_truncated: Counter,
    attributes_dropped: Counter,
    events_dropped: Counter,
    links_dropped: Counter,
    pub(crate) unencodable_spans: Counter,
    pub(crate) live_traces: Gauge,
    pub(crate) unflushed_bytes: Gauge,
    pub(crate) blocks_flushed: Counter,
    pub(crate) spans_flushed: Counter,
    pub(crate) block_bytes: Counter,
    pub(crate) flush_failures: Counter,
}

impl IngestMetrics {
    /// Registers everything under `strata_ingest_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "strata_ingest_spans_received",
            "Spans received",
            self.spans_received.clone(),
        );
        r.register(
            "strata_ingest_received_bytes",
            "OTLP bytes received",
            self.bytes_received.clone(),
        );
        r.register(
            "strata_ingest_spans_accepted",
            "Spans made durable",
            self.spans_accepted.clone(),
        );
        r.register(
            "strata_ingest_spans_refused",
            "Spans refused, by reason",
            self.spans_refused.clone(),
        );
        r.register(
            "strata_ingest_values_truncated",
            "Attribute values truncated (or non-finite doubles inside arrays stored as strings)",
            self.values_truncated.clone(),
        );
        r.register(
            "strata_ingest_names_truncated",
            "Span, event and scope names, versions, schema URLs and trace states truncated",
            self.names_truncated.clone(),
        );
        r.register(
            "strata_ingest_attributes_dropped",
            "Attributes dropped (over max_attributes, key too long, nested too deep)",
            self.attributes_dropped.clone(),
        );
        r.register(
            "strata_ingest_events_dropped",
            "Span events dropped over max_events_per_span",
            self.events_dropped.clone(),
        );
        r.register(
            "strata_ingest_links_dropped",
            "Span links dropped over max_links_per_span",
            self.links_dropped.clone(),
        );
        r.register(
            "strata_ingest_unencodable_spans",
            "Spans of blocks that could not be encoded even alone; they stay in memory and the WAL and are retried",
            self.unencodable_spans.clone(),
        );
        r.register(
            "strata_ingest_live_traces",
            "Traces being assembled",
            self.live_traces.clone(),
        );
        r.register(
            "strata_ingest_unflushed_bytes",
            "Stored bytes (spans with their resource and scope) not yet in a block",
            self.unflushed_bytes.clone(),
        );
        r.register(
            "strata_ingest_blocks_flushed",
            "Blocks written to object storage",
            self.blocks_flushed.clone(),
        );
        r.register(
            "strata_ingest_spans_flushed",
            "Spans written in blocks",
            self.spans_flushed.clone(),
        );
        r.register(
            "strata_ingest_block_bytes",
            "Bytes of blocks written",
            self.block_bytes.clone(),
        );
        r.register(
            "strata_ingest_flush_failures",
            "Failed block encodes or uploads",
            self.flush_failures.clone(),
        );
    }

    pub(crate) fn received(&self, spans: usize, bytes: u64) {
        self.spans_received.inc_by(spans as u64);
        self.bytes_received.inc_by(bytes);
    }

    pub(crate) fn accepted(&self, spans: usize) {
        self.spans_accepted.inc_by(spans as u64);
    }

    pub(crate) fn refused(&self, reason: &'static str, spans: usize) {
        if spans > 0 {
            self.spans_refused
                .get_or_create(&ReasonLabel { reason })
                .inc_by(spans as u64);
        }
    }

    pub(crate) fn sanitized(&self, report: &crate::sanitize::SanitizeReport) {
        self.values_truncated
            .inc_by((report.truncated_values + report.converted_doubles) as u64);
        self.names_truncated.inc_by(report.truncated_names as u64);
        self.attributes_dropped
            .inc_by(report.dropped_attributes as u64);
        self.events_dropped.inc_by(report.dropped_events as u64);
        self.links_dropped.inc_by(report.dropped_links as u64);
    }

    /// Spans accepted so far (for tests and benchmarks).
    pub fn spans_accepted(&self) -> u64 {
        self.spans_accepted.get()
    }

    /// Blocks flushed so far (for tests and benchmarks).
    pub fn blocks_flushed(&self) -> u64 {
        self.blocks_flushed.get()
    }
}
