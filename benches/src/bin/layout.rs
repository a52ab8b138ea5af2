//! Layout experiment: one Parquet row per span (what Strata writes) against one row per trace
//! with the spans nested in a list (Tempo's choice), on the same generated workload, encoded with
//! the same writer settings. Prints bytes per span and the time to evaluate a few typical filters
//! by reading only the columns they need.
//!
//! cargo run --release -p strata-bench --bin layout [-- SPANS [PAGE_MAX_ROWS]]

#![allow(clippy::print_stdout)] // A benchmark program's output is its report.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, ListArray, RecordBatch,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cmp::{eq, gt, gt_eq};
use arrow::compute::{and, filter, take};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, writer_properties};
use strata_model::TenantId;

/// Columns that describe the whole trace and stay at the top level in the nested layout.
const TRACE_COLUMNS: usize = 7;

fn main() -> anyhow::Result<()> {
    let spans: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(500_000);
    let requests = Workload::new(WorkloadConfig::default()).requests(spans, 512);
    let otlp_bytes: usize = requests.iter().map(prost::Message::encoded_len).sum();
    let model: Vec<_> = requests
        .into_iter()
        .flat_map(|r| strata_model::otlp::spans_from_request(r).0)
        .collect();
    let identity = BlockIdentity::fresh(TenantId::new("bench")?);
    let started = Instant::now();
    let config = BlockConfig {
        page_max_rows: std::env::args()
            .nth(2)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(BlockConfig::default().page_max_rows),
        ..Default::default()
    };
    let flat = encode_block(identity, config, model)?;
    let encode_secs = started.elapsed().as_secs_f64();
    let nested = nest(&flat.data)?;
    if let Some(path) = std::env::var_os("STRATA_LAYOUT_DUMP") {
        std::fs::write(&path, &flat.data)?;
        std::fs::write(format!("{}.nested", path.to_string_lossy()), &nested)?;
    }

    println!(
        "workload: {spans} spans, {} traces, OTLP protobuf {:.1} bytes/span",
        flat.meta.trace_count,
        otlp_bytes as f64 / spans as f64
    );
    println!(
        "flat encode: {:.0} spans/s (one thread)",
        spans as f64 / encode_secs
    );
    println!();
    println!("| layout | bytes/span | OTLP ÷ stored | row groups |");
    println!("|---|---|---|---|");
    for (name, data) in [
        ("span per row (flat)", &flat.data),
        ("trace per row (nested)", &nested),
    ] {
        let groups = ParquetRecordBatchReaderBuilder::try_new(data.clone())?
            .metadata()
            .num_row_groups();
        println!(
            "| {name} | {:.1} | {:.1} | {groups} |",
            data.len() as f64 / spans as f64,
            otlp_bytes as f64 / data.len() as f64
        );
    }
    println!();
    println!("| filter | flat ms | nested ms | matches |");
    println!("|---|---|---|---|");
    for query in QUERIES {
        let (flat_ms, flat_hits) = time(|| run(query, &flat.data, false))?;
        let (nested_ms, nested_hits) = time(|| run(query, &nested, true))?;
        anyhow::ensure!(
            flat_hits == nested_hits,
            "{}: {flat_hits} vs {nested_hits}",
            query.name
        );
        println!(
            "| {} | {flat_ms:.1} | {nested_ms:.1} | {flat_hits} |",
            query.name
        );
    }
    Ok(())
}

struct Query {
    name: &'static str,
    columns: &'static [&'static str],
}

const QUERIES: &[Query] = &[
    Query {
        name: "status = error (spans)",
        columns: &["status_code"],
    },
    Query {
        name: "name = \"SELECT shop.orders\" && duration > 2ms",
        columns: &["name", "duration_nano"],
    },
    Query {
        name: "span.http.response.status_code >= 500",
        columns: &["span_http_response_status_code"],
    },
    Query {
        name: "traceDuration > 1s (traces)",
        columns: &["trace_id", "trace_duration_nano"],
    },
    Query {
        name: "resource.service.name = \"payment\" (spans)",
        columns: &["resource_service_name"],
    },
];

fn time(mut f: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<(f64, usize)> {
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..5 {
        let started = Instant::now();
        hits = f()?;
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((best, hits))
}

/// Reads only the query's leaf columns and counts matching spans (or traces).
fn run(query: &Query, data: &Bytes, nested: bool) -> anyhow::Result<usize> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())?.with_batch_size(65_536);
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| {
            let path = schema.column(i).path().string();
            let leaf = path.rsplit('.').next().unwrap_or("");
            query.columns.contains(&leaf)
        })
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let mut hits = 0;
    for batch in builder.with_projection(mask).build()? {
        let batch = if nested { flatten(&batch?)? } else { batch? };
        hits += evaluate(query, &batch)?;
    }
    Ok(hits)
}

/// For the nested layout: the projected span-level columns, with trace columns repeated.
fn flatten(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let spans = batch.column_by_name("spans");
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.name() == "spans" {
            continue;
        }
        let Some(spans) = spans else {
            fields.push(field.clone());
            columns.push(column.clone());
            continue;
        };
        // Repeat trace-level values per span.
        let list = spans.as_list::<i32>();
        let indices: Vec<u32> = (0..list.len())
            .flat_map(|i| std::iter::repeat_n(i as u32, list.value_length(i) as usize))
            .collect();
        fields.push(field.clone());
        columns.push(take(
            column,
            &arrow::array::UInt32Array::from(indices),
            None,
        )?);
    }
    if let Some(spans) = spans {
        let values = spans.as_list::<i32>().values().as_struct();
        for (field, column) in values.fields().iter().zip(values.columns()) {
            fields.push(field.clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn evaluate(query: &Query, batch: &RecordBatch) -> anyhow::Result<usize> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .with_context(|| format!("{name} missing"))
    };
    let mask: BooleanArray = match query.name {
        "status = error (spans)" => eq(
            col("status_code")?,
            &arrow::array::Int32Array::new_scalar(2),
        )?,
        "span.http.response.status_code >= 500" => gt_eq(
            col("span_http_response_status_code")?,
            &arrow::array::Int64Array::new_scalar(500),
        )?,
        "resource.service.name = \"payment\" (spans)" => eq(
            col("resource_service_name")?,
            &arrow::array::StringArray::new_scalar("payment"),
        )?,
        "traceDuration > 1s (traces)" => {
            let long = gt(
                col("trace_duration_nano")?,
                &arrow::array::UInt64Array::new_scalar(1_000_000_000),
            )?;
            // Count distinct traces among matching rows (rows are grouped by trace).
            let ids = filter(col("trace_id")?, &long)?;
            let ids = ids
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .context("trace_id")?;
            return Ok((0..ids.len())
                .filter(|&i| i == 0 || ids.value(i) != ids.value(i - 1))
                .count());
        }
        _ => and(
            &eq(
                col("name")?,
                &arrow::array::StringArray::new_scalar("SELECT shop.orders"),
            )?,
            &gt(
                col("duration_nano")?,
                &arrow::array::Int64Array::new_scalar(2_000_000),
            )?,
        )?,
    };
    Ok(mask.true_count())
}

/// Rewrites a flat block as one row per trace: the trace-level columns once per trace and every
/// span-level column inside `spans: list<struct<...>>`, same row groups, same writer settings.
fn nest(flat: &Bytes) -> anyhow::Result<Bytes> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(flat.clone())?;
    let groups: Vec<usize> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect();
    let mut batches = Vec::new();
    for (group, &rows) in groups.iter().enumerate() {
        let reader = ParquetRecordBatchReaderBuilder::try_new(flat.clone())?
            .with_row_groups(vec![group])
            .with_batch_size(rows)
            .build()?;
        for batch in reader {
            batches.push(nest_batch(&batch?)?);
        }
    }
    let schema = batches.first().context("no batches")?.schema();
    // The same settings as the flat file, applied to the nested column paths.
    let flat_props = writer_properties(&BlockConfig::default())?;
    let mut builder = flat_props.clone().into_builder().set_sorting_columns(None);
    for field in schema.fields().iter().filter(|f| f.name() == "spans") {
        for leaf in leaf_names(field.data_type(), "spans.list.element") {
            let name = leaf.rsplit('.').next().unwrap_or_default().to_owned();
            let flat_path = parquet::schema::types::ColumnPath::from(name.as_str());
            let path = parquet::schema::types::ColumnPath::from(leaf.as_str());
            builder = builder
                .set_column_dictionary_enabled(
                    path.clone(),
                    flat_props.dictionary_enabled(&flat_path),
                )
                .set_column_statistics_enabled(
                    path.clone(),
                    flat_props.statistics_enabled(&flat_path),
                );
            if let Some(encoding) = flat_props.encoding(&flat_path) {
                builder = builder.set_column_encoding(path, encoding);
            }
        }
    }
    let props = builder.build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
    for batch in &batches {
        writer.write(batch)?;
        writer.flush()?;
    }
    Ok(Bytes::from(writer.into_inner()?))
}

/// Dotted Parquet paths of the top-level leaves under a list-of-struct type (one level deep is
/// enough for the per-column settings we copy).
fn leaf_names(ty: &DataType, prefix: &str) -> Vec<String> {
    match ty {
        DataType::List(element) => match element.data_type() {
            DataType::Struct(fields) => fields
                .iter()
                .map(|f| format!("{prefix}.{}", f.name()))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn nest_batch(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .context("trace_id")?;
    let mut starts = Vec::new();
    for i in 0..ids.len() {
        if i == 0 || ids.value(i) != ids.value(i - 1) {
            starts.push(i as u32);
        }
    }
    let mut offsets: Vec<i32> = starts.iter().map(|&s| s as i32).collect();
    offsets.push(ids.len() as i32);
    let schema = batch.schema();
    let starts = arrow::array::UInt32Array::from(starts);
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for i in 0..TRACE_COLUMNS {
        fields.push(schema.fields()[i].clone());
        columns.push(take(batch.column(i), &starts, None)?);
    }
    let span_fields: Fields = schema.fields()[TRACE_COLUMNS..].iter().cloned().collect();
    let span_columns: Vec<ArrayRef> = batch.columns()[TRACE_COLUMNS..].to_vec();
    let spans = StructArray::try_new(span_fields.clone(), span_columns, None)?;
    let element = Arc::new(Field::new("element", DataType::Struct(span_fields), false));
    let list = ListArray::try_new(
        element.clone(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(spans),
        None,
    )?;
    fields.push(Arc::new(Field::new(
        "spans",
        DataType::List(element),
        false,
    )));
    columns.push(Arc::new(list));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
