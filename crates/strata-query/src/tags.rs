//! Tag discovery: the attribute names and values of a tenant's data, from each block's
//! `tags.json` (cached) and a summary of the ingester's recent data — never from a scan.

use std::sync::Arc;

use futures::StreamExt;
use std::time::{Duration, Instant};

use strata_block::{BlockMeta, ReadStats, TagSummary, layout};
use strata_model::TenantId;

use crate::error::Result;
use crate::trace_by_id::{Querier, TimeRange};

/// A tenant's tags and what finding them cost.
#[derive(Debug, Clone, Default)]
pub struct TagDiscovery {
    /// Names and values, merged over the blocks and recent data.
    pub summary: TagSummary,
    /// Bytes fetched from object storage.
    pub storage_bytes: u64,
    /// Blocks whose summaries were used.
    pub blocks: u64,
    /// Set when values may be missing: ingesters that did not answer, blocks whose tag summary
    /// could not be read.
    pub partial: Option<String>,
}

/// How long a summary of the ingester's recent data is reused. Autocomplete asks for tags at
/// every keystroke; summarising the recent data each time would cost a pass over every live span.
const RECENT_TAGS_TTL: Duration = Duration::from_secs(10);

/// A summary of recent data, with the recent blocks named alongside it.
pub(crate) type RecentTags = Arc<(TagSummary, Vec<BlockMeta>)>;

impl Querier {
    /// The recent data's tags, from the cache when fresh. An answer missing an ingester is not
    /// cached.
    async fn recent_tag_summary(&self, tenant: &TenantId) -> (RecentTags, Option<String>) {
        let now = Instant::now();
        if let Some((at, summary)) = self.recent_tags.lock().get(tenant)
            && now.duration_since(*at) < RECENT_TAGS_TTL
        {
            return (Arc::clone(summary), None);
        }
        let recent = self.recent.tags(tenant).await;
        let partial = recent.partial_message();
        let summary = Arc::new((recent.value, recent.blocks));
        if partial.is_none() {
            let mut cache = self.recent_tags.lock();
            cache.retain(|_, (at, _)| now.duration_since(*at) < RECENT_TAGS_TTL);
            cache.insert(tenant.clone(), (now, Arc::clone(&summary)));
        }
        (summary, partial)
    }

    /// The tags of `tenant`'s data overlapping `range` (all data when `None`).
    pub async fn tags(&self, tenant: &TenantId, range: Option<TimeRange>) -> Result<TagDiscovery> {
        self.metrics.tag_queries.inc();
        let stats = Arc::new(ReadStats::default());
        let (recent, partial) = self.recent_tag_summary(tenant).await;
        let mut out = TagDiscovery {
            summary: recent.0.clone(),
            partial,
            ..Default::default()
        };
        let blocks: Vec<_> = self
            .tenant_blocks(tenant, recent.1.clone())
            .into_iter()
            .filter(|b| range.is_none_or(|r| b.start_time <= r.end && r.start <= b.end_time))
            .collect();
        let summaries: Vec<_> = futures::stream::iter(blocks)
            .map(|meta| {
                let stats = Arc::clone(&stats);
                async move {
                    if let Some(summary) = self.tag_summaries.get(&meta.block_id) {
                        return Ok(summary);
                    }
                    let tenant = TenantId::new(&meta.tenant)
                        .map_err(|e| crate::Error::Internal(format!("block tenant: {e}")))?;
                    let path = layout::tags_path(&tenant, meta.block_id);
                    let read = self
                        .storage
                        .get_at_most(&path, strata_block::catalog::MAX_SMALL_OBJECT_BYTES);
                    let summary = match read.await {
                        Ok(bytes) => {
                            stats.record(bytes.len());
                            TagSummary::parse(&bytes, path.as_ref())?
                        }
                        // Blocks written before tag summaries existed have none.
                        Err(e) if e.is_not_found() => TagSummary::default(),
                        Err(e) => return Err(e.into()),
                    };
                    let summary = Arc::new(summary);
                    self.tag_summaries.insert(
                        meta.block_id,
                        Arc::clone(&summary),
                        summary.memory_size(),
                    );
                    Ok::<_, crate::Error>(summary)
                }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut failed = 0;
        for summary in summaries {
            match summary {
                Ok(s) => {
                    out.summary.merge(&s);
                    out.blocks += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    failed += 1;
                    self.metrics.block_errors.inc();
                    tracing::warn!(%tenant, error = %e, "could not read a block's tag summary");
                }
            }
        }
        if failed > 0 {
            let message =
                format!("{failed} blocks' tag summaries could not be read; tags may be missing");
            out.partial = Some(match out.partial.take() {
                Some(before) => format!("{before}; {message}"),
                None => message,
            });
        }
        out.storage_bytes = stats.bytes();
        Ok(out)
    }
}
