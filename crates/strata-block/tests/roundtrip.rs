//! Model → block → model round trips, on arbitrary spans.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use strata_block::{BlockConfig, BlockIdentity, encode_block, read_spans};
use strata_model::{
    AttrValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode,
    TenantId, TraceId,
};

fn scalar() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        Just(AttrValue::Empty),
        ".{0,12}".prop_map(AttrValue::Str),
        any::<bool>().prop_map(AttrValue::Bool),
        any::<i64>().prop_map(AttrValue::Int),
        (-1e12f64..1e12).prop_map(AttrValue::Double),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(AttrValue::Bytes),
    ]
}

fn value() -> impl Strategy<Value = AttrValue> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(AttrValue::Array),
            proptest::collection::vec(("[a-z]{1,4}", inner), 0..3).prop_map(|kvs| {
                AttrValue::KvList(
                    kvs.into_iter()
                        .map(|(key, value)| KeyValue {
                            key: key.into(),
                            value,
                        })
                        .collect(),
                )
            }),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    // A mix of dedicated keys (in and out of type) and generic ones.
    prop_oneof![
        Just("service.name".to_owned()),
        Just("http.request.method".to_owned()),
        Just("http.response.status_code".to_owned()),
        Just("k8s.pod.name".to_owned()),
        Just("db.query.text".to_owned()),
        "[a-z.]{1,10}",
    ]
}

fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec((key(), value()), 0..5).prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue {
                key: key.into(),
                value,
            })
            .collect()
    })
}

fn id16() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>()
        .prop_filter("non-zero", |b| *b != [0; 16])
        .prop_map(TraceId)
}

fn span_strategy(
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
) -> impl Strategy<Value = Span> {
    (
        (
            ".{0,10}",
            0i32..7,
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            ".{0,6}",
        ),
        (attrs(), attrs(), attrs(), any::<u32>(), ".{0,8}"),
        (0i32..3, ".{0,8}", any::<(u32, u32, u32)>()),
        proptest::collection::vec((any::<u64>(), ".{0,6}", attrs(), any::<u32>()), 0..3),
        proptest::collection::vec(
            (id16(), any::<u64>(), ".{0,6}", any::<u32>(), attrs()),
            0..2,
        ),
    )
        .prop_map(move |(basic, res, status, events, links)| {
            let (name, kind, start, end, flags, trace_state) = basic;
            let (span_attrs, resource_attrs, scope_attrs, dropped, scope_name) = res;
            let (code, message, (d_attrs, d_events, d_links)) = status;
            Span {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state,
                flags,
                name,
                kind: SpanKind(kind),
                start_unix_nano: start,
                end_unix_nano: end,
                attributes: span_attrs,
                dropped_attributes_count: d_attrs,
                events: events
                    .into_iter()
                    .map(
                        |(time_unix_nano, name, attributes, dropped_attributes_count)| Event {
                            time_unix_nano,
                            name,
                            attributes,
                            dropped_attributes_count,
                        },
                    )
                    .collect(),
                dropped_events_count: d_events,
                links: links
                    .into_iter()
                    .map(|(trace_id, span, trace_state, flags, attributes)| Link {
                        trace_id,
                        span_id: SpanId((span | 1).to_le_bytes()),
                        trace_state,
                        flags,
                        attributes,
                        dropped_attributes_count: flags / 3,
                    })
                    .collect(),
                dropped_links_count: d_links,
                status_code: StatusCode(code),
                status_message: message,
                resource: Arc::new(Resource {
                    attributes: resource_attrs,
                    dropped_attributes_count: dropped,
                    schema_url: String::new(),
                }),
                scope: Arc::new(Scope {
                    name: scope_name,
                    version: "1.0".into(),
                    attributes: scope_attrs,
                    dropped_attributes_count: 0,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }),
            }
        })
}

fn spans_strategy() -> impl Strategy<Value = Vec<Span>> {
    // Up to 4 traces of up to 6 spans; parents point at earlier spans of the same trace.
    proptest::collection::vec((id16(), 1usize..6), 1..4).prop_flat_map(|traces| {
        let mut strategies = Vec::new();
        let mut next_id = 1u64;
        for (trace_id, n) in traces {
            for i in 0..n {
                let span_id = SpanId(next_id.to_le_bytes());
                let parent = (i > 0).then(|| SpanId((next_id - 1).to_le_bytes()));
                next_id += 1;
                strategies.push(span_strategy(trace_id, span_id, parent));
            }
        }
        strategies
    })
}

/// Attribute order is not part of OTLP's meaning (keys are a map, and the order of values under
/// a repeated key is unspecified); compare sorted by key, then value.
fn normalize(mut span: Span) -> Span {
    fn sort(kvs: &mut [KeyValue]) {
        kvs.sort_by_cached_key(|kv| (kv.key.clone(), format!("{:?}", kv.value)));
    }
    sort(&mut span.attributes);
    let mut resource = (*span.resource).clone();
    sort(&mut resource.attributes);
    span.resource = Arc::new(resource);
    span
}

/// The first line where the pretty-printed spans differ, with its neighbours.
fn first_difference(got: &Span, want: &Span) -> String {
    let (g, w) = (format!("{got:#?}"), format!("{want:#?}"));
    let (g, w): (Vec<&str>, Vec<&str>) = (g.lines().collect(), w.lines().collect());
    let at = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let from = at.saturating_sub(3);
    format!(
        "got:\n{}\nwant:\n{}",
        g[from..(at + 2).min(g.len())].join("\n"),
        w[from..(at + 2).min(w.len())].join("\n")
    )
}

fn identity() -> BlockIdentity {
    BlockIdentity::fresh(TenantId::new("t").unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn spans_survive_a_block_round_trip(spans in spans_strategy()) {
        let config = BlockConfig { row_group_max_spans: 4, ..Default::default() };
        let block = encode_block(identity(), config, spans.clone()).unwrap();
        let mut back: Vec<Span> = read_spans(block.data.clone(), "test").unwrap()
            .into_iter().map(normalize).collect();
        let mut expected: Vec<Span> = spans.into_iter().map(normalize).collect();
        let key = |s: &Span| (s.trace_id, s.span_id);
        back.sort_by_key(key);
        expected.sort_by_key(key);
        prop_assert_eq!(back.len(), expected.len());
        for (got, want) in back.iter().zip(&expected) {
            prop_assert!(got == want, "first difference: {}", first_difference(got, want));
        }
        prop_assert_eq!(block.meta.span_count as usize, block.meta.row_groups.iter().map(|g| g.span_count as usize).sum::<usize>());
    }
}
