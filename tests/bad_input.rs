//! Hostile and malformed requests over OTLP/HTTP and OTLP/gRPC: each gets the right status and a
//! message that says what is wrong; the server keeps serving and no good span is lost.

use std::collections::HashSet;
use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;
use strata_bench::otlp::{EXPORT_PATH, export_raw};
use tonic::{Code, Status};

use crate::support::{Strata, stored_spans};

fn span(trace: &[u8], id: &[u8], parent: &[u8], name: &str) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_767_225_600_000_000_000,
        end_time_unix_nano: 1_767_225_600_250_000_000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue("bad-input-test".into())),
                    }),
                    key_strindex: 0,
                }],
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

/// A good span with a unique ID derived from `n`; recorded in `good`.
fn good(n: u8, good: &mut HashSet<([u8; 16], [u8; 8])>) -> Span {
    let trace = [n; 16];
    let id = [n, 0xaa, 1, 2, 3, 4, 5, 6];
    good.insert((trace, id));
    span(&trace, &id, &[], &format!("good-{n}"))
}

struct Http {
    client: reqwest::Client,
    url: String,
}

impl Http {
    async fn post(
        &self,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let mut req = self.client.post(&self.url).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        // The tests run with multitenancy on: name the default tenant unless the case names one.
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-scope-orgid"))
        {
            req = req.header("x-scope-orgid", strata_model::DEFAULT_TENANT);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let ct = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, response.bytes().await.unwrap().to_vec())
    }

    /// Posts protobuf; returns status and the google.rpc.Status message or the partial success.
    async fn proto(&self, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
        let (status, _, bytes) = self
            .post(Some("application/x-protobuf"), headers, body)
            .await;
        (status, describe_proto(status, &bytes))
    }
}

/// `google.rpc.Status` carries the message in field 2; a success carries a partial success.
fn describe_proto(status: StatusCode, bytes: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    if status.is_success() {
        let response = ExportTraceServiceResponse::decode(bytes).unwrap();
        response
            .partial_success
            .map(|p| format!("rejected={} {}", p.rejected_spans, p.error_message))
            .unwrap_or_default()
    } else {
        RpcStatus::decode(bytes)
            .map(|s| s.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[track_caller]
fn expect(case: &str, got: (StatusCode, String), status: StatusCode, needle: &str) {
    assert_eq!(got.0, status, "{case}: status (message {:?})", got.1);
    assert!(
        got.1.contains(needle),
        "{case}: message {:?} should mention {needle:?}",
        got.1
    );
}

#[track_caller]
fn expect_grpc<T: std::fmt::Debug>(case: &str, got: Result<T, Status>, code: Code, needle: &str) {
    let status = got.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert!(
        status.message().contains(needle),
        "{case}: message {:?} should mention {needle:?}",
        status.message()
    );
}

#[test]
fn hostile_requests_get_clear_answers_and_cost_no_good_span() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\n\
                    limits:\n  defaults:\n    max_attribute_bytes: 64\n  per_tenant:\n    \
                    slow-tenant: {ingestion_rate_bytes: 1000, ingestion_burst_bytes: 1000}\n    \
                    small-traces: {max_bytes_per_trace: 300}\n    few-traces: {max_live_traces: 2}\n";
    let strata = Strata::start_role(
        dir.path(),
        "all",
        "  multitenancy_enabled: true\n",
        sections,
    );
    let http = Http {
        client: reqwest::Client::new(),
        url: strata.traces_url(),
    };
    let mut good_spans = HashSet::new();
    let mut good_by_tenant: Vec<(&str, [u8; 16], [u8; 8])> = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ok = StatusCode::OK;
        let bad = StatusCode::BAD_REQUEST;
        // 1-4: bodies that do not decode.
        expect("malformed protobuf", http.proto(&[], vec![0x0a, 0xff, 0xff, 0xff, 0x0f]).await, bad, "malformed OTLP protobuf");
        let (s, _, b) = http.post(Some("application/json"), &[], b"{\"resourceSpans\": [".to_vec()).await;
        expect("malformed JSON", (s, String::from_utf8_lossy(&b).into()), bad, "malformed OTLP JSON");
        let (s, _, b) = http.post(Some("application/json"), &[], br#"{"resourceSpans": "x"}"#.to_vec()).await;
        expect("JSON of the wrong shape", (s, String::from_utf8_lossy(&b).into()), bad, "resourceSpans");
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#;
        let (s, _, b) = http.post(Some("application/json; charset=utf-8"), &[], body.to_vec()).await;
        expect("JSON with a non-hex ID", (s, String::from_utf8_lossy(&b).into()), bad, "traceId");

        // 5-8: bad spans are refused one by one; the good spans beside them are kept.
        let mixed = request(vec![
            span(&[0; 16], &[1; 8], &[], "zero trace"),
            good(1, &mut good_spans),
            span(&[9; 16], &[0; 8], &[], "zero span"),
            span(&[9; 15], &[1; 8], &[], "short trace"),
            span(&[9; 16], &[7; 8], &[1, 2, 3], "short parent"),
            good(2, &mut good_spans),
        ]);
        let got = http.proto(&[], mixed.encode_to_vec()).await;
        for needle in ["rejected=4", "trace ID is all zeros", "span ID is all zeros", "trace ID must be 16 bytes", "parent span ID must be empty or 8 bytes"] {
            expect("mixed good and bad spans", got.clone(), ok, needle);
        }
        let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"0303030303030303030303030303030303","spanId":"03aa010203040506","name":"long hex"},
            {"traceId":"03030303030303030303030303030303","spanId":"03aa010203040506","name":"good-3","kind":2,
             "startTimeUnixNano":"1767225600000000000","endTimeUnixNano":1767225600250000000,
             "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"m","value":{"intValue":7}}]}]}]}]}"#;
        good_spans.insert(([3; 16], [3, 0xaa, 1, 2, 3, 4, 5, 6]));
        let (s, ct, b) = http.post(Some("application/json"), &[], json.as_bytes().to_vec()).await;
        assert_eq!(ct, "application/json");
        expect("JSON span with a 17-byte trace ID", (s, String::from_utf8_lossy(&b).into()), ok, "trace ID must be 16 bytes, got 17");

        // 9-14: transport-level refusals.
        let valid = request(vec![span(&[5; 16], &[5; 8], &[], "never stored")]).encode_to_vec();
        let (s, _, b) = http.post(Some("text/plain"), &[], valid.clone()).await;
        expect("text/plain", (s, String::from_utf8_lossy(&b).into()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported content type");
        let (s, _, b) = http.post(None, &[], valid.clone()).await;
        expect("no content type", (s, String::from_utf8_lossy(&b).into()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/x-protobuf");
        let got = http.proto(&[("content-encoding", "br")], valid.clone()).await;
        expect("brotli", got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported content encoding");
        let got = http.proto(&[], vec![0u8; 5 << 20]).await;
        expect("5 MiB body", got, StatusCode::PAYLOAD_TOO_LARGE, "exceeds the limit");
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let got = http.proto(&[("content-encoding", "gzip")], bomb.clone()).await;
        expect("gzip bomb", got, StatusCode::PAYLOAD_TOO_LARGE, "decompressed request body exceeds");
        let got = http.proto(&[("content-encoding", "gzip")], valid.clone()).await;
        expect("gzip header on a plain body", got, bad, "invalid gzip body");

        // 15-18: hostile tenants never reach a storage path.
        for (case, tenant, needle) in [
            ("tenant ../x", "../x", "\"../x\": contains a path separator"),
            ("tenant a/b", "a/b", "path separator"),
            ("tenant with a tab", "a\tb", "control character"),
        ] {
            let got = http.proto(&[("x-scope-orgid", tenant)], valid.clone()).await;
            expect(case, got, bad, needle);
        }
        let long = "t".repeat(151);
        expect("151-byte tenant", http.proto(&[("x-scope-orgid", &long)], valid.clone()).await, bad, "longer than 150");

        // 19: wrong method.
        let status = http.client.get(&http.url).send().await.unwrap().status();
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET /v1/traces");

        // 20: an oversized attribute is truncated and counted, the span kept.
        let mut long_attr = good(4, &mut good_spans);
        long_attr.attributes.push(KeyValue {
            key: "payload".into(),
            value: Some(AnyValue { value: Some(Value::StringValue("x".repeat(1000))) }),
            key_strindex: 0,
        });
        let got = http.proto(&[], request(vec![long_attr]).encode_to_vec()).await;
        expect("1000-byte attribute", got, ok, "1 attribute values were longer than max_attribute_bytes");
        // 21: an empty request is fine and says nothing.
        expect("empty request", http.proto(&[], Vec::new()).await, ok, "");

        // 22-28: per-tenant limits.
        // The rate and the burst count stored bytes (each span with its resource and scope).
        let over_burst = request((10..30).map(|n| good(n, &mut HashSet::new())).collect()).encode_to_vec();
        let eight = |from: u8| request((from..from + 8).map(|n| span(&[n; 16], &[n; 8], &[], "rated")).collect()).encode_to_vec();
        let first = http.proto(&[("x-scope-orgid", "slow-tenant")], request(vec![span(&[40; 16], &[40; 8], &[], "small")]).encode_to_vec()).await;
        expect("first small request under the rate", first, ok, "");
        good_by_tenant.push(("slow-tenant", [40; 16], [40; 8]));
        let under = http.proto(&[("x-scope-orgid", "slow-tenant")], eight(60)).await;
        expect("eight spans, still under the burst", under, ok, "");
        good_by_tenant.extend((60..68).map(|n| ("slow-tenant", [n; 16], [n; 8])));
        let (s, _, b) = http.post(Some("application/x-protobuf"), &[("x-scope-orgid", "slow-tenant")], eight(68)).await;
        expect("over the ingestion rate", (s, describe_proto(s, &b)), StatusCode::TOO_MANY_REQUESTS, "ingestion rate");
        let (s, _, b) = http.post(Some("application/x-protobuf"), &[("x-scope-orgid", "slow-tenant")], over_burst.clone()).await;
        expect("more than the burst at once: never retryable", (s, describe_proto(s, &b)), bad, "more than tenant slow-tenant's ingestion_burst_bytes (1000)");
        let mut big = span(&[41; 16], &[41; 8], &[], "big");
        big.attributes.push(KeyValue { key: "k".into(), value: Some(AnyValue { value: Some(Value::StringValue("v".repeat(60))) }), key_strindex: 0 });
        let trace_spans = vec![span(&[41; 16], &[42; 8], &[], "fits"), big.clone(), { let mut b = big.clone(); b.span_id = vec![43; 8]; b }, { let mut b = big; b.span_id = vec![44; 8]; b }];
        // The limit counts each span's stored size (its OTLP-encoded size plus that of the
        // resource every row repeats); spans that would take the trace over 300 bytes are
        // refused, the ones before them kept.
        let resource = request(Vec::new()).resource_spans[0].resource.as_ref().unwrap().encoded_len();
        let mut total = 0;
        for s in &trace_spans {
            if total + s.encoded_len() + resource <= 300 {
                total += s.encoded_len() + resource;
                good_by_tenant.push(("small-traces", [41; 16], s.span_id.clone().try_into().unwrap()));
            }
        }
        assert!(good_by_tenant.iter().filter(|g| g.0 == "small-traces").count() < trace_spans.len());
        let trace_limit = request(trace_spans);
        let got = http.proto(&[("x-scope-orgid", "small-traces")], trace_limit.encode_to_vec()).await;
        expect("trace over max_bytes_per_trace", got, ok, "exceeds max_bytes_per_trace");
        let three = request(vec![span(&[50; 16], &[50; 8], &[], "a"), span(&[51; 16], &[51; 8], &[], "b"), span(&[52; 16], &[52; 8], &[], "c")]);
        good_by_tenant.push(("few-traces", [50; 16], [50; 8]));
        good_by_tenant.push(("few-traces", [51; 16], [51; 8]));
        let got = http.proto(&[("x-scope-orgid", "few-traces")], three.encode_to_vec()).await;
        expect("third live trace", got, ok, "rejected=1 tenant has max_live_traces (2)");
        let got = http.proto(&[("x-scope-orgid", "few-traces")], request(vec![span(&[53; 16], &[53; 8], &[], "d")]).encode_to_vec()).await;
        expect("only new traces, all over the live-trace limit", got, StatusCode::TOO_MANY_REQUESTS, "max_live_traces");

        // gRPC: 29-35.
        const DEFAULT: &str = strata_model::DEFAULT_TENANT;
        let channel = tonic::transport::Channel::from_shared(strata.grpc_url()).unwrap().connect().await.unwrap();
        expect_grpc("gRPC malformed protobuf", export_raw(&channel, vec![0x0a, 0xff, 0xff].into(), false, Some(DEFAULT), EXPORT_PATH).await, Code::InvalidArgument, "malformed OTLP protobuf");
        let mixed = request(vec![good(6, &mut good_spans), span(&[0; 16], &[6; 8], &[], "zero"), span(&[6; 16], &[6; 3], &[], "short span")]);
        let response = export_raw(&channel, mixed.encode_to_vec().into(), true, Some(DEFAULT), EXPORT_PATH).await.unwrap();
        let partial = response.partial_success.expect("partial success");
        assert_eq!(partial.rejected_spans, 2, "{partial:?}");
        assert!(partial.error_message.contains("span ID must be 8 bytes, got 3"), "{partial:?}");
        expect_grpc("gRPC message over 4 MiB", export_raw(&channel, vec![0; 5 << 20].into(), false, Some(DEFAULT), EXPORT_PATH).await, Code::ResourceExhausted, "too large");
        expect_grpc("gRPC gzip bomb", export_raw(&channel, vec![0; 64 << 20].into(), true, Some(DEFAULT), EXPORT_PATH).await, Code::ResourceExhausted, "size limit");
        expect_grpc("gRPC hostile tenant", export_raw(&channel, valid.clone().into(), false, Some("../../etc"), EXPORT_PATH).await, Code::InvalidArgument, "X-Scope-OrgID");
        expect_grpc("gRPC more than the burst", export_raw(&channel, over_burst.clone().into(), false, Some("slow-tenant"), EXPORT_PATH).await, Code::InvalidArgument, "ingestion_burst_bytes");
        // The bucket may have refilled meanwhile; back-to-back requests run it dry.
        let mut limited = None;
        for from in [76u8, 84, 92, 100] {
            match export_raw(&channel, eight(from).into(), false, Some("slow-tenant"), EXPORT_PATH).await {
                Ok(_) => good_by_tenant.extend((from..from + 8).map(|n| ("slow-tenant", [n; 16], [n; 8]))),
                Err(status) => {
                    limited = Some(status);
                    break;
                }
            }
        }
        expect_grpc("gRPC over the rate", limited.map_or(Ok(()), Err), Code::ResourceExhausted, "ingestion rate");
        expect_grpc("gRPC unknown method", export_raw(&channel, valid.clone().into(), false, Some(DEFAULT), "/opentelemetry.proto.collector.trace.v1.TraceService/Nope").await, Code::Unimplemented, "");

        // Still serving: a plain good request over each transport.
        let last = request(vec![good(7, &mut good_spans)]);
        expect("good request after all that", http.proto(&[], last.encode_to_vec()).await, ok, "");
        let last = request(vec![good(8, &mut good_spans)]);
        let response = export_raw(&channel, last.encode_to_vec().into(), true, Some(DEFAULT), EXPORT_PATH).await.unwrap();
        assert!(response.partial_success.is_none(), "{response:?}");
        // zstd is the other compression OTLP/gRPC clients use.
        let zstd = request(vec![good(9, &mut good_spans)]);
        let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel.clone())
            .send_compressed(tonic::codec::CompressionEncoding::Zstd);
        let mut zstd = tonic::Request::new(zstd);
        zstd.metadata_mut().insert("x-scope-orgid", DEFAULT.parse().unwrap());
        let response = client.export(zstd).await.unwrap().into_inner();
        assert!(response.partial_success.is_none(), "{response:?}");
    });
    let log = strata.stop();
    assert!(!log.contains("panicked"), "{log}");

    // Every good span is in a block, and nothing refused is.
    let mut stored = HashSet::new();
    let mut truncated_ok = false;
    for tenant in ["single-tenant", "slow-tenant", "small-traces", "few-traces"] {
        for span in stored_spans(&dir.path().join("data/blocks"), tenant) {
            if let Some(kv) = span.attributes.iter().find(|kv| kv.key == "payload") {
                truncated_ok = kv.value.as_str().map(str::len) == Some(64);
            }
            if span.name == "good-3" {
                let ints: Vec<_> = span
                    .attributes
                    .iter()
                    .filter_map(|kv| kv.value.as_int())
                    .collect();
                assert_eq!(ints, vec![42, 7], "JSON ints as string and number");
            }
            stored.insert((tenant, span.trace_id.0, span.span_id.0));
        }
    }
    for (trace, id) in &good_spans {
        assert!(
            stored.contains(&("single-tenant", *trace, *id)),
            "good span {id:?} lost"
        );
    }
    for (tenant, trace, id) in &good_by_tenant {
        assert!(
            stored.contains(&(*tenant, *trace, *id)),
            "{tenant}: good span {id:?} lost"
        );
    }
    assert!(
        truncated_ok,
        "the long attribute should be stored truncated to 64 bytes"
    );
    let expected_total = good_spans.len() + good_by_tenant.len();
    assert_eq!(
        stored.len(),
        expected_total,
        "refused spans were stored: {stored:?}"
    );
}

#[test]
fn memory_limit_pushes_back_with_429_and_keeps_what_it_took() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\n  max_unflushed_bytes: 1KiB\n";
    let strata = Strata::start(dir.path(), sections);
    let http = Http {
        client: reqwest::Client::new(),
        url: strata.traces_url(),
    };
    let mut taken = HashSet::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The first request fits under the limit and takes the ingester over it.
        let first = request((100..130).map(|n| good(n, &mut taken)).collect());
        expect(
            "first request",
            http.proto(&[], first.encode_to_vec()).await,
            StatusCode::OK,
            "",
        );
        let second = request(vec![span(&[200; 16], &[200; 8], &[], "refused")]).encode_to_vec();
        let (status, _, body) = http
            .post(Some("application/x-protobuf"), &[], second.clone())
            .await;
        expect(
            "over max_unflushed_bytes",
            (status, describe_proto(status, &body)),
            StatusCode::TOO_MANY_REQUESTS,
            "memory limit",
        );
        let channel = tonic::transport::Channel::from_shared(strata.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        expect_grpc(
            "gRPC over max_unflushed_bytes",
            export_raw(&channel, second.into(), false, None, EXPORT_PATH).await,
            Code::ResourceExhausted,
            "memory limit",
        );
    });
    strata.stop();
    let stored: HashSet<_> = stored_spans(&dir.path().join("data/blocks"), "single-tenant")
        .iter()
        .map(|s| (s.trace_id.0, s.span_id.0))
        .collect();
    assert_eq!(stored, taken);
}
