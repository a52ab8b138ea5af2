//! Running a tenant's plan. Folds first, one after another (each counts only spans no block
//! counted before it holds, so two folds must not run at once); then jobs, side by side; then
//! drops, recovered marks, rollup merges, rollup drops and deletions, each on its own. Every unit of work that fails is
//! logged and counted and costs only itself: the others still run, in the same order, so the
//! crash-safety argument of the plan (an output's meta before its inputs' markers, folds
//! before anything that could drop spans) holds for each unit alone.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use strata_block::catalog::{ListedEntry, delete_entry};
use strata_block::layout;
use strata_model::TenantId;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::jobs::{JobContext, JobOutcome};
use crate::metrics::Work;
use crate::planner::{Fold, Mark, Plan};
use crate::report::CycleReport;
use crate::retention::RetentionPolicy;
use crate::runner::{Compactor, Listing, seconds};

/// What a job gave back: its inputs, and how it went.
type Finished = (Vec<Uuid>, Result<JobOutcome>);

impl Compactor {
    pub(crate) async fn execute(
        &self,
        tenant: &TenantId,
        plan: &Plan,
        listing: &Listing,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) {
        let ctx = JobContext {
            storage: self.storage.clone(),
            tenant: tenant.clone(),
            block_config: self.block_config.clone(),
            bucket_seconds: seconds(self.config.rollups.bucket),
            now,
        };
        // Folds in plan order. A fold that failed counted nothing, so later folds must not
        // take its block's spans as counted.
        let mut not_folded: HashSet<Uuid> = HashSet::new();
        for fold in &plan.folds {
            let fold = Fold {
                block: Arc::clone(&fold.block),
                against: fold
                    .against
                    .iter()
                    .filter(|b| !not_folded.contains(&b.block_id))
                    .cloned()
                    .collect(),
            };
            let result = AssertUnwindSafe(ctx.fold_block(&fold))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panicked(tenant, Work::Fold, panic.as_ref())));
            match result {
                Ok(outcome) => {
                    report.folds += 1;
                    report.fold_copies += outcome.copies;
                    report.fold_lookups += outcome.lookups;
                }
                Err(e) => {
                    not_folded.insert(fold.block.block_id);
                    self.failed(Work::Fold, tenant, &[fold.block.block_id], &e, now, report);
                }
            }
        }
        // Jobs touch disjoint blocks, all counted already: they run side by side,
        // `concurrent_jobs` at a time, each a task of its own so decoding and encoding use
        // every core.
        let mut tasks = tokio::task::JoinSet::new();
        let limit = self.config.concurrent_jobs.max(1);
        for job in plan.jobs.iter().cloned() {
            while tasks.len() >= limit {
                self.collect(&mut tasks, tenant, now, report).await;
            }
            let (ctx, policy) = (ctx.clone(), policy.clone());
            tasks.spawn(async move {
                let entries: Vec<Uuid> = job.inputs.iter().map(|b| b.block_id).collect();
                let result = AssertUnwindSafe(ctx.run_job(&job, &policy))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panicked(&ctx.tenant, Work::Job, panic.as_ref())));
                (entries, result)
            });
        }
        while !tasks.is_empty() {
            self.collect(&mut tasks, tenant, now, report).await;
        }

        for id in &plan.drops {
            match ctx.mark(&layout::block_prefix(tenant, *id), *id, &[]).await {
                Ok(()) => {
                    report.drops += 1;
                    if plan.uncounted_drops.contains(id) {
                        report.uncounted_drops += 1;
                        tracing::warn!(%tenant, block = %id, "dropped a block past retention whose data could not be read: its spans are not in the rollups");
                    }
                }
                Err(e) => self.failed(Work::Mark, tenant, &[*id], &e, now, report),
            }
        }
        self.recover_marks(&ctx, &plan.marks, true, report).await;
        let coarse = seconds(self.config.rollups.coarse_bucket);
        for job in &plan.rollup_jobs {
            match ctx.run_rollup_job(job, coarse).await {
                Ok(()) => report.rollup_jobs += 1,
                Err(e) => {
                    let ids: Vec<Uuid> = job.inputs.iter().map(|s| s.segment_id).collect();
                    self.failed(Work::RollupJob, tenant, &ids, &e, now, report);
                }
            }
        }
        for id in &plan.rollup_drops {
            match ctx
                .mark(&layout::rollup_prefix(tenant, *id), *id, &[])
                .await
            {
                Ok(()) => report.rollup_drops += 1,
                Err(e) => self.failed(Work::Mark, tenant, &[*id], &e, now, report),
            }
        }
        self.recover_marks(&ctx, &plan.rollup_marks, false, report)
            .await;
        for (ids, entries) in [
            (&plan.deletes, &listing.blocks),
            (&plan.rollup_deletes, &listing.segments),
        ] {
            for id in ids {
                if let Some(entry) = entries.get(id) {
                    self.delete(tenant, *id, entry, now, report).await;
                }
            }
        }
    }

    /// Writes the markers a stopped compactor left out.
    async fn recover_marks(
        &self,
        ctx: &JobContext,
        marks: &[Mark],
        blocks: bool,
        report: &mut CycleReport,
    ) {
        for mark in marks {
            let prefix = match blocks {
                true => layout::block_prefix(&ctx.tenant, mark.id),
                false => layout::rollup_prefix(&ctx.tenant, mark.id),
            };
            match ctx.mark(&prefix, mark.id, &mark.replaced_by).await {
                Ok(()) => report.recovered_marks += 1,
                Err(e) => self.failed(Work::Mark, &ctx.tenant, &[mark.id], &e, ctx.now, report),
            }
        }
    }

    /// Deletes one entry, unless it changed since it was listed.
    async fn delete(
        &self,
        tenant: &TenantId,
        id: Uuid,
        entry: &ListedEntry,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) {
        match delete_entry(&self.storage, entry).await {
            Ok(true) => {
                self.forget(tenant, id);
                report.deleted += 1;
            }
            Ok(false) => {
                report.deletions_deferred += 1;
                tracing::info!(%tenant, entry = %id, "not deleting an entry written to since it was listed");
            }
            Err(e) => {
                let e = Error::Block {
                    tenant: tenant.to_string(),
                    source: Box::new(e),
                };
                self.failed(Work::Delete, tenant, &[id], &e, now, report);
            }
        }
    }

    /// Waits for one job and adds what it did to `report`.
    async fn collect(
        &self,
        tasks: &mut tokio::task::JoinSet<Finished>,
        tenant: &TenantId,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) {
        let Some(joined) = tasks.join_next().await else {
            return;
        };
        let (entries, result) = match joined {
            Ok(finished) => finished,
            // Panics are caught in the task; this is a task cancelled at shutdown.
            Err(e) => (
                Vec::new(),
                Err(Error::Job {
                    tenant: tenant.to_string(),
                    inputs: Vec::new(),
                    message: format!("a compaction task did not finish: {e}"),
                }),
            ),
        };
        match result {
            Ok(outcome) => {
                report.jobs += 1;
                report.spans_in += outcome.spans_in;
                report.spans_out += outcome.spans_out;
                report.bytes_in += outcome.bytes_in;
                report.bytes_out += outcome.bytes_out;
            }
            Err(e) => self.failed(Work::Job, tenant, &entries, &e, now, report),
        }
    }
}

/// The error of a unit of work that panicked.
fn panicked(tenant: &TenantId, work: Work, panic: &(dyn std::any::Any + Send)) -> Error {
    Error::Panicked {
        tenant: tenant.to_string(),
        work: work.name().to_owned(),
        message: panic_message(panic),
    }
}

/// The message a panic carried, if it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
