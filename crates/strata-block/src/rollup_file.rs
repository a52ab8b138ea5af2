//! Rollup segments on object storage: rows as one small Parquet file (zstd), `meta.json` last.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int32Builder, Int64Array,
    Int64Builder, RecordBatch, StringArray, StringBuilder, UInt32Array, UInt32Builder, UInt64Array,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::Utc;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sketches_ddsketch::DDSketch;
use strata_model::TenantId;
use strata_storage::Storage;
use uuid::Uuid;

use crate::error::{Error, Result, corrupt};
use crate::layout::{DATA_FILE, META_FILE, rollup_prefix};
use crate::meta::time_from_nanos;
use crate::read::{Cols, file_batches};
use crate::rollup::{
    ROLLUP_FORMAT, ROLLUP_FORMAT_VERSION, Rollup, RollupCell, RollupKey, RollupMeta,
};

/// Column names of a rollup segment, in file order.
pub mod rollup_col {
    /// Start of the bucket, unix seconds.
    pub const BUCKET_START: &str = "bucket_start_unix";
    /// Width of the bucket, seconds.
    pub const BUCKET_SECONDS: &str = "bucket_seconds";
    /// `service.name`.
    pub const SERVICE: &str = "service_name";
    /// Span name.
    pub const NAME: &str = "span_name";
    /// Span kind code.
    pub const KIND: &str = "span_kind";
    /// Status code.
    pub const STATUS: &str = "status_code";
    /// Spans.
    pub const SPANS: &str = "span_count";
    /// Spans with status error.
    pub const ERRORS: &str = "error_count";
    /// Sum of durations, nanoseconds.
    pub const DURATION_SUM: &str = "duration_sum_nano";
    /// DDSketch of durations (nanoseconds) in the DDSketch binary encoding.
    pub const SKETCH: &str = "duration_sketch";
}

/// Largest encoded sketch accepted from disk (2048 bins take well under this).
const MAX_SKETCH_BYTES: usize = 64 * 1024;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    use rollup_col::*;
    Arc::new(Schema::new(vec![
        Field::new(BUCKET_START, Int64, false),
        Field::new(BUCKET_SECONDS, UInt32, false),
        Field::new(SERVICE, Utf8, false),
        Field::new(NAME, Utf8, false),
        Field::new(KIND, Int32, false),
        Field::new(STATUS, Int32, false),
        Field::new(SPANS, UInt64, false),
        Field::new(ERRORS, UInt64, false),
        Field::new(DURATION_SUM, UInt64, false),
        Field::new(SKETCH, Binary, false),
    ]))
});

/// The Arrow schema of a rollup segment.
pub fn rollup_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// The rows as one record batch of the rollup schema.
fn to_batch(rollup: &Rollup) -> Result<RecordBatch> {
    let mut bucket = Int64Builder::new();
    let mut seconds = UInt32Builder::new();
    let mut service = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut kind = Int32Builder::new();
    let mut status = Int32Builder::new();
    let mut spans = UInt64Builder::new();
    let mut errors = UInt64Builder::new();
    let mut sum = UInt64Builder::new();
    let mut sketch = BinaryBuilder::new();
    for (key, cell) in rollup.rows() {
        bucket.append_value(key.bucket_start);
        seconds.append_value(key.bucket_seconds);
        service.append_value(&key.service);
        name.append_value(&key.name);
        kind.append_value(key.kind);
        status.append_value(key.status);
        spans.append_value(cell.spans);
        errors.append_value(cell.errors);
        sum.append_value(cell.duration_sum_nanos);
        sketch.append_value(cell.sketch.to_java_bytes());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(bucket.finish()),
        Arc::new(seconds.finish()),
        Arc::new(service.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(status.finish()),
        Arc::new(spans.finish()),
        Arc::new(errors.finish()),
        Arc::new(sum.finish()),
        Arc::new(sketch.finish()),
    ];
    RecordBatch::try_new(rollup_schema(), columns).map_err(|source| Error::Arrow {
        block: "rollup".into(),
        source,
    })
}

/// Encodes rows as a segment's `data.parquet` and its meta.
pub fn encode_segment(
    tenant: &TenantId,
    segment_id: Uuid,
    rollup: &Rollup,
    sources: Vec<Uuid>,
    compacted_from: Vec<Uuid>,
) -> Result<(RollupMeta, Bytes)> {
    let segment = segment_id.to_string();
    let parquet_err = |source| Error::Parquet {
        block: segment.clone(),
        source,
    };
    let zstd = ZstdLevel::try_new(3).map_err(parquet_err)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), rollup_schema(), Some(props)).map_err(parquet_err)?;
    writer.write(&to_batch(rollup)?).map_err(parquet_err)?;
    let data = Bytes::from(writer.into_inner().map_err(parquet_err)?);
    let (start, end) = rollup.time_range().unwrap_or((0, 0));
    let seconds =
        |s: i64| time_from_nanos(u64::try_from(s).unwrap_or(0).saturating_mul(1_000_000_000));
    let meta = RollupMeta {
        format: ROLLUP_FORMAT.to_owned(),
        format_version: ROLLUP_FORMAT_VERSION,
        segment_id,
        tenant: tenant.to_string(),
        created_at: Utc::now(),
        start_time: seconds(start),
        end_time: seconds(end),
        row_count: rollup.len() as u64,
        span_count: rollup.span_count(),
        data_size: data.len() as u64,
        min_bucket_seconds: rollup
            .rows()
            .map(|(k, _)| k.bucket_seconds)
            .min()
            .unwrap_or(0),
        sources,
        compacted_from,
    };
    Ok((meta, data))
}

fn decode_sketch(bytes: &[u8], segment: &str) -> Result<DDSketch> {
    if bytes.len() > MAX_SKETCH_BYTES {
        return Err(corrupt(segment, "a duration sketch is too large"));
    }
    // The decoder checks its input, but its bin arithmetic is not audited against hostile
    // bytes: a panic in it is reported as corruption rather than taking the process down.
    std::panic::catch_unwind(AssertUnwindSafe(|| DDSketch::from_java_bytes(bytes)))
        .map_err(|_| corrupt(segment, "duration sketch"))?
        .map_err(|e| corrupt(segment, format!("duration sketch: {e}")))
}

/// Decodes a segment's `data.parquet`.
pub fn decode_segment(data: Bytes, segment: &str) -> Result<Rollup> {
    let mut rollup = Rollup::new();
    for batch in file_batches(data, segment)? {
        let batch = batch?;
        let names = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let c = Cols::new(batch.columns(), names, segment);
        use rollup_col::*;
        let bucket: &Int64Array = c.get(BUCKET_START)?;
        let seconds: &UInt32Array = c.get(BUCKET_SECONDS)?;
        let service: &StringArray = c.get(SERVICE)?;
        let name: &StringArray = c.get(NAME)?;
        let kind: &Int32Array = c.get(KIND)?;
        let status: &Int32Array = c.get(STATUS)?;
        let spans: &UInt64Array = c.get(SPANS)?;
        let errors: &UInt64Array = c.get(ERRORS)?;
        let sum: &UInt64Array = c.get(DURATION_SUM)?;
        let sketch: &BinaryArray = c.get(SKETCH)?;
        for row in 0..batch.num_rows() {
            if sketch.is_null(row) || service.is_null(row) || name.is_null(row) {
                return Err(corrupt(segment, format!("null in row {row}")));
            }
            let cell = RollupCell {
                spans: spans.value(row),
                errors: errors.value(row),
                duration_sum_nanos: sum.value(row),
                sketch: decode_sketch(sketch.value(row), segment)?,
            };
            if cell.errors > cell.spans || cell.sketch.count() as u64 != cell.spans {
                return Err(corrupt(segment, format!("counts disagree in row {row}")));
            }
            let key = RollupKey {
                bucket_start: bucket.value(row),
                bucket_seconds: seconds.value(row).max(1),
                service: service.value(row).to_owned(),
                name: name.value(row).to_owned(),
                kind: kind.value(row),
                status: status.value(row),
            };
            rollup.add_cell(key, &cell)?;
        }
    }
    Ok(rollup)
}

/// Uploads a segment: data first, `meta.json` last.
pub async fn upload_segment(storage: &Storage, meta: &RollupMeta, data: Bytes) -> Result<()> {
    let tenant =
        TenantId::new(&meta.tenant).map_err(|e| Error::Rollup(format!("segment tenant: {e}")))?;
    let prefix = rollup_prefix(&tenant, meta.segment_id);
    storage.put(&prefix.clone().join(DATA_FILE), data).await?;
    storage
        .put(&prefix.join(META_FILE), Bytes::from(meta.to_json()))
        .await?;
    Ok(())
}

/// Reads a segment's `meta.json`, checking it names the segment and tenant it was found under.
pub async fn read_segment_meta(
    storage: &Storage,
    tenant: &TenantId,
    segment: Uuid,
) -> Result<RollupMeta> {
    let path = rollup_prefix(tenant, segment).join(META_FILE);
    let bytes = storage
        .get_at_most(&path, crate::catalog::MAX_SMALL_OBJECT_BYTES)
        .await?;
    let meta = RollupMeta::parse(&bytes, path.as_ref())?;
    if meta.segment_id != segment || meta.tenant != tenant.as_str() {
        return Err(corrupt(
            segment.to_string(),
            "meta.json names another segment or tenant",
        ));
    }
    Ok(meta)
}

/// Reads a segment's rows.
pub async fn read_segment(storage: &Storage, meta: &RollupMeta) -> Result<Rollup> {
    let tenant = TenantId::new(&meta.tenant)
        .map_err(|e| corrupt(meta.segment_id.to_string(), format!("tenant: {e}")))?;
    let path = rollup_prefix(&tenant, meta.segment_id).join(DATA_FILE);
    // The meta says how large the data is; a larger object is not the segment it describes.
    let data = storage.get_at_most(&path, meta.data_size).await?;
    decode_segment(data, &meta.segment_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_encoding_and_sketches_still_merge() {
        let mut rollup = Rollup::new();
        let mut other = new_cell_with(&[5.0, 10.0, 1e9]);
        let key = |service: &str| RollupKey {
            bucket_start: 60,
            bucket_seconds: 60,
            service: service.into(),
            name: "GET /".into(),
            kind: 2,
            status: 2,
        };
        other.errors = 3;
        rollup.add_cell(key("a"), &other).unwrap();
        rollup.add_cell(key("b"), &new_cell_with(&[7.0])).unwrap();
        let tenant = TenantId::new("t").unwrap();
        let (meta, data) =
            encode_segment(&tenant, Uuid::now_v7(), &rollup, vec![], vec![]).unwrap();
        assert_eq!(meta.span_count, 4);
        assert_eq!(meta.row_count, 2);
        let back = decode_segment(data, "s").unwrap();
        let rows: Vec<_> = back.rows().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.spans, 3);
        assert_eq!(rows[0].1.errors, 3);
        let mut merged = rows[0].1.clone();
        merged.merge(rows[1].1).unwrap();
        assert_eq!(merged.sketch.count(), 4);
        assert_eq!(merged.quantile(1.0), Some(1e9));
    }

    #[test]
    fn hostile_sketch_bytes_are_errors() {
        for bytes in [
            &b""[..],
            b"\x02",
            b"\xff\xff\xff",
            &[0x02, 0x06, 1, 2, 3][..],
        ] {
            assert!(decode_sketch(bytes, "s").is_err(), "{bytes:?}");
        }
        assert!(decode_sketch(&vec![0u8; MAX_SKETCH_BYTES + 1], "s").is_err());
    }

    fn new_cell_with(values: &[f64]) -> RollupCell {
        let mut sketch = crate::rollup::new_sketch();
        values.iter().for_each(|v| sketch.add(*v));
        RollupCell {
            spans: values.len() as u64,
            errors: 0,
            duration_sum_nanos: values.iter().sum::<f64>() as u64,
            sketch,
        }
    }
}
