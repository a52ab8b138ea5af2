//! Inputs the fuzz targets (`fuzz/`) found that crashed the readers of blocks in a bucket (the
//! parquet crate panics on some damaged pages; the readers report that as a corrupt block), kept
//! as regression tests. The inputs are shared with `fuzz_finds.rs`.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;

fn data(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn damaged(name: &str) -> Bytes {
    Bytes::from(zstd::decode_all(&data(name)[..]).unwrap())
}

/// The damaged `data.parquet` files `block_file` found (see `fuzz_finds.rs`), `fit` saying
/// whether `meta.json`'s sizes are fitted to the file or kept as the original block's.
const DAMAGED_BLOCKS: [(&str, bool); 5] = [
    ("damaged-block-7387904f.parquet.zst", false),
    ("damaged-block-c5fb9cd8.parquet.zst", true),
    ("damaged-block-a317fd0f.parquet.zst", false),
    ("damaged-block-44c5fb9e.parquet.zst", false),
    ("damaged-block-c1b94053.parquet.zst", false),
];

/// Two of the four (`7387904f`, `c5fb9cd8`) were refused by a check of the footer; the other two panicked in the async
/// reader behind `read_trace` (and so `scan_block` and `BlockTraceReader`): an add overflows in the parquet crate's `selection/ranges.rs`
/// (`a317fd0f`), a subtraction in `push_decoder/reader_builder/data.rs` (`44c5fb9e`). Both are
/// overflow checks, which a release build does not make (there the arithmetic wraps). A later
/// campaign found `c1b94053`: a subtraction overflows in the parquet crate's
/// `serialized_reader.rs` (a page location before the column chunk's start), also under
/// `read_trace`. Searches with dictionary pruning (a string equality) read pages with the same
/// page reader, so the scans here try that too. Every reader of a block in a bucket must answer
/// with an error.
#[tokio::test]
async fn damaged_block_files_are_errors_for_the_bucket_readers() {
    use std::sync::Arc;

    use strata_block::{
        BlockMeta, BlockTraceReader, Prune, PruneOp, PruneValue, ReadStats, layout,
        open_block_file, read_trace, scan_block,
    };
    use strata_model::{TenantId, TraceId};
    use strata_storage::Storage;

    let traces = [
        "0af7651916cd43dd8448eb211c80319c",
        "ffeeddccbbaa99887766554433221101",
        "42424242424242424242424242424242",
    ];
    for (name, fit) in DAMAGED_BLOCKS {
        let file = damaged(name);
        let mut meta = BlockMeta::parse(&data("damaged-block-meta.json"), "meta.json").unwrap();
        if fit {
            meta.data_size = file.len() as u64;
            let trailer = &file[file.len() - 8..file.len() - 4];
            meta.footer_size = u64::from(u32::from_le_bytes(trailer.try_into().unwrap())) + 8;
        }
        let storage = Storage::in_memory();
        let tenant = TenantId::new(&meta.tenant).unwrap();
        let path = layout::data_path(&tenant, meta.block_id);
        storage.put(&path, file.clone()).await.unwrap();
        let stats = Arc::new(ReadStats::default());
        if let Ok(footer) = open_block_file(&storage, &meta, &stats).await {
            for hex in traces {
                let id = TraceId::from_hex(hex).unwrap();
                let _ = read_trace(&storage, &meta, &footer, &id, &stats).await;
            }
            let cart = Prune::Column {
                column: "resource_service_name".into(),
                op: PruneOp::Eq,
                value: PruneValue::Str("cart".into()),
            };
            for prune in [Prune::Any, cart] {
                let _ = scan_block(&storage, &meta, &footer, &["trace_id"], &prune, &stats).await;
            }
        }
        if let Ok(mut reader) = BlockTraceReader::open(&storage, Arc::new(meta)).await {
            while let Ok(Some(_)) = reader.next().await {}
        }
    }
}
