//! The blocks each tenant has, as listed in object storage: refreshed by polling, with each
//! block's `meta.json` read once (blocks are immutable). A block whose `meta.json` is missing is
//! still being written, or was abandoned, and does not exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::RwLock;
use strata_block::{BlockMeta, layout};
use strata_model::TenantId;
use strata_storage::{Path, Storage};
use uuid::Uuid;

use crate::error::Result;

/// Blocks per tenant.
pub struct Blocklist {
    storage: Storage,
    tenants: RwLock<HashMap<TenantId, BTreeMap<Uuid, Arc<BlockMeta>>>>,
}

impl Blocklist {
    /// An empty blocklist over `storage`; call [`Blocklist::poll`] to fill it.
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The tenant's blocks, oldest first.
    pub fn blocks(&self, tenant: &TenantId) -> Vec<Arc<BlockMeta>> {
        self.tenants
            .read()
            .get(tenant)
            .map(|blocks| blocks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every tenant with at least one block.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Blocks known, all tenants.
    pub fn len(&self) -> usize {
        self.tenants.read().values().map(BTreeMap::len).sum()
    }

    /// Whether no block is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a block whose meta is known already (one this process uploaded).
    pub fn add(&self, meta: Arc<BlockMeta>) {
        let Ok(tenant) = TenantId::new(&meta.tenant) else {
            return;
        };
        self.tenants
            .write()
            .entry(tenant)
            .or_default()
            .insert(meta.block_id, meta);
    }

    /// Lists every tenant's blocks, reads the metas it has not seen, and forgets blocks that are
    /// gone. A tenant or block that cannot be listed keeps what was known of it.
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

    async fn poll_tenant(&self, tenant: &TenantId) -> Result<BTreeMap<Uuid, Arc<BlockMeta>>> {
        let ids: Vec<Uuid> = self
            .storage
            .list_dirs(&layout::blocks_prefix(tenant))
            .await?
            .iter()
            .filter_map(|d| Uuid::parse_str(d).ok())
            .collect();
        let known = self.tenants.read().get(tenant).cloned().unwrap_or_default();
        let mut blocks = BTreeMap::new();
        let mut unknown = Vec::new();
        for id in ids {
            match known.get(&id) {
                Some(meta) => {
                    blocks.insert(id, Arc::clone(meta));
                }
                None => unknown.push(id),
            }
        }
        let fetched: Vec<Option<Arc<BlockMeta>>> = futures::stream::iter(unknown)
            .map(|id| self.read_meta(tenant, id))
            .buffer_unordered(16)
            .collect()
            .await;
        for meta in fetched.into_iter().flatten() {
            blocks.insert(meta.block_id, meta);
        }
        Ok(blocks)
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
            // No meta yet: the block is being written (or its writer died); it does not exist.
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(%path, error = %e, "could not read meta.json; will retry at the next poll");
                None
            }
        }
    }
}
