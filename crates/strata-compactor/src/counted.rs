//! Which spans of a trace are already counted in the rollups: the copies other blocks hold.
//! A fold asks before it counts a span, so a span stored twice (a WAL replay re-uploading spans
//! that were already in a block, a client resending a request whose answer it never got) is
//! counted once. Each other block is asked through its bloom shards first, so only blocks that
//! may hold the trace (a true copy, or the filter's rare false positive) are read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use strata_block::{
    BlockFile, BlockMeta, BloomShard, ReadStats, open_block_file, read_bloom_shard, read_trace,
    shard_for,
};
use strata_model::{SpanId, TenantId, TraceId};
use strata_storage::Storage;

/// One block already counted, read lazily.
struct Counted {
    meta: Arc<BlockMeta>,
    shards: HashMap<u32, BloomShard>,
    file: Option<Arc<BlockFile>>,
    /// Set when the block could not be read: it is asked nothing more.
    failed: bool,
}

/// The blocks a fold is checked against.
pub(crate) struct CountedSpans {
    storage: Storage,
    tenant: TenantId,
    blocks: Vec<Counted>,
    stats: Arc<ReadStats>,
    /// Blocks read for a trace (bloom said maybe).
    pub(crate) lookups: u64,
}

impl CountedSpans {
    pub(crate) fn new(storage: Storage, tenant: TenantId, against: &[Arc<BlockMeta>]) -> Self {
        Self {
            storage,
            tenant,
            blocks: against
                .iter()
                .map(|meta| Counted {
                    meta: Arc::clone(meta),
                    shards: HashMap::new(),
                    file: None,
                    failed: false,
                })
                .collect(),
            stats: Arc::new(ReadStats::default()),
            lookups: 0,
        }
    }

    /// The span IDs of `trace_id` that the blocks hold. A block that cannot be read is logged
    /// and left out (its own fold could not have counted it either, or it is gone).
    pub(crate) async fn span_ids(&mut self, trace_id: &TraceId) -> HashSet<SpanId> {
        let mut ids = HashSet::new();
        for i in 0..self.blocks.len() {
            match self.copy_in(i, trace_id).await {
                Ok(found) => ids.extend(found),
                Err(e) => {
                    let block = &mut self.blocks[i];
                    block.failed = true;
                    tracing::warn!(tenant = %self.tenant, block = %block.meta.block_id, error = %e, "cannot read a block to check a fold for copies of its spans; spans it may also hold could be counted twice");
                }
            }
        }
        ids
    }

    async fn copy_in(&mut self, i: usize, trace_id: &TraceId) -> strata_block::Result<Vec<SpanId>> {
        let (storage, stats) = (&self.storage, &self.stats);
        let block = &mut self.blocks[i];
        if block.failed || !block.meta.may_hold(trace_id) {
            return Ok(Vec::new());
        }
        let shard = shard_for(trace_id, block.meta.bloom.shards);
        if !block.shards.contains_key(&shard) {
            let (_, bloom) = read_bloom_shard(storage, &block.meta, trace_id, stats).await?;
            block.shards.insert(shard, bloom);
        }
        if !block
            .shards
            .get(&shard)
            .is_some_and(|b| b.may_contain(trace_id))
        {
            return Ok(Vec::new());
        }
        let file = match &block.file {
            Some(file) => Arc::clone(file),
            None => {
                let file = Arc::new(open_block_file(storage, &block.meta, stats).await?);
                block.file = Some(Arc::clone(&file));
                file
            }
        };
        let spans = read_trace(storage, &block.meta, &file, trace_id, stats).await?;
        self.lookups += 1;
        Ok(spans.into_iter().map(|s| s.span_id).collect())
    }
}
