//! Rollups: request, error and latency figures per (service, span name, span kind, status, time
//! bucket), kept after the spans themselves are sampled away or dropped. Each row holds exact
//! span and error counts, the exact duration sum, and a DDSketch of the durations
//! (`sketches-ddsketch`), which merges exactly and answers any quantile within
//! [`SKETCH_RELATIVE_ACCURACY`] of the true value.
//!
//! A rollup segment is one small Parquet file, `<tenant>/rollups/<segment-id>/data.parquet`, with
//! its `meta.json` written last (the same life cycle as blocks; see [`crate::catalog`]). The
//! schema is documented in `schemas/rollup-v1.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use strata_model::{Span, StatusCode};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The `format` of a rollup segment's `meta.json`.
pub const ROLLUP_FORMAT: &str = "strata-rollup";
/// The newest rollup format version this build reads and the one it writes.
pub const ROLLUP_FORMAT_VERSION: u32 = 1;
/// Every quantile a rollup answers is within this fraction of the true value (DDSketch's
/// relative-accuracy guarantee, for the rank `floor(q * (n - 1))`).
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;

/// The sketch every rollup cell uses; all share one configuration so any two merge.
pub fn new_sketch() -> DDSketch {
    // α = 0.01, 2048 bins, smallest value 1e-9: durations from 1 ns to centuries fit without
    // the lowest bins collapsing (about 1,300 bins for 1 ns .. 100 s).
    DDSketch::new(SketchConfig::new(SKETCH_RELATIVE_ACCURACY, 2048, 1.0e-9))
}

/// The dimensions of one rollup row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    /// Start of the time bucket, unix seconds.
    pub bucket_start: i64,
    /// Width of the bucket, seconds.
    pub bucket_seconds: u32,
    /// `service.name` of the span's resource; empty when absent.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Span kind, the OTLP code.
    pub kind: i32,
    /// Status code, the OTLP code (0 unset, 1 ok, 2 error).
    pub status: i32,
}

/// The figures of one rollup row.
#[derive(Clone)]
pub struct RollupCell {
    /// Spans counted.
    pub spans: u64,
    /// Of those, spans with status error.
    pub errors: u64,
    /// Sum of their durations, nanoseconds (saturating).
    pub duration_sum_nanos: u64,
    /// Their durations, nanoseconds.
    pub sketch: DDSketch,
}

impl std::fmt::Debug for RollupCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupCell")
            .field("spans", &self.spans)
            .field("errors", &self.errors)
            .field("duration_sum_nanos", &self.duration_sum_nanos)
            .finish_non_exhaustive()
    }
}

impl RollupCell {
    fn empty() -> Self {
        Self {
            spans: 0,
            errors: 0,
            duration_sum_nanos: 0,
            sketch: new_sketch(),
        }
    }

    /// Adds `other`'s figures to this cell's.
    pub fn merge(&mut self, other: &RollupCell) -> Result<()> {
        // Counts come from disk: a hostile segment must not overflow them.
        self.spans = self.spans.saturating_add(other.spans);
        self.errors = self.errors.saturating_add(other.errors);
        self.duration_sum_nanos = self
            .duration_sum_nanos
            .saturating_add(other.duration_sum_nanos);
        self.sketch
            .merge(&other.sketch)
            .map_err(|e| Error::Rollup(format!("sketches do not merge: {e}")))
    }

    /// The duration at quantile `q` (0..=1), nanoseconds; `None` when the cell is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).ok().flatten()
    }
}

/// Rollup rows, keyed and ordered by their dimensions.
#[derive(Debug, Clone, Default)]
pub struct Rollup {
    cells: BTreeMap<RollupKey, RollupCell>,
}

/// The bucket of width `seconds` that holds unix time `at` (seconds).
pub fn bucket_of(at: i64, seconds: u32) -> i64 {
    let width = i64::from(seconds.max(1));
    at.div_euclid(width) * width
}

impl Rollup {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one span in the bucket of width `bucket_seconds` holding its start time.
    pub fn add_span(&mut self, span: &Span, bucket_seconds: u32) {
        self.add_span_within(span, bucket_seconds, (i64::MIN, i64::MAX));
    }

    /// Counts one span in the bucket of width `bucket_seconds` holding its start time clamped to
    /// `bounds` (unix seconds, inclusive): its block's time range, so that a client's clock
    /// cannot put a span in a bucket of 1970 or 2262 (where retention would never reach it).
    pub fn add_span_within(&mut self, span: &Span, bucket_seconds: u32, bounds: (i64, i64)) {
        let start = i64::try_from(span.start_unix_nano / 1_000_000_000).unwrap_or(i64::MAX);
        let start = if bounds.0 <= bounds.1 {
            start.clamp(bounds.0, bounds.1)
        } else {
            start
        };
        let key = RollupKey {
            bucket_start: bucket_of(start, bucket_seconds),
            bucket_seconds: bucket_seconds.max(1),
            service: span.service_name().unwrap_or_default().to_owned(),
            name: span.name.to_string(),
            kind: span.kind.0,
            status: span.status_code.0,
        };
        let duration = span.end_unix_nano.saturating_sub(span.start_unix_nano);
        let cell = self.cells.entry(key).or_insert_with(RollupCell::empty);
        cell.spans += 1;
        cell.errors += u64::from(span.status_code == StatusCode::ERROR);
        cell.duration_sum_nanos = cell.duration_sum_nanos.saturating_add(duration);
        cell.sketch.add(duration as f64);
    }

    /// Adds one row (merging with a row of the same key).
    pub fn add_cell(&mut self, key: RollupKey, cell: &RollupCell) -> Result<()> {
        match self.cells.get_mut(&key) {
            Some(existing) => existing.merge(cell),
            None => {
                self.cells.insert(key, cell.clone());
                Ok(())
            }
        }
    }

    /// Adds every row of `other`.
    pub fn merge(&mut self, other: &Rollup) -> Result<()> {
        for (key, cell) in &other.cells {
            self.add_cell(key.clone(), cell)?;
        }
        Ok(())
    }

    /// The rows re-bucketed: rows in buckets starting before `before` (unix seconds) and
    /// narrower than `seconds` move into buckets of `seconds`; others stay as they are.
    pub fn coarsened(&self, seconds: u32, before: i64) -> Result<Rollup> {
        let mut out = Rollup::new();
        for (key, cell) in &self.cells {
            let mut key = key.clone();
            if key.bucket_start < before && key.bucket_seconds < seconds {
                key.bucket_start = bucket_of(key.bucket_start, seconds);
                key.bucket_seconds = seconds;
            }
            out.add_cell(key, cell)?;
        }
        Ok(out)
    }

    /// The rows, in key order.
    pub fn rows(&self) -> impl Iterator<Item = (&RollupKey, &RollupCell)> {
        self.cells.iter()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Spans counted, all rows.
    pub fn span_count(&self) -> u64 {
        self.cells
            .values()
            .fold(0u64, |total, c| total.saturating_add(c.spans))
    }

    /// Start of the first bucket and end of the last, unix seconds.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let start = self.cells.keys().map(|k| k.bucket_start).min()?;
        let end = self
            .cells
            .keys()
            .map(|k| k.bucket_start.saturating_add(i64::from(k.bucket_seconds)))
            .max()?;
        Some((start, end))
    }
}

/// The `meta.json` of a rollup segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupMeta {
    /// Always `strata-rollup`.
    pub format: String,
    /// Format version; readers refuse versions newer than they know.
    pub format_version: u32,
    /// Segment ID. A segment folded from one block has that block's ID, so folding a block
    /// twice writes the same segment.
    pub segment_id: Uuid,
    /// Tenant.
    pub tenant: String,
    /// When the segment was written.
    pub created_at: DateTime<Utc>,
    /// Start of its first bucket.
    pub start_time: DateTime<Utc>,
    /// End of its last bucket.
    pub end_time: DateTime<Utc>,
    /// Rows.
    pub row_count: u64,
    /// Spans counted.
    pub span_count: u64,
    /// Bytes of `data.parquet`.
    pub data_size: u64,
    /// Narrowest bucket in the segment, seconds.
    pub min_bucket_seconds: u32,
    /// Blocks whose spans this segment counts directly (a fold of one block); empty for a
    /// segment made by compacting other segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Uuid>,
    /// Segments this one replaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compacted_from: Vec<Uuid>,
}

impl RollupMeta {
    /// Parses and checks a segment's `meta.json` read from `path`.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let meta: Self = serde_json::from_slice(bytes).map_err(|source| Error::Meta {
            path: path.to_owned(),
            source,
        })?;
        if meta.format != ROLLUP_FORMAT || meta.format_version > ROLLUP_FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                block: meta.segment_id.to_string(),
                format: meta.format,
                version: meta.format_version,
                supported: ROLLUP_FORMAT,
                supported_version: ROLLUP_FORMAT_VERSION,
            });
        }
        Ok(meta)
    }

    /// The JSON written to storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields to a Vec cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(spans: u64, errors: u64) -> RollupCell {
        RollupCell {
            spans,
            errors,
            duration_sum_nanos: u64::MAX - 1,
            sketch: new_sketch(),
        }
    }

    /// Review E7: counts read from a segment were added with `+=`, which panics on overflow in
    /// a debug build and wraps to a small, wrong count in a release build.
    #[test]
    fn counts_from_hostile_segments_saturate_instead_of_overflowing() {
        let mut total = cell(u64::MAX - 1, u64::MAX - 2);
        total.merge(&cell(5, 5)).unwrap();
        assert_eq!(total.spans, u64::MAX);
        assert_eq!(total.errors, u64::MAX);
        assert_eq!(total.duration_sum_nanos, u64::MAX);

        let key = |name: &str| RollupKey {
            bucket_start: 0,
            bucket_seconds: 60,
            service: "s".into(),
            name: name.into(),
            kind: 0,
            status: 0,
        };
        let mut rollup = Rollup::new();
        rollup.add_cell(key("a"), &cell(u64::MAX, 0)).unwrap();
        rollup.add_cell(key("b"), &cell(u64::MAX, 0)).unwrap();
        assert_eq!(rollup.span_count(), u64::MAX);
    }
}
