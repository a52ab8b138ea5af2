//! The fixed data the targets read and the seeds start from: a few small traces of three
//! services that between them use every attribute type, dedicated and generic columns, events,
//! links, statuses, kinds, an orphan span and a parent cycle; and the block they make.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use strata_block::{BlockConfig, BlockIdentity, EncodedBlock, encode_block};
use strata_model::TenantId;
use uuid::Uuid;

/// The tenant everything belongs to.
pub const TENANT: &str = "fuzz";
/// The fixture block's ID (a fixed UUIDv7, so the seeds are the same on every run).
pub const BLOCK_ID: Uuid = Uuid::from_u128(0x019b_7a2c_8000_7000_8000_0000_0000_0001);
/// 2026-01-01T00:00:00Z in unix nanoseconds; every fixture time is shortly after.
pub const T0: u64 = 1_767_225_600_000_000_000;
const MS: u64 = 1_000_000;

/// The trace IDs of the fixture, in the order [`request`] holds them.
pub const TRACE_IDS: [[u8; 16]; 4] = [
    [
        0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31,
        0x9c,
    ],
    [
        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6,
        0x0c,
    ],
    [
        0x9e, 0x10, 0x7a, 0x3c, 0x44, 0x21, 0x00, 0x01, 0x7f, 0xff, 0x00, 0x10, 0x22, 0x33, 0x44,
        0x55,
    ],
    [
        0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
        0x01,
    ],
];

/// The tenant as a [`TenantId`].
pub fn tenant() -> TenantId {
    match TenantId::new(TENANT) {
        Ok(tenant) => tenant,
        Err(e) => panic!("fixture tenant {TENANT:?} is invalid: {e}"),
    }
}

/// A string value.
pub fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

/// An integer value.
pub fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(v)),
    }
}

/// A key and value.
pub fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

fn value(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// A span ID from a small number.
pub fn span_id(n: u64) -> Vec<u8> {
    (n | 0x0100_0000_0000_0000).to_be_bytes().to_vec()
}

/// A span of trace `trace` (an index into [`TRACE_IDS`]).
pub fn span(
    trace: usize,
    id: u64,
    parent: Option<u64>,
    name: &str,
    start_ms: u64,
    ms: u64,
) -> Span {
    Span {
        trace_id: TRACE_IDS[trace].to_vec(),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: T0 + start_ms * MS,
        end_time_unix_nano: T0 + (start_ms + ms) * MS,
        ..Default::default()
    }
}

fn resource(service: &str, extra: Vec<KeyValue>) -> Option<Resource> {
    let mut attributes = vec![
        kv("service.name", s(service)),
        kv("k8s.pod.name", s(&format!("{service}-7d9f-x2"))),
        kv("deployment.environment.name", s("prod")),
    ];
    attributes.extend(extra);
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn scope(name: &str, spans: Vec<Span>) -> ScopeSpans {
    ScopeSpans {
        scope: Some(InstrumentationScope {
            name: name.into(),
            version: "1.4.0".into(),
            attributes: vec![kv("otel.scope.kind", s("library"))],
            ..Default::default()
        }),
        spans,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    }
}

fn error(message: &str) -> Option<Status> {
    Some(Status {
        message: message.into(),
        code: 2,
    })
}

fn frontend() -> ResourceSpans {
    let mut get_cart = span(0, 1, None, "GET /cart", 0, 120);
    get_cart.attributes = vec![
        kv("http.request.method", s("GET")),
        kv("http.route", s("/cart")),
        kv("http.response.status_code", i(500)),
        kv("url.full", s("https://shop.example/cart?id=42")),
    ];
    get_cart.status = error("upstream failed");
    let mut call = span(0, 2, Some(1), "cart.Get", 5, 100);
    call.kind = 3;
    call.attributes = vec![kv("rpc.system", s("grpc")), kv("net.peer.port", i(8080))];
    let mut checkout = span(1, 10, None, "POST /checkout", 200, 400);
    checkout.attributes = vec![
        kv("http.request.method", s("POST")),
        kv("http.response.status_code", i(200)),
        kv(
            "cart.items",
            value(Value::ArrayValue(ArrayValue {
                values: vec![s("sku-1"), s("sku-2"), i(3)],
            })),
        ),
        kv(
            "user",
            value(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("id", i(7)),
                    kv("tier", s("gold")),
                    kv("beta", value(Value::BoolValue(true))),
                ],
            })),
        ),
    ];
    checkout.links = vec![Link {
        trace_id: TRACE_IDS[0].to_vec(),
        span_id: span_id(1),
        trace_state: "vendor=1".into(),
        attributes: vec![kv("link.reason", s("retry"))],
        ..Default::default()
    }];
    ResourceSpans {
        resource: resource("frontend", vec![kv("service.version", s("2.3.1"))]),
        scope_spans: vec![scope("http-server", vec![get_cart, call, checkout])],
        schema_url: String::new(),
    }
}

fn cart() -> ResourceSpans {
    let mut get = span(0, 3, Some(2), "cart.Get", 10, 90);
    get.attributes = vec![
        kv("rpc.method", s("Get")),
        kv("cache.hit", value(Value::BoolValue(false))),
    ];
    let mut query = span(0, 4, Some(3), "SELECT carts", 20, 60);
    query.kind = 3;
    query.attributes = vec![
        kv("db.system", s("postgresql")),
        kv("db.query.text", s("SELECT * FROM carts WHERE id = $1")),
        kv("db.rows", i(0)),
    ];
    query.status = error("connection reset");
    query.events = vec![Event {
        time_unix_nano: T0 + 70 * MS,
        name: "exception".into(),
        attributes: vec![
            kv("exception.type", s("IOError")),
            kv("exception.message", s("connection reset by peer")),
        ],
        dropped_attributes_count: 1,
    }];
    let mut reserve = span(1, 11, Some(10), "cart.Reserve", 220, 150);
    reserve.attributes = vec![
        kv("ratio", value(Value::DoubleValue(0.25))),
        kv("blob", value(Value::BytesValue(vec![0, 159, 146, 150]))),
    ];
    let mut payment = span(1, 12, Some(11), "payment.Charge", 250, 100);
    payment.kind = 3;
    payment.trace_state = "congo=t61rcWkgMzE".into();
    payment.flags = 1;
    ResourceSpans {
        resource: resource(
            "cart",
            vec![
                kv("host.name", s("node-3")),
                kv("cloud.region", s("eu-west-1")),
            ],
        ),
        scope_spans: vec![
            scope("grpc-server", vec![get, reserve]),
            scope("sql-client", vec![query, payment]),
        ],
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    }
}

fn worker() -> ResourceSpans {
    let mut consume = span(2, 20, None, "orders process", 1000, 2500);
    consume.kind = 5;
    consume.attributes = vec![
        kv("messaging.system", s("kafka")),
        kv("messaging.batch.message_count", i(12)),
        kv("load", value(Value::DoubleValue(-1.5e3))),
    ];
    consume.dropped_attributes_count = 2;
    consume.dropped_events_count = 1;
    let mut orphan = span(3, 30, Some(99), "\u{1F680} launch", 3000, 5);
    orphan.kind = 1;
    orphan.status = Some(Status {
        message: String::new(),
        code: 1,
    });
    // A parent cycle: 31 and 32 are each other's parent.
    let cycle_a = span(3, 31, Some(32), "cycle a", 3001, 1);
    let cycle_b = span(3, 32, Some(31), "cycle b", 3001, 1);
    let mut same_start = span(3, 33, Some(30), "", 3000, 0);
    same_start.kind = 4;
    ResourceSpans {
        resource: resource("worker", Vec::new()),
        scope_spans: vec![scope(
            "kafka",
            vec![consume, orphan, cycle_a, cycle_b, same_start],
        )],
        schema_url: String::new(),
    }
}

/// The fixture as one export request.
pub fn request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![frontend(), cart(), worker()],
    }
}

/// The fixture's spans in the model.
pub fn spans() -> Vec<strata_model::Span> {
    strata_model::otlp::spans_from_request(request()).0
}

/// The encoding the fixture block uses: small row groups and pages, so that a block of a few
/// traces still has several of each.
pub fn block_config() -> BlockConfig {
    BlockConfig {
        row_group_max_spans: 8,
        page_max_rows: 4,
        ..BlockConfig::default()
    }
}

/// The fixture block.
pub fn block() -> EncodedBlock {
    let identity = BlockIdentity {
        block_id: BLOCK_ID,
        ..BlockIdentity::fresh(tenant())
    };
    match encode_block(identity, block_config(), spans()) {
        Ok(block) => block,
        Err(e) => panic!("the fixture block does not encode: {e}"),
    }
}
