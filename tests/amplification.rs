//! One request cannot blow up a block: a resource of a few MiB shared by hundreds of tiny spans
//! costs gigabytes once each span's row carries its copy, so it is counted as stored and refused
//! with a clear error, or stored and readable, and the server's memory stays bounded, also
//! through a `kill -9` and the WAL replay after it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::support::{self, Strata};

fn string(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// A resource of `attrs` attributes of `value_bytes` each (distinct values, so nothing
/// compresses them away), and `spans` tiny spans, each its own trace when `one_trace` is false.
fn heavy(
    tag: u8,
    attrs: usize,
    value_bytes: usize,
    spans: usize,
    one_trace: bool,
) -> ExportTraceServiceRequest {
    let mut attributes = vec![string("service.name", "heavy".into())];
    attributes.extend((0..attrs).map(|i| {
        let seed = format!("{tag}-{i}-");
        string(
            &format!("attr.{i}"),
            seed.repeat(value_bytes / seed.len() + 1)[..value_bytes].to_owned(),
        )
    }));
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace_id(tag, if one_trace { 0 } else { i }).to_vec(),
            span_id: ((i as u64) + 1).to_be_bytes().to_vec(),
            name: "tiny".into(),
            start_time_unix_nano: now_nanos(),
            end_time_unix_nano: now_nanos() + 1_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn trace_id(tag: u8, i: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = tag;
    id[8..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    id
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn post(strata: &Strata, request: &ExportTraceServiceRequest) -> (u16, String) {
    let (status, body) = support::post_otlp(strata, request, None).await;
    let text =
        match opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            body.as_ref(),
        ) {
            Ok(ok) if status == 200 => format!("{:?}", ok.partial_success),
            _ => strata_ingest::receiver::status::RpcStatus::decode(body.as_ref())
                .map(|s| s.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned()),
        };
    (status, text)
}

#[test]
fn a_resource_copied_into_every_span_is_counted_as_stored_and_cannot_blow_up_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "ingester:\n  trace_idle_period: 300ms\n  flush_check_period: 100ms\n";
    let strata = Strata::start(dir.path(), sections);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The audit's request: a resource of ~3.8 MiB (250 attributes of 16000 bytes, each under
    // max_attribute_bytes) and 520 tiny spans, each its own trace. As rows it is ~2 GiB.
    let bomb = heavy(1, 250, 16_000, 520, false);
    let wire = bomb.encoded_len();
    assert!(wire < 4 << 20, "fits one request: {wire} bytes");
    runtime.block_on(async {
        let (status, message) = post(&strata, &bomb).await;
        assert_eq!(status, 400, "{message}");
        for needle in ["ingestion_burst_bytes", "resource", "520 spans"] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
        let mut client = TraceServiceClient::connect(strata.grpc_url())
            .await
            .unwrap();
        let status = client.export(bomb.clone()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("ingestion_burst_bytes"),
            "{status:?}"
        );

        // The same resource on spans of one trace: the trace limit (in stored bytes) takes two
        // spans (each stored with ~2 MiB of resource, what is left of it under max_attributes: 123 of its 251 attributes go)
        // and refuses the rest, naming why.
        let one_trace = heavy(2, 250, 16_000, 520, true);
        let (status, message) = post(&strata, &one_trace).await;
        assert_eq!(status, 200, "{message}");
        assert!(message.contains("rejected_spans: 518"), "{message}");
        assert!(message.contains("max_bytes_per_trace"), "{message}");
        assert!(message.contains("123 attributes were dropped"), "{message}");

        // Heavy but within the limits: 128 attributes of 16 KiB on 8 spans of 8 traces, 16 MiB
        // as stored, three times over (the rate refills meanwhile). Stored and readable.
        for tag in [3u8, 4, 5] {
            // The rate refills the bucket between them (a request waits for it, as a client
            // retries a 429).
            std::thread::sleep(std::time::Duration::from_millis(1300));
            let request = heavy(tag, 127, 16 << 10, 8, false);
            let (status, message) = post(&strata, &request).await;
            assert_eq!(status, 200, "{message}");
        }
    });
    let check_stored = |strata: &Strata| {
        runtime.block_on(async {
            for tag in [3u8, 4, 5] {
                for i in 0..8 {
                    let id = strata_model::TraceId(trace_id(tag, i)).to_hex();
                    let (spans, status) = support::trace_spans(strata.api, &id, None).await;
                    assert_eq!((spans.len(), status), (1, None), "trace {id}");
                }
            }
            let id = strata_model::TraceId(trace_id(2, 0)).to_hex();
            let (spans, _) = support::trace_spans(strata.api, &id, None).await;
            assert_eq!(spans.len(), 2, "the two spans of the one trace that fit");
            let (status, _) = support::api_get(
                strata.api,
                &format!(
                    "/api/v2/traces/{}",
                    strata_model::TraceId(trace_id(1, 0)).to_hex()
                ),
                None,
            )
            .await;
            assert_eq!(status, 200);
        })
    };
    check_stored(&strata);
    let peak = support::peak_rss_bytes(strata.pid());
    // A kill -9 before anything was flushed, and a replay of it all.
    let killed_log = strata.kill9();
    let blocks = dir.path().join("data/blocks/single-tenant/blocks");
    println!(
        "blocks before the kill: {}",
        std::fs::read_dir(&blocks).map_or(0, |d| d.count())
    );
    let strata = Strata::start(dir.path(), sections);
    check_stored(&strata);
    runtime.block_on(support::flush(&strata));
    check_stored(&strata);
    let replay_peak = support::peak_rss_bytes(strata.pid());
    let log = strata.stop();
    assert!(!log.contains("could not encode"), "{log}");
    let stored = support::stored_spans(&dir.path().join("data/blocks"), "single-tenant");
    let heavy_spans = stored
        .iter()
        .filter(|s| (3..=5).contains(&s.trace_id.0[0]))
        .count();
    assert_eq!(heavy_spans, 24, "every accepted heavy span is in a block");
    let value_bytes = stored
        .iter()
        .find(|s| s.trace_id.0[0] == 3)
        .and_then(|s| s.resource.attributes.iter().find(|kv| kv.key == "attr.7"))
        .and_then(|kv| kv.value.as_str())
        .map(str::len);
    assert_eq!(value_bytes, Some(16 << 10), "resource values stored whole");
    println!(
        "peak RSS: {} MiB while accepting and refusing, {} MiB through restart, replay and flush",
        peak >> 20,
        replay_peak >> 20
    );
    assert!(peak < 1 << 30, "peak RSS {} MiB\n{killed_log}", peak >> 20);
    assert!(
        replay_peak < 1 << 30,
        "peak RSS after restart {} MiB",
        replay_peak >> 20
    );
}
