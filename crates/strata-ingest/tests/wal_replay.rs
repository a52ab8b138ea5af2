//! Replaying a WAL that holds more than the ingester may keep in memory: blocks are cut and
//! uploaded while the WAL is read, and every acknowledged span ends up in a block.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use bytesize::ByteSize;
use prost::Message;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::BlockConfig;
use strata_ingest::config::{IngesterConfig, LimitsConfig};
use strata_ingest::wal::WalMetrics;
use strata_ingest::{IngestMetrics, Ingester};
use strata_model::TenantId;
use strata_storage::Storage;

type SpanKey = ([u8; 16], [u8; 8]);

fn config(wal: &Path, max_unflushed: u64) -> IngesterConfig {
    let mut config = IngesterConfig::default();
    config.wal.path = wal.to_owned();
    config.trace_idle_period = Duration::from_secs(3600);
    config.max_trace_live = Duration::from_secs(3600);
    config.max_block_duration = Duration::from_secs(3600);
    config.max_unflushed_bytes = ByteSize::b(max_unflushed);
    config.max_block_bytes = ByteSize::b(max_unflushed / 4);
    config
}

async fn start(config: IngesterConfig, storage: &Storage) -> Ingester {
    Ingester::start(
        config,
        LimitsConfig::default(),
        BlockConfig::default(),
        storage.clone(),
        IngestMetrics::default(),
        WalMetrics::default(),
    )
    .await
    .unwrap()
}

async fn stored_spans(storage: &Storage, tenant: &TenantId) -> (usize, HashSet<SpanKey>) {
    let mut blocks = 0;
    let mut spans = HashSet::new();
    let objects = storage
        .list(&strata_storage::Path::from(tenant.as_str()))
        .await
        .unwrap();
    for object in objects {
        if object.path.filename() == Some("data.parquet") {
            blocks += 1;
            let data = storage.get(&object.path).await.unwrap();
            for span in strata_block::read_spans(data, "test").unwrap() {
                spans.insert((span.trace_id.0, span.span_id.0));
            }
        }
    }
    (blocks, spans)
}

#[test]
fn replay_of_a_wal_larger_than_max_unflushed_bytes_flushes_as_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::in_memory();
    let tenant = TenantId::new("t").unwrap();
    let requests = Workload::new(WorkloadConfig {
        seed: 5,
        ..Default::default()
    })
    .requests(6_000, 100);
    let acked: HashSet<SpanKey> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| {
            (
                s.trace_id.clone().try_into().unwrap(),
                s.span_id.clone().try_into().unwrap(),
            )
        })
        .collect();
    let wal_bytes: u64 = requests.iter().map(|r| r.encoded_len() as u64).sum();

    // First life: everything acknowledged, nothing flushed, then a crash (no shutdown; the
    // runtime and its tasks are dropped).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ingester = start(config(dir.path(), 1 << 30), &storage).await;
        for request in requests {
            ingester.push(tenant.clone(), request, None).await.unwrap();
        }
    });
    drop(runtime);
    assert_eq!(
        block_on(stored_spans(&storage, &tenant)).0,
        0,
        "flushed before the crash; the test proves nothing"
    );

    // Second life: it may hold an eighth of what the WAL holds.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ingester = start(config(dir.path(), wal_bytes / 8), &storage).await;
        let in_memory: usize = ingester.recent_traces(&tenant).iter().map(Vec::len).sum();
        let (blocks, _) = stored_spans(&storage, &tenant).await;
        assert!(blocks > 1, "{blocks} blocks uploaded during replay");
        assert!(
            in_memory <= acked.len() / 2,
            "{in_memory} of {} spans held in memory after replay",
            acked.len()
        );
        ingester.shutdown().await;
        let (_, stored) = stored_spans(&storage, &tenant).await;
        let lost = acked.difference(&stored).count();
        assert_eq!(lost, 0, "{lost} acknowledged spans lost");
    });
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "WAL not emptied: {left:?}");
}

/// Runs a future on a throwaway runtime (between the two lives).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}
