//! The live blocks of each tenant, refreshed by polling. A poll reads the tenant index the
//! compactor writes, when there is one, and lists only the blocks made since (block IDs are
//! UUIDv7 and sort by time); without an index it lists the tenant's blocks. Each `meta.json` is
//! read once (blocks are immutable). Liveness follows `strata_block::catalog`: a block without
//! `meta.json` does not exist yet, and one that is marked compacted or named in another
//! block's `compacted_from` no longer counts, so a trace is never read from a block and from
//! its replacement.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::RwLock;
use strata_block::catalog::{list_entries, list_entries_after, superseded, uuid_floor, uuid_time};
use strata_block::{BlockMeta, layout, read_index};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::error::Result;

/// Blocks made up to this long before a tenant index was written are listed again on top of
/// it, so a block cut before the index but uploaded after it is not missed.
const INDEX_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// How long a vanished block is remembered, by the time in its ID: far longer than an ingester
/// names a block among its recent uploads.
const VANISHED_MEMORY: chrono::Duration = chrono::Duration::hours(24);

/// What is known of one tenant.
#[derive(Default, Clone)]
struct TenantBlocks {
    /// Every block with a meta, live or not.
    metas: BTreeMap<Uuid, Arc<BlockMeta>>,
    /// Blocks that no longer count.
    gone: BTreeSet<Uuid>,
    /// Blocks found deleted while being read. An ingester may keep naming such a block among
    /// its recent uploads (for `ingester.recent_block_retention`) after a second compaction
    /// deleted the block that replaced it, when nothing left in the bucket says it is replaced;
    /// this keeps it from being added again. Kept for [`VANISHED_MEMORY`].
    vanished: BTreeSet<Uuid>,
}

impl TenantBlocks {
    fn live(&self) -> impl Iterator<Item = &Arc<BlockMeta>> {
        self.metas
            .values()
            .filter(|m| !self.gone.contains(&m.block_id))
    }
}

/// Blocks per tenant.
pub struct Blocklist {
    storage: Storage,
    tenants: RwLock<HashMap<TenantId, TenantBlocks>>,
}

impl Blocklist {
    /// An empty blocklist over `storage`; call [`Blocklist::poll`] to fill it.
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The tenant's live blocks, oldest first.
    pub fn blocks(&self, tenant: &TenantId) -> Vec<Arc<BlockMeta>> {
        self.tenants
            .read()
            .get(tenant)
            .map(|t| t.live().cloned().collect())
            .unwrap_or_default()
    }

    /// Every tenant with at least one block.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Live blocks known, all tenants.
    pub fn len(&self) -> usize {
        self.tenants.read().values().map(|t| t.live().count()).sum()
    }

    /// Whether no block is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a block whose meta is known already (one this process uploaded). Returns false, and
    /// adds nothing, when the block is known to be replaced.
    pub fn add(&self, meta: Arc<BlockMeta>) -> bool {
        let Ok(tenant) = TenantId::new(&meta.tenant) else {
            return false;
        };
        let mut all = self.tenants.write();
        let blocks = all.entry(tenant).or_default();
        if blocks.gone.contains(&meta.block_id) || blocks.vanished.contains(&meta.block_id) {
            return false;
        }
        blocks.gone.extend(meta.compacted_from.iter().copied());
        blocks.metas.insert(meta.block_id, meta);
        true
    }

    /// Whether the block is known to be replaced (marked, or named by another block).
    pub fn is_replaced(&self, tenant: &TenantId, block: Uuid) -> bool {
        self.tenants
            .read()
            .get(tenant)
            .is_some_and(|t| t.gone.contains(&block) || t.vanished.contains(&block))
    }

    /// Drops a block that was found deleted while a query read it; it is not added again.
    pub fn forget(&self, tenant: &TenantId, block: Uuid) {
        let mut all = self.tenants.write();
        if let Some(blocks) = all.get_mut(tenant) {
            blocks.metas.remove(&block);
            blocks.gone.remove(&block);
            blocks.vanished.insert(block);
        }
    }

    /// Refreshes every tenant, and forgets blocks that are gone. A tenant that cannot be listed
    /// keeps what was known of it.
    pub async fn poll(&self) -> Result<()> {
        let tenants = self.storage.list_dirs(&Path::from("")).await?;
        let mut seen = HashMap::new();
        for name in tenants {
            let Ok(tenant) = TenantId::new(&name) else {
                tracing::debug!(dir = %name, "ignoring a directory that is not a tenant");
                continue;
            };
            match self.poll_tenant(&tenant).await {
                Ok(blocks) => {
                    seen.insert(tenant, blocks);
                }
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "could not list the tenant's blocks; keeping the last list")
                }
            }
        }
        let mut all = self.tenants.write();
        let now = chrono::Utc::now();
        for (tenant, mut blocks) in seen {
            if let Some(before) = all.get(&tenant) {
                // Deleted data does not come back, even if this poll listed the block just
                // before it was deleted.
                blocks.vanished = before
                    .vanished
                    .iter()
                    .filter(|id| uuid_time(**id).is_none_or(|t| now - t < VANISHED_MEMORY))
                    .copied()
                    .collect();
                blocks.metas.retain(|id, _| !blocks.vanished.contains(id));
            }
            all.insert(tenant, blocks);
        }
        Ok(())
    }

    async fn poll_tenant(&self, tenant: &TenantId) -> Result<TenantBlocks> {
        let known = self.tenants.read().get(tenant).cloned().unwrap_or_default();
        let mut metas: BTreeMap<Uuid, Arc<BlockMeta>> = BTreeMap::new();
        let mut marked: Vec<Uuid> = Vec::new();
        let index = match read_index(&self.storage, tenant).await {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "ignoring an unreadable tenant index; listing instead");
                None
            }
        };
        let entries = match &index {
            Some(index) => {
                for meta in &index.blocks {
                    metas.insert(meta.block_id, Arc::new(meta.clone()));
                }
                marked.extend(index.compacted.iter().copied());
                let after = uuid_floor(index.created_at - INDEX_OVERLAP);
                list_entries_after(&self.storage, tenant, layout::BLOCKS_DIR, after).await?
            }
            None => list_entries(&self.storage, tenant, layout::BLOCKS_DIR).await?,
        };
        let mut unknown = Vec::new();
        for (id, entry) in &entries {
            if entry.has_marker {
                marked.push(*id);
            }
            if !entry.has_meta || metas.contains_key(id) {
                continue;
            }
            match known.metas.get(id) {
                Some(meta) => {
                    metas.insert(*id, Arc::clone(meta));
                }
                None => unknown.push(*id),
            }
        }
        let fetched: Vec<Option<Arc<BlockMeta>>> = futures::stream::iter(unknown)
            .map(|id| self.read_meta(tenant, id))
            .buffer_unordered(16)
            .collect()
            .await;
        for meta in fetched.into_iter().flatten() {
            metas.insert(meta.block_id, meta);
        }
        let gone = superseded(marked, metas.values().map(|m| m.compacted_from.as_slice()));
        Ok(TenantBlocks {
            metas,
            gone,
            vanished: BTreeSet::new(),
        })
    }

    async fn read_meta(&self, tenant: &TenantId, id: Uuid) -> Option<Arc<BlockMeta>> {
        let path = layout::meta_path(tenant, id);
        let read = self
            .storage
            .get_at_most(&path, strata_block::catalog::MAX_SMALL_OBJECT_BYTES);
        match read.await {
            Ok(bytes) => match BlockMeta::parse(&bytes, path.as_ref()) {
                Ok(meta) if meta.block_id == id && meta.tenant == tenant.as_str() => {
                    Some(Arc::new(meta))
                }
                Ok(_) => {
                    tracing::warn!(%path, "meta.json names another block or tenant; ignoring the block");
                    None
                }
                Err(e) => {
                    tracing::warn!(%path, error = %e, "ignoring a block with an unreadable meta.json");
                    None
                }
            },
            // No meta: the block was deleted between listing and reading; it does not exist.
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(%path, error = %e, "could not read meta.json; will retry at the next poll");
                None
            }
        }
    }
}
