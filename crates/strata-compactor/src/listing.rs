//! Listing a tenant into the planner's [`TenantView`]: one listing of its blocks and one of its
//! rollup segments, each `meta.json` and marker read once (they are immutable). An object that
//! cannot be read is counted and logged and never stops the listing: a meta that cannot be
//! parsed makes its entry "unparsable" (deleted only once past retention), a meta the store
//! fails to return leaves the entry out of this cycle, and a marker that cannot be read still
//! means "replaced".

use std::sync::Arc;

use chrono::{DateTime, Utc};
use strata_block::catalog::{list_entries, read_marker};
use strata_block::{BlockMeta, RollupMeta, layout, read_segment_meta};
use strata_model::TenantId;
use strata_storage::Path;
use uuid::Uuid;

use crate::error::{ForTenant, Result};
use crate::metrics::Object;
use crate::planner::TenantView;
use crate::runner::{Compactor, Listing};

/// What reading a `meta.json` gave.
enum MetaRead<T> {
    Read(Arc<T>),
    /// It exists but cannot be parsed, or names another entry.
    Unparsable,
    /// The store failed; try again next cycle.
    Unavailable,
}

impl Compactor {
    /// Lists a tenant's blocks and segments, reading the metas and markers not seen before;
    /// entries that could not be read lately are named as such for the planner.
    pub(crate) async fn list(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<Listing> {
        let blocks = list_entries(&self.storage, tenant, layout::BLOCKS_DIR)
            .await
            .for_tenant(tenant)?;
        let segments = list_entries(&self.storage, tenant, layout::ROLLUPS_DIR)
            .await
            .for_tenant(tenant)?;
        let unreadable = self
            .unreadable
            .planned_around(tenant, now, self.config.unreadable_retry);
        let mut view = TenantView::default();
        for (id, entry) in &blocks {
            if entry.has_meta {
                match self.block_meta(tenant, *id).await {
                    MetaRead::Read(meta) => view.blocks.push(meta),
                    MetaRead::Unparsable => {
                        view.unparsable.insert(*id);
                    }
                    MetaRead::Unavailable => {}
                }
            }
            if entry.has_marker {
                let prefix = layout::block_prefix(tenant, *id);
                view.marked
                    .insert(*id, self.marker_time(&prefix, *id, now).await);
            }
            if !entry.has_meta && !entry.has_marker {
                view.incomplete
                    .insert(*id, entry.last_modified().unwrap_or(now));
            }
            if unreadable.contains(id) {
                view.unreadable.insert(*id);
            }
        }
        for (id, entry) in &segments {
            if entry.has_meta {
                match self.segment_meta(tenant, *id).await {
                    MetaRead::Read(meta) => view.segments.push(meta),
                    MetaRead::Unparsable => {
                        view.segments_unparsable.insert(*id);
                    }
                    MetaRead::Unavailable => {}
                }
            }
            if entry.has_marker {
                let prefix = layout::rollup_prefix(tenant, *id);
                view.segments_marked
                    .insert(*id, self.marker_time(&prefix, *id, now).await);
            }
            if !entry.has_meta && !entry.has_marker {
                view.segments_incomplete
                    .insert(*id, entry.last_modified().unwrap_or(now));
            }
            if unreadable.contains(id) {
                view.segments_unreadable.insert(*id);
            }
        }
        Ok(Listing {
            view,
            blocks,
            segments,
        })
    }

    /// Counts an unparsable meta the first time it is found.
    fn found_unparsable(&self, object: Object, id: Uuid) -> bool {
        let first = self.unparsable.lock().insert(id);
        if first {
            self.metrics.unreadable(object);
        }
        first
    }

    async fn block_meta(&self, tenant: &TenantId, id: Uuid) -> MetaRead<BlockMeta> {
        if let Some(meta) = self.metas.lock().get(&id) {
            return MetaRead::Read(Arc::clone(meta));
        }
        if self.unparsable.lock().contains(&id) {
            return MetaRead::Unparsable;
        }
        let path = layout::meta_path(tenant, id);
        let read = self
            .storage
            .get_at_most(&path, strata_block::catalog::MAX_SMALL_OBJECT_BYTES);
        let parsed = match read.await {
            Ok(bytes) => BlockMeta::parse(&bytes, path.as_ref()),
            Err(e) if e.is_not_found() || e.is_backend_failure() => {
                // Gone since the listing (deleted) or the store failed: next cycle decides.
                if !e.is_not_found() {
                    tracing::warn!(%tenant, block = %id, error = %e, "cannot read meta.json; leaving the block alone this cycle");
                }
                return MetaRead::Unavailable;
            }
            // Too large to be a meta.
            Err(e) => Err(e.into()),
        };
        match parsed {
            Ok(meta) if meta.block_id == id && meta.tenant == tenant.as_str() => {
                let meta = Arc::new(meta);
                self.metas.lock().insert(id, Arc::clone(&meta));
                MetaRead::Read(meta)
            }
            parsed => {
                if self.found_unparsable(Object::BlockMeta, id) {
                    let error = match parsed {
                        Ok(_) => "it names another block or tenant".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(%tenant, block = %id, %error, "meta.json cannot be used; the block is left alone until its ID is past retention");
                }
                MetaRead::Unparsable
            }
        }
    }

    async fn segment_meta(&self, tenant: &TenantId, id: Uuid) -> MetaRead<RollupMeta> {
        if let Some(meta) = self.segment_metas.lock().get(&id) {
            return MetaRead::Read(Arc::clone(meta));
        }
        if self.unparsable.lock().contains(&id) {
            return MetaRead::Unparsable;
        }
        match read_segment_meta(&self.storage, tenant, id).await {
            Ok(meta) => {
                let meta = Arc::new(meta);
                self.segment_metas.lock().insert(id, Arc::clone(&meta));
                MetaRead::Read(meta)
            }
            Err(e) if e.is_not_found() || e.is_storage_failure() => {
                if !e.is_not_found() {
                    tracing::warn!(%tenant, segment = %id, error = %e, "cannot read a rollup segment's meta.json; leaving it alone this cycle");
                }
                MetaRead::Unavailable
            }
            Err(e) => {
                if self.found_unparsable(Object::SegmentMeta, id) {
                    tracing::warn!(%tenant, segment = %id, error = %e, "a rollup segment's meta.json cannot be used; it is left alone until its ID is past rollups_for");
                }
                MetaRead::Unparsable
            }
        }
    }

    /// When the entry was marked. A marker that cannot be parsed still means "replaced", its
    /// grace starting `now` (the cycle's clock); one the store fails to return counts as marked
    /// `now` too, and is read again next cycle.
    async fn marker_time(&self, prefix: &Path, id: Uuid, now: DateTime<Utc>) -> DateTime<Utc> {
        if let Some(at) = self.markers.lock().get(&id) {
            return *at;
        }
        match read_marker(&self.storage, prefix).await {
            Ok(marker) => {
                self.markers.lock().insert(id, marker.compacted_at);
                marker.compacted_at
            }
            Err(e) if e.is_not_found() || e.is_storage_failure() => {
                if !e.is_not_found() {
                    tracing::warn!(entry = %prefix, error = %e, "cannot read compacted.json; taking the entry as marked now");
                }
                now
            }
            Err(e) => {
                let at = now;
                self.markers.lock().insert(id, at);
                self.metrics.unreadable(Object::Marker);
                tracing::warn!(entry = %prefix, error = %e, "compacted.json cannot be parsed; the entry counts as replaced, its grace starting now");
                at
            }
        }
    }
}
