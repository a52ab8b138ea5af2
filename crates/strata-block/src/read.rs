//! Reading rows of `data.parquet` back into spans. Every column is looked up by name and type;
//! anything missing or malformed is reported as corruption, never a panic.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, UInt32Array, UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use strata_model::{
    AttrValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId,
};

use crate::attrs::AttrListReader;
use crate::error::{Error, Result, corrupt};
use crate::schema::{AttrScope, DEDICATED_COLUMNS, col};

/// Typed access to named columns.
pub(crate) struct Cols<'a> {
    arrays: &'a [ArrayRef],
    names: Vec<&'a str>,
    block: &'a str,
}

impl<'a> Cols<'a> {
    pub(crate) fn new(arrays: &'a [ArrayRef], names: Vec<&'a str>, block: &'a str) -> Self {
        Self {
            arrays,
            names,
            block,
        }
    }

    fn of_batch(batch: &'a RecordBatch, block: &'a str) -> Self {
        let names = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        Self::new(batch.columns(), names, block)
    }

    /// The column `name`, which must have array type `T`.
    pub(crate) fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T> {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| corrupt(self.block, format!("column {name} is missing")))?;
        self.arrays[i]
            .as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| corrupt(self.block, format!("column {name} has the wrong type")))
    }

    fn fixed(&self, name: &str, width: i32) -> Result<&'a FixedSizeBinaryArray> {
        let array: &FixedSizeBinaryArray = self.get(name)?;
        if array.value_length() != width {
            return Err(corrupt(
                self.block,
                format!("column {name} is not {width} bytes wide"),
            ));
        }
        Ok(array)
    }
}

/// The child range of list row `row`, checked against the offsets.
pub(crate) fn child(offsets: &[i32], row: usize, block: &str) -> Result<(usize, usize)> {
    let bad = || corrupt(block, "list offsets");
    let start = *offsets.get(row).ok_or_else(bad)?;
    let end = *offsets.get(row + 1).ok_or_else(bad)?;
    let start = usize::try_from(start).map_err(|_| bad())?;
    let end = usize::try_from(end).map_err(|_| bad())?;
    if start > end {
        return Err(bad());
    }
    Ok((start, end))
}

fn opt_str(array: &StringArray, row: usize) -> String {
    if array.is_valid(row) {
        array.value(row).to_owned()
    } else {
        String::new()
    }
}

/// Refuses a footer whose column chunks do not lie within the file's `size` bytes (negative
/// offsets or lengths, or past the end): the parquet crate trusts them, and panics on negative
/// ones (`ColumnChunkMetaData::byte_range`).
pub(crate) fn check_column_chunks(metadata: &ParquetMetaData, size: u64, what: &str) -> Result<()> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or(column.data_page_offset());
            let within = |offset: i64, len: i64| {
                u64::try_from(offset)
                    .ok()
                    .zip(u64::try_from(len).ok())
                    .and_then(|(offset, len)| offset.checked_add(len))
                    .is_some_and(|end| end <= size)
            };
            if !within(start, column.compressed_size()) || !within(column.data_page_offset(), 0) {
                return Err(corrupt(
                    what,
                    format!(
                        "row group {g}: column chunk {} lies outside the file",
                        column.column_path()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The record batches of a whole Parquet file held in memory, errors naming `what`.
pub(crate) fn file_batches(
    data: Bytes,
    what: &str,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + '_> {
    let parquet_err = |source| Error::Parquet {
        block: what.to_owned(),
        source,
    };
    let size = data.len() as u64;
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(parquet_err)?;
    check_column_chunks(builder.metadata(), size, what)?;
    let mut reader = Some(builder.with_batch_size(8192).build().map_err(parquet_err)?);
    Ok(std::iter::from_fn(move || {
        let mut current = reader.take()?;
        // The parquet crate panics on some damaged files instead of returning an error (the
        // fuzz targets found slices out of range and unwrapped `None`s in its fixed-length byte
        // array reader). Such a file is corrupt: say so, and read no further.
        match std::panic::catch_unwind(AssertUnwindSafe(|| current.next())) {
            Ok(Some(batch)) => {
                reader = Some(current);
                Some(batch.map_err(|source| Error::Arrow {
                    block: what.to_owned(),
                    source,
                }))
            }
            Ok(None) => None,
            Err(_) => Some(Err(corrupt(
                what,
                "the Parquet reader panicked on the file",
            ))),
        }
    }))
}

/// Reads every span of a whole `data.parquet` held in memory.
pub fn read_spans(data: Bytes, block: &str) -> Result<Vec<Span>> {
    let mut spans = Vec::new();
    for batch in file_batches(data, block)? {
        spans.extend(spans_from_batch(&batch?, block)?);
    }
    Ok(spans)
}

/// Converts one record batch of a block into spans.
pub fn spans_from_batch(batch: &RecordBatch, block: &str) -> Result<Vec<Span>> {
    let c = Cols::of_batch(batch, block);
    let trace_id = c.fixed(col::TRACE_ID, 16)?;
    let span_id = c.fixed(col::SPAN_ID, 8)?;
    let parent = c.fixed(col::PARENT_SPAN_ID, 8)?;
    let name: &StringArray = c.get(col::NAME)?;
    let kind: &Int32Array = c.get(col::KIND)?;
    let start: &UInt64Array = c.get(col::START)?;
    let duration: &Int64Array = c.get(col::DURATION)?;
    let status_code: &Int32Array = c.get(col::STATUS_CODE)?;
    let status_message: &StringArray = c.get(col::STATUS_MESSAGE)?;
    let trace_state: &StringArray = c.get(col::TRACE_STATE)?;
    let flags: &UInt32Array = c.get(col::FLAGS)?;
    let dropped_attrs: &UInt32Array = c.get(col::DROPPED_ATTRS)?;
    let dropped_events: &UInt32Array = c.get(col::DROPPED_EVENTS)?;
    let dropped_links: &UInt32Array = c.get(col::DROPPED_LINKS)?;
    let resource_attrs = AttrListReader::new(c.get(col::RESOURCE_ATTRS)?, block)?;
    let resource_dropped: &UInt32Array = c.get(col::RESOURCE_DROPPED)?;
    let resource_schema_url: &StringArray = c.get(col::RESOURCE_SCHEMA_URL)?;
    let scope_name: &StringArray = c.get(col::SCOPE_NAME)?;
    let scope_version: &StringArray = c.get(col::SCOPE_VERSION)?;
    let scope_attrs = AttrListReader::new(c.get(col::SCOPE_ATTRS)?, block)?;
    let scope_dropped: &UInt32Array = c.get(col::SCOPE_DROPPED)?;
    let scope_schema_url: &StringArray = c.get(col::SCOPE_SCHEMA_URL)?;
    let span_attrs = AttrListReader::new(c.get(col::SPAN_ATTRS)?, block)?;
    let events = EventsReader::new(c.get(col::EVENTS)?, block)?;
    let links = LinksReader::new(c.get(col::LINKS)?, block)?;
    let dedicated = DedicatedReader::new(&c)?;

    let mut spans = Vec::with_capacity(batch.num_rows());
    let mut last_resource: Option<Arc<Resource>> = None;
    let mut last_scope: Option<Arc<Scope>> = None;
    for row in 0..batch.num_rows() {
        let mut resource_kvs = dedicated.row(row, AttrScope::Resource);
        resource_kvs.extend(resource_attrs.row(row)?);
        let resource = Resource {
            attributes: resource_kvs,
            dropped_attributes_count: resource_dropped.value(row),
            schema_url: opt_str(resource_schema_url, row),
        };
        let resource = reuse(&mut last_resource, resource);
        let scope = Scope {
            name: opt_str(scope_name, row),
            version: opt_str(scope_version, row),
            attributes: scope_attrs.row(row)?,
            dropped_attributes_count: scope_dropped.value(row),
            schema_url: opt_str(scope_schema_url, row),
        };
        let scope = reuse(&mut last_scope, scope);
        let mut attributes = dedicated.row(row, AttrScope::Span);
        attributes.extend(span_attrs.row(row)?);
        let start_unix_nano = start.value(row);
        let id = |array: &FixedSizeBinaryArray| array.value(row).to_vec();
        spans.push(Span {
            trace_id: TraceId::from_slice(&id(trace_id))
                .map_err(|e| corrupt(block, format!("trace_id: {e}")))?,
            span_id: SpanId::from_slice(&id(span_id))
                .map_err(|e| corrupt(block, format!("span_id: {e}")))?,
            parent_span_id: if parent.is_valid(row) {
                SpanId::parent_from_slice(&id(parent))
                    .map_err(|e| corrupt(block, format!("parent_span_id: {e}")))?
            } else {
                None
            },
            trace_state: opt_str(trace_state, row),
            flags: flags.value(row),
            name: name.value(row).to_owned(),
            kind: SpanKind(kind.value(row)),
            start_unix_nano,
            end_unix_nano: start_unix_nano.wrapping_add(duration.value(row) as u64),
            attributes,
            dropped_attributes_count: dropped_attrs.value(row),
            events: events.row(row, start_unix_nano)?,
            dropped_events_count: dropped_events.value(row),
            links: links.row(row)?,
            dropped_links_count: dropped_links.value(row),
            status_code: StatusCode(status_code.value(row)),
            status_message: opt_str(status_message, row),
            resource,
            scope,
        });
    }
    Ok(spans)
}

/// Shares one `Arc` between consecutive rows with equal values.
fn reuse<T: PartialEq>(last: &mut Option<Arc<T>>, value: T) -> Arc<T> {
    match last {
        Some(prev) if **prev == value => Arc::clone(prev),
        _ => {
            let arc = Arc::new(value);
            *last = Some(Arc::clone(&arc));
            arc
        }
    }
}

enum DedicatedArray<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

struct DedicatedReader<'a> {
    columns: Vec<(AttrScope, &'static str, DedicatedArray<'a>)>,
}

impl<'a> DedicatedReader<'a> {
    fn new(c: &Cols<'a>) -> Result<Self> {
        let columns = DEDICATED_COLUMNS
            .iter()
            .map(|d| {
                let array = match d.ty {
                    crate::schema::DedicatedType::Str => DedicatedArray::Str(c.get(d.column)?),
                    crate::schema::DedicatedType::Int => DedicatedArray::Int(c.get(d.column)?),
                };
                Ok((d.scope, d.key, array))
            })
            .collect::<Result<_>>()?;
        Ok(Self { columns })
    }

    fn row(&self, row: usize, scope: AttrScope) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for (s, key, array) in &self.columns {
            if *s != scope {
                continue;
            }
            let value = match array {
                DedicatedArray::Str(a) if a.is_valid(row) => {
                    AttrValue::Str(a.value(row).to_owned())
                }
                DedicatedArray::Int(a) if a.is_valid(row) => AttrValue::Int(a.value(row)),
                _ => continue,
            };
            out.push(KeyValue {
                key: (*key).into(),
                value,
            });
        }
        out
    }
}

fn struct_list<'a>(list: &'a ListArray, what: &str, block: &'a str) -> Result<Cols<'a>> {
    let values = list
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| corrupt(block, format!("{what} is not a list of structs")))?;
    Ok(Cols::new(values.columns(), values.column_names(), block))
}

struct EventsReader<'a> {
    list: &'a ListArray,
    time: &'a Int64Array,
    name: &'a StringArray,
    attrs: AttrListReader<'a>,
    dropped: &'a UInt32Array,
    block: &'a str,
}

impl<'a> EventsReader<'a> {
    fn new(list: &'a ListArray, block: &'a str) -> Result<Self> {
        let c = struct_list(list, "events", block)?;
        Ok(Self {
            list,
            time: c.get("time_since_start_nano")?,
            name: c.get("name")?,
            attrs: AttrListReader::new(c.get("attrs")?, block)?,
            dropped: c.get("dropped_attributes_count")?,
            block,
        })
    }

    fn row(&self, row: usize, span_start: u64) -> Result<Vec<Event>> {
        let (start, end) = child(self.list.value_offsets(), row, self.block)?;
        if end > self.time.len() {
            return Err(corrupt(self.block, "event offsets"));
        }
        (start..end)
            .map(|i| {
                Ok(Event {
                    time_unix_nano: span_start.wrapping_add(self.time.value(i) as u64),
                    name: self.name.value(i).to_owned(),
                    attributes: self.attrs.row(i)?,
                    dropped_attributes_count: self.dropped.value(i),
                })
            })
            .collect()
    }
}

struct LinksReader<'a> {
    list: &'a ListArray,
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    trace_state: &'a StringArray,
    flags: &'a UInt32Array,
    attrs: AttrListReader<'a>,
    dropped: &'a UInt32Array,
    block: &'a str,
}

impl<'a> LinksReader<'a> {
    fn new(list: &'a ListArray, block: &'a str) -> Result<Self> {
        let c = struct_list(list, "links", block)?;
        Ok(Self {
            list,
            trace_id: c.fixed("trace_id", 16)?,
            span_id: c.fixed("span_id", 8)?,
            trace_state: c.get("trace_state")?,
            flags: c.get("flags")?,
            attrs: AttrListReader::new(c.get("attrs")?, block)?,
            dropped: c.get("dropped_attributes_count")?,
            block,
        })
    }

    fn row(&self, row: usize) -> Result<Vec<Link>> {
        let (start, end) = child(self.list.value_offsets(), row, self.block)?;
        if end > self.trace_id.len() {
            return Err(corrupt(self.block, "link offsets"));
        }
        (start..end)
            .map(|i| {
                Ok(Link {
                    trace_id: TraceId::from_slice(self.trace_id.value(i))
                        .map_err(|e| corrupt(self.block, format!("link trace_id: {e}")))?,
                    span_id: SpanId::from_slice(self.span_id.value(i))
                        .map_err(|e| corrupt(self.block, format!("link span_id: {e}")))?,
                    trace_state: opt_str(self.trace_state, i),
                    flags: self.flags.value(i),
                    attributes: self.attrs.row(i)?,
                    dropped_attributes_count: self.dropped.value(i),
                })
            })
            .collect()
    }
}
