//! The compactor's loop: per tenant, list the bucket into a [`TenantView`], plan, run the plan,
//! write the tenant index. Thin around the pure planner; `now` is passed in so tests age data
//! with an injected clock.
//!
//! One bad object costs only itself: every unit of work (a fold, a job, a mark, a rollup merge,
//! a deletion, the index) fails alone, is logged and counted, and the cycle goes on; an entry
//! that could not be read is remembered ([`UnreadableEntries`]) and planned around.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use strata_block::catalog::ListedEntry;
use strata_block::{
    BlockConfig, BlockMeta, INDEX_FORMAT_VERSION, RollupMeta, TenantIndex, write_index,
};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::config::{CompactorConfig, RetentionConfig};
use crate::error::{Error, ForTenant, Result};
use crate::metrics::{CompactorMetrics, Work};
use crate::planner::{TenantView, plan};
use crate::report::CycleReport;
use crate::unreadable::UnreadableEntries;

/// A tenant's listing: the planner's view plus the objects of each entry, for deletion.
pub(crate) struct Listing {
    pub(crate) view: TenantView,
    pub(crate) blocks: BTreeMap<Uuid, ListedEntry>,
    pub(crate) segments: BTreeMap<Uuid, ListedEntry>,
}

/// Runs compaction cycles over one bucket.
pub struct Compactor {
    pub(crate) storage: Storage,
    pub(crate) config: CompactorConfig,
    retention: RetentionConfig,
    pub(crate) block_config: BlockConfig,
    pub(crate) metrics: CompactorMetrics,
    pub(crate) metas: Mutex<HashMap<Uuid, Arc<BlockMeta>>>,
    pub(crate) segment_metas: Mutex<HashMap<Uuid, Arc<RollupMeta>>>,
    pub(crate) markers: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    /// Entries whose `meta.json` cannot be parsed (immutable, so remembered once found).
    pub(crate) unparsable: Mutex<std::collections::HashSet<Uuid>>,
    pub(crate) unreadable: UnreadableEntries,
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
            metrics,
            metas: Mutex::new(HashMap::new()),
            segment_metas: Mutex::new(HashMap::new()),
            markers: Mutex::new(HashMap::new()),
            unparsable: Mutex::new(std::collections::HashSet::new()),
            unreadable: UnreadableEntries::default(),
        }
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

    /// One cycle over every tenant, as of `now`. Work that fails is logged, counted (in the
    /// report and the metrics) and left for a later cycle; the rest goes on. A tenant that
    /// cannot be listed does not stop the others; the first such error is returned after all
    /// were tried.
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
            if let Err(e) = self.tenant_cycle(&tenant, now, &mut report).await {
                self.metrics.failures.inc();
                tracing::warn!(%tenant, error = %e, "compaction of the tenant failed");
                first_error.get_or_insert(e);
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
        let listing = self.list(tenant, now).await?;
        let policy = self.retention.policy_for(tenant.as_str());
        let plan = plan(tenant, &listing.view, &policy, &self.config, now);
        if !plan.is_empty() {
            tracing::debug!(%tenant, ?plan, "compaction plan");
            self.execute(tenant, &plan, &listing, &policy, now, report)
                .await;
        }
        if self.config.shard == 0 {
            // Whatever failed above, the index is written: readers list what came after it.
            // It says what a listing that began at `listed_at` (real time, not the planning
            // clock) found.
            let listed_at = Utc::now();
            let written = async {
                let after = if plan.is_empty() {
                    listing
                } else {
                    self.list(tenant, now).await?
                };
                self.write_index(tenant, &after, listed_at).await
            };
            if let Err(e) = written.await {
                self.failed(Work::Index, tenant, &[], &e, now, report);
            }
        }
        Ok(())
    }

    /// Counts and logs a unit of work that failed, and remembers the entry it blames.
    pub(crate) fn failed(
        &self,
        work: Work,
        tenant: &TenantId,
        ids: &[Uuid],
        error: &Error,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) {
        report.failed += 1;
        self.metrics.work_failed(work);
        tracing::warn!(%tenant, work = work.name(), entries = ?ids, error = %error, "compaction work failed; the rest of the cycle goes on");
        if let Some((entry, cause)) = error.blames() {
            if self.unreadable.record(tenant, entry, cause, now) {
                self.metrics.unreadable(work.object());
                tracing::warn!(%tenant, %entry, retry_after = ?self.config.unreadable_retry, "an entry cannot be read; compacting around it");
            }
        } else if matches!(error, Error::Panicked { .. }) {
            // Which input made it panic is not known: each is planned around for a while, so
            // at least the rest of the tenant is not held up every cycle.
            for id in ids {
                self.unreadable
                    .record(tenant, *id, crate::unreadable::Cause::Data, now);
            }
        }
    }

    pub(crate) fn forget(&self, tenant: &TenantId, id: Uuid) {
        self.metas.lock().remove(&id);
        self.segment_metas.lock().remove(&id);
        self.markers.lock().remove(&id);
        self.unparsable.lock().remove(&id);
        self.unreadable.forget(tenant, id);
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

pub(crate) fn seconds(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
