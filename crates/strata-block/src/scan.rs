//! Scanning a block for a search: read only the columns a query needs, and only the rows that
//! row-group statistics and the page index cannot rule out.
//!
//! The caller describes what rows could matter as a [`Prune`] predicate over plain columns. A row
//! group whose statistics contradict it is skipped without a read; within the others, pages of
//! indexed columns (see `schemas/block-v1.md`) whose min/max contradict it are skipped, and the
//! remaining row ranges of the projected columns are fetched with coalesced range reads.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::{Buf, Bytes};
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::file::statistics::Statistics;
use strata_model::Span;
use strata_model::trace_layout;
use strata_storage::Storage;

use crate::columns::SpanColumns;
use crate::error::{Error, Result, corrupt};
use crate::layout;
use crate::lookup::{BlockFile, RangeReader, ReadStats, tenant_of};
use crate::meta::BlockMeta;

/// Comparison in a [`Prune`] leaf: `column OP value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneOp {
    /// `=`.
    Eq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
}

/// A value compared with in a [`Prune`] leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum PruneValue {
    /// An integer (for signed and unsigned integer columns alike; unsigned values above
    /// `i64::MAX` never prune).
    Int(i64),
    /// A string, compared bytewise.
    Str(String),
}

/// What rows a scan may skip: rows for which the predicate is surely false.
#[derive(Debug, Clone, PartialEq)]
pub enum Prune {
    /// Nothing can be ruled out.
    Any,
    /// Nothing can match.
    Nothing,
    /// `column OP value` on a top-level primitive column.
    Column {
        /// Column name.
        column: String,
        /// Comparison.
        op: PruneOp,
        /// Value.
        value: PruneValue,
    },
    /// Every part must hold.
    And(Vec<Prune>),
    /// Some part must hold.
    Or(Vec<Prune>),
}

/// Ranges closer than this are fetched as one request by a scan. A scan reads a few columns out
/// of many: a wide gap would fetch the columns in between.
const SCAN_COALESCE_GAP: u64 = 16 * 1024;

/// Sorted, disjoint row ranges.
type Rows = Vec<Range<usize>>;

fn intersect(a: &Rows, b: &Rows) -> Rows {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn union(a: &Rows, b: &Rows) -> Rows {
    let mut all: Rows = a.iter().chain(b).cloned().collect();
    all.sort_by_key(|r| r.start);
    let mut out: Rows = Vec::new();
    for r in all {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Whether a value range `[min, max]` may hold a value satisfying `OP value`.
fn may_match<T: PartialOrd>(min: &T, max: &T, op: PruneOp, value: &T) -> bool {
    match op {
        PruneOp::Eq => min <= value && value <= max,
        PruneOp::Lt => min < value,
        PruneOp::Lte => min <= value,
        PruneOp::Gt => max > value,
        PruneOp::Gte => max >= value,
    }
}

/// `[min, max]` of some statistics, as comparable values of the leaf's kind; `None` when unknown.
enum Bounds<'a> {
    Int(i64, i64),
    Bytes(&'a [u8], &'a [u8]),
}

fn bounds_may_match(bounds: Option<Bounds<'_>>, op: PruneOp, value: &PruneValue) -> bool {
    match (bounds, value) {
        (Some(Bounds::Int(min, max)), PruneValue::Int(v)) => may_match(&min, &max, op, v),
        (Some(Bounds::Bytes(min, max)), PruneValue::Str(v)) => {
            may_match(&min, &max, op, &v.as_bytes())
        }
        _ => true,
    }
}

fn stats_bounds(stats: &Statistics) -> Option<Bounds<'_>> {
    match stats {
        Statistics::Int32(s) => Some(Bounds::Int(
            i64::from(*s.min_opt()?),
            i64::from(*s.max_opt()?),
        )),
        Statistics::Int64(s) => {
            let (min, max) = (*s.min_opt()?, *s.max_opt()?);
            // Unsigned columns store u64 bit patterns: above i64::MAX they look negative.
            (min <= max).then_some(Bounds::Int(min, max))
        }
        Statistics::ByteArray(s) => Some(Bounds::Bytes(s.min_opt()?.data(), s.max_opt()?.data())),
        _ => None,
    }
}

/// The leaf column index of a top-level primitive column.
fn leaf_index(metadata: &ParquetMetaData, column: &str) -> Option<usize> {
    metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts().len() == 1 && c.name() == column)
}

/// `(column, value)` equality leaves whose value the row group's dictionary lacks.
type Absent = HashSet<(String, String)>;

/// Rows of row group `group` that `prune` cannot rule out, given the equality leaves that the
/// row group's dictionaries rule out.
fn candidate_rows(
    metadata: &ParquetMetaData,
    group: usize,
    prune: &Prune,
    rows: usize,
    absent: &Absent,
) -> Rows {
    let all = || -> Rows { std::iter::once(0..rows).collect() };
    match prune {
        Prune::Any => all(),
        Prune::Nothing => Vec::new(),
        Prune::And(parts) => parts.iter().fold(all(), |acc, p| {
            if acc.is_empty() {
                acc
            } else {
                intersect(&acc, &candidate_rows(metadata, group, p, rows, absent))
            }
        }),
        Prune::Or(parts) => parts.iter().fold(Vec::new(), |acc, p| {
            union(&acc, &candidate_rows(metadata, group, p, rows, absent))
        }),
        Prune::Column { column, op, value } => {
            if let (PruneOp::Eq, PruneValue::Str(v)) = (op, value)
                && absent.contains(&(column.clone(), v.clone()))
            {
                return Vec::new();
            }
            let Some(leaf) = leaf_index(metadata, column) else {
                return all();
            };
            let chunk = metadata.row_group(group).column(leaf);
            if let Some(stats) = chunk.statistics()
                && !bounds_may_match(stats_bounds(stats), *op, value)
            {
                return Vec::new();
            }
            page_rows(metadata, group, leaf, *op, value, rows).unwrap_or_else(all)
        }
    }
}

/// Rows of the pages of `leaf` whose min/max may satisfy `OP value`; `None` without a page index.
fn page_rows(
    metadata: &ParquetMetaData,
    group: usize,
    leaf: usize,
    op: PruneOp,
    value: &PruneValue,
    rows: usize,
) -> Option<Rows> {
    let index = metadata.page_index_for_row_group(group);
    let (pages, locations) = (index.column_index(leaf)?, index.page_locations(leaf)?);
    let mut out: Rows = Vec::new();
    for (page, location) in locations.iter().enumerate() {
        let bounds = match pages {
            ColumnIndexMetaData::INT32(p) => match (p.min_value(page), p.max_value(page)) {
                (Some(min), Some(max)) => Some(Bounds::Int(i64::from(*min), i64::from(*max))),
                _ => None,
            },
            ColumnIndexMetaData::INT64(p) => match (p.min_value(page), p.max_value(page)) {
                (Some(min), Some(max)) if min <= max => Some(Bounds::Int(*min, *max)),
                _ => None,
            },
            ColumnIndexMetaData::BYTE_ARRAY(p) => match (p.min_value(page), p.max_value(page)) {
                (Some(min), Some(max)) => Some(Bounds::Bytes(min, max)),
                _ => None,
            },
            _ => None,
        };
        // A page of nulls only has no bounds; a non-null comparison never matches it.
        let only_nulls = match pages {
            ColumnIndexMetaData::INT32(p) => p.is_null_page(page),
            ColumnIndexMetaData::INT64(p) => p.is_null_page(page),
            ColumnIndexMetaData::BYTE_ARRAY(p) => p.is_null_page(page),
            _ => false,
        };
        if only_nulls || !bounds_may_match(bounds, op, value) {
            continue;
        }
        let start = usize::try_from(location.first_row_index)
            .unwrap_or(0)
            .min(rows);
        let end = locations.get(page + 1).map_or(rows, |next| {
            usize::try_from(next.first_row_index)
                .unwrap_or(rows)
                .min(rows)
        });
        if start < end {
            match out.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => out.push(start..end),
            }
        }
    }
    Some(out)
}

/// The `column = "string"` leaves of a predicate.
fn string_equalities(prune: &Prune, out: &mut Vec<(String, String)>) {
    match prune {
        Prune::And(parts) | Prune::Or(parts) => {
            for p in parts {
                string_equalities(p, out);
            }
        }
        Prune::Column {
            column,
            op: PruneOp::Eq,
            value: PruneValue::Str(v),
        } if !out.iter().any(|(c, x)| c == column && x == v) => {
            out.push((column.clone(), v.clone()));
        }
        _ => {}
    }
}

/// A byte range of the file held in memory, read by absolute file offsets.
struct FileSlice {
    start: u64,
    bytes: Bytes,
}

impl Length for FileSlice {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for FileSlice {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let from = start
            .checked_sub(self.start)
            .and_then(|f| usize::try_from(f).ok())
            .filter(|&f| f <= self.bytes.len())
            .ok_or_else(|| ParquetError::EOF("read outside a fetched range".into()))?;
        Ok(self.bytes.slice(from..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .and_then(|f| usize::try_from(f).ok())
            .ok_or_else(|| ParquetError::EOF("read before a fetched range".into()))?;
        let to = from.saturating_add(length);
        self.bytes
            .get(from..to)
            .map(|_| self.bytes.slice(from..to))
            .ok_or_else(|| ParquetError::EOF("read past a fetched range".into()))
    }
}

/// Which of the `(column, value)` equalities row group `group` cannot satisfy, by its columns'
/// dictionaries: a column chunk whose data pages are all dictionary-encoded holds only values
/// of its dictionary page. Chunks without a complete dictionary rule nothing out.
async fn dictionary_absent(
    storage: &Storage,
    meta: &BlockMeta,
    metadata: &ParquetMetaData,
    group: usize,
    equalities: &[(String, String)],
    stats: &ReadStats,
) -> Result<Absent> {
    let block = meta.block_id.to_string();
    let mut absent = Absent::new();
    let path = layout::data_path(&tenant_of(meta)?, meta.block_id);
    let rows = usize::try_from(metadata.row_group(group).num_rows()).unwrap_or(0);
    let mut columns: Vec<&str> = equalities.iter().map(|(c, _)| c.as_str()).collect();
    columns.dedup();
    for column in columns {
        let Some(leaf) = leaf_index(metadata, column) else {
            continue;
        };
        let chunk = metadata.row_group(group).column(leaf);
        let all_dictionary = chunk.page_encoding_stats_mask().is_some_and(|mask| {
            mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY)
        });
        let (Some(dict_offset), true) = (chunk.dictionary_page_offset(), all_dictionary) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            u64::try_from(dict_offset),
            u64::try_from(chunk.data_page_offset()),
        ) else {
            continue;
        };
        if end <= start || end - start > MAX_DICTIONARY_READ {
            continue;
        }
        let bytes = storage.get_range(&path, start..end).await?;
        stats.record(bytes.len());
        let slice = Arc::new(FileSlice { start, bytes });
        let parquet_err = |source| Error::Parquet {
            block: block.clone(),
            source,
        };
        let mut pages = SerializedPageReader::new(slice, chunk, rows, None).map_err(parquet_err)?;
        let Some(Page::DictionaryPage {
            buf, num_values, ..
        }) = pages.get_next_page().map_err(parquet_err)?
        else {
            continue;
        };
        let values = plain_byte_arrays(&buf, num_values as usize)
            .ok_or_else(|| corrupt(&block, format!("dictionary of {column}")))?;
        for (c, v) in equalities.iter().filter(|(c, _)| c == column) {
            if !values.contains(v.as_bytes()) {
                absent.insert((c.clone(), v.clone()));
            }
        }
    }
    Ok(absent)
}

/// A dictionary larger than this is not worth fetching to rule a row group out.
const MAX_DICTIONARY_READ: u64 = 256 * 1024;

/// Decodes `n` PLAIN-encoded byte arrays (4-byte little-endian length, then the bytes); `None`
/// when the page does not hold them. `n` comes from the page header on disk: each value takes
/// at least its 4-byte length, so an `n` the buffer cannot hold is refused before anything is
/// allocated for it.
fn plain_byte_arrays(mut buf: &[u8], n: usize) -> Option<HashSet<&[u8]>> {
    if n > buf.len() / 4 {
        return None;
    }
    let mut out = HashSet::with_capacity(n);
    for _ in 0..n {
        let (len, rest) = buf.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let value = rest.get(..len)?;
        out.insert(value);
        buf = &rest[len..];
    }
    Some(out)
}

/// What one block scan read and how much it could skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Row groups in the block.
    pub row_groups: usize,
    /// Row groups skipped by statistics or the page index.
    pub row_groups_skipped: usize,
    /// Rows in the block.
    pub rows: u64,
    /// Rows read.
    pub rows_read: u64,
}

/// The rows of one row group that a scan read.
#[derive(Debug, Clone)]
pub struct ScannedGroup {
    /// Row group index.
    pub group: usize,
    /// The rows read, as sorted ranges of row numbers within the row group.
    pub rows: Vec<Range<usize>>,
    /// Their projected columns, in row order.
    pub batch: RecordBatch,
}

impl ScannedGroup {
    /// The row number within the row group of the batch's `i`th row.
    pub fn row_of(&self, mut i: usize) -> Option<usize> {
        for r in &self.rows {
            if i < r.len() {
                return Some(r.start + i);
            }
            i -= r.len();
        }
        None
    }
}

/// Finds the root (top-level) column indices of `columns`.
fn roots(metadata: &ParquetMetaData, columns: &[&str], block: &str) -> Result<Vec<usize>> {
    let fields = metadata
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields();
    columns
        .iter()
        .map(|name| {
            fields
                .iter()
                .position(|f| f.name() == *name)
                .ok_or_else(|| corrupt(block, format!("column {name} is missing")))
        })
        .collect()
}

/// Reads `rows` (sorted, disjoint ranges) of row group `group`, columns `roots`, as one batch.
/// Reads every column of every row of row group `group`.
pub(crate) async fn read_whole_group(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    group: usize,
    stats: &Arc<ReadStats>,
) -> Result<RecordBatch> {
    let parquet = file.metadata.metadata();
    if group >= parquet.num_row_groups() {
        return Err(corrupt(
            meta.block_id.to_string(),
            format!("row group {group} does not exist"),
        ));
    }
    let rows = usize::try_from(parquet.row_group(group).num_rows()).unwrap_or(0);
    let fields = parquet
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .len();
    let roots: Vec<usize> = (0..fields).collect();
    let all = std::iter::once(0..rows).collect::<Rows>();
    read_group(storage, meta, file, group, &all, &roots, stats).await
}

async fn read_group(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    group: usize,
    rows: &[Range<usize>],
    roots: &[usize],
    stats: &Arc<ReadStats>,
) -> Result<RecordBatch> {
    let block = meta.block_id.to_string();
    let parquet = file.metadata.metadata();
    if group >= parquet.num_row_groups() {
        return Err(corrupt(&block, format!("row group {group} does not exist")));
    }
    let total = usize::try_from(parquet.row_group(group).num_rows()).unwrap_or(0);
    let wanted: usize = rows.iter().map(|r| r.len()).sum();
    let reader = RangeReader {
        storage: storage.clone(),
        path: layout::data_path(&tenant_of(meta)?, meta.block_id),
        stats: Arc::clone(stats),
        metadata: Arc::clone(parquet),
        gap: SCAN_COALESCE_GAP,
    };
    let parquet_err = |source| Error::Parquet {
        block: block.clone(),
        source,
    };
    let schema = parquet.file_metadata().schema_descr();
    let selection = RowSelection::from_consecutive_ranges(rows.iter().cloned(), total);
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchStreamBuilder::new_with_metadata(reader, file.metadata.clone())
            .with_row_groups(vec![group])
            .with_row_selection(selection)
            .with_projection(ProjectionMask::roots(schema, roots.iter().copied()))
            .with_batch_size(wanted.max(1))
            .build()
            .map_err(parquet_err)?
            .map_err(parquet_err)
            .try_collect()
            .await?;
    if batches.len() == 1 {
        return batches
            .into_iter()
            .next()
            .ok_or_else(|| corrupt(&block, "a row group read returned nothing"));
    }
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .ok_or_else(|| corrupt(&block, "a row group read returned nothing"))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|source| Error::Arrow {
        block: block.clone(),
        source,
    })
}

/// Reads columns `columns` (top-level names) of the rows of `meta`'s block that `prune` cannot
/// rule out: one [`ScannedGroup`] per row group not skipped. `file` comes from
/// [`crate::open_block_file`].
pub async fn scan_block(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    columns: &[&str],
    prune: &Prune,
    stats: &Arc<ReadStats>,
) -> Result<(Vec<ScannedGroup>, ScanCounts)> {
    let block = meta.block_id.to_string();
    crate::error::panics_as_corruption(
        &block,
        "a scan",
        scan_block_unguarded(storage, meta, file, columns, prune, stats),
    )
    .await
}

async fn scan_block_unguarded(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    columns: &[&str],
    prune: &Prune,
    stats: &Arc<ReadStats>,
) -> Result<(Vec<ScannedGroup>, ScanCounts)> {
    let block = meta.block_id.to_string();
    let parquet = file.metadata.metadata();
    let roots = roots(parquet, columns, &block)?;
    let mut counts = ScanCounts {
        row_groups: parquet.num_row_groups(),
        ..ScanCounts::default()
    };
    let mut groups = Vec::new();
    let mut equalities = Vec::new();
    string_equalities(prune, &mut equalities);
    for group in 0..parquet.num_row_groups() {
        let rows = usize::try_from(parquet.row_group(group).num_rows()).unwrap_or(0);
        counts.rows += rows as u64;
        let mut selected = candidate_rows(parquet, group, prune, rows, &Absent::new());
        if !selected.is_empty() && !equalities.is_empty() {
            let absent =
                dictionary_absent(storage, meta, parquet, group, &equalities, stats).await?;
            if !absent.is_empty() {
                selected = candidate_rows(parquet, group, prune, rows, &absent);
            }
        }
        if selected.is_empty() {
            counts.row_groups_skipped += 1;
            continue;
        }
        counts.rows_read += selected.iter().map(|r| r.len() as u64).sum::<u64>();
        let batch = read_group(storage, meta, file, group, &selected, &roots, stats).await?;
        groups.push(ScannedGroup {
            group,
            rows: selected,
            batch,
        });
    }
    Ok((groups, counts))
}

/// Reads columns `columns` of the given rows (sorted, row numbers within row group `group`).
pub async fn read_rows(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    group: usize,
    rows: &[usize],
    columns: &[&str],
    stats: &Arc<ReadStats>,
) -> Result<RecordBatch> {
    let block = meta.block_id.to_string();
    crate::error::panics_as_corruption(
        &block,
        "a row read",
        read_rows_unguarded(storage, meta, file, group, rows, columns, stats),
    )
    .await
}

async fn read_rows_unguarded(
    storage: &Storage,
    meta: &BlockMeta,
    file: &BlockFile,
    group: usize,
    rows: &[usize],
    columns: &[&str],
    stats: &Arc<ReadStats>,
) -> Result<RecordBatch> {
    let block = meta.block_id.to_string();
    let roots = roots(file.metadata.metadata(), columns, &block)?;
    let mut ranges: Rows = Vec::new();
    for &row in rows {
        match ranges.last_mut() {
            Some(last) if last.end == row => last.end = row + 1,
            Some(last) if last.end > row => {
                return Err(corrupt(&block, "rows to read are not sorted"));
            }
            _ => ranges.push(row..row + 1),
        }
    }
    read_group(storage, meta, file, group, &ranges, &roots, stats).await
}

/// Lays out traces held in memory (each a slice of one trace's spans) as one record batch of the
/// block schema, so that recent data is searched by the same code as blocks.
pub fn traces_to_batch<'a>(traces: impl IntoIterator<Item = &'a [Span]>) -> Result<RecordBatch> {
    let mut columns = SpanColumns::new();
    for spans in traces {
        if spans.is_empty() {
            continue;
        }
        columns.push_trace(spans, &trace_layout(spans), 1.0)?;
    }
    columns.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review E1: a dictionary page declaring more values than its bytes can hold was taken as
    /// a capacity, and hashbrown was asked for a table of that size (an abort, or a capacity
    /// overflow panic).
    #[test]
    fn a_dictionary_declaring_more_values_than_it_holds_is_refused_before_allocating() {
        let mut page = Vec::new();
        for value in [&b"a"[..], b"bc"] {
            page.extend_from_slice(&(value.len() as u32).to_le_bytes());
            page.extend_from_slice(value);
        }
        let values = plain_byte_arrays(&page, 2).unwrap();
        assert_eq!(values, HashSet::from([&b"a"[..], &b"bc"[..]]));
        for declared in [3, page.len() / 4 + 1, u32::MAX as usize, usize::MAX] {
            assert_eq!(plain_byte_arrays(&page, declared), None, "{declared}");
        }
        // Zero-length values take 4 bytes each: as many as the buffer holds is fine.
        let empties = vec![0u8; 4 * 1000];
        assert_eq!(plain_byte_arrays(&empties, 1000).map(|v| v.len()), Some(1));
    }

    #[test]
    fn row_range_algebra() {
        let a = vec![0..10, 20..30];
        let b: Rows = std::iter::once(5..25).collect();
        assert_eq!(intersect(&a, &b), vec![5..10, 20..25]);
        assert_eq!(union(&a, &b), vec![0..30]);
        let (a, b): (Rows, Rows) = (
            std::iter::once(0..2).collect(),
            std::iter::once(4..6).collect(),
        );
        assert_eq!(union(&a, &b), vec![0..2, 4..6]);
        let c: Rows = std::iter::once(2..4).collect();
        assert!(intersect(&a, &c).is_empty());
    }

    #[test]
    fn bounds_decide_by_operator() {
        let b = || Some(Bounds::Int(10, 20));
        assert!(bounds_may_match(b(), PruneOp::Eq, &PruneValue::Int(10)));
        assert!(!bounds_may_match(b(), PruneOp::Eq, &PruneValue::Int(21)));
        assert!(!bounds_may_match(b(), PruneOp::Gt, &PruneValue::Int(20)));
        assert!(bounds_may_match(b(), PruneOp::Gte, &PruneValue::Int(20)));
        assert!(!bounds_may_match(b(), PruneOp::Lt, &PruneValue::Int(10)));
        assert!(bounds_may_match(b(), PruneOp::Lte, &PruneValue::Int(10)));
        // Mismatched kinds never prune.
        assert!(bounds_may_match(
            b(),
            PruneOp::Eq,
            &PruneValue::Str("x".into())
        ));
        let s = Some(Bounds::Bytes(b"b", b"d"));
        assert!(!bounds_may_match(
            s,
            PruneOp::Eq,
            &PruneValue::Str("e".into())
        ));
    }
}
