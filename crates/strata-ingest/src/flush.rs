//! Turning cut head blocks into blocks on object storage: encode (on a blocking thread), upload
//! with retries, then release the WAL segments the spans came from.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_block::{BlockConfig, BlockIdentity, EncodedBlock, encode_block, upload_block};
use strata_model::TenantId;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::ingester::Shared;
use crate::live::HeadBlock;

/// A head block on its way to storage.
pub(crate) struct PendingBlock {
    pub(crate) tenant: TenantId,
    pub(crate) head: HeadBlock,
}

/// Receives cut blocks and flushes up to `concurrency` at a time, until the channel closes and
/// every flush has finished.
pub(crate) async fn flush_loop(
    shared: Arc<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<PendingBlock>,
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

async fn flush_block(shared: &Shared, block: PendingBlock) {
    let PendingBlock { tenant, head } = block;
    let bytes = head.bytes;
    let mut segments = Vec::new();
    let mut spans = Vec::new();
    for trace in head.traces {
        segments.extend(trace.segments);
        spans.extend(trace.spans);
    }
    let span_count = spans.len();
    let identity = BlockIdentity {
        tenant: tenant.clone(),
        block_id: Uuid::now_v7(),
        compaction_level: 0,
        retention_tier: 0,
    };
    let config: BlockConfig = shared.block_config.clone();
    let encoded = tokio::task::spawn_blocking(move || encode_block(identity, config, spans)).await;
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
                tracing::warn!(
                    %tenant,
                    block = %encoded.meta.block_id,
                    error = %e,
                    retry_in = ?backoff,
                    "block upload failed; retrying"
                );
                if shared.stop_retrying.load(Ordering::Acquire) {
                    tracing::warn!(%tenant, block = %encoded.meta.block_id, "giving up on the upload at shutdown; its spans stay in the WAL");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.flush_retry_max_backoff);
            }
        }
    }
    for segment in segments {
        shared.wal_refs.release(segment);
    }
    shared.unflushed_bytes.fetch_sub(bytes, Ordering::AcqRel);
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
