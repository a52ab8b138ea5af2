//! Where a tenant's objects live in the bucket:
//! - `<tenant>/blocks/<block-id>/{data.parquet, bloom-<n>, tags.json, meta.json, compacted.json}`
//! - `<tenant>/rollups/<segment-id>/{data.parquet, meta.json, compacted.json}`
//! - `<tenant>/index.json.zst`, the tenant index the compactor writes.

use strata_model::TenantId;
use strata_storage::Path;
use uuid::Uuid;

/// Name of the Parquet object.
pub const DATA_FILE: &str = "data.parquet";
/// Name of the meta object.
pub const META_FILE: &str = "meta.json";
/// Name of the tag summary object in a block.
pub const TAGS_FILE: &str = "tags.json";
/// Name of the marker of a compacted (replaced or dropped) block or rollup segment.
pub const COMPACTED_FILE: &str = "compacted.json";
/// Directory under a tenant that holds its blocks.
pub const BLOCKS_DIR: &str = "blocks";
/// Directory under a tenant that holds its rollup segments.
pub const ROLLUPS_DIR: &str = "rollups";
/// Name of the tenant index object.
pub const INDEX_FILE: &str = "index.json.zst";

/// `<tenant>/index.json.zst`.
pub fn index_path(tenant: &TenantId) -> Path {
    Path::from_iter([tenant.as_str(), INDEX_FILE])
}

/// `<tenant>/rollups/<segment-id>`.
pub fn rollup_prefix(tenant: &TenantId, segment: Uuid) -> Path {
    Path::from_iter([tenant.as_str(), ROLLUPS_DIR, &segment.to_string()])
}

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
