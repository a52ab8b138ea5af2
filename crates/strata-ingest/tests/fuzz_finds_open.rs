//! Inputs the fuzz targets (`fuzz/`) found to break the write path, kept as regression tests that
//! fail until it is fixed: what the receivers accept must be stored and read back.

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
/// recursion limit and `sanitize`, so the span is accepted; the block stores the value as JSON
/// about three levels per array deep, which serde_json refuses to read beyond 128 levels
/// ("recursion limit exceeded"), so every read of the block fails (audit §1.4). Whatever the
/// fix (a depth limit at the receivers, or a writer and reader that agree), a span accepted
/// must read back.
#[test]
fn deeply_nested_values_that_are_accepted_read_back() {
    let max_attribute_bytes = TenantLimits::default().max_attribute_bytes.as_u64() as usize;
    for depth in [8, 40, 44, 47] {
        let bytes = nested_request(depth).encode_to_vec();
        // What a client can send: it decodes.
        let mut request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        strata_ingest::sanitize(&mut request, max_attribute_bytes);
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
