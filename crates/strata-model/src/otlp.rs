//! Mapping between OTLP trace messages and the model.
//!
//! OTLP → model moves strings out of the decoded message instead of copying them. Spans with
//! invalid IDs are reported, not converted; the rest of the request still converts.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1 as otlp;

use crate::attr::KeyValue;
use crate::error::Error;
use crate::ids::{SpanId, TraceId};
use crate::span::{Event, Link, Resource, Scope, Span, SpanKind, StatusCode};

/// A span that could not become part of the model, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedSpan {
    /// Position of the span in the request, counting every span in order.
    pub index: usize,
    /// The span's name as sent (truncated to 64 characters).
    pub name: String,
    /// What is wrong with it.
    pub error: Error,
}

/// Checks the IDs of one OTLP span the way [`spans_from_request`] does.
pub fn check_span_ids(span: &otlp::Span) -> Result<(), Error> {
    TraceId::from_slice(&span.trace_id)?;
    SpanId::from_slice(&span.span_id)?;
    SpanId::parent_from_slice(&span.parent_span_id)?;
    Ok(())
}

/// Converts a whole export request into spans, moving its strings. Spans whose IDs are invalid
/// are returned in the second list instead. Links with invalid IDs are dropped and counted in the
/// span's `dropped_links_count`.
pub fn spans_from_request(request: ExportTraceServiceRequest) -> (Vec<Span>, Vec<RejectedSpan>) {
    let mut spans = Vec::new();
    let mut rejected = Vec::new();
    let mut index = 0;
    for rs in request.resource_spans {
        let resource = Arc::new(resource_from_otlp(rs.resource, rs.schema_url));
        for ss in rs.scope_spans {
            let scope = Arc::new(scope_from_otlp(ss.scope, ss.schema_url));
            for span in ss.spans {
                match span_from_otlp(span, &resource, &scope) {
                    Ok(span) => spans.push(span),
                    Err((name, error)) => rejected.push(RejectedSpan { index, name, error }),
                }
                index += 1;
            }
        }
    }
    (spans, rejected)
}

fn resource_from_otlp(resource: Option<OtlpResource>, schema_url: String) -> Resource {
    let resource = resource.unwrap_or_default();
    Resource {
        attributes: KeyValue::from_otlp_list(resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url,
    }
}

fn scope_from_otlp(scope: Option<InstrumentationScope>, schema_url: String) -> Scope {
    let scope = scope.unwrap_or_default();
    Scope {
        name: scope.name,
        version: scope.version,
        attributes: KeyValue::from_otlp_list(scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url,
    }
}

fn span_from_otlp(
    span: otlp::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> Result<Span, (String, Error)> {
    let ids = (|| {
        Ok::<_, Error>((
            TraceId::from_slice(&span.trace_id)?,
            SpanId::from_slice(&span.span_id)?,
            SpanId::parent_from_slice(&span.parent_span_id)?,
        ))
    })();
    let (trace_id, span_id, parent_span_id) =
        ids.map_err(|e| (span.name.chars().take(64).collect(), e))?;
    let mut dropped_links_count = span.dropped_links_count;
    let mut links = Vec::with_capacity(span.links.len());
    for link in span.links {
        match (
            TraceId::from_slice(&link.trace_id),
            SpanId::from_slice(&link.span_id),
        ) {
            (Ok(trace_id), Ok(span_id)) => links.push(Link {
                trace_id,
                span_id,
                trace_state: link.trace_state,
                flags: link.flags,
                attributes: KeyValue::from_otlp_list(link.attributes),
                dropped_attributes_count: link.dropped_attributes_count,
            }),
            _ => dropped_links_count = dropped_links_count.saturating_add(1),
        }
    }
    let status = span.status.unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: SpanKind(span.kind),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: KeyValue::from_otlp_list(span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .into_iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: KeyValue::from_otlp_list(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count,
        status_code: StatusCode(status.code),
        status_message: status.message,
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
    })
}

/// Converts spans back to OTLP: one `ResourceSpans` per distinct resource and one `ScopeSpans`
/// per distinct scope within it, in order of first appearance; spans keep their order within a
/// group.
pub fn spans_to_resource_spans(spans: &[Span]) -> Vec<otlp::ResourceSpans> {
    // (resource, its scopes (scope, spans)) in first-appearance order.
    type Scopes<'a> = Vec<(&'a Arc<Scope>, Vec<&'a Span>)>;
    let mut groups: Vec<(&Arc<Resource>, Scopes<'_>)> = Vec::new();
    for span in spans {
        let at = match groups.iter().position(|(r, _)| same(r, &span.resource)) {
            Some(at) => at,
            None => {
                groups.push((&span.resource, Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[at].1;
        match scopes.iter_mut().find(|(s, _)| same(s, &span.scope)) {
            Some((_, list)) => list.push(span),
            None => scopes.push((&span.scope, vec![span])),
        }
    }
    groups
        .into_iter()
        .map(|(resource, scopes)| otlp::ResourceSpans {
            resource: Some(OtlpResource {
                attributes: KeyValue::to_otlp_list(&resource.attributes),
                dropped_attributes_count: resource.dropped_attributes_count,
                entity_refs: Vec::new(),
            }),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans)| otlp::ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: scope.name.clone(),
                        version: scope.version.clone(),
                        attributes: KeyValue::to_otlp_list(&scope.attributes),
                        dropped_attributes_count: scope.dropped_attributes_count,
                    }),
                    spans: spans.into_iter().map(span_to_otlp).collect(),
                    schema_url: scope.schema_url.clone(),
                })
                .collect(),
            schema_url: resource.schema_url.clone(),
        })
        .collect()
}

fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// Converts one span to OTLP (without its resource and scope).
pub fn span_to_otlp(span: &Span) -> otlp::Span {
    otlp::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span
            .parent_span_id
            .map(|p| p.0.to_vec())
            .unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.0,
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.end_unix_nano,
        attributes: KeyValue::to_otlp_list(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|e| otlp::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: KeyValue::to_otlp_list(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|l| otlp::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: KeyValue::to_otlp_list(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: span.dropped_links_count,
        status: (span.status_code != StatusCode::UNSET || !span.status_message.is_empty()).then(
            || otlp::Status {
                message: span.status_message.clone(),
                code: span.status_code.0,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as OtlpKv, any_value};

    fn otlp_span(trace: &[u8], span: &[u8], name: &str) -> otlp::Span {
        otlp::Span {
            trace_id: trace.to_vec(),
            span_id: span.to_vec(),
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 10,
            end_time_unix_nano: 25,
            links: vec![
                otlp::span::Link {
                    trace_id: vec![9; 16],
                    span_id: vec![8; 8],
                    ..Default::default()
                },
                otlp::span::Link {
                    trace_id: vec![9; 3],
                    span_id: vec![8; 8],
                    ..Default::default()
                },
            ],
            status: Some(otlp::Status {
                code: 2,
                message: "boom".into(),
            }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<otlp::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(OtlpResource {
                    attributes: vec![OtlpKv {
                        key_strindex: 0,
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("checkout".into())),
                        }),
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
        }
    }

    #[test]
    fn bad_spans_are_rejected_and_the_rest_converted() {
        let req = request(vec![
            otlp_span(&[1; 16], &[2; 8], "good"),
            otlp_span(&[0; 16], &[2; 8], "zero trace"),
            otlp_span(&[1; 16], &[2; 4], "short span"),
        ]);
        let (spans, rejected) = spans_from_request(req);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].service_name(), Some("checkout"));
        assert_eq!(spans[0].links.len(), 1);
        assert_eq!(spans[0].dropped_links_count, 1);
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0].index, 1);
        assert_eq!(rejected[0].error, Error::TraceIdZero);
        assert_eq!(rejected[1].error, Error::SpanIdLength { len: 4 });
    }

    #[test]
    fn model_to_otlp_and_back_is_lossless_for_valid_spans() {
        let mut good = otlp_span(&[1; 16], &[2; 8], "good");
        good.links.pop();
        let original = request(vec![good, otlp_span(&[1; 16], &[3; 8], "b")]);
        let (spans, _) = spans_from_request(original.clone());
        let back = spans_to_resource_spans(&spans);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].scope_spans[0].spans.len(), 2);
        assert_eq!(
            back[0].scope_spans[0].spans[0],
            original.resource_spans[0].scope_spans[0].spans[0]
        );
        assert_eq!(back[0].schema_url, original.resource_spans[0].schema_url);
    }
}
