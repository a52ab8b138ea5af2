//! Checking an export request span by span before anything is stored: spans with invalid IDs are
//! taken out (and reported), oversized attribute values are cut down (and counted). The rest of
//! the request is kept as it came.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use strata_model::otlp::check_span_ids;

/// How many distinct rejection reasons a response spells out.
const MAX_MESSAGES: usize = 5;

/// What sanitizing did to a request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SanitizeReport {
    /// Spans taken out.
    pub rejected_spans: usize,
    /// The first few reasons, e.g. `span "GET /" (#3): trace ID is all zeros`.
    pub messages: Vec<String>,
    /// Attribute values shortened to the limit.
    pub truncated_values: usize,
    /// Whether the request differs from what was received.
    pub changed: bool,
}

impl SanitizeReport {
    /// Records a refused span.
    pub fn reject(&mut self, message: impl FnOnce() -> String) {
        self.rejected_spans += 1;
        self.changed = true;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message());
        }
    }
}

/// Removes spans with invalid IDs and truncates attribute values longer than
/// `max_attribute_bytes` (strings at a UTF-8 character boundary).
pub fn sanitize(
    request: &mut ExportTraceServiceRequest,
    max_attribute_bytes: usize,
) -> SanitizeReport {
    let mut report = SanitizeReport::default();
    let mut index = 0usize;
    for rs in &mut request.resource_spans {
        if let Some(resource) = &mut rs.resource {
            truncate_all(&mut resource.attributes, max_attribute_bytes, &mut report);
        }
        for ss in &mut rs.scope_spans {
            if let Some(scope) = &mut ss.scope {
                truncate_all(&mut scope.attributes, max_attribute_bytes, &mut report);
            }
            ss.spans.retain_mut(|span| {
                let i = index;
                index += 1;
                if let Err(e) = check_span_ids(span) {
                    let name: String = span.name.chars().take(64).collect();
                    report.reject(|| format!("span {name:?} (#{i}): {e}"));
                    return false;
                }
                truncate_all(&mut span.attributes, max_attribute_bytes, &mut report);
                for event in &mut span.events {
                    truncate_all(&mut event.attributes, max_attribute_bytes, &mut report);
                }
                for link in &mut span.links {
                    truncate_all(&mut link.attributes, max_attribute_bytes, &mut report);
                }
                true
            });
        }
    }
    report
}

fn truncate_all(attrs: &mut [KeyValue], max: usize, report: &mut SanitizeReport) {
    for kv in attrs {
        if let Some(value) = &mut kv.value {
            truncate_value(value, max, report);
        }
    }
}

fn truncate_value(value: &mut AnyValue, max: usize, report: &mut SanitizeReport) {
    match &mut value.value {
        Some(Value::StringValue(s)) if s.len() > max => {
            let mut cut = max;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            report.truncated_values += 1;
            report.changed = true;
        }
        Some(Value::BytesValue(b)) if b.len() > max => {
            b.truncate(max);
            report.truncated_values += 1;
            report.changed = true;
        }
        Some(Value::ArrayValue(array)) => {
            for v in &mut array.values {
                truncate_value(v, max, report);
            }
        }
        Some(Value::KvlistValue(list)) => truncate_all(&mut list.values, max, report),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    #[test]
    fn bad_spans_go_long_values_shrink() {
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            name: "good".into(),
            attributes: vec![
                kv("long", Value::StringValue("é".repeat(10))),
                kv("short", Value::StringValue("ok".into())),
                kv(
                    "arr",
                    Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::BytesValue(vec![0; 50])),
                        }],
                    }),
                ),
            ],
            ..Default::default()
        };
        let bad = Span {
            trace_id: vec![0; 16],
            span_id: vec![1; 8],
            name: "bad".into(),
            ..Default::default()
        };
        let mut request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![bad, good],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let report = sanitize(&mut request, 9);
        assert_eq!(report.rejected_spans, 1);
        assert!(
            report.messages[0].contains("\"bad\" (#0): trace ID is all zeros"),
            "{:?}",
            report.messages
        );
        assert_eq!(report.truncated_values, 2);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 1);
        let Some(Value::StringValue(s)) = &spans[0].attributes[0].value.as_ref().unwrap().value
        else {
            panic!("string expected")
        };
        assert_eq!(
            s,
            &"é".repeat(4),
            "cut at a character boundary, within 9 bytes"
        );
    }

    #[test]
    fn a_clean_request_is_unchanged() {
        let mut request = ExportTraceServiceRequest::default();
        assert!(!sanitize(&mut request, 16).changed);
    }
}
