//! Turning cut head blocks into blocks on object storage: encode (on a blocking thread), upload
//! with retries, then release the WAL segments the spans came from.
//!
//! A cut block stays queryable the whole way: it is registered in `Shared::flushing` when it is
//! cut (under the same lock that removes it from the head block) and leaves only after its upload
//! succeeded and its meta joined `Shared::recent`, which queriers read to see new blocks before
//! their next blocklist poll.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use strata_block::{
    BlockConfig, BlockIdentity, BlockMeta, BlockWriter, EncodedBlock, upload_block,
};
use strata_model::{Span, TenantId};
use tokio::sync::Semaphore;

use crate::ingester::Shared;
use crate::live::LiveTrace;

/// A cut head block on its way to storage, shared between the flusher and queries.
#[derive(Debug)]
pub(crate) struct FlushingBlock {
    pub(crate) tenant: TenantId,
    pub(crate) traces: Vec<LiveTrace>,
    pub(crate) bytes: u64,
}

/// Receives cut blocks and flushes up to `concurrency` at a time, until the channel closes and
/// every flush has finished.
pub(crate) async fn flush_loop(
    shared: Arc<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<FlushingBlock>>,
    concurrency: usize,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(block) = rx.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            flush_block(&shared, block).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Encodes the traces of a cut block, sorted by trace ID; copies of one trace (a trace cut twice
/// by `max_trace_live`) are combined.
fn encode(
    identity: BlockIdentity,
    config: BlockConfig,
    traces: &[LiveTrace],
) -> strata_block::Result<EncodedBlock> {
    let mut order: Vec<&LiveTrace> = traces.iter().filter(|t| !t.spans.is_empty()).collect();
    order.sort_by_key(|t| t.trace_id());
    let mut writer = BlockWriter::new(identity, config)?;
    let mut i = 0;
    while i < order.len() {
        let id = order[i].trace_id();
        let end = i + order[i..].iter().take_while(|t| t.trace_id() == id).count();
        if end == i + 1 {
            writer.push_trace(&order[i].spans)?;
        } else {
            let combined: Vec<Span> = order[i..end]
                .iter()
                .flat_map(|t| t.spans.iter().cloned())
                .collect();
            writer.push_trace(&combined)?;
        }
        i = end;
    }
    writer.finish()
}

async fn flush_block(shared: &Shared, block: Arc<FlushingBlock>) {
    let tenant = block.tenant.clone();
    let span_count: usize = block.traces.iter().map(|t| t.spans.len()).sum();
    let identity = BlockIdentity::fresh(tenant.clone());
    let config: BlockConfig = shared.block_config.clone();
    let source = Arc::clone(&block);
    let encoded =
        tokio::task::spawn_blocking(move || encode(identity, config, &source.traces)).await;
    let encoded: EncodedBlock = match encoded {
        Ok(Ok(block)) => block,
        Ok(Err(e)) => {
            // The spans stay in the WAL (their segments keep their references) and are retried
            // from there at the next start.
            tracing::error!(%tenant, error = %e, span_count, "could not encode a block; its spans stay in the WAL");
            shared.metrics.flush_failures.inc();
            return;
        }
        Err(e) => {
            tracing::error!(%tenant, error = %e, "block encoding task failed; its spans stay in the WAL");
            shared.metrics.flush_failures.inc();
            return;
        }
    };
    let mut backoff = shared.config.flush_retry_initial_backoff;
    loop {
        match upload_block(&shared.storage, &encoded).await {
            Ok(()) => break,
            Err(e) => {
                shared.metrics.flush_failures.inc();
                tracing::warn!(%tenant, block = %encoded.meta.block_id, error = %e, retry_in = ?backoff, "block upload failed; retrying");
                if shared.stop_retrying.load(Ordering::Acquire) {
                    tracing::warn!(%tenant, block = %encoded.meta.block_id, "giving up on the upload at shutdown; its spans stay in the WAL");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.flush_retry_max_backoff);
            }
        }
    }
    shared.block_uploaded(&block, encoded.meta.clone());
    for segment in block.traces.iter().flat_map(|t| &t.segments) {
        shared.wal_refs.release(*segment);
    }
    shared
        .unflushed_bytes
        .fetch_sub(block.bytes, Ordering::AcqRel);
    shared.metrics.blocks_flushed.inc();
    shared.metrics.spans_flushed.inc_by(span_count as u64);
    shared
        .metrics
        .block_bytes
        .inc_by(encoded.meta.data_size + encoded.meta.bloom_size);
    tracing::info!(
        %tenant,
        block = %encoded.meta.block_id,
        traces = encoded.meta.trace_count,
        spans = encoded.meta.span_count,
        bytes = encoded.meta.data_size,
        "flushed block"
    );
}

/// A block uploaded recently, remembered so queriers can use it before they see it in a listing.
#[derive(Debug, Clone)]
pub(crate) struct RecentBlock {
    pub(crate) at: Instant,
    pub(crate) meta: BlockMeta,
}
