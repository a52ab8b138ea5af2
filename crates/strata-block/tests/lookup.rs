//! Looking up traces in blocks on object storage: every trace is found whole, a missing one is
//! not, and a lookup reads only part of the file.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{
    BlockConfig, BlockIdentity, ReadStats, encode_block, open_block_file, read_bloom_shard,
    read_trace, upload_block,
};
use strata_model::{Span, TenantId, TraceId};
use strata_storage::Storage;

fn workload_spans(traces: usize) -> Vec<Span> {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 3,
        ..Default::default()
    });
    (0..traces)
        .flat_map(|_| {
            strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
        })
        .collect()
}

#[tokio::test]
async fn every_trace_is_found_whole_and_reads_stay_small() {
    let spans = workload_spans(300);
    let mut by_trace: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
    for span in &spans {
        by_trace
            .entry(span.trace_id)
            .or_default()
            .push(span.clone());
    }
    let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
    let config = BlockConfig {
        row_group_max_spans: 1000,
        ..Default::default()
    };
    let block = encode_block(identity, config, spans).unwrap();
    assert!(block.meta.row_groups.len() > 3, "want several row groups");
    let storage = Storage::in_memory();
    upload_block(&storage, &block).await.unwrap();

    let open_stats = ReadStats::default();
    let file = open_block_file(&storage, &block.meta, &open_stats)
        .await
        .unwrap();
    assert_eq!(open_stats.reads(), 1, "footer and page index in one read");
    for (id, expected) in by_trace.iter().step_by(5) {
        let stats = Arc::new(ReadStats::default());
        let (_, bloom) = read_bloom_shard(&storage, &block.meta, id, &stats)
            .await
            .unwrap();
        assert!(bloom.may_contain(id));
        let mut found = read_trace(&storage, &block.meta, &file, id, &stats)
            .await
            .unwrap();
        found.sort_by_key(|s| s.span_id);
        let mut want = expected.clone();
        want.sort_by_key(|s| s.span_id);
        assert_eq!(found.len(), want.len(), "trace {id}");
        for (a, b) in found.iter().zip(&want) {
            assert_eq!(
                (a.span_id, &a.name, a.start_unix_nano, a.end_unix_nano),
                (b.span_id, &b.name, b.start_unix_nano, b.end_unix_nano)
            );
        }
        assert!(
            stats.bytes() < block.meta.data_size,
            "a lookup must not read the whole file"
        );
    }
    let absent = TraceId([0xfe; 16]);
    let stats = Arc::new(ReadStats::default());
    assert!(
        read_trace(&storage, &block.meta, &file, &absent, &stats)
            .await
            .unwrap()
            .is_empty()
    );
}
