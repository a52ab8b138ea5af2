//! Finding a trace by ID: prune blocks by meta (trace-ID range, time range), ask each remaining
//! block's bloom shard (cached), read the trace from the blocks that may hold it (footers
//! cached), add what the ingester has not flushed, and merge the copies, de-duplicated by span
//! ID.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use strata_block::{
    BlockFile, BlockMeta, BloomShard, ReadStats, TagSummary, layout, open_block_file,
    read_bloom_shard, read_trace,
};
use strata_model::{Span, TenantId, TraceId};
use strata_storage::Storage;
use uuid::Uuid;

use crate::blocklist::Blocklist;
use crate::cache::ByteCache;
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;
use crate::recent::RecentSource;

/// A closed time range, to narrow the blocks searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (inclusive).
    pub end: DateTime<Utc>,
}

/// A trace found (or not), and what finding it cost.
#[derive(Debug, Clone, Default)]
pub struct TraceLookup {
    /// The spans, de-duplicated by span ID, in start order. Empty when not found.
    pub spans: Vec<Span>,
    /// Set when the trace is incomplete: too large (truncated) or blocks failed to read.
    pub partial: Option<String>,
    /// Whether spans were left out because the trace is over `query.max_trace_bytes`.
    pub truncated: bool,
    /// Blocks considered after pruning by meta.
    pub blocks_considered: usize,
    /// Blocks whose bloom filter ruled the trace out.
    pub bloom_skips: usize,
    /// Blocks whose data was read.
    pub blocks_read: usize,
    /// Object-storage requests made.
    pub storage_reads: u64,
    /// Bytes fetched from object storage.
    pub storage_bytes: u64,
}

/// Answers queries over one object store and the recent data of the ingesters.
pub struct Querier {
    pub(crate) storage: Storage,
    pub(crate) config: QueryConfig,
    blocklist: Arc<Blocklist>,
    pub(crate) recent: RecentSource,
    blooms: ByteCache<(Uuid, u32), BloomShard>,
    files: ByteCache<Uuid, BlockFile>,
    pub(crate) tag_summaries: ByteCache<Uuid, TagSummary>,
    /// The recent data's tag summary per tenant, and when it was made.
    pub(crate) recent_tags:
        parking_lot::Mutex<HashMap<TenantId, (Instant, crate::tags::RecentTags)>>,
    pub(crate) metrics: QueryMetrics,
    /// Rollup segment metas seen (immutable; pruned to what the last listing found).
    pub(crate) segment_metas: parking_lot::Mutex<HashMap<Uuid, Arc<strata_block::RollupMeta>>>,
}

impl Querier {
    /// A querier over `storage`. Call [`Querier::poll_blocklist`] before the first query, and
    /// keep [`Querier::run_blocklist_poll`] running.
    pub fn new(
        storage: Storage,
        config: QueryConfig,
        recent: RecentSource,
        metrics: QueryMetrics,
    ) -> Self {
        Self {
            blocklist: Arc::new(Blocklist::new(storage.clone())),
            blooms: ByteCache::new(
                usize::try_from(config.bloom_cache_bytes.as_u64()).unwrap_or(usize::MAX),
            ),
            files: ByteCache::new(
                usize::try_from(config.footer_cache_bytes.as_u64()).unwrap_or(usize::MAX),
            ),
            recent_tags: parking_lot::Mutex::new(HashMap::new()),
            segment_metas: parking_lot::Mutex::new(HashMap::new()),
            tag_summaries: ByteCache::new(
                usize::try_from(config.tag_cache_bytes.as_u64()).unwrap_or(usize::MAX),
            ),
            storage,
            config,
            recent,
            metrics,
        }
    }

    /// The blocklist.
    pub fn blocklist(&self) -> &Blocklist {
        &self.blocklist
    }

    /// Refreshes the blocklist once.
    pub async fn poll_blocklist(&self) -> Result<()> {
        self.blocklist.poll().await?;
        self.metrics
            .blocklist_blocks
            .set(self.blocklist.len() as i64);
        Ok(())
    }

    /// Refreshes the blocklist every `query.blocklist_poll`, forever.
    pub async fn run_blocklist_poll(&self) {
        let mut tick = tokio::time::interval(self.config.blocklist_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.poll_blocklist().await {
                tracing::warn!(error = %e, "blocklist poll failed; keeping the last list");
            }
        }
    }

    /// The tenant's live blocks: the blocklist, plus `recent` blocks an ingester uploaded that
    /// no poll has listed yet (which are added to the blocklist), less any the compactor
    /// replaced.
    pub(crate) fn tenant_blocks(
        &self,
        tenant: &TenantId,
        recent: Vec<BlockMeta>,
    ) -> Vec<Arc<BlockMeta>> {
        if !recent.is_empty() {
            let known: HashSet<Uuid> = self
                .blocklist
                .blocks(tenant)
                .iter()
                .map(|b| b.block_id)
                .collect();
            for meta in recent {
                // An ingester only names its tenant's blocks; a meta for another is ignored.
                if meta.tenant == tenant.as_str()
                    && !known.contains(&meta.block_id)
                    && self.blocklist.add(Arc::new(meta))
                {
                    self.metrics
                        .blocklist_blocks
                        .set(self.blocklist.len() as i64);
                }
            }
        }
        self.blocklist.blocks(tenant)
    }

    /// The block's footer and page index, from the cache or one read.
    pub(crate) async fn block_file(
        &self,
        meta: &BlockMeta,
        stats: &ReadStats,
    ) -> Result<Arc<BlockFile>> {
        if let Some(file) = self.files.get(&meta.block_id) {
            return Ok(file);
        }
        let file = Arc::new(open_block_file(&self.storage, meta, stats).await?);
        self.files
            .insert(meta.block_id, Arc::clone(&file), file.memory_size());
        Ok(file)
    }

    /// Finds every span of `trace_id` for `tenant`, in blocks overlapping `range` (all blocks
    /// when `None`) and in the ingester's recent data.
    pub async fn find_trace(
        &self,
        tenant: &TenantId,
        trace_id: &TraceId,
        range: Option<TimeRange>,
    ) -> Result<TraceLookup> {
        self.metrics.trace_lookups.inc();
        let stats = Arc::new(ReadStats::default());
        let recent = self.recent.find_trace(tenant, trace_id).await;
        let unreachable = recent.partial_message();
        let mut spans = recent.value;
        let blocks = self.tenant_blocks(tenant, recent.blocks);
        let candidates: Vec<Arc<BlockMeta>> = blocks
            .into_iter()
            .filter(|b| b.may_hold(trace_id))
            .filter(|b| range.is_none_or(|r| b.start_time <= r.end && r.start <= b.end_time))
            .collect();
        let mut lookup = TraceLookup {
            blocks_considered: candidates.len(),
            ..Default::default()
        };
        let results: Vec<(Uuid, Result<Option<Vec<Span>>>)> = futures::stream::iter(candidates)
            .map(|meta| {
                let stats = Arc::clone(&stats);
                async move {
                    // A reader that panics on a hostile block costs that block only.
                    let read = AssertUnwindSafe(self.search_block(&meta, trace_id, &stats))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::Internal(format!(
                                "reading block {} panicked",
                                meta.block_id
                            )))
                        });
                    (meta.block_id, read)
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let (mut failed, mut missing) = (0, 0);
        for (block, result) in results {
            match result {
                Ok(None) => lookup.bloom_skips += 1,
                Ok(Some(found)) => {
                    lookup.blocks_read += 1;
                    spans.extend(found);
                }
                Err(e) if e.is_not_found() => {
                    if self.vanished(tenant, block, &e).await == Vanished::Lost {
                        missing += 1;
                    }
                }
                Err(e) => {
                    failed += 1;
                    self.metrics.block_errors.inc();
                    tracing::warn!(%tenant, %block, error = %e, "could not read a block during a trace lookup");
                }
            }
        }
        self.metrics
            .blocks_inspected
            .inc_by(lookup.blocks_read as u64);
        self.metrics.bloom_skips.inc_by(lookup.bloom_skips as u64);
        merge(&mut spans);
        let truncated = truncate(&mut spans, self.config.max_trace_bytes.as_u64());
        lookup.truncated = truncated.is_some();
        let failed = (failed > 0)
            .then(|| format!("{failed} blocks could not be read; the trace may be incomplete"));
        let missing = (missing > 0).then(|| missing_message(missing));
        let reasons: Vec<String> = [truncated, failed, missing, unreachable]
            .into_iter()
            .flatten()
            .collect();
        lookup.partial = (!reasons.is_empty()).then(|| reasons.join("; "));
        if !spans.is_empty() {
            self.metrics.traces_found.inc();
        }
        lookup.spans = spans;
        lookup.storage_reads = stats.reads();
        lookup.storage_bytes = stats.bytes();
        Ok(lookup)
    }

    /// What a block found missing while a query read it means. The compactor deletes a
    /// block's objects only once it is marked (replaced, or dropped by retention), `meta.json`
    /// first: a marker, a replacement the blocklist knows, or a meta gone too say it was meant
    /// to go, and skipping it loses nothing (it is forgotten, quietly). Anything else is data
    /// lost or not there (a meta pointing at nothing, a bloom shard missing): counted, and the
    /// answer is partial.
    pub(crate) async fn vanished(&self, tenant: &TenantId, block: Uuid, error: &Error) -> Vanished {
        let prefix = layout::block_prefix(tenant, block);
        let replaced = self.blocklist.is_replaced(tenant, block)
            || self
                .storage
                .size(&prefix.clone().join(layout::COMPACTED_FILE))
                .await
                .is_ok()
            || self
                .storage
                .size(&layout::meta_path(tenant, block))
                .await
                .is_err_and(|e| e.is_not_found());
        if replaced {
            tracing::debug!(%tenant, %block, "block compacted away during a query");
            self.blocklist.forget(tenant, block);
            Vanished::Replaced
        } else {
            self.metrics.missing_blocks.inc();
            tracing::warn!(%tenant, %block, %error, "an object of a block is missing and nothing says the block was replaced; answering without it");
            Vanished::Lost
        }
    }

    /// `None` when the bloom filter rules the block out; the block's spans of the trace otherwise.
    async fn search_block(
        &self,
        meta: &BlockMeta,
        trace_id: &TraceId,
        stats: &Arc<ReadStats>,
    ) -> Result<Option<Vec<Span>>> {
        let shard = strata_block::shard_for(trace_id, meta.bloom.shards);
        let bloom = match self.blooms.get(&(meta.block_id, shard)) {
            Some(bloom) => bloom,
            None => {
                let (shard, bloom) = read_bloom_shard(&self.storage, meta, trace_id, stats).await?;
                let bloom = Arc::new(bloom);
                self.blooms
                    .insert((meta.block_id, shard), Arc::clone(&bloom), bloom.size());
                bloom
            }
        };
        if !bloom.may_contain(trace_id) {
            return Ok(None);
        }
        let file = self.block_file(meta, stats).await?;
        Ok(Some(
            read_trace(&self.storage, meta, &file, trace_id, stats).await?,
        ))
    }
}

/// What a block found missing during a query was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vanished {
    /// Replaced or dropped by the compactor: nothing is lost by skipping it.
    Replaced,
    /// Its data is gone (or not visible) while its meta says it exists.
    Lost,
}

/// The partial-answer message for `n` blocks whose data is missing.
pub(crate) fn missing_message(n: usize) -> String {
    format!(
        "{n} blocks are missing data (not replaced by compaction); the answer may be incomplete"
    )
}

/// De-duplicates by span ID (copies come from several blocks, from the ingester, and from WAL
/// replays) and orders by start time.
fn merge(spans: &mut Vec<Span>) {
    let mut seen = HashSet::with_capacity(spans.len());
    spans.retain(|s| seen.insert(s.span_id));
    spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
}

/// Keeps the earliest spans within `max_bytes`; says so when it had to cut.
fn truncate(spans: &mut Vec<Span>, max_bytes: u64) -> Option<String> {
    let mut total = 0u64;
    let keep = spans
        .iter()
        .take_while(|s| {
            total += s.heap_size() as u64;
            total <= max_bytes
        })
        .count();
    (keep < spans.len()).then(|| {
        spans.truncate(keep);
        format!("Trace exceeds maximum size of {max_bytes} bytes, a partial trace is returned")
    })
}
