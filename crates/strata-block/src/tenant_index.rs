//! The tenant index, `<tenant>/index.json.zst`: the live blocks and rollup segments as the
//! compactor last saw them, and the IDs it marked compacted, so a querier reads one object
//! instead of listing the bucket. It is a cache of what the bucket holds, never the truth: a
//! reader adds the entries made after it (UUIDv7 IDs sort by time, so one listing from an offset
//! finds them) and applies the same supersession rules as a full listing.

use std::io::Read;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_model::TenantId;
use strata_storage::Storage;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::layout::index_path;
use crate::meta::BlockMeta;
use crate::rollup::RollupMeta;

/// The tenant index format version this build writes and reads.
pub const INDEX_FORMAT_VERSION: u32 = 1;
/// Largest decompressed index accepted (a guard against a corrupt or hostile object).
const MAX_INDEX_BYTES: u64 = 512 << 20;

/// The contents of a tenant index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantIndex {
    /// Format version.
    pub format_version: u32,
    /// Tenant.
    pub tenant: String,
    /// When the compactor built it (its clock).
    pub created_at: DateTime<Utc>,
    /// Live blocks.
    pub blocks: Vec<BlockMeta>,
    /// Blocks marked compacted and not yet deleted.
    pub compacted: Vec<Uuid>,
    /// Live rollup segments.
    pub rollups: Vec<RollupMeta>,
}

impl TenantIndex {
    /// The zstd-compressed JSON written to storage.
    pub fn encode(&self) -> Result<Bytes> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Index {
            path: self.tenant.clone(),
            what: e.to_string(),
        })?;
        zstd::bulk::compress(&json, 3)
            .map(Bytes::from)
            .map_err(|e| Error::Index {
                path: self.tenant.clone(),
                what: e.to_string(),
            })
    }

    /// Parses an index read from `path`, which must belong to `tenant`.
    pub fn decode(bytes: &[u8], path: &str, tenant: &TenantId) -> Result<Self> {
        let bad = |what: String| Error::Index {
            path: path.to_owned(),
            what,
        };
        let decoder = zstd::stream::Decoder::new(bytes).map_err(|e| bad(e.to_string()))?;
        let mut json = Vec::new();
        decoder
            .take(MAX_INDEX_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| bad(e.to_string()))?;
        if json.len() as u64 > MAX_INDEX_BYTES {
            return Err(bad(format!("larger than {MAX_INDEX_BYTES} bytes")));
        }
        let index: Self = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if index.format_version > INDEX_FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is newer than {INDEX_FORMAT_VERSION}",
                index.format_version
            )));
        }
        if index.tenant != tenant.as_str()
            || index.blocks.iter().any(|b| b.tenant != tenant.as_str())
            || index.rollups.iter().any(|r| r.tenant != tenant.as_str())
        {
            return Err(bad("it names another tenant".into()));
        }
        Ok(index)
    }
}

/// Writes the tenant's index.
pub async fn write_index(storage: &Storage, index: &TenantIndex) -> Result<()> {
    let tenant = TenantId::new(&index.tenant).map_err(|e| Error::Index {
        path: index.tenant.clone(),
        what: e.to_string(),
    })?;
    storage.put(&index_path(&tenant), index.encode()?).await?;
    Ok(())
}

/// Reads the tenant's index; `Ok(None)` when there is none.
pub async fn read_index(storage: &Storage, tenant: &TenantId) -> Result<Option<TenantIndex>> {
    let path = index_path(tenant);
    match storage.get(&path).await {
        Ok(bytes) => TenantIndex::decode(&bytes, path.as_ref(), tenant).map(Some),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn index_round_trips_and_refuses_other_tenants_and_garbage() {
        let storage = Storage::in_memory();
        let tenant = TenantId::new("t").unwrap();
        assert!(read_index(&storage, &tenant).await.unwrap().is_none());
        let index = TenantIndex {
            format_version: INDEX_FORMAT_VERSION,
            tenant: "t".into(),
            created_at: Utc::now(),
            blocks: vec![],
            compacted: vec![Uuid::now_v7()],
            rollups: vec![],
        };
        write_index(&storage, &index).await.unwrap();
        assert_eq!(
            read_index(&storage, &tenant).await.unwrap(),
            Some(index.clone())
        );
        let other = TenantId::new("u").unwrap();
        let bytes = index.encode().unwrap();
        assert!(TenantIndex::decode(&bytes, "p", &other).is_err());
        assert!(TenantIndex::decode(b"not zstd", "p", &tenant).is_err());
        let truncated = &bytes[..bytes.len() / 2];
        assert!(TenantIndex::decode(truncated, "p", &tenant).is_err());
    }
}
