//! Contract tests for search and tag discovery: each request exactly as Grafana's Tempo data
//! source sends it (TraceQL search with `q`, `limit`, `spss`, `start`, `end`; the legacy tag
//! search; v1 and v2 tags and tag values; autocomplete with half-typed `q`), and the answers read
//! the way Grafana reads them — JSON into structs with Tempo's key names.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use strata_api::{ApiState, router};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::{Span, TenantId};
use strata_query::{Querier, QueryConfig, QueryMetrics};
use strata_storage::Storage;

use common::get;

/// Tempo's `SearchResponse` as Grafana's data source types it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchResponse {
    traces: Vec<TraceSearchMetadata>,
    metrics: SearchMetrics,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchMetrics {
    inspected_traces: u64,
    inspected_bytes: String,
    inspected_spans: String,
    total_blocks: u64,
    completed_jobs: u64,
    total_jobs: u64,
    total_block_bytes: String,
    backend_reads: String,
    backend_bytes: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TraceSearchMetadata {
    #[serde(rename = "traceID")]
    trace_id: String,
    root_service_name: String,
    root_trace_name: Option<String>,
    start_time_unix_nano: String,
    duration_ms: Option<u32>,
    span_set: SpanSet,
    span_sets: Vec<SpanSet>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct SpanSet {
    spans: Vec<SearchSpan>,
    matched: u64,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchSpan {
    #[serde(rename = "spanID")]
    span_id: String,
    name: String,
    start_time_unix_nano: String,
    duration_nanos: String,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct KeyValue {
    key: String,
    value: serde_json::Value,
}

struct Fixture {
    app: Router,
    spans: Vec<Span>,
    /// `start` and `end` parameters (unix seconds) covering all the data.
    range: (u64, u64),
}

async fn fixture() -> Fixture {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 3,
        error_ratio: 0.2,
        ..Default::default()
    });
    let storage = Storage::in_memory();
    let mut spans = Vec::new();
    for _ in 0..3 {
        let block: Vec<Span> = (0..60)
            .flat_map(|_| {
                strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
            })
            .collect();
        let identity = BlockIdentity::fresh(TenantId::default_tenant());
        let encoded = encode_block(identity, BlockConfig::default(), block.clone()).unwrap();
        upload_block(&storage, &encoded).await.unwrap();
        spans.extend(block);
    }
    let querier = Arc::new(Querier::new(
        storage,
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    ));
    querier.poll_blocklist().await.unwrap();
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap() / 1_000_000_000;
    let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap() / 1_000_000_000 + 1;
    let app = router(ApiState {
        registry: Arc::new(Registry::default()),
        ready: Arc::new(|| true),
        querier,
        multitenancy: false,
    });
    Fixture {
        app,
        spans,
        range: (start, end),
    }
}

/// Percent-encodes a query parameter value as Grafana's `encodeURIComponent` does.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' => {
                (b as char).to_string()
            }
            b'\'' | b'(' | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search(f: &Fixture, params: &str) -> (StatusCode, String, Vec<u8>) {
    get(&f.app, &format!("/api/search?{params}"), &[]).await
}

fn parse(body: &[u8]) -> SearchResponse {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn traceql_search_as_grafana_sends_it() {
    let f = fixture().await;
    let (start, end) = f.range;
    let q = r#"{resource.service.name="payment" && status=error}"#;
    let (status, content_type, body) = search(
        &f,
        &format!("q={}&limit=20&spss=3&start={start}&end={end}", enc(q)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(content_type.starts_with("application/json"));
    let response = parse(&body);
    // The expected answer, from the spans themselves.
    let mut want: BTreeSet<String> = BTreeSet::new();
    for s in &f.spans {
        if s.service_name() == Some("payment") && s.is_error() {
            want.insert(s.trace_id.to_hex().trim_start_matches('0').to_owned());
        }
    }
    assert!(!want.is_empty());
    let got: BTreeSet<String> = response.traces.iter().map(|t| t.trace_id.clone()).collect();
    assert_eq!(got.len(), want.len().min(20));
    assert!(got.is_subset(&want));
    let mut previous = u64::MAX;
    for t in &response.traces {
        assert!(
            !t.trace_id.starts_with('0'),
            "trace IDs without leading zeros"
        );
        assert!(t.trace_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(t.root_service_name, "frontend");
        assert!(t.root_trace_name.is_some());
        let started: u64 = t.start_time_unix_nano.parse().unwrap();
        assert!(started <= previous, "newest first");
        previous = started;
        assert!(t.duration_ms.unwrap() > 0);
        assert_eq!(t.span_sets.len(), 1);
        assert_eq!(t.span_set, t.span_sets[0], "spanSet repeats spanSets[0]");
        let set = &t.span_sets[0];
        assert!(set.matched >= 1 && set.spans.len() as u64 == set.matched.min(3));
        for span in &set.spans {
            assert_eq!(span.span_id.len(), 16);
            let _: u64 = span.start_time_unix_nano.parse().unwrap();
            let _: u64 = span.duration_nanos.parse().unwrap();
            let keys: Vec<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
            assert_eq!(
                keys,
                ["service.name", "status"],
                "the attributes the query names"
            );
            assert_eq!(span.attributes[0].value["stringValue"], "payment");
            assert_eq!(span.attributes[1].value["stringValue"], "error");
        }
    }
    let m = &response.metrics;
    assert_eq!(m.total_blocks, 3);
    assert!(m.inspected_traces > 0);
    assert!(m.inspected_bytes.parse::<u64>().unwrap() > 0);
    assert!(m.completed_jobs <= m.total_blocks && m.total_jobs == m.completed_jobs);
    let _: u64 = m.inspected_spans.parse().unwrap();
    let _: u64 = m.total_block_bytes.parse().unwrap();
    let _: u64 = m.backend_reads.parse().unwrap();
    let _: u64 = m.backend_bytes.parse().unwrap();

    // The same request again gives the same answer.
    let (_, _, again) = search(
        &f,
        &format!("q={}&limit=20&spss=3&start={start}&end={end}", enc(q)),
    )
    .await;
    let again = parse(&again);
    let ids = |r: &SearchResponse| {
        r.traces
            .iter()
            .map(|t| t.trace_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&response));
}

#[tokio::test]
async fn grafanas_default_and_select_queries() {
    let f = fixture().await;
    let (start, end) = f.range;
    // The data source's connection test and the empty search builder send `{}`.
    let (status, _, body) = search(
        &f,
        &format!("q={}&limit=1&start={start}&end={end}", enc("{}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body).traces.len(), 1);
    // select() adds attributes to the returned spans.
    let q = r#"{ span.db.system.name = "postgresql" } | select(span.db.collection.name)"#;
    let (status, _, body) =
        search(&f, &format!("q={}&spss=2&start={start}&end={end}", enc(q))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response = parse(&body);
    assert!(!response.traces.is_empty());
    for t in &response.traces {
        for span in &t.span_sets[0].spans {
            let keys: BTreeSet<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
            assert!(
                keys.contains("db.system.name") && keys.contains("db.collection.name"),
                "{keys:?}"
            );
        }
    }
    // by() names the group in the spanset's attributes.
    let q = r#"{ kind = server } | by(resource.service.name)"#;
    let (status, _, body) = search(&f, &format!("q={}&limit=5", enc(q))).await;
    assert_eq!(status, StatusCode::OK);
    let response = parse(&body);
    let t = &response.traces[0];
    assert!(t.span_sets.len() > 1);
    for set in &t.span_sets {
        assert_eq!(set.attributes.len(), 1);
        assert_eq!(set.attributes[0].key, "by(resource.service.name)");
        assert!(set.attributes[0].value["stringValue"].is_string());
    }
}

#[tokio::test]
async fn legacy_tag_search_with_durations() {
    let f = fixture().await;
    let (start, end) = f.range;
    let params = format!(
        "tags={}&minDuration=100ms&maxDuration=10s&limit=50&start={start}&end={end}",
        enc(r#"service.name=payment http.route="/payments""#)
    );
    let (status, _, body) = search(&f, &params).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response = parse(&body);
    assert!(!response.traces.is_empty());
    for t in &response.traces {
        let ms = t.duration_ms.unwrap_or(0);
        assert!((100..=10_000).contains(&ms), "{ms} ms");
        let id = t.trace_id.as_str();
        let spans: Vec<&Span> = f
            .spans
            .iter()
            .filter(|s| s.trace_id.to_hex().trim_start_matches('0') == id)
            .collect();
        assert!(spans.iter().any(|s| s.service_name() == Some("payment")));
        assert!(spans.iter().any(|s| {
            s.attributes.iter().any(|a| {
                a.key == "http.route" && a.value.as_str().is_some_and(|v| v.contains("/payments"))
            })
        }));
    }
}

#[tokio::test]
async fn bad_searches_are_400_in_plain_text_with_the_position() {
    let f = fixture().await;
    for (params, needle) in [
        (format!("q={}", enc("{ .a = }")), "line 1, column"),
        (
            format!("q={}", enc("{ .a = 1 }\n  && { name = }")),
            "line 2",
        ),
        (format!("q={}", enc("{ } | rate()")), "metrics"),
        (
            format!("q={}", enc("{ span:childCount > 1 }")),
            "childCount",
        ),
        (
            format!("q={}", enc("{ .a =~ \"(\" }")),
            "regular expression",
        ),
        (format!("q={}&tags=a%3Db", enc("{}")), "cannot be combined"),
        ("limit=0".to_owned(), "limit"),
        ("spss=101".to_owned(), "spss"),
        ("minDuration=2s&maxDuration=1s".to_owned(), "minDuration"),
        ("minDuration=soon".to_owned(), "minDuration"),
        ("start=200&end=100".to_owned(), "end"),
        ("tags=a%3D1%20a%3D2".to_owned(), "twice"),
    ] {
        let (status, content_type, body) = search(&f, &params).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}: {text}");
        assert!(content_type.starts_with("text/plain"), "{params}");
        assert!(text.contains(needle), "{params}: {text}");
    }
}

#[tokio::test]
async fn tags_v1_and_v2_as_grafana_asks() {
    let f = fixture().await;
    let (start, end) = f.range;
    let (status, _, body) = get(
        &f.app,
        &format!("/api/search/tags?start={start}&end={end}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v1: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = v1["tagNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"service.name") && names.contains(&"http.route"),
        "{names:?}"
    );
    assert!(v1["metrics"]["inspectedBytes"].is_string());

    let (status, _, body) = get(
        &f.app,
        &format!("/api/v2/search/tags?start={start}&end={end}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v2: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let scope = |name: &str| -> Vec<String> {
        v2["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| {
                s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(scope("resource").contains(&"service.name".to_owned()));
    assert!(scope("span").contains(&"db.system.name".to_owned()));
    assert!(!scope("span").contains(&"service.name".to_owned()));
    assert!(scope("intrinsic").contains(&"duration".to_owned()));
    assert!(scope("event").contains(&"exception.type".to_owned()));

    let (_, _, body) = get(&f.app, "/api/v2/search/tags?scope=resource", &[]).await;
    let only: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(only["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(only["scopes"][0]["name"], "resource");

    let (status, _, body) = get(&f.app, "/api/v2/search/tags?scope=bogus", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("invalid scope: bogus"));
}

#[tokio::test]
async fn tag_values_v1_and_v2_typed() {
    let f = fixture().await;
    let services: BTreeSet<String> = f
        .spans
        .iter()
        .filter_map(|s| s.service_name().map(str::to_owned))
        .collect();

    let (status, _, body) = get(&f.app, "/api/search/tag/service.name/values", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let v1: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let got: BTreeSet<String> = v1["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, services);

    let (status, _, body) = get(
        &f.app,
        &format!("/api/v2/search/tag/{}/values", enc("resource.service.name")),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v2: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let values = v2["tagValues"].as_array().unwrap();
    assert_eq!(values.len(), services.len());
    assert!(values.iter().all(|v| v["type"] == "string"));

    let (_, _, body) = get(
        &f.app,
        "/api/v2/search/tag/span.http.response.status_code/values",
        &[],
    )
    .await;
    let codes: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let codes = codes["tagValues"].as_array().unwrap();
    assert!(
        codes
            .iter()
            .any(|v| v["type"] == "int" && v["value"] == "200"),
        "{codes:?}"
    );

    let (_, _, body) = get(&f.app, "/api/v2/search/tag/status/values", &[]).await;
    let statuses: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let statuses: Vec<&str> = statuses["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"error") && statuses.contains(&"unset"),
        "{statuses:?}"
    );

    // Half-typed autocomplete queries are not errors.
    let q = r#"{ resource.service.name = "frontend" && span.http.request.method = "#;
    let (status, _, body) = get(
        &f.app,
        &format!(
            "/api/v2/search/tag/{}/values?q={}",
            enc("span.http.route"),
            enc(q)
        ),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Narrowed to the complete part, `{ resource.service.name = "frontend" }`.
    let routes = |service: &str| -> BTreeSet<String> {
        f.spans
            .iter()
            .filter(|s| s.service_name() == Some(service))
            .flat_map(|s| &s.attributes)
            .filter(|a| a.key == "http.route")
            .filter_map(|a| a.value.as_str().map(str::to_owned))
            .collect()
    };
    let narrowed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let got: BTreeSet<String> = narrowed["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, routes("frontend"));
    assert!(got.len() < routes("order").len() + got.len() && !got.is_empty());

    // A complete q narrows too: only services with PostgreSQL calls.
    let q = r#"{ span.db.system.name = "postgresql" }"#;
    let (_, _, body) = get(
        &f.app,
        &format!(
            "/api/v2/search/tag/{}/values?q={}",
            enc("resource.service.name"),
            enc(q)
        ),
        &[],
    )
    .await;
    let with_pg: BTreeSet<String> = f
        .spans
        .iter()
        .filter(|s| {
            s.attributes
                .iter()
                .any(|a| a.key == "db.system.name" && a.value.as_str() == Some("postgresql"))
        })
        .filter_map(|s| s.service_name().map(str::to_owned))
        .collect();
    let narrowed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let got: BTreeSet<String> = narrowed["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, with_pg);
    assert!(got.len() < services.len());

    // A name that is not a scoped attribute or an intrinsic is refused, as Tempo does.
    let (status, _, body) = get(&f.app, "/api/v2/search/tag/service.name/values", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("tag name is not valid intrinsic or scoped attribute")
    );
}
