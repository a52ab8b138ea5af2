//! Request, error and latency figures per operation from the tenant's rollups, which outlive
//! the raw spans (see `schemas/rollup-v1.md`). Counts are exact for every span the compactor has
//! folded (a block is folded within a compaction cycle of reaching the bucket); quantiles are
//! within the sketch's relative accuracy.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use strata_block::catalog::{list_entries, superseded};
use strata_block::{RollupCell, RollupMeta, layout, read_segment, read_segment_meta};
use strata_model::TenantId;
use uuid::Uuid;

use crate::error::Result;
use crate::trace_by_id::Querier;

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRequest {
    /// Only this `service.name`; every service when `None`.
    pub service: Option<String>,
    /// Only this span name.
    pub name: Option<String>,
    /// Buckets starting at or after this.
    pub start: DateTime<Utc>,
    /// Buckets starting before this.
    pub end: DateTime<Utc>,
}

/// The figures of one operation (service, span name, span kind) over the range.
#[derive(Debug, Clone)]
pub struct OperationStats {
    /// `service.name`.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Span kind code.
    pub kind: i32,
    /// Spans, errors, duration sum and the merged duration sketch.
    pub cell: RollupCell,
}

/// The answer to a [`StatsRequest`].
#[derive(Debug, Clone)]
pub struct StatsResult {
    /// Per operation, by service then name then kind.
    pub operations: Vec<OperationStats>,
    /// Rollup segments read.
    pub segments_read: usize,
    /// Narrowest bucket seen, seconds (the time resolution of the answer).
    pub bucket_seconds: u32,
    /// Set when segments could not be read, so the figures may be short.
    pub partial: Option<String>,
}

impl Querier {
    /// Figures per operation for `tenant` from its rollups.
    pub async fn stats(&self, tenant: &TenantId, request: &StatsRequest) -> Result<StatsResult> {
        let (segments, unreadable_metas) = self.live_segments(tenant).await?;
        let (start, end) = (request.start.timestamp(), request.end.timestamp());
        let wanted: Vec<Arc<RollupMeta>> = segments
            .into_iter()
            .filter(|s| s.start_time.timestamp() < end && s.end_time.timestamp() > start)
            .collect();
        let storage = self.storage.clone();
        let read: Vec<_> = futures::stream::iter(wanted.iter().cloned())
            .map(|meta| {
                let storage = storage.clone();
                async move {
                    // A decoder that panics on a hostile segment costs that segment only.
                    let read = AssertUnwindSafe(read_segment(&storage, &meta))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(strata_block::Error::Corrupt {
                                block: meta.segment_id.to_string(),
                                what: "rollup segment: the reader panicked".into(),
                            })
                        });
                    (meta.segment_id, read)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut operations: BTreeMap<(String, String, i32), RollupCell> = BTreeMap::new();
        let mut bucket_seconds = u32::MAX;
        let mut failed = 0usize;
        for (segment, rollup) in read {
            let rollup = match rollup {
                Ok(rollup) => rollup,
                Err(e) => {
                    // Compacted away since it was listed: its rows are in its replacement,
                    // which this answer may miss too; either way the figures may be short.
                    failed += 1;
                    self.metrics.segment_errors.inc();
                    tracing::warn!(%tenant, %segment, error = %e, "could not read a rollup segment; answering without it");
                    continue;
                }
            };
            for (key, cell) in rollup.rows() {
                if key.bucket_start < start
                    || key.bucket_start >= end
                    || request.service.as_ref().is_some_and(|s| *s != key.service)
                    || request.name.as_ref().is_some_and(|n| *n != key.name)
                {
                    continue;
                }
                bucket_seconds = bucket_seconds.min(key.bucket_seconds);
                let op = (key.service.clone(), key.name.clone(), key.kind);
                match operations.get_mut(&op) {
                    Some(total) => total.merge(cell)?,
                    None => {
                        operations.insert(op, cell.clone());
                    }
                }
            }
        }
        Ok(StatsResult {
            partial: (failed + unreadable_metas > 0).then(|| {
                format!(
                    "{} rollup segments could not be read; the figures may be short",
                    failed + unreadable_metas
                )
            }),
            operations: operations
                .into_iter()
                .map(|((service, name, kind), cell)| OperationStats {
                    service,
                    name,
                    kind,
                    cell,
                })
                .collect(),
            segments_read: wanted.len(),
            bucket_seconds: if bucket_seconds == u32::MAX {
                0
            } else {
                bucket_seconds
            },
        })
    }

    /// The tenant's live rollup segments (one listing; metas read once and cached), and how
    /// many segments' metas could not be read.
    async fn live_segments(&self, tenant: &TenantId) -> Result<(Vec<Arc<RollupMeta>>, usize)> {
        let entries = list_entries(&self.storage, tenant, layout::ROLLUPS_DIR).await?;
        let mut unreadable_metas = 0;
        let mut metas: Vec<Arc<RollupMeta>> = Vec::new();
        let mut marked: Vec<Uuid> = Vec::new();
        for (id, entry) in &entries {
            if entry.has_marker {
                marked.push(*id);
            }
            if !entry.has_meta {
                continue;
            }
            let cached = self.segment_metas.lock().get(id).cloned();
            let meta = match cached {
                Some(meta) => meta,
                None => match read_segment_meta(&self.storage, tenant, *id).await {
                    Ok(meta) => {
                        let meta = Arc::new(meta);
                        self.segment_metas.lock().insert(*id, Arc::clone(&meta));
                        meta
                    }
                    Err(strata_block::Error::Storage(e)) if e.is_not_found() => continue,
                    Err(e) => {
                        unreadable_metas += 1;
                        self.metrics.segment_errors.inc();
                        tracing::warn!(%tenant, segment = %id, error = %e, "could not read a rollup segment's meta.json; answering without it");
                        continue;
                    }
                },
            };
            metas.push(meta);
        }
        let gone = superseded(marked, metas.iter().map(|m| m.compacted_from.as_slice()));
        let mut cache = self.segment_metas.lock();
        cache.retain(|id, _| entries.contains_key(id));
        let live = metas
            .into_iter()
            .filter(|m| !gone.contains(&m.segment_id))
            .collect();
        Ok((live, unreadable_metas))
    }
}
