//! Strata's block format: how traces are laid out on object storage and read back.
//!
//! A block is one immutable directory `<tenant>/blocks/<block-id>/` holding `data.parquet`
//! (one row per span, sorted by trace ID, zstd, with statistics and a page index), `bloom-<n>`
//! shards over its trace IDs, and `meta.json`, written last. A block without `meta.json` does not
//! exist to readers. The Parquet schema is documented in `schemas/block-v1.md`.
//!
//! This crate is for encoding and decoding blocks and naming their objects. It knows nothing of
//! TraceQL, the WAL or the network: queries reach it as plain requests.

mod attrs;
mod bloom;
pub mod catalog;
mod columns;
mod error;
pub mod layout;
mod lookup;
mod meta;
mod read;
pub mod rollup;
mod rollup_file;
mod scan;
pub mod schema;
mod tags;
mod tenant_index;
mod traces;
mod writer;

pub use bloom::{BloomMeta, BloomShard, MAX_SHARDS, build_shards, shard_for};
pub use error::{Error, Result};
pub use lookup::{BlockFile, ReadStats, open_block_file, read_bloom_shard, read_trace};
pub use meta::{BlockMeta, RowGroupMeta, time_from_nanos};
pub use read::{read_spans, spans_from_batch};
pub use rollup::{Rollup, RollupCell, RollupKey, RollupMeta, SKETCH_RELATIVE_ACCURACY};
pub use rollup_file::{
    decode_segment, encode_segment, read_segment, read_segment_meta, rollup_col, rollup_schema,
    upload_segment,
};
pub use scan::{
    Prune, PruneOp, PruneValue, ScanCounts, ScannedGroup, read_rows, scan_block, traces_to_batch,
};
pub use tags::{
    MAX_VALUE_BYTES, MAX_VALUES_PER_TAG, TagSummary, TagSummaryBuilder, TagValue, TagValues,
};
pub use tenant_index::{INDEX_FORMAT_VERSION, TenantIndex, read_index, write_index};
pub use traces::{BlockTraceReader, StoredTrace, TraceMerge, traces_from_batch};
pub use writer::{
    BlockConfig, BlockIdentity, BlockWriter, EncodedBlock, TimeBounds, commit_block, encode_block,
    upload_block, upload_block_files, writer_properties,
};
