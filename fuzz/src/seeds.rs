//! The seed corpora: for each target, inputs that reach deep into it — the fixture in every
//! encoding a target takes, and hand-made edge cases. `make-corpus` writes them to `corpus/`.

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use strata_block::catalog::CompactedMarker;
use strata_block::{Rollup, TenantIndex};
use uuid::Uuid;

use crate::fixture::{self, kv, s, span};
use crate::wire;

/// Every target's seeds, by target name.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        (
            "otlp_proto",
            requests().iter().map(Message::encode_to_vec).collect(),
        ),
        ("otlp_json", requests().iter().map(json).collect()),
        ("wal_record", wal_segments()),
        (
            "traceql",
            QUERIES.iter().map(|q| q.as_bytes().to_vec()).collect(),
        ),
        ("meta_parsers", meta_objects()),
        ("block_file", block_objects()),
        ("internal_api", internal_requests()),
    ]
}

/// A fixed time for the objects that carry one.
fn fixed_time() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(fixture::T0 as i64 + 3_600_000_000_000)
}

fn value(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn one_span_request(
    span: opentelemetry_proto::tonic::trace::v1::Span,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The export requests the OTLP and WAL seeds are made of.
pub fn requests() -> Vec<ExportTraceServiceRequest> {
    let full = fixture::request();
    let mut out = vec![full.clone()];
    // Each service alone.
    for rs in &full.resource_spans {
        out.push(ExportTraceServiceRequest {
            resource_spans: vec![rs.clone()],
        });
    }
    // Nested arrays and lists, 8 deep.
    let mut nested = value(Value::StringValue("leaf".into()));
    for depth in 0..8 {
        nested = if depth % 2 == 0 {
            value(Value::ArrayValue(ArrayValue {
                values: vec![nested, value(Value::IntValue(depth))],
            }))
        } else {
            value(Value::KvlistValue(KeyValueList {
                values: vec![kv("k", nested)],
            }))
        };
    }
    let mut deep = span(0, 40, None, "deep", 0, 1);
    deep.attributes = vec![kv("nested", nested)];
    out.push(one_span_request(deep));
    // Values over the attribute limit (16 KiB by default): ASCII, and multi-byte characters
    // whose cut falls inside a character.
    let mut long = span(1, 41, None, "long", 0, 1);
    long.attributes = vec![
        kv("ascii", s(&"x".repeat(17 << 10))),
        kv("utf8", s(&"\u{e9}".repeat(9 << 10))),
        kv("bytes", value(Value::BytesValue(vec![7; 17 << 10]))),
    ];
    out.push(one_span_request(long));
    // Bad IDs next to a good span: all-zero trace ID, short span ID, 9-byte parent.
    let mut zero = span(2, 42, None, "zero trace", 0, 1);
    zero.trace_id = vec![0; 16];
    let mut short = span(2, 43, None, "short span id", 0, 1);
    short.span_id = vec![1, 2, 3];
    let mut parent = span(2, 44, None, "odd parent", 0, 1);
    parent.parent_span_id = vec![9; 9];
    let good = span(2, 45, None, "good", 0, 1);
    let mut bad = one_span_request(good);
    bad.resource_spans[0].scope_spans[0]
        .spans
        .extend([zero, short, parent]);
    out.push(bad);
    // Copies of a span ID, times at the ends of the range, empty everything.
    let mut first = span(3, 46, None, "copy", 0, 1);
    first.start_time_unix_nano = 0;
    first.end_time_unix_nano = u64::MAX;
    let mut copy = first.clone();
    copy.name = "second copy".into();
    let mut copies = one_span_request(first);
    copies.resource_spans[0].scope_spans[0].spans.push(copy);
    out.push(copies);
    out.push(ExportTraceServiceRequest::default());
    out
}

fn json(request: &ExportTraceServiceRequest) -> Vec<u8> {
    match serde_json::to_vec(request) {
        Ok(json) => json,
        Err(e) => panic!("a seed request does not serialize as JSON: {e}"),
    }
}

fn wal_segments() -> Vec<Vec<u8>> {
    let tenant = fixture::TENANT.as_bytes();
    let payloads: Vec<Vec<u8>> = requests().iter().map(Message::encode_to_vec).collect();
    let mut out = Vec::new();
    out.push(wire::WAL_MAGIC.to_vec());
    let mut all = wire::WAL_MAGIC.to_vec();
    for (i, payload) in payloads.iter().enumerate() {
        let mut one = wire::WAL_MAGIC.to_vec();
        one.extend(wire::wal_record(tenant, fixture::T0 + i as u64, payload));
        out.push(one);
        all.extend(wire::wal_record(tenant, fixture::T0 + i as u64, payload));
    }
    // Several tenants and a torn tail.
    let mut mixed = wire::WAL_MAGIC.to_vec();
    mixed.extend(wire::wal_record(b"team-a", 1, &payloads[1]));
    mixed.extend(wire::wal_record(b"Team_B.x", 2, &payloads[2]));
    let torn = wire::wal_record(tenant, 3, &payloads[3]);
    mixed.extend(&torn[..torn.len() / 2]);
    out.push(mixed);
    out.push(all);
    out
}

/// Queries covering the grammar: filters on every kind of attribute and intrinsic, every
/// operator, literals of each type, spanset and structural operators, pipelines with
/// aggregates, `by`, `select`, and metrics.
pub const QUERIES: &[&str] = &[
    "{}",
    "{ true }",
    "{ .http.request.method = \"GET\" }",
    "{ span.http.response.status_code >= 500 }",
    "{ resource.service.name = \"cart\" && span.db.system = \"postgresql\" }",
    "{ resource.service.name =~ \"car.*\" }",
    "{ name !~ \"GET .*\" }",
    "{ .cache.hit = false }",
    "{ .ratio > 0.1 && .ratio <= 1.0e0 }",
    "{ .load < -1000 }",
    "{ .user.tier = \"gold\" }",
    "{ span.net.peer.port = 8080 }",
    "{ .nothing = nil }",
    "{ .db.rows != nil }",
    "{ status = error }",
    "{ status != ok && status != unset }",
    "{ span:status = error }",
    "{ kind = server || kind = client }",
    "{ kind = consumer }",
    "{ kind = producer || kind = internal || kind = unspecified }",
    "{ duration > 50ms }",
    "{ span:duration >= 1s && span:duration < 1h }",
    "{ duration > 100us && duration < 1000000ns }",
    "{ trace:duration > 2s }",
    "{ traceDuration < 1m }",
    "{ rootName = \"GET /cart\" }",
    "{ trace:rootName = \"POST /checkout\" }",
    "{ rootServiceName = \"frontend\" }",
    "{ trace:rootService = \"worker\" }",
    "{ trace:id = \"0af7651916cd43dd8448eb211c80319c\" }",
    "{ span:id = \"0100000000000001\" }",
    "{ span:parentID = \"0100000000000002\" }",
    "{ span:childCount > 0 }",
    "{ statusMessage = \"connection reset\" }",
    "{ span:statusMessage =~ \".*reset.*\" }",
    "{ span:name = \"\" }",
    "{ event:name = \"exception\" }",
    "{ event.exception.type = \"IOError\" }",
    "{ event:timeSinceStart > 10ms }",
    "{ link:traceID = \"0af7651916cd43dd8448eb211c80319c\" }",
    "{ link.link.reason = \"retry\" }",
    "{ link:spanID != \"\" }",
    "{ instrumentation:name = \"kafka\" }",
    "{ instrumentation:version = \"1.4.0\" }",
    "{ instrumentation.otel.scope.kind = \"library\" }",
    "{ .\"k8s.pod.name\" =~ \"cart-.*\" }",
    "{ resource.\"deployment.environment.name\" = \"prod\" }",
    "{ .messaging.batch.message_count * 2 + 1 > 20 }",
    "{ .db.rows - 1 < 0 && .db.rows / 1 = 0 && .db.rows % 2 = 0 }",
    "{ 2 ^ 3 = 8 }",
    "{ -.load > 0 }",
    "{ !(.cache.hit = true) }",
    "{ (.a = 1 || .b = 2) && !(.c = 3) }",
    "{ name = `raw \\string` }",
    "{ name = \"tab\\tquote\\\"back\\\\uni\\u00e9\" }",
    "{ name = \"\u{1F680} launch\" }",
    "{ .http.request.method = \"GET\" } && { .db.system = \"postgresql\" }",
    "{ kind = server } || { kind = consumer }",
    "{ kind = server } > { kind = client }",
    "{ kind = server } >> { status = error }",
    "{ name = \"cart.Get\" } < { kind = server }",
    "{ status = error } << { kind = server }",
    "{ name = \"cart.Get\" } ~ { name = \"cart.Get\" }",
    "{ kind = server } !> { kind = client }",
    "{ kind = server } !>> { status = error }",
    "{ kind = client } !< { kind = server }",
    "{ kind = client } !<< { kind = server }",
    "{ } !~ { }",
    "{ } &> { }",
    "{ } &>> { status = error }",
    "{ } &< { }",
    "{ } &<< { }",
    "{ } &~ { }",
    "({ kind = server } >> { kind = client }) && { status = error }",
    "{ } | count() > 2",
    "{ } | count() = 1 && count() < 100",
    "{ status = error } | avg(duration) > 10ms",
    "{ } | min(duration) < 1ms | max(duration) > 1s",
    "{ } | sum(.db.rows) >= 0",
    "{ } | by(resource.service.name) | count() > 1",
    "{ } | by(.http.request.method, kind) | avg(span:duration) > 0",
    "{ } | select(.http.route, status, duration)",
    "{ } | coalesce()",
    "{ kind = server } | by(name) | select(resource.service.name) | count() >= 1",
    "{ } | rate()",
    "{ } | count_over_time() by (resource.service.name)",
    "{ status = error } | quantile_over_time(duration, .5, .9, .99) by (name)",
    "{ } | avg_over_time(duration) | topk(3)",
    "{ } | histogram_over_time(duration) by (kind)",
    "// a comment\n{ /* inline */ name = \"GET /cart\" }",
    "{ .a = 1 }\n|\ncount()\n>\n0",
    "{ .a = \"x\" && .a = \"y\" && .a = \"z\" && .a = \"w\" || .b = 1 || .b = 2 || .b = 3 }",
    "{ ((((((((((.a = 1)))))))))) }",
    "{ .x =~ \"[a-z]{2,5}(foo|bar)+\\\\d*\" }",
    "{ .x =~ \"(?i)GET\" }",
];

fn meta_objects() -> Vec<Vec<u8>> {
    let block = fixture::block();
    let mut meta = block.meta.clone();
    meta.created_at = fixed_time();
    let mut rollup = Rollup::new();
    for span in fixture::spans() {
        rollup.add_span(&span, 60);
    }
    let tenant = fixture::tenant();
    let (mut rollup_meta, rollup_data) = match strata_block::encode_segment(
        &tenant,
        fixture::BLOCK_ID,
        &rollup,
        vec![fixture::BLOCK_ID],
        Vec::new(),
    ) {
        Ok(encoded) => encoded,
        Err(e) => panic!("the fixture rollup does not encode: {e}"),
    };
    rollup_meta.created_at = fixed_time();
    let index = TenantIndex {
        format_version: strata_block::INDEX_FORMAT_VERSION,
        tenant: fixture::TENANT.into(),
        created_at: fixed_time(),
        blocks: vec![meta.clone()],
        compacted: vec![Uuid::from_u128(7)],
        rollups: vec![rollup_meta.clone()],
    };
    let index_json = match serde_json::to_vec(&index) {
        Ok(json) => json,
        Err(e) => panic!("the fixture index does not serialize: {e}"),
    };
    let index_zst = match index.encode() {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => panic!("the fixture index does not encode: {e}"),
    };
    let marker = CompactedMarker {
        id: fixture::BLOCK_ID,
        compacted_at: fixed_time(),
        replaced_by: vec![Uuid::from_u128(8)],
    };
    let tagged = |selector: u8, bytes: &[u8]| {
        let mut out = vec![selector];
        out.extend_from_slice(bytes);
        out
    };
    let mut out = vec![
        tagged(0, &meta.to_json()),
        tagged(1, &block.tags),
        tagged(2, &index_zst),
        tagged(3, &index_json),
        tagged(4, &marker.to_json()),
        tagged(5, &rollup_meta.to_json()),
        tagged(6, &rollup_data),
    ];
    for shard in &block.blooms {
        out.push(tagged(7, shard));
    }
    out
}

fn block_objects() -> Vec<Vec<u8>> {
    let block = fixture::block();
    let mut meta = block.meta.clone();
    meta.created_at = fixed_time();
    let tagged = |selector: u8, bytes: &[u8]| {
        let mut out = vec![selector];
        out.extend_from_slice(bytes);
        out
    };
    let mut out = vec![
        tagged(0, &block.data),
        tagged(1, &block.data),
        tagged(2, &meta.to_json()),
        tagged(4, &block.tags),
    ];
    if let Some(shard) = block.blooms.first() {
        out.push(tagged(3, shard));
    }
    let footer = &block.data[crate::targets::footer_start(&block.data)..block.data.len() - 8];
    out.push(tagged(5, footer));
    out
}

fn internal_requests() -> Vec<Vec<u8>> {
    let with = |method: u8, tenant: u8, body: Vec<u8>| {
        let mut out = vec![method, tenant];
        out.extend(body);
        out
    };
    let mut out = vec![
        with(0, 1, wire::find_trace_request(&fixture::TRACE_IDS[0])),
        with(0, 1, wire::find_trace_request(&fixture::TRACE_IDS[3])),
        with(0, 1, wire::find_trace_request(&[0x42; 16])),
        with(0, 0, wire::find_trace_request(&fixture::TRACE_IDS[1])),
        with(0, 2, wire::find_trace_request(&fixture::TRACE_IDS[1])),
        with(2, 1, Vec::new()),
        with(2, 2, Vec::new()),
    ];
    for query in [
        "{ status = error }",
        "{ resource.service.name = \"cart\" } >> { kind = client }",
        "{ } | by(name) | count() > 0",
        "{ .user.tier = \"gold\" } | select(.http.route)",
        "{ duration > 10ms }",
    ] {
        out.push(with(1, 1, wire::search_request(query, 20, None, None)));
    }
    let range = Some((fixture::T0, fixture::T0 + 10_000_000_000));
    out.push(with(
        1,
        1,
        wire::search_request("{ }", 5, range, Some(1_000_000)),
    ));
    out.push(with(1, 1, wire::search_request("{ }", 0, None, None)));
    let mut own_tenant = vec![1, 3, 4];
    own_tenant.extend(b"fuzz");
    own_tenant.extend(wire::search_request("{ kind = server }", 10, None, None));
    out.push(own_tenant);
    out
}
