//! Where a block's objects live in the bucket:
//! `<tenant>/blocks/<block-id>/{data.parquet, bloom-<n>, meta.json}`.

use strata_model::TenantId;
use strata_storage::Path;
use uuid::Uuid;

/// Name of the Parquet object.
pub const DATA_FILE: &str = "data.parquet";
/// Name of the meta object.
pub const META_FILE: &str = "meta.json";
/// Name of the tag summary object in a block.
pub const TAGS_FILE: &str = "tags.json";
/// Directory under a tenant that holds its blocks.
pub const BLOCKS_DIR: &str = "blocks";

/// `<tenant>/blocks`.
pub fn blocks_prefix(tenant: &TenantId) -> Path {
    Path::from_iter([tenant.as_str(), BLOCKS_DIR])
}

/// `<tenant>/blocks/<block-id>`.
pub fn block_prefix(tenant: &TenantId, block: Uuid) -> Path {
    Path::from_iter([tenant.as_str(), BLOCKS_DIR, &block.to_string()])
}

/// `<tenant>/blocks/<block-id>/data.parquet`.
pub fn data_path(tenant: &TenantId, block: Uuid) -> Path {
    block_prefix(tenant, block).join(DATA_FILE)
}

/// `<tenant>/blocks/<block-id>/meta.json`.
pub fn meta_path(tenant: &TenantId, block: Uuid) -> Path {
    block_prefix(tenant, block).join(META_FILE)
}

/// `<tenant>/blocks/<block-id>/tags.json`.
pub fn tags_path(tenant: &TenantId, block: Uuid) -> Path {
    block_prefix(tenant, block).join(TAGS_FILE)
}

/// `<tenant>/blocks/<block-id>/bloom-<shard>`.
pub fn bloom_path(tenant: &TenantId, block: Uuid, shard: u32) -> Path {
    block_prefix(tenant, block).join(format!("bloom-{shard}"))
}
