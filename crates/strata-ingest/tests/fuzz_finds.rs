//! Inputs the fuzz targets (`fuzz/`) found to break the write path, kept as regression tests:
//! what the receivers accept must be stored and read back.

#![allow(clippy::unwrap_used, clippy::panic)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use strata_block::{BlockConfig, BlockIdentity, encode_block, read_spans};
use strata_ingest::config::TenantLimits;
use strata_model::TenantId;

/// One span with an attribute holding `depth` levels of nested arrays around a string.
fn nested_request(depth: usize) -> ExportTraceServiceRequest {
    let mut value = AnyValue {
        value: Some(Value::StringValue("leaf".into())),
    };
    for _ in 0..depth {
        value = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let span = Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        name: "deep".into(),
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        attributes: vec![KeyValue {
            key: "nested".into(),
            value: Some(value),
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The `otlp_proto` target's round-trip check: 44 to 47 levels of `arrayValue` pass prost's
/// recursion limit, and passed `sanitize` before `max_attribute_depth`, so the span was accepted; the block stores the value as JSON
/// about three levels per array deep, which serde_json refuses to read beyond 128 levels
/// ("recursion limit exceeded"), so every read of the block fails (audit §1.4). Whatever the
/// fix (a depth limit at the receivers, or a writer and reader that agree), a span accepted
/// must read back.
#[test]
fn deeply_nested_values_that_are_accepted_read_back() {
    let limits = strata_ingest::SanitizeLimits::of(&TenantLimits::default());
    for depth in [8, 40, 44, 47] {
        let bytes = nested_request(depth).encode_to_vec();
        // What a client can send: it decodes.
        let mut request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        strata_ingest::sanitize(&mut request, &limits);
        let (spans, _) = strata_model::otlp::spans_from_request(request);
        if spans.is_empty() {
            continue; // refused: fine
        }
        let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
        let block = encode_block(identity, BlockConfig::default(), spans)
            .unwrap_or_else(|e| panic!("depth {depth}: accepted but not encodable: {e}"));
        read_spans(block.data, "t")
            .unwrap_or_else(|e| panic!("depth {depth}: accepted, stored, unreadable: {e}"));
    }
}

/// The `otlp_proto` target's round-trip check: a NaN or infinite double inside an array or
/// kvlist value (legal in OTLP protobuf) was stored in the block's attribute JSON as `null`,
/// which reads back as an empty value. JSON has no number for them, so `sanitize` stores them as
/// the strings protobuf's JSON mapping uses, and what was accepted reads back as accepted.
#[test]
fn non_finite_doubles_inside_arrays_read_back_as_accepted() {
    let limits = strata_ingest::SanitizeLimits::of(&TenantLimits::default());
    for d in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut request = nested_request(0);
        let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
        span.attributes[0].value = Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::DoubleValue(d)),
                }],
            })),
        });
        let report = strata_ingest::sanitize(&mut request, &limits);
        assert_eq!(report.converted_doubles, 1, "{d}");
        let (spans, _) = strata_model::otlp::spans_from_request(request);
        let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
        let block = encode_block(identity, BlockConfig::default(), spans.clone()).unwrap();
        let back = read_spans(block.data, "t").unwrap();
        assert_eq!(back[0].attributes, spans[0].attributes, "{d}");
    }
}
