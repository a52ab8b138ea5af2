//! Tenants are sealed: with `server.multitenancy_enabled`, every endpoint (OTLP/HTTP, OTLP/gRPC,
//! every query endpoint, the querier's calls to ingesters) needs `X-Scope-OrgID` (401 /
//! `UNAUTHENTICATED` without it), refuses a hostile one (400 / `INVALID_ARGUMENT`) before it can
//! reach a storage path, and shows a tenant nothing of another's — while traces are live, after
//! they are flushed, and in the rollups.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;
use strata_bench::otlp::{EXPORT_PATH, export_raw};
use tonic::Code;

use crate::support::Strata;

const SEALED: &str = "  multitenancy_enabled: true\n";

/// One tenant's trace: its own service, span name and attribute, so any leak is visible.
struct Tenant {
    name: &'static str,
    trace: [u8; 16],
}

impl Tenant {
    fn service(&self) -> String {
        format!("svc-{}", self.name)
    }

    fn attribute(&self) -> String {
        format!("only.{}", self.name)
    }

    fn hex(&self) -> String {
        hex(&self.trace)
    }

    fn request(&self) -> ExportTraceServiceRequest {
        let kv = |key: String, value: String| KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(Any::StringValue(value)),
            }),
            key_strindex: 0,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let spans = (1..=3u8)
            .map(|i| Span {
                trace_id: self.trace.to_vec(),
                span_id: vec![self.trace[0], i, 1, 2, 3, 4, 5, 6],
                parent_span_id: if i == 1 {
                    vec![]
                } else {
                    vec![self.trace[0], 1, 1, 2, 3, 4, 5, 6]
                },
                name: format!("op-{}", self.name),
                kind: 2,
                start_time_unix_nano: now - 60_000_000_000 + u64::from(i),
                end_time_unix_nano: now - 59_000_000_000,
                attributes: vec![kv(self.attribute(), "x".into())],
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name".into(), self.service())],
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
}

const A: Tenant = Tenant {
    name: "team-a",
    trace: [0xa1; 16],
};
const B: Tenant = Tenant {
    name: "team-b",
    trace: [0xb2; 16],
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every query endpoint, as Grafana and the CLI call them.
fn query_endpoints() -> Vec<String> {
    vec![
        format!("/api/traces/{}", A.hex()),
        format!("/api/v2/traces/{}", A.hex()),
        "/api/search?q=%7B%7D&limit=50".into(),
        "/api/search?tags=service.name%3Dsvc".into(),
        "/api/search/tags".into(),
        "/api/v2/search/tags".into(),
        "/api/search/tag/service.name/values".into(),
        "/api/v2/search/tag/resource.service.name/values".into(),
        "/api/strata/stats?since=24h".into(),
    ]
}

async fn get(api: SocketAddr, path: &str, tenant: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .get(format!("http://{api}{path}"))
        .header("Accept", "application/json");
    if let Some(tenant) = tenant {
        request = request.header("X-Scope-OrgID", tenant);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn get_json(api: SocketAddr, path: &str, tenant: &str) -> Value {
    let (status, body) = get(api, path, Some(tenant)).await;
    assert_eq!(status, StatusCode::OK, "{path} as {tenant}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// What `me` sees through every query endpoint is its own data and nothing of `other`'s.
async fn sees_only_its_own(api: SocketAddr, me: &Tenant, other: &Tenant, with_stats: bool) {
    let who = me.name;
    // Trace by ID, v1 and v2.
    let (status, body) = get(api, &format!("/api/traces/{}", me.hex()), Some(who)).await;
    assert_eq!(status, StatusCode::OK, "{who} own trace v1: {body}");
    assert!(body.contains(&format!("op-{who}")), "{body}");
    let (status, body) = get(api, &format!("/api/traces/{}", other.hex()), Some(who)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{who} reads another's trace: {body}"
    );
    let v2 = get_json(api, &format!("/api/v2/traces/{}", other.hex()), who).await;
    assert!(
        v2["trace"]["resourceSpans"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{who} reads another's trace through v2: {v2}"
    );
    let v2 = get_json(api, &format!("/api/v2/traces/{}", me.hex()), who).await;
    assert_eq!(
        v2["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{v2}"
    );
    assert!(v2.get("status").is_none(), "a complete answer: {v2}");

    // Search, TraceQL and legacy tags.
    for path in [
        "/api/search?q=%7B%7D&limit=50",
        "/api/search?tags=service.name%3Dsvc&limit=50",
    ] {
        let found = get_json(api, path, who).await;
        let ids: BTreeSet<String> = found["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, BTreeSet::from([me.hex()]), "{who} {path}: {found}");
    }

    // Tag names and values, v1 and v2.
    let text = get_json(api, "/api/search/tags", who).await.to_string();
    assert!(
        text.contains(&me.attribute()) && !text.contains(&other.attribute()),
        "{who} tags: {text}"
    );
    let text = get_json(api, "/api/v2/search/tags", who).await.to_string();
    assert!(
        text.contains(&me.attribute()) && !text.contains(&other.attribute()),
        "{who} v2 tags: {text}"
    );
    let values = get_json(api, "/api/search/tag/service.name/values", who).await;
    assert_eq!(
        values["tagValues"],
        serde_json::json!([me.service()]),
        "{who}"
    );
    let values = get_json(api, "/api/v2/search/tag/resource.service.name/values", who).await;
    assert_eq!(
        values["tagValues"],
        serde_json::json!([{"type": "string", "value": me.service()}]),
        "{who}"
    );

    // Rollups.
    if with_stats {
        let stats = get_json(api, "/api/strata/stats?since=24h", who).await;
        let services: BTreeSet<&str> = stats["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["service"].as_str().unwrap())
            .collect();
        assert_eq!(
            services,
            BTreeSet::from([me.service().as_str()]),
            "{who} stats: {stats}"
        );
    }
}

/// Waits until the compactor has folded the flushed blocks into rollups for `tenant`.
async fn wait_for_rollups(api: SocketAddr, tenant: &Tenant) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = get_json(api, "/api/strata/stats?since=24h", tenant.name).await;
        if stats["operations"]
            .as_array()
            .is_some_and(|o| !o.is_empty())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no rollups for {}: {stats}",
            tenant.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a raw HTTP/1.1 request (for header bytes no client library lets through); returns the
/// status code.
fn raw_status(addr: SocketAddr, head: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// The tenant directories in a local bucket.
fn tenant_dirs(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root)
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_endpoint_keeps_tenants_apart_and_refuses_hostile_tenant_ids() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Strata::start_role(
        dir.path(),
        "all",
        SEALED,
        "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\ncompactor:\n  cycle: 1s\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Team A over OTLP/HTTP, team B over OTLP/gRPC.
        let response = reqwest::Client::new()
            .post(strata.traces_url())
            .header("content-type", "application/x-protobuf")
            .header("X-Scope-OrgID", A.name)
            .body(A.request().encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let channel = tonic::transport::Channel::from_shared(strata.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        export_raw(&channel, B.request().encode_to_vec().into(), false, Some(B.name), EXPORT_PATH)
            .await
            .unwrap();

        // Live, in the ingester.
        sees_only_its_own(strata.api, &A, &B, false).await;
        sees_only_its_own(strata.api, &B, &A, false).await;

        // Flushed to blocks, and folded into rollups.
        let flushed = reqwest::Client::new()
            .post(format!("http://{}/flush", strata.api))
            .send()
            .await
            .unwrap();
        assert_eq!(flushed.status(), StatusCode::OK);
        wait_for_rollups(strata.api, &A).await;
        wait_for_rollups(strata.api, &B).await;
        sees_only_its_own(strata.api, &A, &B, true).await;
        sees_only_its_own(strata.api, &B, &A, true).await;

        // No tenant: 401 everywhere, UNAUTHENTICATED over gRPC.
        let mut refusals = 0;
        for path in query_endpoints() {
            for missing in [None, Some("")] {
                let (status, body) = get(strata.api, &path, missing).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {missing:?}: {body}");
                assert!(body.contains("X-Scope-OrgID"), "{body}");
                refusals += 1;
            }
        }
        let response = reqwest::Client::new()
            .post(strata.traces_url())
            .header("content-type", "application/x-protobuf")
            .body(A.request().encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let status = export_raw(&channel, A.request().encode_to_vec().into(), false, None, EXPORT_PATH)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        refusals += 2;

        // Hostile tenant IDs: 400 everywhere, INVALID_ARGUMENT over gRPC.
        let long = "a".repeat(10 * 1024);
        let hostile = ["../x", "a/b", "..", "a\tb", "x|y", long.as_str()];
        for tenant in hostile {
            for path in query_endpoints() {
                let (status, body) = get(strata.api, &path, Some(tenant)).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path} as {:.20}: {body}", tenant);
                refusals += 1;
            }
            let response = reqwest::Client::new()
                .post(strata.traces_url())
                .header("content-type", "application/x-protobuf")
                .header("X-Scope-OrgID", tenant)
                .body(A.request().encode_to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "OTLP/HTTP as {:.20}", tenant);
            let status = export_raw(&channel, A.request().encode_to_vec().into(), false, Some(tenant), EXPORT_PATH)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "OTLP/gRPC as {:.20}: {status:?}", tenant);
            refusals += 2;
        }
        // Control characters no HTTP client library will send: straight down a socket.
        for control in ["a\x01b", "a\x7fb", "\x1b[2J"] {
            let body = A.request().encode_to_vec();
            let mut head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\nX-Scope-OrgID: {control}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            head.extend(body);
            let status = raw_status(strata.http, &head);
            assert_eq!(status, 400, "OTLP/HTTP with {control:?}");
            let head = format!(
                "GET /api/search?q=%7B%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Scope-OrgID: {control}\r\n\r\n"
            );
            assert_eq!(raw_status(strata.api, head.as_bytes()), 400, "search with {control:?}");
            refusals += 2;
        }
        eprintln!("tenants: {refusals} requests refused, each with the expected status");
    });
    let log = strata.stop();
    assert!(!log.contains("panicked"), "{log}");
    // Nothing but the two tenants ever reached the bucket.
    assert_eq!(
        tenant_dirs(&dir.path().join("data/blocks")),
        BTreeSet::from(["team-a".to_owned(), "team-b".to_owned()])
    );
}

#[test]
fn a_separate_querier_asks_ingesters_for_the_callers_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "storage:\n  local:\n    path: {}\n",
        dir.path().join("bucket").display()
    );
    let ingester = Strata::start_role(
        &dir.path().join("ingester"),
        "ingester",
        SEALED,
        &format!("ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\n{storage}"),
    );
    let internal = ingester.internal.expect("the ingester's internal API");
    let querier = Strata::start_role(
        &dir.path().join("querier"),
        "querier",
        SEALED,
        // Found by name through the system resolver, as a headless Service would be.
        &format!(
            "query:\n  ingesters:\n    dns: 'localhost:{}'\n{storage}",
            internal.port()
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for tenant in [&A, &B] {
            let response = reqwest::Client::new()
                .post(ingester.traces_url())
                .header("content-type", "application/x-protobuf")
                .header("X-Scope-OrgID", tenant.name)
                .body(tenant.request().encode_to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        // Nothing is in the bucket yet: every answer comes from the ingester's memory.
        assert!(tenant_dirs(&dir.path().join("bucket")).is_empty());
        sees_only_its_own(querier.api, &A, &B, false).await;
        sees_only_its_own(querier.api, &B, &A, false).await;
        for path in query_endpoints() {
            let (status, _) = get(querier.api, &path, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            let (status, _) = get(querier.api, &path, Some("../x")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        }
    });
    querier.stop();
    ingester.stop();
}

/// Every character a tenant ID may hold (`A-Z a-z 0-9 ! - _ . * ' ( )`) works everywhere, on
/// local disk and on S3: push, flush, the querier's poll, a restart (nothing left in memory),
/// compaction, retention and stats. Object stores percent-encode some of these characters in
/// keys (`*` among them), so a tenant must be listed back under the name it was written with.
#[test]
fn every_allowed_tenant_character_works_through_flush_restart_compaction_retention_and_stats() {
    let names: [&'static str; 5] = [
        "star*tenant",
        "(paren)",
        "bang!quote'",
        "Dots.dash-under_9",
        "*",
    ];
    every_tenant_character_on(&names, None);
    let s3 = crate::support::S3Server::start("tenant-chars");
    every_tenant_character_on(&names, Some(&s3));
}

fn every_tenant_character_on(names: &[&'static str], s3: Option<&crate::support::S3Server>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = s3.map(|s| s.storage_yaml()).unwrap_or_default();
    // The spans end 59 s before they are sent: blocks stay for about 16 s more, their rollups
    // for a day.
    let sections = format!(
        "ingester:\n  trace_idle_period: 200ms\n  max_block_duration: 300ms\n  flush_check_period: 100ms\n\
         compactor:\n  cycle: 1s\n  grace_period: 1s\n\
         retention:\n  tiers:\n    - {{after: 0s, keep: all}}\n    - {{after: 75s, keep: none}}\n  rollups_for: 1d\n\
         query:\n  blocklist_poll: 1s\n{storage}"
    );
    let tenants: Vec<[Tenant; 2]> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let byte = 0x10 + i as u8;
            [
                Tenant {
                    name,
                    trace: [byte; 16],
                },
                Tenant {
                    name,
                    trace: [byte | 0x80; 16],
                },
            ]
        })
        .collect();
    let backend = if s3.is_some() { "s3" } else { "local" };
    let strata = Strata::start_role(dir.path(), "all", SEALED, &sections);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Two pushes and two flushes per tenant: two blocks each, for the compactor to merge.
    for round in 0..2 {
        runtime.block_on(async {
            for pair in &tenants {
                let tenant = &pair[round];
                let (status, _) =
                    crate::support::post_otlp(&strata, &tenant.request(), Some(tenant.name)).await;
                assert_eq!(status, 200, "push as {} on {backend}", tenant.name);
            }
            crate::support::flush(&strata).await;
        });
    }
    let found_whole = |strata: &Strata, tenant: &Tenant| {
        runtime.block_on(async {
            let path = format!("/api/v2/traces/{}", tenant.hex());
            let (status, body) =
                crate::support::api_get(strata.api, &path, Some(tenant.name)).await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let spans = json["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .map_or(0, Vec::len);
            (status, spans)
        })
    };
    let wait_for =
        |what: &str, timeout: Duration, mut ok: Box<dyn FnMut() -> Result<(), String> + '_>| {
            let deadline = Instant::now() + timeout;
            loop {
                match ok() {
                    Ok(()) => return,
                    Err(e) if Instant::now() >= deadline => panic!("{what} on {backend}: {e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(250)),
                }
            }
        };
    // Compaction: each tenant's two blocks become one.
    wait_for(
        "every tenant's two blocks compacted into one",
        Duration::from_secs(60),
        Box::new(|| {
            for pair in &tenants {
                let name = pair[0].name;
                let stats = runtime.block_on(crate::support::api_get(
                    strata.api,
                    "/api/strata/stats?since=1h",
                    Some(name),
                ));
                let stats: Value = serde_json::from_str(&stats.1).map_err(|e| e.to_string())?;
                let spans: u64 = stats["operations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|op| op["spanCount"].as_u64())
                    .sum();
                if spans != 6 {
                    return Err(format!(
                        "{name}: {spans} spans in the rollups, want 6: {stats}"
                    ));
                }
            }
            let merged = tenant_blocks(dir.path(), s3, names)
                .into_iter()
                .filter(|(_, metas)| metas.len() == 1 && metas[0].compacted_from.len() == 2)
                .count();
            (merged == names.len()).then_some(()).ok_or_else(|| {
                format!(
                    "{merged} of {} tenants compacted: {:?}",
                    names.len(),
                    tenant_blocks(dir.path(), s3, names)
                )
            })
        }),
    );
    // A restart: the querier only knows what it lists in the bucket.
    strata.stop();
    let strata = Strata::restart(dir.path(), "all");
    wait_for(
        "every trace found after a restart",
        Duration::from_secs(30),
        Box::new(|| {
            for tenant in tenants.iter().flatten() {
                let got = found_whole(&strata, tenant);
                if got != (200, 3) {
                    return Err(format!("{} trace {}: {got:?}", tenant.name, tenant.hex()));
                }
            }
            Ok(())
        }),
    );
    // Retention: past 75 s nothing is kept; the rollups still count every span.
    wait_for(
        "every tenant's blocks dropped by retention",
        Duration::from_secs(90),
        Box::new(|| {
            let left: Vec<_> = tenant_blocks(dir.path(), s3, names)
                .into_iter()
                .filter(|(_, metas)| !metas.is_empty())
                .collect();
            left.is_empty()
                .then_some(())
                .ok_or_else(|| format!("blocks left: {left:?}"))
        }),
    );
    // Queriers see the drop at their next poll.
    wait_for(
        "no trace found once retention dropped them",
        Duration::from_secs(10),
        Box::new(|| {
            for tenant in tenants.iter().flatten() {
                let got = found_whole(&strata, tenant);
                if got.1 != 0 {
                    return Err(format!("{} trace {}: {got:?}", tenant.name, tenant.hex()));
                }
            }
            Ok(())
        }),
    );
    for pair in &tenants {
        let name = pair[0].name;
        let (_, body) = runtime.block_on(crate::support::api_get(
            strata.api,
            "/api/strata/stats?since=1h",
            Some(name),
        ));
        assert!(
            body.contains("\"spanCount\":6"),
            "{name} rollups after retention: {body}"
        );
    }
    strata.stop();
}

/// The live blocks' metas of each tenant, read from the bucket with Strata's own storage layer
/// (which lists names back decoded).
fn tenant_blocks(
    dir: &Path,
    s3: Option<&crate::support::S3Server>,
    names: &[&'static str],
) -> Vec<(&'static str, Vec<strata_block::BlockMeta>)> {
    let config = match s3 {
        Some(s3) => {
            serde_yaml_ng::from_str::<crate::support::StorageSection>(&s3.storage_yaml())
                .unwrap()
                .storage
        }
        None => strata_storage::StorageConfig {
            local: strata_storage::LocalConfig {
                path: dir.join("data/blocks"),
            },
            ..Default::default()
        },
    };
    let storage = strata_storage::Storage::from_config(&config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut out = Vec::new();
        for name in names {
            let tenant = strata_model::TenantId::new(name).unwrap();
            let entries = strata_block::catalog::list_entries(
                &storage,
                &tenant,
                strata_block::layout::BLOCKS_DIR,
            )
            .await
            .unwrap();
            let mut metas = Vec::new();
            for (id, entry) in entries {
                if !entry.has_meta || entry.has_marker {
                    continue;
                }
                let bytes = storage
                    .get(&strata_block::layout::meta_path(&tenant, id))
                    .await
                    .unwrap();
                metas.push(strata_block::BlockMeta::parse(&bytes, "meta.json").unwrap());
            }
            let replaced: BTreeSet<uuid::Uuid> = metas
                .iter()
                .flat_map(|m| m.compacted_from.clone())
                .collect();
            metas.retain(|m| !replaced.contains(&m.block_id));
            out.push((*name, metas));
        }
        out
    })
}
