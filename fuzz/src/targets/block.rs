//! `block_file`: the fixture block with one of its objects replaced by the fuzzer's bytes, read
//! through every reader the querier and the compactor use: `open_block_file`, the bloom shard
//! and `read_trace` (trace by ID), `scan_block` (search, with and without pruning),
//! `BlockTraceReader` (compaction) and `read_spans`. Errors are expected; panics, aborts and huge
//! allocations are findings.
//!
//! Byte 0 picks the object: 0 `data.parquet` with `meta.json`'s sizes fitted to it (so the
//! reader gets as far as the footer allows), 1 `data.parquet` with the meta as written, 2
//! `meta.json`, 3 `bloom-0`, 4 `tags.json`, 5 the Parquet footer alone (the file keeps its
//! pages and gets the input as its footer, length and magic added; the meta's sizes fitted), so
//! that mutations land on the metadata every reader parses first.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use strata_block::{
    BlockMeta, BlockTraceReader, EncodedBlock, Prune, PruneOp, PruneValue, ReadStats, TagSummary,
    layout, open_block_file, read_bloom_shard, read_spans, read_trace, scan_block,
};
use strata_model::TraceId;
use strata_storage::Storage;

use crate::fixture;
use crate::runtime::run;

fn block() -> &'static EncodedBlock {
    static BLOCK: OnceLock<EncodedBlock> = OnceLock::new();
    BLOCK.get_or_init(fixture::block)
}

/// Most traces the compaction reader is asked for before the harness stops it.
const MAX_TRACES: usize = 10_000;

/// One object of the block, after its selector byte.
pub fn block_file(data: &[u8]) {
    crate::panics::install();
    let Some((&which, object)) = data.split_first() else {
        return;
    };
    let block = block();
    let mut meta = block.meta.clone();
    let mut files = Files {
        data: block.data.clone(),
        blooms: block.blooms.clone(),
        tags: block.tags.clone(),
    };
    let object = Bytes::copy_from_slice(object);
    match which % 6 {
        0 => {
            fit_sizes(&mut meta, &object);
            files.data = object;
        }
        1 => files.data = object,
        2 => match BlockMeta::parse(&object, "fuzz/meta.json") {
            Ok(parsed) => meta = parsed,
            Err(_) => return,
        },
        3 => match files.blooms.first_mut() {
            Some(first) => *first = object,
            None => return,
        },
        4 => {
            let _ = TagSummary::parse(&object, "fuzz/tags.json");
            return;
        }
        _ => {
            let mut data = block.data[..footer_start(&block.data)].to_vec();
            data.extend_from_slice(&object);
            data.extend_from_slice(&(object.len() as u32).to_le_bytes());
            data.extend_from_slice(b"PAR1");
            fit_sizes(&mut meta, &data);
            files.data = Bytes::from(data);
        }
    }
    run(read_everything(meta, files));
}

struct Files {
    data: Bytes,
    blooms: Vec<Bytes>,
    tags: Bytes,
}

/// Where the footer of a Parquet file written by the block writer starts.
pub fn footer_start(data: &[u8]) -> usize {
    let trailer = data.len().saturating_sub(8);
    let len = data
        .get(trailer..trailer + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    trailer.saturating_sub(len)
}

/// Sizes in the meta that match a replaced `data.parquet`: its length, and the footer length
/// its trailer declares (when it has one), so the footer parser sees the fuzzer's footer.
fn fit_sizes(meta: &mut BlockMeta, data: &[u8]) {
    meta.data_size = data.len() as u64;
    if let Some(trailer) = data.len().checked_sub(8).and_then(|at| data.get(at..)) {
        let len = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        meta.footer_size = u64::from(len) + 8;
    }
}

async fn read_everything(meta: BlockMeta, files: Files) {
    let storage = Storage::in_memory();
    let tenant = fixture::tenant();
    // The objects go where the fixture block's are, whatever the meta says.
    let id = fixture::BLOCK_ID;
    let puts = [
        (layout::data_path(&tenant, id), files.data.clone()),
        (layout::tags_path(&tenant, id), files.tags.clone()),
    ]
    .into_iter()
    .chain(
        files
            .blooms
            .iter()
            .enumerate()
            .map(|(i, b)| (layout::bloom_path(&tenant, id, i as u32), b.clone())),
    );
    for (path, bytes) in puts {
        if let Err(e) = storage.put(&path, bytes).await {
            panic!("in-memory put failed: {e}");
        }
    }
    let stats = Arc::new(ReadStats::default());
    // A trace of several row groups, a small one, and one the block does not hold: each full
    // read costs a decompressor per column chunk, so fewer lookups mean many more inputs tried.
    let ids = [
        TraceId(fixture::TRACE_IDS[0]),
        TraceId(fixture::TRACE_IDS[3]),
        TraceId([0x42; 16]),
    ];
    if let Ok(file) = open_block_file(&storage, &meta, &stats).await {
        for id in &ids {
            let _ = read_bloom_shard(&storage, &meta, id, &stats).await;
            let _ = read_trace(&storage, &meta, &file, id, &stats).await;
        }
        let schema = strata_block::schema::block_schema();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for prune in prunes() {
            let _ = scan_block(&storage, &meta, &file, &columns, &prune, &stats).await;
        }
    }
    if let Ok(mut reader) = BlockTraceReader::open(&storage, Arc::new(meta)).await {
        for _ in 0..MAX_TRACES {
            match reader.next().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = read_spans(files.data, "fuzz");
}

/// No pruning; a string equality (which reads dictionaries); an integer range (statistics and
/// the page index).
fn prunes() -> [Prune; 3] {
    let column = |column: &str, op, value| Prune::Column {
        column: column.into(),
        op,
        value,
    };
    [
        Prune::Any,
        column(
            "resource_service_name",
            PruneOp::Eq,
            PruneValue::Str("cart".into()),
        ),
        Prune::And(vec![
            column(
                "start_unix_nano",
                PruneOp::Gte,
                PruneValue::Int(fixture::T0 as i64 + 10_000_000),
            ),
            column("duration_nano", PruneOp::Lt, PruneValue::Int(1_000_000_000)),
        ]),
    ]
}
