//! Micro-benchmarks of the write path's hot kernels on the standard workload: OTLP decode,
//! sanitizing, OTLP → model conversion, block encoding, bloom checks.
//!
//! cargo bench -p strata-bench --bench kernels

#![allow(clippy::unwrap_used, missing_docs)] // Benchmark code: a failure should stop the run loudly.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, BloomShard, build_shards, encode_block, shard_for};
use strata_model::{TenantId, TraceId};

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
                black_box(strata_ingest::sanitize(&mut request, 16 * 1024));
                black_box(strata_model::otlp::spans_from_request(request));
            }
        })
    });
    group.finish();
}

fn block(c: &mut Criterion) {
    let spans: Vec<_> = requests(20_000)
        .into_iter()
        .flat_map(|r| strata_model::otlp::spans_from_request(r).0)
        .collect();
    let mut group = c.benchmark_group("block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans.len() as u64));
    group.bench_function("encode_20k_spans", |b| {
        b.iter(|| {
            let identity = BlockIdentity {
                tenant: TenantId::new("bench").unwrap(),
                block_id: uuid::Uuid::now_v7(),
                compaction_level: 0,
                retention_tier: 0,
            };
            black_box(encode_block(identity, BlockConfig::default(), spans.clone()).unwrap())
        })
    });
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

criterion_group!(kernels, decode, block, bloom);
criterion_main!(kernels);
