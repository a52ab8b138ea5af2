//! Contract tests: each endpoint called exactly as Grafana's Tempo data source calls it (path,
//! query parameters, headers), answers checked the way Grafana reads them — protobuf decoded with
//! our protos, JSON with serde — against real blocks in object storage.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use base64::Engine;
use common::get;
use prometheus_client::registry::Registry;
use prost::Message;
use strata_api::proto::{PartialStatus, Trace, TraceByIdResponse};
use strata_api::{ApiState, router};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::{Span, SpanId, TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics};
use strata_storage::Storage;

struct Fixture {
    /// The same API with multitenancy on.
    sealed: Router,
    app: Router,
    trace: Vec<Span>,
    /// A trace whose ID starts with zero bytes, to test short hex IDs.
    short: TraceId,
}

async fn fixture(config: QueryConfig) -> Fixture {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 21,
        ..Default::default()
    });
    let mut spans: Vec<Span> = (0..20)
        .flat_map(|_| {
            strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
        })
        .collect();
    let trace: Vec<Span> = spans
        .iter()
        .filter(|s| s.trace_id == spans[0].trace_id)
        .cloned()
        .collect();
    let short = TraceId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd]);
    let mut lone = trace[0].clone();
    lone.trace_id = short;
    lone.span_id = SpanId([5; 8]);
    lone.parent_span_id = None;
    spans.push(lone);
    let storage = Storage::in_memory();
    let identity = BlockIdentity::fresh(TenantId::new("single-tenant").unwrap());
    upload_block(
        &storage,
        &encode_block(identity, BlockConfig::default(), spans).unwrap(),
    )
    .await
    .unwrap();
    let querier = Arc::new(Querier::new(
        storage,
        config,
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    ));
    querier.poll_blocklist().await.unwrap();
    let state = ApiState {
        registry: Arc::new(Registry::default()),
        ready: Arc::new(|| true),
        querier,
        multitenancy: false,
    };
    let sealed = router(ApiState {
        multitenancy: true,
        ..state.clone()
    });
    Fixture {
        app: router(state),
        sealed,
        trace,
        short,
    }
}

/// Grafana's backend asks for protobuf.
const GRAFANA: &[(&str, &str)] = &[("Accept", "application/protobuf")];

fn span_ids(trace: &Trace) -> Vec<Vec<u8>> {
    let mut ids: Vec<Vec<u8>> = trace
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.span_id.clone())
        .collect();
    ids.sort();
    ids
}

fn expected_ids(spans: &[Span]) -> Vec<Vec<u8>> {
    let mut ids: Vec<Vec<u8>> = spans.iter().map(|s| s.span_id.0.to_vec()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn v2_protobuf_as_grafana_reads_it() {
    let f = fixture(QueryConfig::default()).await;
    let id = f.trace[0].trace_id.to_hex();
    let start = f.trace.iter().map(|s| s.start_unix_nano).min().unwrap() / 1_000_000_000;
    let end = f.trace.iter().map(|s| s.end_unix_nano).max().unwrap() / 1_000_000_000 + 1;
    let (status, content_type, body) = get(
        &f.app,
        &format!("/api/v2/traces/{id}?start={start}&end={end}"),
        GRAFANA,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/protobuf");
    let response = TraceByIdResponse::decode(body.as_slice()).unwrap();
    assert_eq!(response.status, PartialStatus::Complete as i32);
    assert!(response.message.is_empty());
    let trace = response.trace.unwrap();
    assert_eq!(span_ids(&trace), expected_ids(&f.trace));
    let first = &trace.resource_spans[0];
    assert!(
        first
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name")
    );
    assert!(response.metrics.unwrap().backend_reads > 0);
    // Without start and end (Grafana's time-shift setting off) the trace is found too.
    let (_, _, body) = get(&f.app, &format!("/api/v2/traces/{id}"), GRAFANA).await;
    assert_eq!(
        span_ids(
            &TraceByIdResponse::decode(body.as_slice())
                .unwrap()
                .trace
                .unwrap()
        ),
        expected_ids(&f.trace)
    );
}

#[tokio::test]
async fn v2_not_found_is_200_with_an_empty_trace() {
    let f = fixture(QueryConfig::default()).await;
    let (status, _, body) = get(
        &f.app,
        "/api/v2/traces/1234567890abcdef1234567890abcdef",
        GRAFANA,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let response = TraceByIdResponse::decode(body.as_slice()).unwrap();
    assert!(response.trace.unwrap_or_default().resource_spans.is_empty());
    let (status, content_type, body) = get(
        &f.app,
        "/api/v2/traces/1234567890abcdef1234567890abcdef",
        &[],
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/json")
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["trace"], serde_json::json!({}));
    // A time range that misses the trace's block is a miss as well.
    let id = f.trace[0].trace_id.to_hex();
    let (status, _, body) = get(
        &f.app,
        &format!("/api/v2/traces/{id}?start=1000&end=2000"),
        GRAFANA,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        TraceByIdResponse::decode(body.as_slice())
            .unwrap()
            .trace
            .unwrap_or_default()
            .resource_spans
            .is_empty()
    );
}

#[tokio::test]
async fn v2_json_uses_tempos_encodings() {
    let f = fixture(QueryConfig::default()).await;
    let id = f.trace[0].trace_id;
    let (status, _, body) = get(
        &f.app,
        &format!("/api/v2/traces/{}", id.to_hex().to_uppercase()),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        json.get("status").is_none(),
        "COMPLETE is the zero value and is left out"
    );
    let spans: Vec<&serde_json::Value> = json["trace"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), f.trace.len());
    let base64 = base64::engine::general_purpose::STANDARD.encode(id.as_bytes());
    for span in &spans {
        assert_eq!(
            span["traceId"],
            base64.as_str(),
            "IDs are base64 in trace-by-ID JSON"
        );
        assert!(
            span["startTimeUnixNano"].is_string(),
            "64-bit integers are strings"
        );
        assert!(
            span["kind"].as_str().unwrap().starts_with("SPAN_KIND_"),
            "enums by name"
        );
        assert!(
            span.get("droppedAttributesCount").is_none(),
            "zero values are left out"
        );
    }
    let root = spans
        .iter()
        .find(|s| s.get("parentSpanId").is_none())
        .expect("a root span");
    assert!(root["name"].is_string());
    assert_eq!(
        json["metrics"]["backendReads"]
            .as_str()
            .map(|v| v.parse::<u64>().unwrap() > 0),
        Some(true)
    );
}

#[tokio::test]
async fn v1_protobuf_json_and_not_found() {
    let f = fixture(QueryConfig::default()).await;
    let id = f.trace[0].trace_id.to_hex();
    let (status, content_type, body) = get(&f.app, &format!("/api/traces/{id}"), GRAFANA).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/protobuf")
    );
    assert_eq!(
        span_ids(&Trace::decode(body.as_slice()).unwrap()),
        expected_ids(&f.trace)
    );
    let (status, _, body) = get(&f.app, &format!("/api/traces/{id}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let batches = json["batches"]
        .as_array()
        .expect("v1 JSON names the list `batches`");
    let count: usize = batches
        .iter()
        .flat_map(|b| b["scopeSpans"].as_array().unwrap())
        .map(|ss| ss["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, f.trace.len());
    // Grafana retries v1 when v2 says 404; v1's not found is a 404 with an empty body.
    let (status, _, body) = get(
        &f.app,
        "/api/traces/1234567890abcdef1234567890abcdef",
        GRAFANA,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.is_empty());
}

#[tokio::test]
async fn ids_in_paths_are_hex_case_insensitive_and_left_padded() {
    let f = fixture(QueryConfig::default()).await;
    for path in [
        "/api/traces/abcd",
        "/api/traces/ABCD",
        "/api/traces/0000ABcd",
    ] {
        let (status, _, body) = get(&f.app, path, GRAFANA).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            span_ids(&Trace::decode(body.as_slice()).unwrap()),
            vec![vec![5u8; 8]],
            "{path}"
        );
    }
    assert_eq!(f.short.to_hex(), "0000000000000000000000000000abcd");
    for (path, needle) in [
        ("/api/v2/traces/zz12", "not hexadecimal"),
        (
            "/api/v2/traces/123456789012345678901234567890123",
            "longer than 32",
        ),
        ("/api/traces/zz12", "not hexadecimal"),
    ] {
        let (status, content_type, body) = get(&f.app, path, GRAFANA).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
        assert!(String::from_utf8(body).unwrap().contains(needle), "{path}");
    }
    let id = f.trace[0].trace_id.to_hex();
    let (status, _, body) = get(
        &f.app,
        &format!("/api/v2/traces/{id}?start=2000&end=1000"),
        GRAFANA,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("end (1000) is before start (2000)")
    );
}

#[tokio::test]
async fn tenants_are_kept_apart() {
    let f = fixture(QueryConfig::default()).await;
    let id = f.trace[0].trace_id.to_hex();
    let (status, _, _) = get(&f.sealed, &format!("/api/traces/{id}"), &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "multitenancy needs a tenant"
    );
    let (status, _, _) = get(
        &f.app,
        &format!("/api/traces/{id}"),
        &[("X-Scope-OrgID", "other-team")],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "without multitenancy the header is ignored"
    );
    let (status, _, _) = get(
        &f.sealed,
        &format!("/api/traces/{id}"),
        &[("X-Scope-OrgID", "other-team")],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant does not see the trace"
    );
    let (status, _, _) = get(
        &f.sealed,
        &format!("/api/traces/{id}"),
        &[("X-Scope-OrgID", "single-tenant")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get(
        &f.sealed,
        &format!("/api/traces/{id}"),
        &[("X-Scope-OrgID", "../etc")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body).unwrap().contains("X-Scope-OrgID"));
}

#[tokio::test]
async fn oversized_traces_are_partial_in_v2_and_422_in_v1() {
    let f = fixture(QueryConfig {
        max_trace_bytes: bytesize_of(2000),
        ..Default::default()
    })
    .await;
    let id = f.trace[0].trace_id.to_hex();
    let (status, _, body) = get(&f.app, &format!("/api/v2/traces/{id}"), GRAFANA).await;
    assert_eq!(status, StatusCode::OK);
    let response = TraceByIdResponse::decode(body.as_slice()).unwrap();
    assert_eq!(response.status, PartialStatus::Partial as i32);
    assert!(
        response
            .message
            .contains("Trace exceeds maximum size of 2000 bytes"),
        "{}",
        response.message
    );
    let returned = span_ids(&response.trace.unwrap()).len();
    assert!(
        returned > 0 && returned < f.trace.len(),
        "truncated: {returned} of {}",
        f.trace.len()
    );
    let (status, _, body) = get(&f.app, &format!("/api/v2/traces/{id}"), &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, json["status"].as_str()),
        (StatusCode::OK, Some("PARTIAL"))
    );
    let (status, _, _) = get(&f.app, &format!("/api/traces/{id}"), GRAFANA).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

fn bytesize_of(bytes: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(bytes)
}

#[tokio::test]
async fn echo_buildinfo_ready_and_metrics() {
    let f = fixture(QueryConfig::default()).await;
    let (status, _, body) = get(&f.app, "/api/echo", &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"echo".as_slice())
    );
    let (status, _, body) = get(&f.app, "/api/status/buildinfo", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let version: Vec<u32> = info["version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        version >= vec![2, 9, 0],
        "Grafana gates features on version: {version:?}"
    );
    assert_eq!(get(&f.app, "/ready", &[]).await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/metrics", &[]).await.0, StatusCode::OK);
}
