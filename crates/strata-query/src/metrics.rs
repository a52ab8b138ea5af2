//! Read-path metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Query counters. Clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct QueryMetrics {
    pub(crate) trace_lookups: Counter,
    pub(crate) searches: Counter,
    pub(crate) tag_queries: Counter,
    pub(crate) traces_found: Counter,
    pub(crate) blocks_inspected: Counter,
    pub(crate) bloom_skips: Counter,
    pub(crate) block_errors: Counter,
    pub(crate) missing_blocks: Counter,
    pub(crate) segment_errors: Counter,
    pub(crate) blocklist_blocks: Gauge,
}

impl QueryMetrics {
    /// Registers everything under `strata_query_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "strata_query_trace_lookups",
            "Trace-by-ID lookups",
            self.trace_lookups.clone(),
        );
        r.register(
            "strata_query_searches",
            "TraceQL searches",
            self.searches.clone(),
        );
        r.register(
            "strata_query_tag_queries",
            "Tag name and value queries",
            self.tag_queries.clone(),
        );
        r.register(
            "strata_query_traces_found",
            "Trace-by-ID lookups that found spans",
            self.traces_found.clone(),
        );
        r.register(
            "strata_query_blocks_inspected",
            "Blocks read by lookups after pruning",
            self.blocks_inspected.clone(),
        );
        r.register(
            "strata_query_bloom_skips",
            "Blocks skipped because the bloom filter said no",
            self.bloom_skips.clone(),
        );
        r.register(
            "strata_query_block_errors",
            "Blocks (or their tag summaries) that could not be read during a query (the answer was partial)",
            self.block_errors.clone(),
        );
        r.register(
            "strata_query_missing_blocks",
            "Blocks whose data or bloom shard was missing during a query while nothing said they were replaced (the answer was partial)",
            self.missing_blocks.clone(),
        );
        r.register(
            "strata_query_segment_errors",
            "Rollup segments that could not be read for stats (the answer was partial)",
            self.segment_errors.clone(),
        );
        r.register(
            "strata_query_blocklist_blocks",
            "Blocks in the blocklist, all tenants",
            self.blocklist_blocks.clone(),
        );
    }
}
