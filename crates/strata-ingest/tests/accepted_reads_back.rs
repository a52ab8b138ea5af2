//! Whatever the receivers accept can be read back: a request at or beyond every bound (values
//! nested as deep as protobuf decoding allows, thousands of attributes, events and links, huge
//! keys and names) is decoded as the receivers decode it, sanitized with the default limits,
//! written as a block, and read back whole by the reader a lookup uses and by the one the
//! compactor uses.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use strata_block::{
    BlockConfig, BlockIdentity, BlockTraceReader, TagSummary, encode_block, read_spans,
    upload_block,
};
use strata_ingest::{SanitizeLimits, sanitize};
use strata_model::TenantId;
use strata_storage::Storage;

fn int(key: &str, i: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(i)),
        }),
        key_strindex: 0,
    }
}

/// A value nested `depth` levels, alternating arrays and key/value lists.
fn nested(depth: usize) -> AnyValue {
    let mut value = AnyValue {
        value: Some(Value::StringValue("leaf".into())),
    };
    for level in 0..depth {
        value = AnyValue {
            value: Some(if level % 2 == 0 {
                Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })
            } else {
                Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(value),
                        key_strindex: 0,
                    }],
                })
            }),
        };
    }
    value
}

fn attrs(n: usize) -> Vec<KeyValue> {
    (0..n)
        .map(|i| int(&format!("attr.{i}"), i as i64))
        .collect()
}

/// The deepest nesting protobuf decoding (prost's recursion limit) lets through in a span
/// attribute.
fn deepest_decodable() -> usize {
    (1..200)
        .take_while(|&depth| {
            let bytes = request(depth, 1).encode_to_vec();
            ExportTraceServiceRequest::decode(bytes.as_slice()).is_ok()
        })
        .last()
        .unwrap()
}

fn request(depth: usize, many: usize) -> ExportTraceServiceRequest {
    let long = "n".repeat(64 << 10);
    let span = |i: u8| Span {
        trace_id: vec![7; 16],
        span_id: vec![i; 8],
        name: long.clone(),
        trace_state: long.clone(),
        attributes: {
            let mut a = attrs(many);
            a.insert(
                0,
                KeyValue {
                    key: "deep".into(),
                    value: Some(nested(depth)),
                    key_strindex: 0,
                },
            );
            a.insert(1, int(&"k".repeat(64 << 10), 1));
            // JSON has no number for these; the block stores arrays as JSON.
            let double = |d: f64| AnyValue {
                value: Some(Value::DoubleValue(d)),
            };
            a.insert(
                2,
                KeyValue {
                    key: "doubles".into(),
                    value: Some(AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![
                                double(f64::NAN),
                                double(f64::INFINITY),
                                double(f64::NEG_INFINITY),
                                double(1.5),
                            ],
                        })),
                    }),
                    key_strindex: 0,
                },
            );
            a
        },
        events: (0..many)
            .map(|e| Event {
                time_unix_nano: 1_700_000_000_000_000_000 + e as u64,
                name: long.clone(),
                attributes: attrs(many.min(200)),
                dropped_attributes_count: 0,
            })
            .collect(),
        links: (0..many)
            .map(|l| Link {
                trace_id: vec![9; 16],
                span_id: vec![(l % 250 + 1) as u8; 8],
                attributes: attrs(many.min(200)),
                ..Default::default()
            })
            .collect(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_001_000_000_000,
        status: Some(Status {
            message: "m".repeat(1 << 20),
            code: 2,
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: {
                    let mut a = attrs(many);
                    a.push(KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue("svc".into())),
                        }),
                        key_strindex: 0,
                    });
                    a.push(KeyValue {
                        key: "deep".into(),
                        value: Some(nested(depth.saturating_sub(4))),
                        key_strindex: 0,
                    });
                    a
                },
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: long.clone(),
                    version: long.clone(),
                    attributes: attrs(many),
                    ..Default::default()
                }),
                spans: vec![span(1), span(2)],
                schema_url: long.clone(),
            }],
            schema_url: long,
        }],
    }
}

/// Sanitizes and converts a request as the ingester does, then writes and reads it back;
/// returns what was stored and what each reader gave.
async fn through_a_block(
    mut request: ExportTraceServiceRequest,
    limits: &SanitizeLimits,
) -> (
    Vec<strata_model::Span>,
    strata_block::Result<Vec<strata_model::Span>>,
) {
    sanitize(&mut request, limits);
    let (spans, rejected) = strata_model::otlp::spans_from_request(request);
    assert!(rejected.is_empty());
    let tenant = TenantId::new("t").unwrap();
    let block = encode_block(
        BlockIdentity::fresh(tenant.clone()),
        BlockConfig::default(),
        spans.clone(),
    )
    .unwrap();
    TagSummary::parse(&block.tags, "tags.json").unwrap();
    let looked_up = read_spans(block.data.clone(), "block");
    // The compactor's reader.
    let storage = Storage::in_memory();
    upload_block(&storage, &block).await.unwrap();
    let compacted = async {
        let mut reader = BlockTraceReader::open(&storage, Arc::new(block.meta.clone())).await?;
        let mut all = Vec::new();
        while let Some(trace) = reader.next().await? {
            all.extend(trace.spans);
        }
        Ok::<_, strata_block::Error>(all)
    }
    .await;
    match (&looked_up, &compacted) {
        (Ok(a), Ok(b)) => assert_eq!(a.len(), b.len()),
        (Err(_), Err(_)) => {}
        _ => panic!("the readers disagree: {looked_up:?} / {compacted:?}"),
    }
    (spans, looked_up)
}

fn sorted(mut spans: Vec<strata_model::Span>) -> Vec<strata_model::Span> {
    for span in &mut spans {
        span.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        let mut resource = (*span.resource).clone();
        resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        span.resource = Arc::new(resource);
    }
    spans.sort_by_key(|s| s.span_id);
    spans
}

#[tokio::test]
async fn a_request_beyond_every_bound_is_stored_within_them_and_read_back_whole() {
    let depth = deepest_decodable();
    assert!(depth > 30, "prost lets {depth} levels through");
    let request = request(depth, 1000);
    // What the receivers decode.
    let bytes = request.encode_to_vec();
    let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();

    let limits = SanitizeLimits::default();
    let (stored, back) = through_a_block(request.clone(), &limits).await;
    let back = back.unwrap();
    assert_eq!(sorted(back), sorted(stored.clone()));
    let span = &stored[0];
    assert!(span.name.len() <= limits.max_name_bytes);
    assert!(span.attributes.len() <= limits.max_attributes);
    assert!(
        span.attributes
            .iter()
            .all(|kv| kv.key.len() <= limits.max_attribute_key_bytes)
    );
    assert!(
        span.attributes.iter().all(|kv| kv.key != "deep"),
        "too deep: dropped"
    );
    assert_eq!(span.events.len(), limits.max_events);
    assert_eq!(span.links.len(), limits.max_links);
    assert!(span.dropped_attributes_count >= 1000 - 128);
    assert!(span.resource.attributes.len() <= limits.max_attributes);

    // At the deepest depth the configuration allows, nested values still read back.
    let deepest = SanitizeLimits {
        max_attribute_depth: strata_ingest::config::MAX_ATTRIBUTE_DEPTH,
        ..limits
    };
    let (stored, back) = through_a_block(
        self::request(strata_ingest::config::MAX_ATTRIBUTE_DEPTH, 3),
        &deepest,
    )
    .await;
    assert!(stored[0].attributes.iter().any(|kv| kv.key == "deep"));
    assert_eq!(sorted(back.unwrap()), sorted(stored));

    // Without a depth limit, what protobuf lets through makes a block no reader can read:
    // the reason the limit exists.
    let unbounded = SanitizeLimits {
        max_attribute_depth: usize::MAX - 1,
        ..limits
    };
    let (_, back) = through_a_block(request, &unbounded).await;
    assert!(
        back.is_err(),
        "a value nested {depth} levels deep read back"
    );
}
