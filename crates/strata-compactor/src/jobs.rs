//! Running the parts of a plan: block jobs (merge, and filter when the tier moves on), folds
//! of blocks into rollups, rollup merges, markers. Each writes its outputs before anything that
//! makes them count, so stopping between any two steps loses nothing and counts nothing twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use strata_block::catalog::{CompactedMarker, mark_compacted};
use strata_block::{
    BlockConfig, BlockIdentity, BlockMeta, BlockTraceReader, BlockWriter, Rollup, TimeBounds,
    TraceMerge, commit_block, encode_segment, layout, read_segment, upload_block_files,
    upload_segment,
};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::counted::CountedSpans;
use crate::error::{ForTenant, Result, merge_error, unreadable};
use crate::planner::{Fold, Job, RollupJob};
use crate::retention::{RetentionPolicy, TraceFacts};

/// What one block job did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    /// Spans read from the inputs.
    pub spans_in: u64,
    /// Spans written to the output.
    pub spans_out: u64,
    /// Traces written.
    pub traces_out: u64,
    /// Bytes of the inputs' `data.parquet`.
    pub bytes_in: u64,
    /// Bytes of the output's `data.parquet` (0 when nothing was kept).
    pub bytes_out: u64,
    /// The output block, unless every trace was sampled away.
    pub output: Option<Arc<BlockMeta>>,
}

/// A block's time range in unix seconds: where its spans are counted in rollups.
fn seconds_range(block: &BlockMeta) -> (i64, i64) {
    (block.start_time.timestamp(), block.end_time.timestamp())
}

/// The union of the blocks' time ranges, in unix nanoseconds: an output's range is exactly that.
fn time_bounds(blocks: &[Arc<BlockMeta>]) -> Option<TimeBounds> {
    let nanos = |t: &DateTime<Utc>| u64::try_from(t.timestamp_nanos_opt()?).ok();
    let lo = blocks.iter().filter_map(|b| nanos(&b.start_time)).min()?;
    let hi = blocks.iter().filter_map(|b| nanos(&b.end_time)).max()?;
    Some(TimeBounds {
        outer: (lo, hi),
        inner: (lo, hi),
    })
}

/// What one fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FoldOutcome {
    /// Spans counted.
    pub(crate) spans: u64,
    /// Spans not counted because another block holds a copy that is.
    pub(crate) copies: u64,
    /// Other blocks read to look for copies (their bloom filter said maybe).
    pub(crate) lookups: u64,
}

/// What every part of a tenant's cycle needs; cheap to clone, so jobs can run as tasks.
#[derive(Clone)]
pub(crate) struct JobContext {
    pub(crate) storage: Storage,
    pub(crate) tenant: TenantId,
    pub(crate) block_config: BlockConfig,
    pub(crate) bucket_seconds: u32,
    pub(crate) now: DateTime<Utc>,
}

impl JobContext {
    /// Runs a block job: k-way merge of the inputs (all counted in rollups already), retention
    /// filter, output block with meta last, then the inputs' markers.
    pub(crate) async fn run_job(&self, job: &Job, policy: &RetentionPolicy) -> Result<JobOutcome> {
        let tenant = &self.tenant;
        let mut merge = TraceMerge::open(&self.storage, &job.inputs)
            .await
            .map_err(|e| merge_error(tenant, e))?;
        let out_id = Uuid::now_v7();
        let identity = BlockIdentity {
            tenant: tenant.clone(),
            block_id: out_id,
            compaction_level: job.level,
            retention_tier: job.tier,
            compacted_from: job.inputs.iter().map(|b| b.block_id).collect(),
            rolled_up: true,
            // The inputs' ranges were clamped when they were written; so is the output's.
            time_bounds: time_bounds(&job.inputs),
        };
        let mut writer =
            BlockWriter::new(identity, self.block_config.clone()).for_tenant(tenant)?;
        let mut outcome = JobOutcome {
            bytes_in: job.inputs.iter().map(|b| b.data_size).sum(),
            ..JobOutcome::default()
        };
        loop {
            let mut spans_in = 0u64;
            let next = merge
                .next_with(|_, copy| spans_in += copy.spans.len() as u64)
                .await
                .map_err(|e| merge_error(tenant, e))?;
            outcome.spans_in += spans_in;
            let Some(trace) = next else { break };
            let weight = if job.tier > job.from_tier {
                let facts = TraceFacts::of(trace.trace_id, &trace.spans);
                policy.survive(&facts, job.from_tier, job.tier, trace.weight)
            } else {
                Some(trace.weight)
            };
            if let Some(weight) = weight {
                writer
                    .push_weighted_trace(&trace.spans, weight)
                    .for_tenant(tenant)?;
                outcome.traces_out += 1;
            }
        }
        let replaced_by = match outcome.traces_out {
            0 => Vec::new(),
            _ => {
                let block = writer.finish().for_tenant(tenant)?;
                outcome.spans_out = block.meta.span_count;
                outcome.bytes_out = block.meta.data_size;
                upload_block_files(&self.storage, &block)
                    .await
                    .for_tenant(tenant)?;
                commit_block(&self.storage, &block.meta)
                    .await
                    .for_tenant(tenant)?;
                outcome.output = Some(Arc::new(block.meta));
                vec![out_id]
            }
        };
        for input in &job.inputs {
            self.mark(
                &layout::block_prefix(tenant, input.block_id),
                input.block_id,
                &replaced_by,
            )
            .await?;
        }
        Ok(outcome)
    }

    /// Folds a whole block into a rollup segment named after it, counting each span that no
    /// block of `fold.against` holds too.
    pub(crate) async fn fold_block(&self, fold: &Fold) -> Result<FoldOutcome> {
        let meta = &fold.block;
        let blame = || unreadable(&self.tenant, meta.block_id);
        let mut reader = BlockTraceReader::open(&self.storage, Arc::clone(meta))
            .await
            .map_err(blame())?;
        let mut counted =
            CountedSpans::new(self.storage.clone(), self.tenant.clone(), &fold.against);
        let mut rollup = Rollup::new();
        let mut outcome = FoldOutcome::default();
        let within = seconds_range(meta);
        while let Some(trace) = reader.next().await.map_err(blame())? {
            let elsewhere = counted.span_ids(&trace.trace_id).await;
            for span in &trace.spans {
                if elsewhere.contains(&span.span_id) {
                    outcome.copies += 1;
                } else {
                    rollup.add_span_within(span, self.bucket_seconds, within);
                }
            }
        }
        self.write_fold(meta.block_id, &rollup).await?;
        outcome.spans = rollup.span_count();
        outcome.lookups = counted.lookups;
        if outcome.copies > 0 {
            tracing::info!(tenant = %self.tenant, block = %meta.block_id, copies = outcome.copies, "folded a block holding copies of spans already counted; they are counted once");
        }
        Ok(outcome)
    }

    async fn write_fold(&self, block: Uuid, rollup: &Rollup) -> Result<()> {
        let (meta, data) = encode_segment(&self.tenant, block, rollup, vec![block], vec![])
            .for_tenant(&self.tenant)?;
        upload_segment(&self.storage, &meta, data)
            .await
            .for_tenant(&self.tenant)
    }

    /// Merges rollup segments into one, widening old buckets, then marks the inputs.
    pub(crate) async fn run_rollup_job(&self, job: &RollupJob, coarse_seconds: u32) -> Result<()> {
        let mut merged = Rollup::new();
        for input in &job.inputs {
            let rows = read_segment(&self.storage, input)
                .await
                .map_err(unreadable(&self.tenant, input.segment_id))?;
            merged
                .merge(&rows)
                .map_err(unreadable(&self.tenant, input.segment_id))?;
        }
        let merged = merged
            .coarsened(coarse_seconds, job.coarse_before)
            .for_tenant(&self.tenant)?;
        let inputs: Vec<Uuid> = job.inputs.iter().map(|s| s.segment_id).collect();
        let out = Uuid::now_v7();
        let (meta, data) = encode_segment(&self.tenant, out, &merged, vec![], inputs.clone())
            .for_tenant(&self.tenant)?;
        upload_segment(&self.storage, &meta, data)
            .await
            .for_tenant(&self.tenant)?;
        for id in inputs {
            self.mark(&layout::rollup_prefix(&self.tenant, id), id, &[out])
                .await?;
        }
        Ok(())
    }

    /// Writes an entry's marker.
    pub(crate) async fn mark(&self, prefix: &Path, id: Uuid, replaced_by: &[Uuid]) -> Result<()> {
        let marker = CompactedMarker {
            id,
            compacted_at: self.now,
            replaced_by: replaced_by.to_vec(),
        };
        mark_compacted(&self.storage, prefix, &marker)
            .await
            .for_tenant(&self.tenant)
    }
}
