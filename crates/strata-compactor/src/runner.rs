//! The compactor's loop: per tenant, list the bucket into a [`TenantView`], plan, run the plan,
//! write the tenant index. Thin around the pure planner; `now` is passed in so tests age data
//! with an injected clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use strata_block::catalog::{ListedEntry, delete_entry, list_entries, read_marker};
use strata_block::{
    BlockConfig, BlockMeta, INDEX_FORMAT_VERSION, RollupMeta, TenantIndex, layout,
    read_segment_meta, write_index,
};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::config::{CompactorConfig, RetentionConfig};
use crate::error::{Error, ForTenant, Result};
use crate::jobs::{JobContext, JobOutcome};
use crate::metrics::CompactorMetrics;
use crate::planner::{Job, Plan, TenantView, plan};

/// A hook called at each step where a compactor could die; returning true stops the cycle
/// there with [`Error::Stopped`]. For fault-injection tests.
pub type FaultHook = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The fault hook, if any.
#[derive(Clone, Default)]
pub struct Checkpoints(Option<FaultHook>);

impl Checkpoints {
    pub(crate) fn reach(&self, step: &str) -> Result<()> {
        match &self.0 {
            Some(hook) if hook(step) => Err(Error::Stopped(step.to_owned())),
            _ => Ok(()),
        }
    }
}

/// What one cycle did, all tenants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// Block jobs run.
    pub jobs: u64,
    /// Blocks folded on their own.
    pub folds: u64,
    /// Blocks dropped by retention.
    pub drops: u64,
    /// Spans read by jobs.
    pub spans_in: u64,
    /// Spans written by jobs.
    pub spans_out: u64,
    /// Bytes read by jobs.
    pub bytes_in: u64,
    /// Bytes written by jobs.
    pub bytes_out: u64,
    /// Rollup merges run.
    pub rollup_jobs: u64,
    /// Rollup segments dropped by `rollups_for`.
    pub rollup_drops: u64,
    /// Entries (blocks and segments) deleted.
    pub deleted: u64,
    /// Markers written for replaced entries a stopped compactor left unmarked.
    pub recovered_marks: u64,
}

/// Runs compaction cycles over one bucket.
pub struct Compactor {
    storage: Storage,
    config: CompactorConfig,
    retention: RetentionConfig,
    block_config: BlockConfig,
    checkpoints: Checkpoints,
    metrics: CompactorMetrics,
    metas: Mutex<HashMap<Uuid, Arc<BlockMeta>>>,
    segment_metas: Mutex<HashMap<Uuid, Arc<RollupMeta>>>,
    markers: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

/// A tenant's listing: the planner's view plus the objects of each entry, for deletion.
struct Listing {
    view: TenantView,
    blocks: BTreeMap<Uuid, ListedEntry>,
    segments: BTreeMap<Uuid, ListedEntry>,
}

impl Compactor {
    /// A compactor; `config` and `retention` must have passed `validate()`.
    pub fn new(
        storage: Storage,
        config: CompactorConfig,
        retention: RetentionConfig,
        block_config: BlockConfig,
        metrics: CompactorMetrics,
    ) -> Self {
        Self {
            storage,
            config,
            retention,
            block_config,
            checkpoints: Checkpoints::default(),
            metrics,
            metas: Mutex::new(HashMap::new()),
            segment_metas: Mutex::new(HashMap::new()),
            markers: Mutex::new(HashMap::new()),
        }
    }

    /// Installs a fault-injection hook (tests).
    pub fn with_fault_hook(mut self, hook: FaultHook) -> Self {
        self.checkpoints = Checkpoints(Some(hook));
        self
    }

    /// Runs a cycle every `compactor.cycle` until `shutdown` resolves. A failed cycle is logged
    /// and retried at the next tick; a cycle in progress is abandoned at shutdown, which is safe.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.config.cycle);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                result = self.run_cycle(Utc::now()) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "compaction cycle failed; retrying next cycle");
                    }
                }
            }
        }
    }

    /// One cycle over every tenant, as of `now`. A tenant that fails does not stop the others;
    /// the first error is returned after all were tried.
    pub async fn run_cycle(&self, now: DateTime<Utc>) -> Result<CycleReport> {
        let started = Instant::now();
        let tenants = self
            .storage
            .list_dirs(&Path::from(""))
            .await
            .map_err(|e| Error::Block {
                tenant: "*".into(),
                source: Box::new(e.into()),
            })?;
        let mut report = CycleReport::default();
        let mut first_error = None;
        for name in tenants {
            let Ok(tenant) = TenantId::new(&name) else {
                continue;
            };
            match self.tenant_cycle(&tenant, now, &mut report).await {
                Ok(()) => {}
                Err(e @ Error::Stopped(_)) => return Err(e),
                Err(e) => {
                    self.metrics.failures.inc();
                    tracing::warn!(%tenant, error = %e, "compaction of the tenant failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        self.metrics.observe(&report, started.elapsed());
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn tenant_cycle(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<()> {
        let listing = self.list(tenant).await?;
        let policy = self.retention.policy_for(tenant.as_str());
        let plan = plan(tenant, &listing.view, &policy, &self.config, now);
        if !plan.is_empty() {
            tracing::debug!(%tenant, ?plan, "compaction plan");
            self.execute(tenant, &plan, &listing, &policy, now, report)
                .await?;
        }
        if self.config.shard == 0 {
            // The index says what a listing that began at `listed_at` (real time, not the
            // planning clock) found: readers list what was written after it.
            let listed_at = Utc::now();
            let after = if plan.is_empty() {
                listing
            } else {
                self.list(tenant).await?
            };
            self.write_index(tenant, &after, listed_at).await?;
        }
        Ok(())
    }

    async fn execute(
        &self,
        tenant: &TenantId,
        plan: &Plan,
        listing: &Listing,
        policy: &crate::retention::RetentionPolicy,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<()> {
        let ctx = JobContext {
            storage: self.storage.clone(),
            tenant: tenant.clone(),
            block_config: self.block_config.clone(),
            bucket_seconds: seconds(self.config.rollups.bucket),
            now,
            checkpoints: self.checkpoints.clone(),
        };
        // Folds and jobs touch disjoint blocks: they run side by side, `concurrent_jobs` at a
        // time, each a task of its own so decoding and encoding use every core. The first
        // failure stops the others where they are (as a crash would), which is safe.
        let mut tasks = tokio::task::JoinSet::new();
        let limit = self.config.concurrent_jobs.max(1);
        let work = plan
            .folds
            .iter()
            .map(|b| Work::Fold(Arc::clone(b)))
            .chain(plan.jobs.iter().map(|j| Work::Job(j.clone())));
        for item in work {
            while tasks.len() >= limit {
                Self::collect(&mut tasks, report).await?;
            }
            let (ctx, policy) = (ctx.clone(), policy.clone());
            tasks.spawn(async move {
                match item {
                    Work::Fold(block) => ctx.fold_block(&block).await.map(|_| None),
                    Work::Job(job) => ctx.run_job(&job, &policy).await.map(Some),
                }
            });
        }
        while !tasks.is_empty() {
            Self::collect(&mut tasks, report).await?;
        }
        for id in &plan.drops {
            ctx.mark(&layout::block_prefix(tenant, *id), *id, &[])
                .await?;
            report.drops += 1;
        }
        for mark in &plan.marks {
            ctx.mark(
                &layout::block_prefix(tenant, mark.id),
                mark.id,
                &mark.replaced_by,
            )
            .await?;
            report.recovered_marks += 1;
        }
        let coarse = seconds(self.config.rollups.coarse_bucket);
        for job in &plan.rollup_jobs {
            ctx.run_rollup_job(job, coarse).await?;
            report.rollup_jobs += 1;
        }
        for id in &plan.rollup_drops {
            ctx.mark(&layout::rollup_prefix(tenant, *id), *id, &[])
                .await?;
            report.rollup_drops += 1;
        }
        for mark in &plan.rollup_marks {
            ctx.mark(
                &layout::rollup_prefix(tenant, mark.id),
                mark.id,
                &mark.replaced_by,
            )
            .await?;
            report.recovered_marks += 1;
        }
        for (ids, entries) in [
            (&plan.deletes, &listing.blocks),
            (&plan.rollup_deletes, &listing.segments),
        ] {
            for id in ids {
                if let Some(entry) = entries.get(id) {
                    delete_entry(&self.storage, entry, |_| {
                        self.checkpoints
                            .reach(DELETING)
                            .map_err(|_| strata_block::Error::Writer(DELETING.into()))
                    })
                    .await
                    .map_err(|e| match e {
                        strata_block::Error::Writer(step) if step == DELETING => {
                            Error::Stopped(step)
                        }
                        other => Error::Block {
                            tenant: tenant.to_string(),
                            source: Box::new(other),
                        },
                    })?;
                    self.forget(*id);
                    report.deleted += 1;
                }
            }
        }
        Ok(())
    }

    /// Waits for one fold or job and adds what it did to `report`.
    async fn collect(
        tasks: &mut tokio::task::JoinSet<Result<Option<JobOutcome>>>,
        report: &mut CycleReport,
    ) -> Result<()> {
        let Some(joined) = tasks.join_next().await else {
            return Ok(());
        };
        let outcome = joined.map_err(|e| Error::Job {
            tenant: String::new(),
            inputs: Vec::new(),
            message: format!("a compaction task failed: {e}"),
        })??;
        match outcome {
            None => report.folds += 1,
            Some(outcome) => {
                report.jobs += 1;
                report.spans_in += outcome.spans_in;
                report.spans_out += outcome.spans_out;
                report.bytes_in += outcome.bytes_in;
                report.bytes_out += outcome.bytes_out;
            }
        }
        Ok(())
    }

    fn forget(&self, id: Uuid) {
        self.metas.lock().remove(&id);
        self.segment_metas.lock().remove(&id);
        self.markers.lock().remove(&id);
    }

    /// Lists a tenant's blocks and segments, reading the metas and markers not seen before.
    async fn list(&self, tenant: &TenantId) -> Result<Listing> {
        let blocks = list_entries(&self.storage, tenant, layout::BLOCKS_DIR)
            .await
            .for_tenant(tenant)?;
        let segments = list_entries(&self.storage, tenant, layout::ROLLUPS_DIR)
            .await
            .for_tenant(tenant)?;
        let mut view = TenantView::default();
        for (id, entry) in &blocks {
            if entry.has_meta
                && let Some(meta) = self.block_meta(tenant, *id).await
            {
                view.blocks.push(meta);
            }
            if entry.has_marker {
                let prefix = layout::block_prefix(tenant, *id);
                view.marked
                    .insert(*id, self.marker_time(&prefix, *id).await?);
            }
            if !entry.has_meta && !entry.has_marker {
                view.incomplete.push(*id);
            }
        }
        for (id, entry) in &segments {
            if entry.has_meta {
                match self.segment_meta(tenant, *id).await {
                    Ok(meta) => view.segments.push(meta),
                    Err(e) => {
                        tracing::warn!(%tenant, segment = %id, error = %e, "ignoring a rollup segment whose meta cannot be read")
                    }
                }
            }
            if entry.has_marker {
                let prefix = layout::rollup_prefix(tenant, *id);
                view.segments_marked
                    .insert(*id, self.marker_time(&prefix, *id).await?);
            }
            if !entry.has_meta && !entry.has_marker {
                view.segments_incomplete.push(*id);
            }
        }
        Ok(Listing {
            view,
            blocks,
            segments,
        })
    }

    async fn block_meta(&self, tenant: &TenantId, id: Uuid) -> Option<Arc<BlockMeta>> {
        if let Some(meta) = self.metas.lock().get(&id) {
            return Some(Arc::clone(meta));
        }
        let path = layout::meta_path(tenant, id);
        let meta = match self.storage.get(&path).await {
            Ok(bytes) => BlockMeta::parse(&bytes, path.as_ref()),
            Err(e) => Err(e.into()),
        };
        match meta {
            Ok(meta) if meta.block_id == id && meta.tenant == tenant.as_str() => {
                let meta = Arc::new(meta);
                self.metas.lock().insert(id, Arc::clone(&meta));
                Some(meta)
            }
            Ok(_) => {
                tracing::warn!(%path, "meta.json names another block or tenant; leaving the block alone");
                None
            }
            Err(e) => {
                tracing::warn!(%path, error = %e, "cannot read meta.json; leaving the block alone");
                None
            }
        }
    }

    async fn segment_meta(&self, tenant: &TenantId, id: Uuid) -> Result<Arc<RollupMeta>> {
        if let Some(meta) = self.segment_metas.lock().get(&id) {
            return Ok(Arc::clone(meta));
        }
        let meta = Arc::new(
            read_segment_meta(&self.storage, tenant, id)
                .await
                .for_tenant(tenant)?,
        );
        self.segment_metas.lock().insert(id, Arc::clone(&meta));
        Ok(meta)
    }

    async fn marker_time(&self, prefix: &Path, id: Uuid) -> Result<DateTime<Utc>> {
        if let Some(at) = self.markers.lock().get(&id) {
            return Ok(*at);
        }
        let at = match read_marker(&self.storage, prefix).await {
            Ok(marker) => marker.compacted_at,
            // A marker that cannot be parsed still means "replaced"; its grace starts now.
            Err(strata_block::Error::Meta { .. }) => Utc::now(),
            Err(e) => {
                return Err(Error::Block {
                    tenant: prefix.to_string(),
                    source: Box::new(e),
                });
            }
        };
        self.markers.lock().insert(id, at);
        Ok(at)
    }

    async fn write_index(
        &self,
        tenant: &TenantId,
        listing: &Listing,
        listed_at: DateTime<Utc>,
    ) -> Result<()> {
        let view = &listing.view;
        let gone = strata_block::catalog::superseded(
            view.marked.keys().copied(),
            view.blocks.iter().map(|b| b.compacted_from.as_slice()),
        );
        let segments_gone = strata_block::catalog::superseded(
            view.segments_marked.keys().copied(),
            view.segments.iter().map(|s| s.compacted_from.as_slice()),
        );
        let index = TenantIndex {
            format_version: INDEX_FORMAT_VERSION,
            tenant: tenant.to_string(),
            created_at: listed_at,
            blocks: view
                .blocks
                .iter()
                .filter(|b| !gone.contains(&b.block_id))
                .map(|b| (**b).clone())
                .collect(),
            compacted: gone.into_iter().collect(),
            rollups: view
                .segments
                .iter()
                .filter(|s| !segments_gone.contains(&s.segment_id))
                .map(|s| (**s).clone())
                .collect(),
        };
        write_index(&self.storage, &index).await.for_tenant(tenant)
    }
}

/// One unit of a cycle's parallel work.
enum Work {
    Fold(Arc<BlockMeta>),
    Job(Job),
}

/// The checkpoint before each object a deletion removes.
const DELETING: &str = "deleting";

fn seconds(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}
