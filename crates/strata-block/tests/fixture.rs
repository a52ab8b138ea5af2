//! A block written by format version 1, checked into the repository, read through every
//! reader on every test run: a change that stops existing blocks from being read, or changes
//! the bloom hash or the shard assignment (so lookups would say "not found" for traces that are
//! there), fails here.
//!
//! `tests/data/block-v1/` holds the block's objects (`data.parquet`, `bloom-N`, `tags.json`,
//! `meta.json`) and `expected.json`, the spans that went in, as an OTLP/JSON export request written from the
//! input when the fixture was made (never from reading the block). `UPDATE_FIXTURE=1` writes a
//! new fixture; only do that for a new format version, next to this one, never over it.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use strata_block::schema::col;
use strata_block::{
    BlockConfig, BlockIdentity, BlockMeta, BlockTraceReader, Prune, ReadStats, TagSummary,
    TagSummaryBuilder, encode_block, layout, open_block_file, read_bloom_shard, read_spans,
    read_trace, scan_block, shard_for,
};
use strata_model::{Span, TenantId, TraceId};
use strata_storage::Storage;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/block-v1")
}

/// Spans as OTLP JSON values, one per span, sorted by IDs, attributes sorted by key (their
/// order carries no meaning).
fn canonical(spans: &[Span]) -> Vec<serde_json::Value> {
    let mut spans: Vec<Span> = spans.to_vec();
    spans.sort_by_key(|s| (s.trace_id, s.span_id));
    spans
        .into_iter()
        .map(|mut span| {
            span.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            let mut resource = (*span.resource).clone();
            resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            span.resource = Arc::new(resource);
            serde_json::to_value(strata_model::otlp::spans_to_resource_spans(&[span])).unwrap()
        })
        .collect()
}

/// Every kind of value the format stores: resources and scopes (shared and not), dedicated
/// and generic attributes of every type (nested too), events, links, error status, kinds,
/// trace state, flags and dropped counts; 40 traces of 4 spans.
fn fixture_spans() -> Vec<Span> {
    use strata_model::{
        AttrValue, Event, KeyValue, Link, Resource, Scope, SpanId, SpanKind, StatusCode,
    };
    let resources: Vec<Arc<Resource>> = ["checkout", "cart", "db-proxy"]
        .iter()
        .map(|service| {
            Arc::new(Resource {
                attributes: vec![
                    KeyValue::str("service.name", *service),
                    KeyValue::str("k8s.pod.name", format!("{service}-7d9f")),
                    KeyValue::int("process.pid", 4242),
                ],
                dropped_attributes_count: 1,
                schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
            })
        })
        .collect();
    let scope = Arc::new(Scope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.3".into(),
        attributes: vec![KeyValue::str("scope.attr", "s")],
        dropped_attributes_count: 0,
        schema_url: String::new(),
    });
    let base = 1_767_225_600_000_000_000u64; // 2026-01-01
    let mut spans = Vec::new();
    for t in 0..40u64 {
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&(t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).to_be_bytes());
        trace[8..].copy_from_slice(&(t + 1).to_be_bytes());
        for s in 0..4u64 {
            let start = base + t * 1_000_000_000 + s * 1_000_000;
            let error = t % 7 == 0 && s == 3;
            spans.push(Span {
                trace_id: TraceId(trace),
                span_id: SpanId(((t << 8) | (s + 1)).to_be_bytes()),
                parent_span_id: (s > 0).then(|| SpanId(((t << 8) | s).to_be_bytes())),
                trace_state: if s == 0 {
                    "vendor=1".into()
                } else {
                    String::new()
                },
                flags: 1,
                name: ["GET /checkout", "cart.load", "SELECT orders", "POST /pay"][s as usize]
                    .into(),
                kind: SpanKind([2, 1, 3, 4][s as usize]),
                start_unix_nano: start,
                end_unix_nano: start + (s + 1) * 250_000 + t,
                attributes: vec![
                    KeyValue::str("http.request.method", "GET"),
                    KeyValue::int("http.response.status_code", if error { 500 } else { 200 }),
                    KeyValue::str("db.query.text", "SELECT * FROM orders WHERE id = ?"),
                    KeyValue {
                        key: "ratio".into(),
                        value: AttrValue::Double(0.25 * s as f64),
                    },
                    KeyValue {
                        key: "cached".into(),
                        value: AttrValue::Bool(s % 2 == 0),
                    },
                    KeyValue {
                        key: "blob".into(),
                        value: AttrValue::Bytes(vec![0, 1, 2, s as u8]),
                    },
                    KeyValue {
                        key: "tags".into(),
                        value: AttrValue::Array(vec![
                            AttrValue::Str("a".into()),
                            AttrValue::Int(t as i64),
                        ]),
                    },
                    KeyValue {
                        key: "nested".into(),
                        value: AttrValue::KvList(vec![KeyValue {
                            key: "inner".into(),
                            value: AttrValue::Array(vec![AttrValue::Bool(true)]),
                        }]),
                    },
                ],
                dropped_attributes_count: u32::from(s == 2),
                events: if error {
                    vec![Event {
                        time_unix_nano: start + 100,
                        name: "exception".into(),
                        attributes: vec![KeyValue::str("exception.message", "card declined")],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    Vec::new()
                },
                dropped_events_count: 0,
                links: if s == 1 {
                    vec![Link {
                        trace_id: TraceId([7; 16]),
                        span_id: SpanId([7; 8]),
                        trace_state: String::new(),
                        flags: 0,
                        attributes: vec![KeyValue::str("link.kind", "follows")],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    Vec::new()
                },
                dropped_links_count: 0,
                status_code: if error {
                    StatusCode::ERROR
                } else {
                    StatusCode::OK
                },
                status_message: if error {
                    "payment failed".into()
                } else {
                    String::new()
                },
                resource: Arc::clone(&resources[(s as usize).min(2)]),
                scope: Arc::clone(&scope),
            });
        }
    }
    spans
}

/// Writes the fixture (only with `UPDATE_FIXTURE=1`).
fn make_fixture() {
    let spans = fixture_spans();
    let config = BlockConfig {
        // Several row groups and several bloom shards, small files (shards this small are below
        // what the configuration allows, which only checks what operators set).
        row_group_max_spans: 40,
        bloom_shard_max_bytes: bytesize::ByteSize::b(64),
        bloom_false_positive_rate: 0.000001,
        ..BlockConfig::default()
    };
    let block = encode_block(
        BlockIdentity::fresh(TenantId::new("fixture-tenant").unwrap()),
        config,
        spans.clone(),
    )
    .unwrap();
    let dir = dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.parquet"), &block.data).unwrap();
    for (i, bloom) in block.blooms.iter().enumerate() {
        std::fs::write(dir.join(format!("bloom-{i}")), bloom).unwrap();
    }
    std::fs::write(dir.join("tags.json"), &block.tags).unwrap();
    std::fs::write(dir.join("meta.json"), block.meta.to_json()).unwrap();
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: strata_model::otlp::spans_to_resource_spans(&spans),
    };
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_vec(&request).unwrap(),
    )
    .unwrap();
}

/// The fixture's objects in an in-memory store, where the block's layout puts them.
async fn load() -> (Storage, BlockMeta, Vec<Span>) {
    if std::env::var_os("UPDATE_FIXTURE").is_some() {
        make_fixture();
    }
    let dir = dir();
    let meta_bytes = std::fs::read(dir.join("meta.json")).unwrap();
    let meta = BlockMeta::parse(&meta_bytes, "meta.json").unwrap();
    let tenant = TenantId::new(&meta.tenant).unwrap();
    let storage = Storage::in_memory();
    let put = |path: strata_storage::Path, file: &str| {
        let bytes = Bytes::from(std::fs::read(dir.join(file)).unwrap());
        let storage = storage.clone();
        async move { storage.put(&path, bytes).await.unwrap() }
    };
    put(layout::data_path(&tenant, meta.block_id), "data.parquet").await;
    for i in 0..meta.bloom.shards {
        put(
            layout::bloom_path(&tenant, meta.block_id, i),
            &format!("bloom-{i}"),
        )
        .await;
    }
    put(layout::tags_path(&tenant, meta.block_id), "tags.json").await;
    put(layout::meta_path(&tenant, meta.block_id), "meta.json").await;
    let data = std::fs::read(dir.join("data.parquet")).unwrap();
    let spans = read_spans(Bytes::from(data), "fixture").unwrap();
    (storage, meta, spans)
}

/// The spans that went into the fixture, from `expected.json` (OTLP JSON).
fn expected() -> Vec<serde_json::Value> {
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    let (spans, rejected) = strata_model::otlp::spans_from_request(request);
    assert!(rejected.is_empty());
    canonical(&spans)
}

#[tokio::test]
async fn the_v1_fixture_block_is_read_whole_by_every_reader() {
    let (storage, meta, spans) = load().await;
    let expected = expected();
    assert_eq!(meta.format_version, 1);
    assert!(
        meta.row_groups.len() > 1 && meta.bloom.shards > 1,
        "{meta:?}"
    );
    assert_eq!(meta.span_count as usize, expected.len());

    // The whole file.
    assert_eq!(canonical(&spans), expected, "read_spans");

    // Lookups by trace ID through the bloom shard each ID hashes to.
    let mut by_trace: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
    for span in &spans {
        by_trace
            .entry(span.trace_id)
            .or_default()
            .push(span.clone());
    }
    assert_eq!(by_trace.len() as u64, meta.trace_count);
    let stats = Arc::new(ReadStats::default());
    let file = open_block_file(&storage, &meta, &stats).await.unwrap();
    for (id, want) in &by_trace {
        let (shard, bloom) = read_bloom_shard(&storage, &meta, id, &stats).await.unwrap();
        assert_eq!(shard, shard_for(id, meta.bloom.shards));
        assert!(
            bloom.may_contain(id),
            "the bloom says no to {id}, which is in the block"
        );
        let got = read_trace(&storage, &meta, &file, id, &stats)
            .await
            .unwrap();
        assert_eq!(canonical(&got), canonical(want), "trace {id}");
    }

    // A search scan of every row.
    let (groups, counts) = scan_block(
        &storage,
        &meta,
        &file,
        &[col::TRACE_ID, col::NAME],
        &Prune::Any,
        &stats,
    )
    .await
    .unwrap();
    assert_eq!(counts.rows_read, meta.span_count);
    assert_eq!(
        groups
            .iter()
            .map(|g| g.batch.num_rows() as u64)
            .sum::<u64>(),
        meta.span_count
    );

    // The compactor's reader: whole traces, in ID order, each standing for one trace.
    let mut reader = BlockTraceReader::open(&storage, Arc::new(meta.clone()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(trace) = reader.next().await.unwrap() {
        assert_eq!(trace.weight, 1.0);
        assert_eq!(
            canonical(&trace.spans),
            canonical(&by_trace[&trace.trace_id])
        );
        seen.push(trace.trace_id);
    }
    assert_eq!(seen, by_trace.keys().copied().collect::<Vec<_>>());

    // tags.json, against a summary made now from the spans.
    let tags = TagSummary::parse(
        &std::fs::read(dir().join("tags.json")).unwrap(),
        "tags.json",
    )
    .unwrap();
    let mut builder = TagSummaryBuilder::default();
    for trace in by_trace.values() {
        builder.add_trace(trace);
    }
    assert_eq!(tags, builder.finish());
}

/// The shard assignment is part of the format (`schemas/block-v1.md`: FNV-1a 32 of the 16 ID
/// bytes, modulo the shard count): pinned values, computed apart from this code (with Python),
/// so a change to the hash is a reviewed decision and a new format version, not an accident.
#[test]
fn bloom_shards_are_assigned_by_the_v1_hash() {
    for (hex, shards, shard) in [
        ("00000000000000000000000000000001", 7, 2),
        ("5b8efff798038103d269b633813fc60c", 7, 1),
        ("ffffffffffffffffffffffffffffffff", 13, 5),
    ] {
        let id = TraceId::from_hex(hex).unwrap();
        assert_eq!(shard_for(&id, shards), shard, "{hex} of {shards} shards");
    }
}
