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
use strata_block::catalog::{list_entries, list_entries_after, superseded, uuid_floor};
use strata_block::{BlockMeta, layout, read_index};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::error::Result;

/// Blocks made up to this long before a tenant index was written are listed again on top of
/// it, so a block cut before the index but uploaded after it is not missed.
const INDEX_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// What is known of one tenant.
#[derive(Default, Clone)]
struct TenantBlocks {
    /// Every block with a meta, live or not.
    metas: BTreeMap<Uuid, Arc<BlockMeta>>,
    /// Blocks that no longer count.
    gone: BTreeSet<Uuid>,
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
        if blocks.gone.contains(&meta.block_id) {
            return false;
        }
        blocks.gone.extend(meta.compacted_from.iter().copied());
        blocks.metas.insert(meta.block_id, meta);
        true
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
        for (tenant, blocks) in seen {
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
        Ok(TenantBlocks { metas, gone })
    }

    async fn read_meta(&self, tenant: &TenantId, id: Uuid) -> Option<Arc<BlockMeta>> {
        let path = layout::meta_path(tenant, id);
        match self.storage.get(&path).await {
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
