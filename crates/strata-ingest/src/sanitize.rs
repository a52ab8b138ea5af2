//! Checking an export request span by span before anything is stored: spans with invalid IDs are
//! taken out (and reported); what the block format and its readers must hold is brought within
//! [`SanitizeLimits`]: long values and names are cut down, attributes, events and links beyond
//! the counts (or with overlong keys, or nested too deep) are dropped, each counted and added to
//! the entity's OTLP `dropped_*_count`. The rest of the request is kept as it came.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use strata_model::otlp::check_span_ids;

use crate::config::TenantLimits;

/// How many distinct rejection reasons a response spells out.
const MAX_MESSAGES: usize = 5;

/// The bounds [`sanitize`] brings a request within (from the tenant's `limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SanitizeLimits {
    /// Longest string or bytes attribute value (and status message); longer is truncated.
    pub max_attribute_bytes: usize,
    /// Longest attribute key; an attribute with a longer key is dropped.
    pub max_attribute_key_bytes: usize,
    /// Longest span, event and scope name, scope version, schema URL and trace state; longer is
    /// truncated.
    pub max_name_bytes: usize,
    /// Most attributes of one span, resource, scope, event or link; the rest are dropped.
    pub max_attributes: usize,
    /// Most events of one span; the rest are dropped.
    pub max_events: usize,
    /// Most links of one span; the rest are dropped.
    pub max_links: usize,
    /// Deepest nesting of arrays and key/value lists in one attribute value; an attribute
    /// nested deeper is dropped.
    pub max_attribute_depth: usize,
}

impl SanitizeLimits {
    /// The bounds of a tenant's limits.
    pub fn of(limits: &TenantLimits) -> Self {
        let bytes = |b: bytesize::ByteSize| usize::try_from(b.as_u64()).unwrap_or(usize::MAX);
        Self {
            max_attribute_bytes: bytes(limits.max_attribute_bytes),
            max_attribute_key_bytes: bytes(limits.max_attribute_key_bytes),
            max_name_bytes: bytes(limits.max_name_bytes),
            max_attributes: limits.max_attributes,
            max_events: limits.max_events_per_span,
            max_links: limits.max_links_per_span,
            max_attribute_depth: limits.max_attribute_depth,
        }
    }
}

impl Default for SanitizeLimits {
    fn default() -> Self {
        Self::of(&TenantLimits::default())
    }
}

/// What sanitizing did to a request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SanitizeReport {
    /// Spans taken out.
    pub rejected_spans: usize,
    /// The first few reasons, e.g. `span "GET /" (#3): trace ID is all zeros`.
    pub messages: Vec<String>,
    /// Attribute values and status messages shortened to `max_attribute_bytes`.
    pub truncated_values: usize,
    /// Names, versions, schema URLs and trace states shortened to `max_name_bytes`.
    pub truncated_names: usize,
    /// Attributes dropped: over `max_attributes`, a key over `max_attribute_key_bytes`, or a
    /// value nested deeper than `max_attribute_depth`.
    pub dropped_attributes: usize,
    /// Events dropped over `max_events_per_span`.
    pub dropped_events: usize,
    /// Links dropped over `max_links_per_span`.
    pub dropped_links: usize,
    /// NaN and infinite doubles inside arrays and key/value lists stored as strings.
    pub converted_doubles: usize,
    /// Whether the request differs from what was received.
    pub changed: bool,
}

impl SanitizeReport {
    /// Records a refused span; its reason is kept unless the same one already is.
    pub fn reject(&mut self, message: impl FnOnce() -> String) {
        self.rejected_spans += 1;
        self.changed = true;
        if self.messages.len() < MAX_MESSAGES {
            let message = message();
            if !self.messages.contains(&message) {
                self.messages.push(message);
            }
        }
    }

    /// What was changed without refusing a span, one sentence per kind of change, for the OTLP
    /// partial-success message.
    pub fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut say = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        say(
            self.truncated_values,
            "attribute values were longer than max_attribute_bytes and were truncated",
        );
        say(
            self.truncated_names,
            "names (span, event or scope names, versions, schema URLs, trace states) were longer than max_name_bytes and were truncated",
        );
        say(
            self.dropped_attributes,
            "attributes were dropped (over max_attributes, a key over max_attribute_key_bytes, or nested deeper than max_attribute_depth) and counted in dropped_attributes_count",
        );
        say(
            self.dropped_events,
            "events were dropped over max_events_per_span and counted in dropped_events_count",
        );
        say(
            self.dropped_links,
            "links were dropped over max_links_per_span and counted in dropped_links_count",
        );
        say(
            self.converted_doubles,
            "NaN or infinite doubles inside arrays or key/value lists were stored as the strings NaN, Infinity or -Infinity",
        );
        out
    }
}

/// Removes spans with invalid IDs and brings everything else within `limits`.
pub fn sanitize(
    request: &mut ExportTraceServiceRequest,
    limits: &SanitizeLimits,
) -> SanitizeReport {
    let mut report = SanitizeReport::default();
    let mut index = 0usize;
    let mut fix = Fixer {
        limits,
        report: &mut report,
    };
    for rs in &mut request.resource_spans {
        fix.name(&mut rs.schema_url);
        if let Some(resource) = &mut rs.resource {
            fix.attrs(
                &mut resource.attributes,
                &mut resource.dropped_attributes_count,
            );
        }
        for ss in &mut rs.scope_spans {
            fix.name(&mut ss.schema_url);
            if let Some(scope) = &mut ss.scope {
                fix.name(&mut scope.name);
                fix.name(&mut scope.version);
                fix.attrs(&mut scope.attributes, &mut scope.dropped_attributes_count);
            }
            ss.spans.retain_mut(|span| {
                let i = index;
                index += 1;
                if let Err(e) = check_span_ids(span) {
                    let name: String = span.name.chars().take(64).collect();
                    fix.report.reject(|| format!("span {name:?} (#{i}): {e}"));
                    return false;
                }
                fix.span(span);
                true
            });
        }
    }
    report
}

/// Applies the limits to the parts of a request, counting into the report.
struct Fixer<'a> {
    limits: &'a SanitizeLimits,
    report: &'a mut SanitizeReport,
}

impl Fixer<'_> {
    fn span(&mut self, span: &mut opentelemetry_proto::tonic::trace::v1::Span) {
        self.name(&mut span.name);
        self.name(&mut span.trace_state);
        self.attrs(&mut span.attributes, &mut span.dropped_attributes_count);
        if let Some(status) = &mut span.status
            && truncate_str(&mut status.message, self.limits.max_attribute_bytes)
        {
            self.report.truncated_values += 1;
            self.report.changed = true;
        }
        let extra = span.events.len().saturating_sub(self.limits.max_events);
        if extra > 0 {
            span.events.truncate(self.limits.max_events);
            span.dropped_events_count = span.dropped_events_count.saturating_add(count(extra));
            self.report.dropped_events += extra;
            self.report.changed = true;
        }
        for event in &mut span.events {
            self.name(&mut event.name);
            self.attrs(&mut event.attributes, &mut event.dropped_attributes_count);
        }
        let extra = span.links.len().saturating_sub(self.limits.max_links);
        if extra > 0 {
            span.links.truncate(self.limits.max_links);
            span.dropped_links_count = span.dropped_links_count.saturating_add(count(extra));
            self.report.dropped_links += extra;
            self.report.changed = true;
        }
        for link in &mut span.links {
            self.name(&mut link.trace_state);
            self.attrs(&mut link.attributes, &mut link.dropped_attributes_count);
        }
    }

    fn name(&mut self, name: &mut String) {
        if truncate_str(name, self.limits.max_name_bytes) {
            self.report.truncated_names += 1;
            self.report.changed = true;
        }
    }

    /// Drops attributes with overlong keys or too-deep values, then those over the count, then
    /// truncates long values.
    fn attrs(&mut self, attrs: &mut Vec<KeyValue>, dropped: &mut u32) {
        let limits = self.limits;
        let before = attrs.len();
        attrs.retain(|kv| {
            kv.key.len() <= limits.max_attribute_key_bytes
                && kv.value.as_ref().is_none_or(|v| {
                    depth(v, limits.max_attribute_depth + 1) <= limits.max_attribute_depth
                })
        });
        attrs.truncate(limits.max_attributes);
        let gone = before - attrs.len();
        if gone > 0 {
            *dropped = dropped.saturating_add(count(gone));
            self.report.dropped_attributes += gone;
            self.report.changed = true;
        }
        for kv in attrs {
            if let Some(value) = &mut kv.value {
                self.value(value, false);
            }
        }
    }

    /// Truncates long strings and bytes in `value`. Inside arrays and key/value lists (which a
    /// block stores as JSON, where NaN and the infinities have no number), a non-finite double
    /// becomes the string protobuf's JSON mapping spells it with (`NaN`, `Infinity`,
    /// `-Infinity`), counted.
    fn value(&mut self, value: &mut AnyValue, nested: bool) {
        let max = self.limits.max_attribute_bytes;
        let cut = match &mut value.value {
            Some(Value::StringValue(s)) => truncate_str(s, max),
            Some(Value::BytesValue(b)) if b.len() > max => {
                b.truncate(max);
                true
            }
            Some(Value::DoubleValue(d)) if nested && !d.is_finite() => {
                let text = if d.is_nan() {
                    "NaN"
                } else if *d > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                value.value = Some(Value::StringValue(text.to_owned()));
                self.report.converted_doubles += 1;
                self.report.changed = true;
                false
            }
            Some(Value::ArrayValue(array)) => {
                for v in &mut array.values {
                    self.value(v, true);
                }
                false
            }
            Some(Value::KvlistValue(list)) => {
                for kv in &mut list.values {
                    if let Some(v) = &mut kv.value {
                        self.value(v, true);
                    }
                }
                false
            }
            _ => false,
        };
        if cut {
            self.report.truncated_values += 1;
            self.report.changed = true;
        }
    }
}

/// How deeply arrays and key/value lists nest in `value` (0 for a plain value), counting no
/// further than `stop`.
fn depth(value: &AnyValue, stop: usize) -> usize {
    if stop == 0 {
        return 0;
    }
    let inner = match &value.value {
        Some(Value::ArrayValue(array)) => array.values.iter().map(|v| depth(v, stop - 1)).max(),
        Some(Value::KvlistValue(list)) => list
            .values
            .iter()
            .filter_map(|kv| kv.value.as_ref())
            .map(|v| depth(v, stop - 1))
            .max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}

/// Cuts `s` to at most `max` bytes at a UTF-8 character boundary; whether it was cut.
fn truncate_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
        let limits = SanitizeLimits {
            max_attribute_bytes: 9,
            ..SanitizeLimits::default()
        };
        let report = sanitize(&mut request, &limits);
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

    fn nested(depth: usize) -> AnyValue {
        let mut value = AnyValue {
            value: Some(Value::StringValue("leaf".into())),
        };
        for level in 0..depth {
            value = AnyValue {
                value: Some(if level % 2 == 0 {
                    Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![value],
                    })
                } else {
                    Value::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
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

    /// One limit per case: what was sent, what is left, and what was counted.
    #[test]
    fn every_limit_cuts_or_drops_and_counts() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::Status;
        use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
        let limits = SanitizeLimits {
            max_attribute_bytes: 16,
            max_attribute_key_bytes: 8,
            max_name_bytes: 10,
            max_attributes: 3,
            max_events: 2,
            max_links: 1,
            max_attribute_depth: 4,
        };
        let attrs = |n: usize| -> Vec<KeyValue> {
            (0..n)
                .map(|i| kv(&format!("a{i}"), Value::IntValue(i as i64)))
                .collect()
        };
        let mut span_attrs = attrs(2);
        span_attrs.push(kv("much-too-long-key", Value::IntValue(1)));
        span_attrs.push(KeyValue {
            key: "deep".into(),
            value: Some(nested(5)),
            key_strindex: 0,
        });
        span_attrs.push(KeyValue {
            key: "ok-deep".into(),
            value: Some(nested(4)),
            key_strindex: 0,
        });
        span_attrs.push(kv("over", Value::IntValue(9)));
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            name: "a-very-long-span-name".into(),
            trace_state: "k=v,k2=v2,k3=v3".into(),
            attributes: span_attrs,
            dropped_attributes_count: 1,
            events: (0..5)
                .map(|i| Event {
                    name: format!("event-name-{i}"),
                    attributes: attrs(4),
                    ..Default::default()
                })
                .collect(),
            links: (0..3)
                .map(|_| Link {
                    trace_id: vec![2; 16],
                    span_id: vec![2; 8],
                    ..Default::default()
                })
                .collect(),
            status: Some(Status {
                message: "x".repeat(40),
                code: 2,
            }),
            ..Default::default()
        };
        let mut request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs(5),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "scope-name-too-long".into(),
                        version: "1.0".into(),
                        attributes: attrs(3),
                        ..Default::default()
                    }),
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let report = sanitize(&mut request, &limits);
        let rs = &request.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes.len(), 3);
        assert_eq!(resource.dropped_attributes_count, 2);
        let scope = rs.scope_spans[0].scope.as_ref().unwrap();
        assert_eq!(scope.name, "scope-name");
        assert_eq!(scope.attributes.len(), 3);
        assert_eq!(scope.dropped_attributes_count, 0);
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(span.name, "a-very-lon");
        assert_eq!(span.trace_state, "k=v,k2=v2,");
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        // The long key and the too-deep value go first, then the count cuts `over`.
        assert_eq!(keys, ["a0", "a1", "ok-deep"]);
        assert_eq!(span.dropped_attributes_count, 1 + 3);
        assert_eq!(span.events.len(), 2);
        assert_eq!(span.dropped_events_count, 3);
        assert!(
            span.events
                .iter()
                .all(|e| e.attributes.len() == 3 && e.dropped_attributes_count == 1)
        );
        assert_eq!(span.events[0].name, "event-name");
        assert_eq!(span.links.len(), 1);
        assert_eq!(span.dropped_links_count, 2);
        assert_eq!(span.status.as_ref().unwrap().message.len(), 16);
        assert_eq!(report.rejected_spans, 0);
        assert_eq!(report.dropped_attributes, 2 + 3 + 2);
        assert_eq!(report.dropped_events, 3);
        assert_eq!(report.dropped_links, 2);
        assert_eq!(report.truncated_values, 1);
        // span name, trace state, scope name, two event names.
        assert_eq!(report.truncated_names, 5);
        assert!(report.changed);
        let changes = report.changes().join("; ");
        for needle in [
            "7 attributes were dropped",
            "3 events were dropped",
            "2 links were dropped",
            "5 names",
            "1 attribute values",
        ] {
            assert!(changes.contains(needle), "{changes}");
        }
    }

    #[test]
    fn depth_counts_arrays_and_lists_and_stops_early() {
        assert_eq!(depth(&nested(0), 100), 0);
        assert_eq!(depth(&nested(1), 100), 1);
        assert_eq!(depth(&nested(7), 100), 7);
        assert_eq!(depth(&nested(40), 9), 9);
    }

    #[test]
    fn a_clean_request_is_unchanged() {
        let mut request = ExportTraceServiceRequest::default();
        assert!(!sanitize(&mut request, &SanitizeLimits::default()).changed);
    }
}
