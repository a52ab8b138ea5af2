//! Inputs the fuzz targets (`fuzz/`) found to crash a reader, each kept as a regression test:
//! whatever the bytes, a reader answers with an error, never a panic.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;

fn data(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// `meta_parsers` found it: a footer whose column chunk starts at a negative offset made the
/// parquet crate's `ColumnChunkMetaData::byte_range` panic ("column start and length should not
/// be negative") under `decode_segment`, and the same reader is behind `read_spans`.
#[test]
fn a_column_chunk_at_a_negative_offset_is_an_error_not_a_panic() {
    let bytes = data("rollup-negative-column-offset.parquet");
    let rollup = strata_block::decode_segment(bytes.clone(), "fuzz");
    assert!(rollup.is_err(), "decoded: {:?}", rollup.map(|r| r.len()));
    let spans = strata_block::read_spans(bytes, "fuzz");
    assert!(spans.is_err(), "read {:?} spans", spans.map(|s| s.len()));
}
