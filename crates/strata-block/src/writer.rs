//! Writing a block: spans in, `data.parquet` + bloom shards + `meta.json` out.

use bytes::Bytes;
use bytesize::ByteSize;
use chrono::Utc;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use serde::Deserialize;
use strata_model::{Span, TenantId, TraceId, trace_layout};
use uuid::Uuid;

use crate::bloom::build_shards;
use crate::columns::SpanColumns;
use crate::error::{Error, Result};
use crate::meta::{BlockMeta, RowGroupMeta, time_from_nanos};
use crate::schema::{FORMAT, FORMAT_VERSION, block_schema, col};
use crate::tags::TagSummaryBuilder;

/// The `block:` section of `strata.yaml`: how blocks are encoded.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// A row group is closed before it would exceed this many spans. Default 16384.
    pub row_group_max_spans: usize,
    /// ... or this many bytes of span data as rows hold it (each span with its own copy of its
    /// resource and scope, see `Span::stored_size`). Default 64 MiB.
    pub row_group_max_bytes: ByteSize,
    /// A data page is closed after this many rows, so a lookup decodes and fetches pages of about
    /// this size rather than whole column chunks. Default 20000.
    pub page_max_rows: usize,
    /// zstd level for every column, 1 to 22. Default 3.
    pub zstd_level: i32,
    /// False-positive rate of the trace-ID bloom filter. Default 0.001.
    pub bloom_false_positive_rate: f64,
    /// Largest size of one bloom shard. Default 100 KiB.
    pub bloom_shard_max_bytes: ByteSize,
}

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            row_group_max_spans: 16_384,
            row_group_max_bytes: ByteSize::mib(64),
            page_max_rows: 20_000,
            zstd_level: 3,
            bloom_false_positive_rate: 0.001,
            bloom_shard_max_bytes: ByteSize::kib(100),
        }
    }
}

impl BlockConfig {
    /// Checks the ranges serde cannot.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.row_group_max_spans == 0 {
            return Err("block.row_group_max_spans must be above zero".into());
        }
        if self.row_group_max_bytes.as_u64() < 1024 {
            return Err("block.row_group_max_bytes must be at least 1024".into());
        }
        if self.page_max_rows == 0 {
            return Err("block.page_max_rows must be above zero".into());
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err("block.zstd_level must be between 1 and 22".into());
        }
        if !(self.bloom_false_positive_rate > 0.0 && self.bloom_false_positive_rate < 0.5) {
            return Err("block.bloom_false_positive_rate must be above 0 and below 0.5".into());
        }
        if self.bloom_shard_max_bytes.as_u64() < 1024 {
            return Err("block.bloom_shard_max_bytes must be at least 1024".into());
        }
        Ok(())
    }
}

/// A block ready to upload.
#[derive(Debug, Clone)]
pub struct EncodedBlock {
    /// Its meta.
    pub meta: BlockMeta,
    /// The Parquet file.
    pub data: Bytes,
    /// The bloom shards, `bloom-0` first.
    pub blooms: Vec<Bytes>,
    /// `tags.json`: the block's attribute names and values.
    pub tags: Bytes,
}

/// Where to put a new block and what it is.
#[derive(Debug, Clone)]
pub struct BlockIdentity {
    /// Tenant.
    pub tenant: TenantId,
    /// Block ID (use [`Uuid::now_v7`]).
    pub block_id: Uuid,
    /// Compaction level: 0 from the ingester.
    pub compaction_level: u32,
    /// Retention tier: 0 for full detail.
    pub retention_tier: u32,
    /// Blocks this one replaces (the inputs of the compaction that wrote it); empty for blocks
    /// cut by an ingester.
    pub compacted_from: Vec<Uuid>,
    /// Whether every span in the block is already counted in the tenant's rollups.
    pub rolled_up: bool,
    /// What the meta's time range may be, whatever times the spans claim (`None`: the spans'
    /// own range). A client clock (a span ending in 2262, or starting in 1970) must not decide
    /// how long a block is kept or which queries read it. The spans keep their own times.
    pub time_bounds: Option<TimeBounds>,
}

/// Bounds of a block's time range, unix nanoseconds, inclusive: the spans' range is clamped to
/// `outer` and widened to cover `inner`. An ingester gives when the spans were received as
/// `inner`, and that give or take a slack as `outer`, so a block's range always holds when its
/// data arrived (two blocks holding copies of the same spans overlap, however wrong the spans'
/// clocks); the compactor gives its inputs' union as both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// The range never reaches outside this.
    pub outer: (u64, u64),
    /// The range always covers this (it lies within `outer`).
    pub inner: (u64, u64),
}

impl TimeBounds {
    /// The range of spans from `start` to `end` under these bounds.
    pub fn apply(&self, start: u64, end: u64) -> (u64, u64) {
        let (lo, hi) = (self.outer.0, self.outer.1.max(self.outer.0));
        let start = start.clamp(lo, hi).min(self.inner.0.clamp(lo, hi));
        let end = end.clamp(lo, hi).max(self.inner.1.clamp(lo, hi));
        (start, end.max(start))
    }
}

impl BlockIdentity {
    /// A new level-0, tier-0 block as an ingester cuts it.
    pub fn fresh(tenant: TenantId) -> Self {
        Self {
            tenant,
            block_id: Uuid::now_v7(),
            compaction_level: 0,
            retention_tier: 0,
            compacted_from: Vec::new(),
            rolled_up: false,
            time_bounds: None,
        }
    }
}

struct RowGroupAcc {
    min: TraceId,
    max: TraceId,
    traces: u64,
    spans: u64,
}

/// Streams traces, in ascending trace-ID order, into one block.
pub struct BlockWriter {
    identity: BlockIdentity,
    config: BlockConfig,
    writer: ArrowWriter<Vec<u8>>,
    columns: SpanColumns,
    tags: TagSummaryBuilder,
    group_bytes: usize,
    group: Option<RowGroupAcc>,
    groups: Vec<RowGroupAcc>,
    ids: Vec<TraceId>,
    span_count: u64,
    start_min: u64,
    end_max: u64,
}

/// The Parquet writer settings of format version 1.
pub fn writer_properties(config: &BlockConfig) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(config.zstd_level).map_err(|source| Error::Parquet {
        block: "new".into(),
        source,
    })?;
    let path = |name: &str| ColumnPath::from(name);
    let mut props = WriterProperties::builder()
        // Version-1 data pages compress the repetition and definition levels with the values;
        // version 2 leaves them raw, which costs 27% more bytes on our workload
        // (docs/decisions/0002-span-per-row.md).
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(None)
        .set_data_page_row_count_limit(config.page_max_rows)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")));
    // Page-level statistics (the page index) where lookups and filters prune pages.
    for name in [
        col::TRACE_ID,
        col::TRACE_START,
        col::TRACE_DURATION,
        col::START,
        col::DURATION,
        col::NAME,
        col::STATUS_CODE,
    ] {
        props = props.set_column_statistics_enabled(path(name), EnabledStatistics::Page);
    }
    // Random 8-byte IDs gain nothing from a dictionary.
    for name in [col::SPAN_ID, col::PARENT_SPAN_ID] {
        props = props
            .set_column_dictionary_enabled(path(name), false)
            .set_column_encoding(path(name), Encoding::PLAIN);
    }
    Ok(props.build())
}

impl BlockWriter {
    /// Starts a block.
    pub fn new(identity: BlockIdentity, config: BlockConfig) -> Result<Self> {
        let props = writer_properties(&config)?;
        let writer = ArrowWriter::try_new(Vec::with_capacity(1 << 20), block_schema(), Some(props))
            .map_err(|source| Error::Parquet {
                block: identity.block_id.to_string(),
                source,
            })?;
        Ok(Self {
            identity,
            config,
            writer,
            columns: SpanColumns::new(),
            tags: TagSummaryBuilder::default(),
            group_bytes: 0,
            group: None,
            groups: Vec::new(),
            ids: Vec::new(),
            span_count: 0,
            start_min: u64::MAX,
            end_max: 0,
        })
    }

    /// Adds one trace. Its spans must share one trace ID, greater than that of the previous
    /// trace; copies of a span ID are dropped and the spans are written in tree order.
    pub fn push_trace(&mut self, spans: &[Span]) -> Result<()> {
        self.push_weighted_trace(spans, 1.0)
    }

    /// Adds one trace kept by sampling, standing for `weight` traces (at least 1), which is
    /// stored in `trace_weight` so that counts from sampled data can be scaled back.
    pub fn push_weighted_trace(&mut self, spans: &[Span], weight: f64) -> Result<()> {
        if !(weight.is_finite() && weight >= 1.0) {
            return Err(Error::Writer(format!(
                "trace weight {weight} is not a number of at least 1"
            )));
        }
        let Some(first) = spans.first() else {
            return Ok(());
        };
        let trace_id = first.trace_id;
        if spans.iter().any(|s| s.trace_id != trace_id) {
            return Err(Error::Writer(format!(
                "spans of several traces pushed as {trace_id}"
            )));
        }
        if let Some(last) = self.ids.last()
            && *last >= trace_id
        {
            return Err(Error::Writer(format!(
                "trace {trace_id} pushed after {last}: traces must come in ascending ID order"
            )));
        }
        let layout = trace_layout(spans);
        let bytes: usize = layout.order.iter().map(|&i| spans[i].stored_size()).sum();
        let count = layout.order.len();
        if self.columns.rows() > 0
            && (self.columns.rows() + count > self.config.row_group_max_spans
                || (self.group_bytes + bytes) as u64 > self.config.row_group_max_bytes.as_u64())
        {
            self.flush_row_group()?;
        }
        self.columns.push_trace(spans, &layout, weight)?;
        self.tags.add_trace(spans);
        self.group_bytes += bytes;
        let group = self.group.get_or_insert(RowGroupAcc {
            min: trace_id,
            max: trace_id,
            traces: 0,
            spans: 0,
        });
        group.max = trace_id;
        group.traces += 1;
        group.spans += count as u64;
        self.ids.push(trace_id);
        self.span_count += count as u64;
        self.start_min = self.start_min.min(layout.summary.start_unix_nano);
        self.end_max = self.end_max.max(layout.summary.end_unix_nano);
        Ok(())
    }

    /// Spans pushed so far.
    pub fn span_count(&self) -> u64 {
        self.span_count
    }

    fn flush_row_group(&mut self) -> Result<()> {
        let batch = self.columns.finish()?;
        let block = self.identity.block_id.to_string();
        let parquet_err = |source| Error::Parquet {
            block: block.clone(),
            source,
        };
        self.writer.write(&batch).map_err(parquet_err)?;
        self.writer.flush().map_err(parquet_err)?;
        self.group_bytes = 0;
        if let Some(group) = self.group.take() {
            self.groups.push(group);
        }
        Ok(())
    }

    /// Finishes the Parquet file, builds the bloom shards and the meta.
    pub fn finish(mut self) -> Result<EncodedBlock> {
        if self.ids.is_empty() {
            return Err(Error::Writer("a block needs at least one trace".into()));
        }
        if self.columns.rows() > 0 {
            self.flush_row_group()?;
        }
        let block = self.identity.block_id.to_string();
        let metadata = self.writer.finish().map_err(|source| Error::Parquet {
            block: block.clone(),
            source,
        })?;
        let data = Bytes::from(std::mem::take(self.writer.inner_mut()));
        let footer_size = footer_size(&data, &block)?;
        let row_groups = metadata
            .row_groups()
            .iter()
            .zip(&self.groups)
            .map(|(rg, acc)| {
                let ranges: Vec<(u64, u64)> = rg.columns().iter().map(|c| c.byte_range()).collect();
                let offset = ranges.iter().map(|r| r.0).min().unwrap_or(0);
                RowGroupMeta {
                    min_trace_id: acc.min.to_hex(),
                    max_trace_id: acc.max.to_hex(),
                    trace_count: acc.traces,
                    span_count: acc.spans,
                    offset,
                    size: ranges.iter().map(|r| r.1).sum(),
                }
            })
            .collect();
        let (bloom, blooms) = build_shards(
            &self.ids,
            self.config.bloom_false_positive_rate,
            usize::try_from(self.config.bloom_shard_max_bytes.as_u64()).unwrap_or(usize::MAX),
        )?;
        let (start, end) = match self.identity.time_bounds {
            Some(bounds) => bounds.apply(self.start_min, self.end_max),
            None => (self.start_min, self.end_max),
        };
        let meta = BlockMeta {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            block_id: self.identity.block_id,
            tenant: self.identity.tenant.to_string(),
            created_at: Utc::now(),
            start_time: time_from_nanos(start),
            end_time: time_from_nanos(end),
            min_trace_id: self.ids.first().map(TraceId::to_hex).unwrap_or_default(),
            max_trace_id: self.ids.last().map(TraceId::to_hex).unwrap_or_default(),
            trace_count: self.ids.len() as u64,
            span_count: self.span_count,
            data_size: data.len() as u64,
            footer_size,
            bloom_size: blooms.iter().map(|b| b.len() as u64).sum(),
            bloom,
            row_groups,
            compaction_level: self.identity.compaction_level,
            retention_tier: self.identity.retention_tier,
            compacted_from: std::mem::take(&mut self.identity.compacted_from),
            rolled_up: self.identity.rolled_up,
        };
        let tags = Bytes::from(std::mem::take(&mut self.tags).finish().to_json());
        Ok(EncodedBlock {
            meta,
            data,
            blooms,
            tags,
        })
    }
}

/// The footer length a Parquet file declares in its last 8 bytes, plus those 8 bytes.
fn footer_size(data: &[u8], block: &str) -> Result<u64> {
    let tail = data
        .len()
        .checked_sub(8)
        .and_then(|at| data.get(at..))
        .filter(|tail| &tail[4..] == b"PAR1")
        .ok_or_else(|| crate::error::corrupt(block, "parquet trailer"))?;
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    Ok(u64::from(len) + 8)
}

/// Encodes a block from traces in any order: spans are grouped by trace ID and traces sorted.
/// Copies of a trace given separately are combined.
pub fn encode_block(
    identity: BlockIdentity,
    config: BlockConfig,
    spans: impl IntoIterator<Item = Span>,
) -> Result<EncodedBlock> {
    let mut spans: Vec<Span> = spans.into_iter().collect();
    spans.sort_by_key(|s| s.trace_id);
    let mut writer = BlockWriter::new(identity, config)?;
    let mut iter = spans.into_iter().peekable();
    while let Some(first) = iter.next() {
        let id = first.trace_id;
        let mut trace = vec![first];
        while let Some(span) = iter.next_if(|s| s.trace_id == id) {
            trace.push(span);
        }
        writer.push_trace(&trace)?;
    }
    writer.finish()
}

/// Uploads a block: data first, then the bloom shards and `tags.json`, then `meta.json`, so a
/// block is visible only once everything it refers to is in place.
pub async fn upload_block(storage: &strata_storage::Storage, block: &EncodedBlock) -> Result<()> {
    upload_block_files(storage, block).await?;
    commit_block(storage, &block.meta).await
}

/// Uploads everything of a block but its `meta.json`: the block does not exist yet.
pub async fn upload_block_files(
    storage: &strata_storage::Storage,
    block: &EncodedBlock,
) -> Result<()> {
    let tenant = TenantId::new(&block.meta.tenant)
        .map_err(|e| Error::Writer(format!("block tenant: {e}")))?;
    let id = block.meta.block_id;
    storage
        .put(&crate::layout::data_path(&tenant, id), block.data.clone())
        .await?;
    let uploads = block.blooms.iter().enumerate().map(|(i, bytes)| {
        let path = crate::layout::bloom_path(&tenant, id, i as u32);
        let bytes = bytes.clone();
        async move { storage.put(&path, bytes).await }
    });
    futures::future::try_join_all(uploads).await?;
    storage
        .put(&crate::layout::tags_path(&tenant, id), block.tags.clone())
        .await?;
    Ok(())
}

/// Writes a block's `meta.json`, the moment it comes into existence.
pub async fn commit_block(storage: &strata_storage::Storage, meta: &BlockMeta) -> Result<()> {
    let tenant =
        TenantId::new(&meta.tenant).map_err(|e| Error::Writer(format!("block tenant: {e}")))?;
    storage
        .put(
            &crate::layout::meta_path(&tenant, meta.block_id),
            Bytes::from(meta.to_json()),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_clamped_to_the_outer_bounds_and_covers_the_inner_ones() {
        let bounds = TimeBounds {
            outer: (100, 200),
            inner: (150, 160),
        };
        // Ordinary spans, received around when they ended: their own range, widened to when
        // they arrived.
        assert_eq!(bounds.apply(140, 155), (140, 160));
        // A client clock in 1970 and 2262.
        assert_eq!(bounds.apply(0, u64::MAX), (100, 200));
        // Spans all long before they were received: not a point at the lower bound, but up to
        // when they arrived (so copies of them received later still overlap).
        assert_eq!(bounds.apply(1, 2), (100, 160));
        assert_eq!(bounds.apply(500, 600), (150, 200));
    }
}
