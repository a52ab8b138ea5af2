//! A recent-data source holding the fixture, standing in for an ingester.

use std::collections::BTreeMap;

use strata_block::{BlockMeta, TagSummary};
use strata_model::{Span, TenantId, TraceId};
use strata_query::RecentData;

/// The fixture's traces as an ingester would hold them, for the fixture tenant only.
pub(crate) struct FixtureRecent {
    traces: Vec<Vec<Span>>,
    blocks: Vec<BlockMeta>,
    tags: TagSummary,
}

impl FixtureRecent {
    /// The fixture spans, and (if `with_block`) the fixture block as recently uploaded.
    pub(crate) fn new(with_block: bool) -> Self {
        let mut by_trace: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
        for span in crate::fixture::spans() {
            by_trace.entry(span.trace_id).or_default().push(span);
        }
        let block = crate::fixture::block();
        let tags = match TagSummary::parse(&block.tags, "fixture tags.json") {
            Ok(tags) => tags,
            Err(e) => panic!("the fixture's tags.json does not parse: {e}"),
        };
        Self {
            traces: by_trace.into_values().collect(),
            blocks: if with_block {
                vec![block.meta]
            } else {
                Vec::new()
            },
            tags,
        }
    }

    fn mine(tenant: &TenantId) -> bool {
        tenant.as_str() == crate::fixture::TENANT
    }
}

impl RecentData for FixtureRecent {
    fn find_trace(&self, tenant: &TenantId, trace_id: &TraceId) -> Vec<Span> {
        if !Self::mine(tenant) {
            return Vec::new();
        }
        self.traces
            .iter()
            .flatten()
            .filter(|s| s.trace_id == *trace_id)
            .cloned()
            .collect()
    }

    fn recent_blocks(&self, tenant: &TenantId) -> Vec<BlockMeta> {
        if Self::mine(tenant) {
            self.blocks.clone()
        } else {
            Vec::new()
        }
    }

    fn recent_traces(&self, tenant: &TenantId) -> Vec<Vec<Span>> {
        if Self::mine(tenant) {
            self.traces.clone()
        } else {
            Vec::new()
        }
    }

    fn recent_tags(&self, tenant: &TenantId) -> TagSummary {
        if Self::mine(tenant) {
            self.tags.clone()
        } else {
            TagSummary::default()
        }
    }
}
