//! Properties every generated stream must keep: reproducibility, sane trees, injected faults in
//! the configured proportions, and lossless batching into export requests.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;

use super::{GeneratedTrace, Workload, WorkloadConfig, flow_names};

fn workload(seed: u64) -> Workload {
    Workload::new(WorkloadConfig {
        seed,
        ..WorkloadConfig::default()
    })
}

fn encoded(traces: &[GeneratedTrace]) -> Vec<Vec<u8>> {
    traces
        .iter()
        .map(|t| t.clone().into_request().encode_to_vec())
        .collect()
}

fn root(trace: &GeneratedTrace) -> &Span {
    let mut roots = trace.spans().filter(|s| s.parent_span_id.is_empty());
    let root = roots.next().unwrap();
    assert!(roots.next().is_none(), "more than one root");
    root
}

/// FNV-1a, to pin the output without a golden file.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn same_seed_gives_identical_bytes() {
    assert_eq!(
        encoded(&workload(42).traces(300)),
        encoded(&workload(42).traces(300))
    );
    let a: Vec<_> = workload(9)
        .requests(3_000, 100)
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    let b: Vec<_> = workload(9)
        .requests(3_000, 100)
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn different_seed_gives_different_traces() {
    let a = encoded(&workload(1).traces(20));
    let b = encoded(&workload(2).traces(20));
    assert!(a.iter().zip(&b).all(|(x, y)| x != y));
}

#[test]
fn output_is_pinned() {
    // Guards reproducibility across machines and dependency updates. If you changed the
    // generator on purpose, replace the constant with the value printed below.
    let digest = fnv(encoded(&workload(42).traces(50)).concat());
    assert_eq!(
        digest, 0x0656_0711_aa8e_0ba7,
        "workload output changed: new digest {digest:#018x}"
    );
}

#[test]
fn traces_are_well_formed_trees() {
    for trace in workload(3).traces(2_000) {
        let n = trace.span_count();
        assert!((5..=200).contains(&n), "{} has {n} spans", trace.flow);
        let by_id: HashMap<&[u8], &Span> =
            trace.spans().map(|s| (s.span_id.as_slice(), s)).collect();
        assert_eq!(by_id.len(), n, "duplicate span IDs");
        assert!(trace.trace_id.iter().any(|&b| b != 0));
        let root = root(&trace);
        assert_eq!(root.kind, SpanKind::Server as i32);
        for span in trace.spans() {
            assert_eq!(span.trace_id, trace.trace_id);
            assert!(span.span_id.len() == 8 && span.span_id.iter().any(|&b| b != 0));
            assert!(span.flags == 0x101 || span.flags == 0x301);
            assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
            for event in &span.events {
                assert!(event.time_unix_nano >= span.start_time_unix_nano);
                assert!(
                    event.time_unix_nano <= span.end_time_unix_nano,
                    "{}",
                    event.name
                );
            }
            if span.parent_span_id.is_empty() {
                continue;
            }
            let parent = by_id[span.parent_span_id.as_slice()];
            assert!(
                span.start_time_unix_nano >= parent.start_time_unix_nano,
                "{}",
                span.name
            );
            // A message consumer runs after its producer has returned; everything else nests.
            if span.kind != SpanKind::Consumer as i32 {
                assert!(
                    span.end_time_unix_nano <= parent.end_time_unix_nano,
                    "{}",
                    span.name
                );
            }
        }
    }
}

#[test]
fn injected_errors_match_ratio_and_reach_the_root() {
    let traces = workload(5).traces(2_000);
    let errors = traces.iter().filter(|t| t.is_error).count();
    assert!(
        (60..=140).contains(&errors),
        "{errors} errors in 2000 traces at 5 %"
    );
    for trace in &traces {
        let status = root(trace).status.as_ref().map(|s| s.code);
        assert_eq!(
            status == Some(StatusCode::Error as i32),
            trace.is_error,
            "{}",
            trace.flow
        );
        let exceptions = trace
            .spans()
            .flat_map(|s| &s.events)
            .filter(|e| e.name == "exception");
        assert_eq!(exceptions.count() > 0, trace.is_error);
    }
    let slow = traces.iter().filter(|t| t.is_slow).count();
    assert!(
        (20..=65).contains(&slow),
        "{slow} slow traces in 2000 at 2 %"
    );
}

#[test]
fn slow_outliers_stretch_the_root() {
    let config = |slow_ratio| WorkloadConfig {
        slow_ratio,
        error_ratio: 0.0,
        ..Default::default()
    };
    let normal = Workload::new(config(0.0)).next_trace();
    let slow = Workload::new(config(1.0)).next_trace();
    assert!(slow.is_slow && !normal.is_slow);
    assert_eq!(normal.span_count(), slow.span_count());
    let duration = |t: &GeneratedTrace| {
        let r = root(t);
        r.end_time_unix_nano - r.start_time_unix_nano
    };
    assert!(duration(&slow) > duration(&normal));
}

#[test]
fn every_flow_appears_and_order_history_has_n_plus_one_queries() {
    let traces = workload(11).traces(1_000);
    for name in flow_names() {
        assert!(
            traces.iter().any(|t| t.flow == name),
            "{name} never generated"
        );
    }
    let history = traces
        .iter()
        .find(|t| t.flow == "order_history" && !t.is_error)
        .unwrap();
    let mut children: HashMap<(&[u8], &str), usize> = HashMap::new();
    for span in history.spans() {
        *children
            .entry((span.parent_span_id.as_slice(), span.name.as_str()))
            .or_default() += 1;
    }
    let (&(_, name), &count) = children.iter().max_by_key(|(_, c)| **c).unwrap();
    assert!(count >= 10, "{count} x {name}");
    assert_eq!(name, "SELECT shop.order_items");
}

#[test]
fn checkout_consumer_links_to_its_producer() {
    let traces = workload(13).traces(400);
    let checkout = traces
        .iter()
        .find(|t| t.flow == "checkout" && !t.is_error)
        .unwrap();
    let producer = checkout
        .spans()
        .find(|s| s.kind == SpanKind::Producer as i32)
        .unwrap();
    let consumer = checkout
        .spans()
        .find(|s| s.kind == SpanKind::Consumer as i32)
        .unwrap();
    assert_eq!(consumer.parent_span_id, producer.span_id);
    assert_eq!(consumer.links[0].span_id, producer.span_id);
    assert!(consumer.start_time_unix_nano >= producer.end_time_unix_nano);
}

#[test]
fn timestamps_are_not_round() {
    let trace = workload(17).next_trace();
    let round = trace
        .spans()
        .filter(|s| s.end_time_unix_nano % 1_000 == 0)
        .count();
    assert!(round * 10 < trace.span_count());
}

#[test]
fn requests_hold_exactly_the_streams_spans() {
    let (total, per_request) = (5_000, 256);
    let requests = workload(21).requests(total, per_request);
    let mut sent = Vec::new();
    for request in &requests {
        assert_eq!(request.resource_spans.len(), 1);
        let spans: Vec<&Span> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect();
        assert!(!spans.is_empty() && spans.len() <= per_request);
        sent.extend(spans.into_iter().cloned());
    }
    assert_eq!(sent.len(), total);
    let sent_ids: HashSet<&[u8]> = sent.iter().map(|s| s.span_id.as_slice()).collect();
    assert_eq!(sent_ids.len(), total, "a span was sent twice");
    for span in &sent {
        let parent = span.parent_span_id.as_slice();
        assert!(
            parent.is_empty() || sent_ids.contains(parent),
            "orphan {}",
            span.name
        );
    }

    let mut stream = workload(21);
    let mut expected = HashSet::new();
    while expected.len() < total {
        let trace = stream.next_trace();
        let ids: Vec<&[u8]> = trace.spans().map(|s| s.span_id.as_slice()).collect();
        if expected.len() + ids.len() <= total {
            assert!(
                ids.iter().all(|id| sent_ids.contains(id)),
                "{} lost spans",
                trace.flow
            );
        } else {
            // The cut trace: only some of its spans, the rest of the budget.
            let cut = ids.iter().filter(|id| sent_ids.contains(**id)).count();
            assert_eq!(cut, total - expected.len());
        }
        expected.extend(
            ids.into_iter()
                .filter(|id| sent_ids.contains(id))
                .map(<[u8]>::to_vec),
        );
    }
    assert_eq!(expected.len(), total);
    assert!(workload(21).requests(0, 10).is_empty());
}
