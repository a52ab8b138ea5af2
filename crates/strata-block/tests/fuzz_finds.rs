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

/// The same footer check on the readers of blocks in a bucket: the async Parquet reader behind
/// `read_trace`, `scan_block` and `BlockTraceReader` calls the same `byte_range` (its in-memory
/// row group fetch), so a `data.parquet` whose footer puts a column chunk at a negative offset
/// panicked a lookup, a search and a compaction. The file here is a block the writer made, its
/// footer rewritten with the first column chunk of the first row group at offset -4.
#[tokio::test]
async fn a_block_with_a_column_chunk_at_a_negative_offset_is_an_error_for_every_reader() {
    use std::sync::Arc;

    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    use strata_block::{
        BlockConfig, BlockIdentity, BlockTraceReader, Prune, ReadStats, encode_block,
        open_block_file, read_trace, scan_block, upload_block,
    };
    use strata_model::TenantId;
    use strata_storage::Storage;

    let mut workload = strata_bench::workload::Workload::new(Default::default());
    let spans: Vec<_> = (0..5)
        .flat_map(|_| {
            strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
        })
        .collect();
    let first_trace = spans.iter().map(|s| s.trace_id).min().unwrap();
    let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
    let mut block = encode_block(identity, BlockConfig::default(), spans).unwrap();

    let data = block.data.clone();
    let footer_len = u32::from_le_bytes(data[data.len() - 8..data.len() - 4].try_into().unwrap());
    let footer_start = data.len() - 8 - footer_len as usize;
    let mut metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&data)
        .unwrap()
        .into_builder();
    let mut groups = metadata.take_row_groups();
    let mut columns = groups[0].columns().to_vec();
    columns[0] = columns[0]
        .clone()
        .into_builder()
        .set_data_page_offset(-4)
        .set_dictionary_page_offset(None)
        .build()
        .unwrap();
    groups[0] = groups[0]
        .clone()
        .into_builder()
        .set_column_metadata(columns)
        .build()
        .unwrap();
    let metadata = metadata.set_row_groups(groups).build();
    let mut hostile = data[..footer_start].to_vec();
    ParquetMetaDataWriter::new(&mut hostile, &metadata)
        .finish()
        .unwrap();
    let new_footer = u32::from_le_bytes(
        hostile[hostile.len() - 8..hostile.len() - 4]
            .try_into()
            .unwrap(),
    );
    block.meta.data_size = hostile.len() as u64;
    block.meta.footer_size = u64::from(new_footer) + 8;
    block.data = Bytes::from(hostile);

    let storage = Storage::in_memory();
    upload_block(&storage, &block).await.unwrap();
    let stats = Arc::new(ReadStats::default());
    let meta = &block.meta;
    // Each reader either refuses the footer or fails reading the damaged column; none panics.
    match open_block_file(&storage, meta, &stats).await {
        Err(_) => {}
        Ok(file) => {
            let found = read_trace(&storage, meta, &file, &first_trace, &stats).await;
            assert!(found.is_err(), "read {:?} spans", found.map(|s| s.len()));
            let scanned =
                scan_block(&storage, meta, &file, &["trace_id"], &Prune::Any, &stats).await;
            assert!(scanned.is_err(), "scanned a damaged column");
        }
    }
    if let Ok(mut reader) = BlockTraceReader::open(&storage, Arc::new(meta.clone())).await {
        assert!(
            reader.next().await.is_err(),
            "read a trace from a damaged column"
        );
    }
}

/// `block_file` found these in a 600 s campaign: the fuzz fixture's `data.parquet` with a few
/// bytes changed (in pages and page indexes) or inserted, `fit` saying whether `meta.json`'s
/// sizes are fitted to the file (as for a meta written for it) or kept as the original block's.
const DAMAGED_BLOCKS: [(&str, bool); 4] = [
    ("damaged-block-7387904f.parquet.zst", false),
    ("damaged-block-c5fb9cd8.parquet.zst", true),
    ("damaged-block-a317fd0f.parquet.zst", false),
    ("damaged-block-44c5fb9e.parquet.zst", false),
];

fn damaged(name: &str) -> Bytes {
    Bytes::from(zstd::decode_all(&data(name)[..]).unwrap())
}

/// Two of them (`7387904f`, `c5fb9cd8`) panicked inside the parquet crate under `read_spans`
/// (and so `decode_segment`): `fixed_len_byte_array.rs` sliced out of range and unwrapped a
/// `None`. The whole-file reader now reports a panic in the parquet crate as corruption.
#[test]
fn damaged_block_files_are_errors_for_the_whole_file_reader() {
    for (name, _) in DAMAGED_BLOCKS {
        let file = damaged(name);
        let spans = strata_block::read_spans(file.clone(), name);
        if name.contains("7387904f") || name.contains("c5fb9cd8") {
            assert!(
                spans.is_err(),
                "{name}: read {:?} spans",
                spans.map(|s| s.len())
            );
        }
        assert!(strata_block::decode_segment(file, name).is_err(), "{name}");
    }
}
