//! `meta.json`: what a block holds, written last so that a block without it does not exist.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_model::TraceId;
use uuid::Uuid;

use crate::bloom::BloomMeta;
use crate::error::{Error, Result};
use crate::schema::{FORMAT, FORMAT_VERSION};

/// One row group of `data.parquet`: the trace-ID range it covers and where its bytes are, so a
/// lookup can fetch it with one range read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowGroupMeta {
    /// Smallest trace ID in the row group, hex.
    pub min_trace_id: String,
    /// Largest trace ID in the row group, hex.
    pub max_trace_id: String,
    /// Traces in the row group.
    pub trace_count: u64,
    /// Spans (rows) in the row group.
    pub span_count: u64,
    /// Byte offset of the row group's first column chunk.
    pub offset: u64,
    /// Compressed bytes of all its column chunks (contiguous from `offset`).
    pub size: u64,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Always `strata-parquet`.
    pub format: String,
    /// Format version; readers refuse versions newer than they know.
    pub format_version: u32,
    /// Block ID: a UUIDv7, so IDs sort by creation time.
    pub block_id: Uuid,
    /// Tenant the block belongs to.
    pub tenant: String,
    /// When the block was written.
    pub created_at: DateTime<Utc>,
    /// Earliest span start in the block.
    pub start_time: DateTime<Utc>,
    /// Latest span end in the block.
    pub end_time: DateTime<Utc>,
    /// Smallest trace ID, hex.
    pub min_trace_id: String,
    /// Largest trace ID, hex.
    pub max_trace_id: String,
    /// Number of traces (rows of one trace ID).
    pub trace_count: u64,
    /// Number of spans.
    pub span_count: u64,
    /// Bytes of `data.parquet`.
    pub data_size: u64,
    /// Bytes of the Parquet footer (metadata + 8), so a reader can fetch it in one range read.
    pub footer_size: u64,
    /// Bytes of all bloom shards together.
    pub bloom_size: u64,
    /// The bloom filter's shards and sizing.
    pub bloom: BloomMeta,
    /// The row groups, in file order (ascending trace ID).
    pub row_groups: Vec<RowGroupMeta>,
    /// 0 for blocks cut by an ingester; one more than the highest input for compacted blocks.
    pub compaction_level: u32,
    /// Retention tier the block's contents were last rewritten for (0: full detail).
    pub retention_tier: u32,
    /// Blocks this one replaces: the inputs of the compaction that wrote it. Readers ignore a
    /// block that another block's `compacted_from` names, even before it is marked compacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compacted_from: Vec<Uuid>,
    /// Whether every span of the block is already counted in the tenant's rollups (true for
    /// every block a compactor writes; ingester blocks are folded into rollups by the compactor).
    #[serde(default)]
    pub rolled_up: bool,
}

impl BlockMeta {
    /// Parses and checks a `meta.json` read from `path`.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let meta: Self = serde_json::from_slice(bytes).map_err(|source| Error::Meta {
            path: path.to_owned(),
            source,
        })?;
        if meta.format != FORMAT || meta.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                block: meta.block_id.to_string(),
                format: meta.format,
                version: meta.format_version,
                supported: FORMAT,
                supported_version: FORMAT_VERSION,
            });
        }
        Ok(meta)
    }

    /// The JSON written to storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields to a Vec cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Whether `trace_id` lies within the block's trace-ID range.
    pub fn may_hold(&self, trace_id: &TraceId) -> bool {
        let hex = trace_id.to_hex();
        self.min_trace_id.as_str() <= hex.as_str() && hex.as_str() <= self.max_trace_id.as_str()
    }
}

/// Converts unix nanoseconds to a timestamp, saturating at the limits chrono can represent.
pub fn time_from_nanos(nanos: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}
