//! Traces as Tempo writes them in JSON: the protobuf JSON mapping of OTLP (what gogo's `jsonpb`
//! produces) — lowerCamel keys, IDs and bytes in base64, 64-bit integers as strings, enums by
//! name, fields holding their zero value left out. This differs from OTLP/JSON on the ingest
//! side (hex IDs, enums as numbers).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Map, Value, json};

/// Builds a JSON object, leaving out fields whose value is the protobuf zero value.
#[derive(Default)]
struct Object(Map<String, Value>);

impl Object {
    fn str(mut self, key: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.insert(key.into(), Value::String(value.into()));
        }
        self
    }
    fn bytes(self, key: &str, value: &[u8]) -> Self {
        let encoded = if value.is_empty() {
            String::new()
        } else {
            STANDARD.encode(value)
        };
        self.str(key, &encoded)
    }
    fn u64_string(mut self, key: &str, value: u64) -> Self {
        if value != 0 {
            self.0.insert(key.into(), Value::String(value.to_string()));
        }
        self
    }
    fn u32(mut self, key: &str, value: u32) -> Self {
        if value != 0 {
            self.0.insert(key.into(), json!(value));
        }
        self
    }
    fn value(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.into(), v);
        }
        self
    }
    fn list(mut self, key: &str, items: Vec<Value>) -> Self {
        if !items.is_empty() {
            self.0.insert(key.into(), Value::Array(items));
        }
        self
    }
    fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// `resourceSpans` (or Tempo v1's `batches`) entries.
pub fn resource_spans(list: &[ResourceSpans]) -> Vec<Value> {
    list.iter().map(resource_span).collect()
}

fn resource_span(rs: &ResourceSpans) -> Value {
    Object::default()
        .value("resource", rs.resource.as_ref().map(resource))
        .list(
            "scopeSpans",
            rs.scope_spans.iter().map(scope_spans).collect(),
        )
        .str("schemaUrl", &rs.schema_url)
        .build()
}

fn resource(r: &Resource) -> Value {
    Object::default()
        .list("attributes", attributes(&r.attributes))
        .u32("droppedAttributesCount", r.dropped_attributes_count)
        .build()
}

fn scope_spans(ss: &ScopeSpans) -> Value {
    Object::default()
        .value("scope", ss.scope.as_ref().map(scope))
        .list("spans", ss.spans.iter().map(span_json).collect())
        .str("schemaUrl", &ss.schema_url)
        .build()
}

fn scope(s: &InstrumentationScope) -> Value {
    Object::default()
        .str("name", &s.name)
        .str("version", &s.version)
        .list("attributes", attributes(&s.attributes))
        .u32("droppedAttributesCount", s.dropped_attributes_count)
        .build()
}

fn span_json(s: &Span) -> Value {
    let kind = span::SpanKind::try_from(s.kind)
        .map_or_else(|_| s.kind.to_string(), |k| k.as_str_name().to_owned());
    Object::default()
        .bytes("traceId", &s.trace_id)
        .bytes("spanId", &s.span_id)
        .str("traceState", &s.trace_state)
        .bytes("parentSpanId", &s.parent_span_id)
        .u32("flags", s.flags)
        .str("name", &s.name)
        .value("kind", (s.kind != 0).then_some(Value::String(kind)))
        .u64_string("startTimeUnixNano", s.start_time_unix_nano)
        .u64_string("endTimeUnixNano", s.end_time_unix_nano)
        .list("attributes", attributes(&s.attributes))
        .u32("droppedAttributesCount", s.dropped_attributes_count)
        .list("events", s.events.iter().map(event).collect())
        .u32("droppedEventsCount", s.dropped_events_count)
        .list("links", s.links.iter().map(link).collect())
        .u32("droppedLinksCount", s.dropped_links_count)
        .value("status", s.status.as_ref().map(status))
        .build()
}

fn event(e: &span::Event) -> Value {
    Object::default()
        .u64_string("timeUnixNano", e.time_unix_nano)
        .str("name", &e.name)
        .list("attributes", attributes(&e.attributes))
        .u32("droppedAttributesCount", e.dropped_attributes_count)
        .build()
}

fn link(l: &span::Link) -> Value {
    Object::default()
        .bytes("traceId", &l.trace_id)
        .bytes("spanId", &l.span_id)
        .str("traceState", &l.trace_state)
        .list("attributes", attributes(&l.attributes))
        .u32("droppedAttributesCount", l.dropped_attributes_count)
        .u32("flags", l.flags)
        .build()
}

fn status(s: &Status) -> Value {
    let code = opentelemetry_proto::tonic::trace::v1::status::StatusCode::try_from(s.code)
        .map_or_else(|_| s.code.to_string(), |c| c.as_str_name().to_owned());
    Object::default()
        .str("message", &s.message)
        .value("code", (s.code != 0).then_some(Value::String(code)))
        .build()
}

fn attributes(list: &[KeyValue]) -> Vec<Value> {
    list.iter()
        .map(|kv| json!({"key": kv.key, "value": any_value(kv.value.as_ref())}))
        .collect()
}

fn any_value(value: Option<&AnyValue>) -> Value {
    let Some(kind) = value.and_then(|v| v.value.as_ref()) else {
        return json!({});
    };
    match kind {
        AnyKind::StringValue(s) => json!({ "stringValue": s }),
        AnyKind::BoolValue(b) => json!({ "boolValue": b }),
        AnyKind::IntValue(i) => json!({ "intValue": i.to_string() }),
        AnyKind::DoubleValue(d) if d.is_finite() => json!({ "doubleValue": d }),
        AnyKind::DoubleValue(d) => {
            let text = if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            json!({ "doubleValue": text })
        }
        AnyKind::BytesValue(b) => json!({ "bytesValue": STANDARD.encode(b) }),
        AnyKind::ArrayValue(a) => {
            json!({"arrayValue": {"values": a.values.iter().map(|v| any_value(Some(v))).collect::<Vec<_>>()}})
        }
        AnyKind::KvlistValue(kv) => json!({"kvlistValue": {"values": attributes(&kv.values)}}),
        AnyKind::StringValueStrindex(_) => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base64_integers_strings_enums_names_zeros_left_out() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_001,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            attributes: vec![KeyValue {
                key: "n".into(),
                value: Some(AnyValue {
                    value: Some(AnyKind::IntValue(42)),
                }),
                key_strindex: 0,
            }],
            status: Some(Status {
                code: 2,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        let json = span_json(&span);
        assert_eq!(json["traceId"], "q6urq6urq6urq6urq6urqw==");
        assert_eq!(json["spanId"], "AQEBAQEBAQE=");
        assert_eq!(json["kind"], "SPAN_KIND_SERVER");
        assert_eq!(json["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(json["attributes"][0]["value"]["intValue"], "42");
        assert_eq!(json["status"]["code"], "STATUS_CODE_ERROR");
        for absent in [
            "parentSpanId",
            "traceState",
            "flags",
            "events",
            "links",
            "droppedAttributesCount",
        ] {
            assert!(json.get(absent).is_none(), "{absent} should be left out");
        }
    }
}
