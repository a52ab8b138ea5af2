//! Finding one trace in a block with as few and as small reads as the format allows:
//! `meta.json` has each row group's trace-ID range, so row groups are chosen without the footer;
//! the footer and page index come in one read of the file's tail (cached by callers); the page
//! index on `trace_id` narrows the rows to the pages that may hold the trace; and only those
//! pages of each column are fetched, nearby ranges coalesced into one request.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, BooleanArray, FixedSizeBinaryArray, RecordBatch};
use arrow::compute::filter_record_batch;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use strata_model::{Span, TenantId, TraceId};
use strata_storage::{Path, Storage};

use crate::bloom::{BloomShard, shard_for};
use crate::error::{Error, Result, corrupt};
use crate::layout;
use crate::meta::BlockMeta;
use crate::read::spans_from_batch;
use crate::schema::col;

/// Ranges closer than this are fetched as one request by a trace lookup (few, small ranges:
/// requests cost more than the bytes between them).
pub(crate) const LOOKUP_COALESCE_GAP: u64 = 256 * 1024;

/// Object-storage reads made on behalf of one query. Shared by everything the query touches.
#[derive(Debug, Default)]
pub struct ReadStats {
    reads: AtomicU64,
    bytes: AtomicU64,
}

impl ReadStats {
    /// Records one request of `bytes` bytes.
    pub fn record(&self, bytes: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Requests made.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Bytes fetched.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// What a lookup needs to know about a block's Parquet file, loaded once per block.
#[derive(Debug, Clone)]
pub struct BlockFile {
    /// The footer (with page index) and the Arrow schema derived from it.
    pub metadata: ArrowReaderMetadata,
}

impl BlockFile {
    /// Bytes this takes in memory, for cache accounting.
    pub fn memory_size(&self) -> usize {
        self.metadata.metadata().memory_size()
    }
}

pub(crate) fn tenant_of(meta: &BlockMeta) -> Result<TenantId> {
    TenantId::new(&meta.tenant)
        .map_err(|e| corrupt(meta.block_id.to_string(), format!("tenant: {e}")))
}

/// Reads the bloom shard of `meta`'s block that would hold `trace_id`.
pub async fn read_bloom_shard(
    storage: &Storage,
    meta: &BlockMeta,
    trace_id: &TraceId,
    stats: &ReadStats,
) -> Result<(u32, BloomShard)> {
    let shard = shard_for(trace_id, meta.bloom.shards);
    let path = layout::bloom_path(&tenant_of(meta)?, meta.block_id, shard);
    // A shard is never larger than all of them together, as the meta counts them.
    let bytes = storage.get_at_most(&path, meta.bloom_size).await?;
    stats.record(bytes.len());
    Ok((
        shard,
        BloomShard::parse(&bytes, &meta.block_id.to_string())?,
    ))
}

/// Reads the file's tail — page indexes and footer — in one request and parses it.
pub async fn open_block_file(
    storage: &Storage,
    meta: &BlockMeta,
    stats: &ReadStats,
) -> Result<BlockFile> {
    let block = meta.block_id.to_string();
    let size = meta.data_size;
    if meta.footer_size < 8 || meta.footer_size > size {
        return Err(corrupt(block, "footer_size in meta.json"));
    }
    // The page indexes sit between the last row group and the footer.
    let data_end = meta
        .row_groups
        .iter()
        .map(|g| g.offset.saturating_add(g.size))
        .max()
        .unwrap_or(0);
    let tail_start = data_end.min(size - meta.footer_size);
    let path = layout::data_path(&tenant_of(meta)?, meta.block_id);
    let tail = storage.get_range(&path, tail_start..size).await?;
    stats.record(tail.len());
    let parquet_err = |source| Error::Parquet {
        block: block.clone(),
        source,
    };
    let mut reader = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional);
    reader.try_parse_sized(&tail, size).map_err(parquet_err)?;
    let metadata = reader.finish().map_err(parquet_err)?;
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let metadata =
        ArrowReaderMetadata::try_new(Arc::new(metadata), options).map_err(parquet_err)?;
    crate::read::check_column_chunks(metadata.metadata(), size, &block)?;
    Ok(BlockFile { metadata })
}

/// Reads the spans of `trace_id` from a block. `file` comes from [`open_block_file`].
pub async fn read_trace(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    trace_id: &TraceId,
    stats: &Arc<ReadStats>,
) -> Result<Vec<Span>> {
    let block = meta.block_id.to_string();
    crate::error::panics_as_corruption(
        &block,
        "a trace lookup",
        read_trace_unguarded(storage, meta, file, trace_id, stats),
    )
    .await
}

async fn read_trace_unguarded(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    trace_id: &TraceId,
    stats: &Arc<ReadStats>,
) -> Result<Vec<Span>> {
    let block = meta.block_id.to_string();
    let hex = trace_id.to_hex();
    let groups: Vec<usize> = meta
        .row_groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.min_trace_id <= hex && hex <= g.max_trace_id)
        .map(|(i, _)| i)
        .collect();
    let parquet = file.metadata.metadata();
    if groups.iter().any(|&g| g >= parquet.num_row_groups()) {
        return Err(corrupt(
            block,
            "meta.json names more row groups than the file has",
        ));
    }
    let path = layout::data_path(&tenant_of(meta)?, meta.block_id);
    let mut spans = Vec::new();
    let reader = || RangeReader {
        storage: storage.clone(),
        path: path.clone(),
        stats: Arc::clone(stats),
        metadata: Arc::clone(parquet),
        gap: LOOKUP_COALESCE_GAP,
    };
    for group in groups {
        let (candidates, rows) = pages_that_may_hold(parquet, group, trace_id);
        if candidates.is_empty() {
            continue;
        }
        // First only the trace-ID pages: a bloom false positive costs this small read and no
        // more. The trace's rows are contiguous (rows are sorted by trace ID).
        let ids_only = ProjectionMask::leaves(parquet.file_metadata().schema_descr(), [0]);
        let selection = RowSelection::from_consecutive_ranges(candidates.iter().cloned(), rows);
        let batches = read_rows(reader(), file, group, selection, ids_only, &block).await?;
        let id = trace_id.as_bytes().as_slice();
        let mut matches = Vec::new();
        let mut position = 0usize;
        for batch in &batches {
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(|| corrupt(&block, "trace_id column"))?;
            for i in 0..ids.len() {
                if ids.is_valid(i) && ids.value(i) == id {
                    matches.push(position + i);
                }
            }
            position += ids.len();
        }
        let (Some(&first), Some(&last)) = (matches.first(), matches.last()) else {
            continue;
        };
        let (first, last) = (
            absolute_row(&candidates, first),
            absolute_row(&candidates, last),
        );
        let (Some(first), Some(last)) = (first, last) else {
            return Err(corrupt(&block, "trace_id rows outside the selected pages"));
        };
        // Then every column, for exactly the trace's rows.
        let selection =
            RowSelection::from_consecutive_ranges(std::iter::once(first..last + 1), rows);
        for batch in read_rows(
            reader(),
            file,
            group,
            selection,
            ProjectionMask::all(),
            &block,
        )
        .await?
        {
            let batch = rows_of_trace(&batch, trace_id, &block)?;
            if batch.num_rows() > 0 {
                spans.extend(spans_from_batch(&batch, &block)?);
            }
        }
    }
    Ok(spans)
}

/// Reads the selected rows and columns of one row group.
async fn read_rows(
    reader: RangeReader,
    file: &BlockFile,
    group: usize,
    selection: RowSelection,
    projection: ProjectionMask,
    block: &str,
) -> Result<Vec<RecordBatch>> {
    let parquet_err = |source| Error::Parquet {
        block: block.to_owned(),
        source,
    };
    ParquetRecordBatchStreamBuilder::new_with_metadata(reader, file.metadata.clone())
        .with_row_groups(vec![group])
        .with_row_selection(selection)
        .with_projection(projection)
        .with_batch_size(8192)
        .build()
        .map_err(parquet_err)?
        .map_err(parquet_err)
        .try_collect()
        .await
}

/// The row number of the `n`th selected row, given the selected ranges in order.
fn absolute_row(ranges: &[Range<usize>], mut n: usize) -> Option<usize> {
    for r in ranges {
        if n < r.len() {
            return Some(r.start + n);
        }
        n -= r.len();
    }
    None
}

/// The row ranges of a row group whose `trace_id` pages may contain `trace_id`, from the page
/// index (all rows when there is none), and the row group's row count.
fn pages_that_may_hold(
    metadata: &ParquetMetaData,
    group: usize,
    trace_id: &TraceId,
) -> (Vec<Range<usize>>, usize) {
    let rows = usize::try_from(metadata.row_group(group).num_rows()).unwrap_or(0);
    let index = metadata.page_index_for_row_group(group);
    let (Some(ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(pages)), Some(locations)) =
        (index.column_index(0), index.page_locations(0))
    else {
        return (std::iter::once(0..rows).collect(), rows);
    };
    let id = trace_id.as_bytes().as_slice();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (page, location) in locations.iter().enumerate() {
        let may = match (pages.min_value(page), pages.max_value(page)) {
            (Some(min), Some(max)) => min <= id && id <= max,
            _ => true,
        };
        if may {
            let start = usize::try_from(location.first_row_index)
                .unwrap_or(0)
                .min(rows);
            let end = locations.get(page + 1).map_or(rows, |next| {
                usize::try_from(next.first_row_index)
                    .unwrap_or(rows)
                    .min(rows)
            });
            ranges.push(start..end.max(start));
        }
    }
    (ranges, rows)
}

/// Keeps the rows of `batch` that belong to `trace_id`.
fn rows_of_trace(batch: &RecordBatch, trace_id: &TraceId, block: &str) -> Result<RecordBatch> {
    let ids = batch
        .column_by_name(col::TRACE_ID)
        .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>())
        .ok_or_else(|| corrupt(block, "trace_id column"))?;
    let id = trace_id.as_bytes().as_slice();
    let mask: BooleanArray = (0..ids.len())
        .map(|i| Some(ids.is_valid(i) && ids.value(i) == id))
        .collect();
    filter_record_batch(batch, &mask).map_err(|source| Error::Arrow {
        block: block.to_owned(),
        source,
    })
}

/// Serves the Parquet reader's byte ranges from object storage, coalescing nearby ranges and
/// counting every request.
pub(crate) struct RangeReader {
    pub(crate) storage: Storage,
    pub(crate) path: Path,
    pub(crate) stats: Arc<ReadStats>,
    pub(crate) metadata: Arc<ParquetMetaData>,
    /// Ranges closer than this are fetched as one request.
    pub(crate) gap: u64,
}

fn external(e: strata_storage::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for RangeReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let bytes = self
                .storage
                .get_range(&self.path, range)
                .await
                .map_err(external)?;
            self.stats.record(bytes.len());
            Ok(bytes)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            let merged = coalesce(&ranges, self.gap);
            let fetched: Vec<Bytes> = futures::stream::iter(merged.iter().cloned())
                .map(|range| {
                    let (storage, path, stats) = (&self.storage, &self.path, &self.stats);
                    async move {
                        let bytes = storage.get_range(path, range).await.map_err(external)?;
                        stats.record(bytes.len());
                        Ok::<_, ParquetError>(bytes)
                    }
                })
                .buffered(8)
                .try_collect()
                .await?;
            ranges
                .iter()
                .map(|r| {
                    let (i, m) = merged
                        .iter()
                        .enumerate()
                        .find(|(_, m)| m.start <= r.start && r.end <= m.end)
                        .ok_or_else(|| {
                            ParquetError::General("range outside the fetched ones".into())
                        })?;
                    let start = usize::try_from(r.start - m.start)
                        .map_err(|e| ParquetError::General(e.to_string()))?;
                    let end = usize::try_from(r.end - m.start)
                        .map_err(|e| ParquetError::General(e.to_string()))?;
                    fetched[i]
                        .get(start..end)
                        .map(|_| fetched[i].slice(start..end))
                        .ok_or_else(|| {
                            ParquetError::General("short read from object storage".into())
                        })
                })
                .collect()
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let metadata = Arc::clone(&self.metadata);
        async move { Ok(metadata) }.boxed()
    }
}

/// Sorts ranges and merges those that overlap or lie within `gap` bytes of each other.
fn coalesce(ranges: &[Range<u64>], gap: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_merges_near_ranges_only() {
        let merged = coalesce(
            &[10..20, 0..5, 300_000..300_010, 15..40, 600_000..600_001],
            LOOKUP_COALESCE_GAP,
        );
        assert_eq!(merged, vec![0..40, 300_000..300_010, 600_000..600_001]);
    }
}
