//! Micro-benchmarks of the hot kernels on the standard workload: OTLP decode, sanitizing and
//! OTLP → model conversion, WAL append, block encoding, bloom checks, finding a trace's rows in a
//! block, and TraceQL evaluation over a block.
//!
//! cargo bench -p strata-bench --bench kernels

#![allow(clippy::unwrap_used, missing_docs)] // Benchmark code: a failure should stop the run loudly.

use std::hint::black_box;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{
    BlockConfig, BlockIdentity, BloomShard, EncodedBlock, ReadStats, build_shards, encode_block,
    open_block_file, read_trace, shard_for, upload_block,
};
use strata_ingest::config::WalConfig;
use strata_ingest::wal::{Wal, WalMetrics};
use strata_model::{Span, TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics, SearchRequest};
use strata_storage::Storage;

fn requests(spans: usize) -> Vec<ExportTraceServiceRequest> {
    Workload::new(WorkloadConfig::default()).requests(spans, 512)
}

fn decode(c: &mut Criterion) {
    let encoded: Vec<Vec<u8>> = requests(10_240)
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(10_240));
    group.bench_function("decode_10k_spans", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap());
            }
        })
    });
    group.bench_function("decode_sanitize_convert_10k_spans", |b| {
        b.iter(|| {
            for bytes in &encoded {
                let mut request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
                black_box(strata_ingest::sanitize(
                    &mut request,
                    &strata_ingest::SanitizeLimits::default(),
                ));
                black_box(strata_model::otlp::spans_from_request(request));
            }
        })
    });
    group.finish();
}

fn wal(c: &mut Criterion) {
    let payloads: Vec<Vec<u8>> = requests(10_240)
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TenantId::new("bench").unwrap();
    let mut group = c.benchmark_group("wal");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            path: dir.path().to_owned(),
            fsync,
            ..WalConfig::default()
        };
        let (mut wal, _) = Wal::open(&config, WalMetrics::default()).unwrap();
        let appender = wal.appender().unwrap();
        let name = if fsync {
            "append_10k_spans_fsync"
        } else {
            "append_10k_spans_no_fsync"
        };
        // Every request appended at once, as concurrent receivers do: one group commit serves
        // as many as are queued.
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let appends = payloads.iter().map(|p| appender.append(&tenant, 1, p));
                    black_box(futures::future::try_join_all(appends).await.unwrap())
                })
            })
        });
        drop(appender);
        wal.close();
    }
    group.finish();
}

fn workload_spans(spans: usize) -> Vec<Span> {
    requests(spans)
        .into_iter()
        .flat_map(|r| strata_model::otlp::spans_from_request(r).0)
        .collect()
}

fn encode(spans: Vec<Span>) -> EncodedBlock {
    let identity = BlockIdentity::fresh(TenantId::new("bench").unwrap());
    encode_block(identity, BlockConfig::default(), spans).unwrap()
}

fn block(c: &mut Criterion) {
    let spans = workload_spans(20_000);
    let mut group = c.benchmark_group("block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans.len() as u64));
    group.bench_function("encode_20k_spans", |b| {
        b.iter(|| black_box(encode(spans.clone())))
    });
    group.finish();
}

/// One block of 20k spans in an in-memory store, and a trace ID from each of its row groups'
/// worth of traces.
fn stored_block(runtime: &tokio::runtime::Runtime) -> (Storage, EncodedBlock, Vec<TraceId>) {
    let spans = workload_spans(20_000);
    let mut ids: Vec<TraceId> = spans.iter().map(|s| s.trace_id).collect();
    ids.dedup();
    let block = encode(spans);
    let storage = Storage::in_memory();
    runtime.block_on(upload_block(&storage, &block)).unwrap();
    (storage, block, ids)
}

fn lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (storage, block, ids) = stored_block(&runtime);
    let stats = Arc::new(ReadStats::default());
    let file = runtime
        .block_on(open_block_file(&storage, &block.meta, &stats))
        .unwrap();
    // The rows of one trace, found through the trace-ID pages: what a warm lookup costs once the
    // bloom says "maybe".
    c.bench_function("lookup/read_trace_in_20k_span_block", |b| {
        let mut i = 0;
        b.iter(|| {
            let id = ids[i * 7919 % ids.len()];
            i += 1;
            let spans = runtime
                .block_on(read_trace(&storage, &block.meta, &file, &id, &stats))
                .unwrap();
            assert!(!spans.is_empty());
            black_box(spans)
        })
    });
}

fn traceql(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (storage, block, _) = stored_block(&runtime);
    let querier = Querier::new(
        storage,
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    );
    runtime.block_on(querier.poll_blocklist()).unwrap();
    let mut group = c.benchmark_group("traceql");
    group.throughput(Throughput::Elements(block.meta.span_count));
    for (name, q) in [
        (
            "filter_dedicated_20k_spans",
            r#"{ span.db.system.name = "redis" && duration > 2ms }"#,
        ),
        ("filter_generic_20k_spans", "{ span.app.cart.items > 3 }"),
        (
            "structural_20k_spans",
            r#"{ resource.service.name = "frontend" } >> { span.db.system.name = "postgresql" }"#,
        ),
    ] {
        let query = Arc::new(strata_traceql::parse(q).unwrap());
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = SearchRequest {
                    query: Arc::clone(&query),
                    limit: usize::MAX,
                    spans_per_spanset: 3,
                    range: None,
                    min_duration_nanos: None,
                    max_duration_nanos: None,
                };
                let tenant = TenantId::new("bench").unwrap();
                black_box(runtime.block_on(querier.search(&tenant, request)).unwrap())
            })
        });
    }
    group.finish();
}

fn bloom(c: &mut Criterion) {
    let ids: Vec<TraceId> = (1..=50_000u64)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            id[8..].copy_from_slice(&i.to_le_bytes());
            TraceId(id)
        })
        .collect();
    let (meta, shards) = build_shards(&ids, 0.01, 100 * 1024).unwrap();
    let shards: Vec<BloomShard> = shards
        .iter()
        .map(|s| BloomShard::parse(s, "bench").unwrap())
        .collect();
    c.bench_function("bloom/check_hit", |b| {
        let mut i = 0;
        b.iter(|| {
            let id = &ids[i % ids.len()];
            i += 1;
            black_box(shards[shard_for(id, meta.shards) as usize].may_contain(id))
        })
    });
}

criterion_group!(kernels, decode, wal, block, bloom, lookup, traceql);
criterion_main!(kernels);
