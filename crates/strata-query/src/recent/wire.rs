//! The internal API's messages (`proto/strata/ingester/v1/ingester.proto`) and their
//! conversion to and from this crate's types. Everything read off the wire is validated as if
//! it came from a client: IDs by length, metas and tag summaries by their own parsers.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use strata_block::{BlockMeta, TagSummary};
use strata_model::{Span, SpanId, TraceId};

use crate::search::{OutValue, SpanHit, SpansetHit, TraceHit};

/// The generated messages, client and server.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub(crate) mod proto {
    tonic::include_proto!("strata.ingester.v1");
}

use proto::attribute::Value as WireValue;

/// Largest message either side sends or accepts: a whole trace travels in one.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 << 20;

pub(crate) fn blocks_to_wire(blocks: &[BlockMeta]) -> proto::RecentBlocks {
    proto::RecentBlocks {
        meta_json: blocks.iter().map(BlockMeta::to_json).collect(),
    }
}

pub(crate) fn blocks_from_wire(
    blocks: Option<proto::RecentBlocks>,
) -> Result<Vec<BlockMeta>, String> {
    blocks
        .map(|b| b.meta_json)
        .unwrap_or_default()
        .iter()
        .map(|json| BlockMeta::parse(json, "recent block meta").map_err(|e| e.to_string()))
        .collect()
}

pub(crate) fn tags_from_wire(json: &[u8]) -> Result<TagSummary, String> {
    TagSummary::parse(json, "recent tags").map_err(|e| e.to_string())
}

pub(crate) fn spans_from_wire(
    resource_spans: Vec<opentelemetry_proto::tonic::trace::v1::ResourceSpans>,
) -> Result<Vec<Span>, String> {
    let (spans, rejected) =
        strata_model::otlp::spans_from_request(ExportTraceServiceRequest { resource_spans });
    match rejected.first() {
        None => Ok(spans),
        Some(r) => Err(format!(
            "{} spans were invalid: {}",
            rejected.len(),
            r.error
        )),
    }
}

pub(crate) fn hit_to_wire(hit: &TraceHit) -> proto::TraceHit {
    proto::TraceHit {
        trace_id: hit.trace_id.as_bytes().to_vec(),
        root_service_name: hit.root_service_name.clone(),
        root_span_name: hit.root_span_name.clone(),
        start_unix_nano: hit.start_unix_nano,
        duration_nanos: hit.duration_nanos,
        spansets: hit
            .spansets
            .iter()
            .map(|set| proto::SpansetHit {
                spans: set
                    .spans
                    .iter()
                    .map(|span| proto::SpanHit {
                        span_id: span.span_id.as_bytes().to_vec(),
                        name: span.name.clone(),
                        start_unix_nano: span.start_unix_nano,
                        duration_nanos: span.duration_nanos,
                        attributes: attributes_to_wire(&span.attributes),
                    })
                    .collect(),
                matched: set.matched as u64,
                attributes: attributes_to_wire(&set.attributes),
            })
            .collect(),
    }
}

pub(crate) fn hit_from_wire(hit: proto::TraceHit) -> Result<TraceHit, String> {
    let spansets = hit
        .spansets
        .into_iter()
        .map(|set| {
            let spans = set
                .spans
                .into_iter()
                .map(|span| {
                    Ok(SpanHit {
                        span_id: SpanId::from_slice(&span.span_id).map_err(|e| e.to_string())?,
                        name: span.name,
                        start_unix_nano: span.start_unix_nano,
                        duration_nanos: span.duration_nanos,
                        attributes: attributes_from_wire(span.attributes),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(SpansetHit {
                spans,
                matched: usize::try_from(set.matched).unwrap_or(usize::MAX),
                attributes: attributes_from_wire(set.attributes),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TraceHit {
        trace_id: TraceId::from_slice(&hit.trace_id).map_err(|e| e.to_string())?,
        root_service_name: hit.root_service_name,
        root_span_name: hit.root_span_name,
        start_unix_nano: hit.start_unix_nano,
        duration_nanos: hit.duration_nanos,
        spansets,
    })
}

fn attributes_to_wire(attributes: &[(String, OutValue)]) -> Vec<proto::Attribute> {
    attributes
        .iter()
        .map(|(key, value)| proto::Attribute {
            key: key.clone(),
            value: Some(match value {
                OutValue::Str(s) => WireValue::StringValue(s.clone()),
                OutValue::Int(i) => WireValue::IntValue(*i),
                OutValue::Float(f) => WireValue::DoubleValue(*f),
                OutValue::Bool(b) => WireValue::BoolValue(*b),
                OutValue::Duration(d) => WireValue::DurationNanos(*d),
            }),
        })
        .collect()
}

/// Attributes without a value (none are sent) are dropped.
fn attributes_from_wire(attributes: Vec<proto::Attribute>) -> Vec<(String, OutValue)> {
    attributes
        .into_iter()
        .filter_map(|a| {
            let value = match a.value? {
                WireValue::StringValue(s) => OutValue::Str(s),
                WireValue::IntValue(i) => OutValue::Int(i),
                WireValue::DoubleValue(f) => OutValue::Float(f),
                WireValue::BoolValue(b) => OutValue::Bool(b),
                WireValue::DurationNanos(d) => OutValue::Duration(d),
            };
            Some((a.key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_survive_the_wire_and_bad_ids_are_refused() {
        let hit = TraceHit {
            trace_id: TraceId([7; 16]),
            root_service_name: Some("cart".into()),
            root_span_name: None,
            start_unix_nano: 1_700_000_000_000_000_000,
            duration_nanos: 12_345,
            spansets: vec![SpansetHit {
                spans: vec![SpanHit {
                    span_id: SpanId([3; 8]),
                    name: "GET /cart".into(),
                    start_unix_nano: 1_700_000_000_000_000_001,
                    duration_nanos: 99,
                    attributes: vec![
                        ("status".into(), OutValue::Str("error".into())),
                        ("http.status_code".into(), OutValue::Int(500)),
                        ("ratio".into(), OutValue::Float(0.5)),
                        ("cached".into(), OutValue::Bool(false)),
                        ("took".into(), OutValue::Duration(5)),
                    ],
                }],
                matched: 4,
                attributes: vec![("by(name)".into(), OutValue::Str("GET /cart".into()))],
            }],
        };
        assert_eq!(hit_from_wire(hit_to_wire(&hit)), Ok(hit.clone()));
        let mut bad = hit_to_wire(&hit);
        bad.trace_id.truncate(15);
        assert!(hit_from_wire(bad).unwrap_err().contains("16 bytes"));
        let mut bad = hit_to_wire(&hit);
        bad.spansets[0].spans[0].span_id = vec![0; 8];
        assert!(hit_from_wire(bad).is_err());
    }
}
