//! Whole traces: de-duplicating copies of a span, ordering a trace's spans as a tree, and the
//! trace-level facts (root, start, duration, errors) that the block format stores as columns.

use std::collections::HashMap;

use crate::ids::SpanId;
use crate::span::Span;

/// A span's position in its trace tree as nested-set numbers, so structural questions
/// ("is A an ancestor of B?") become integer comparisons: A is an ancestor of B exactly when
/// `A.left < B.left && B.right < A.right`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NestedSet {
    /// Number given on entering the span in a depth-first walk (1-based).
    pub left: i32,
    /// Number given on leaving the span.
    pub right: i32,
    /// The parent's `left`, or 0 when the parent is not in the trace (a root, or a parent that
    /// has not been received).
    pub parent: i32,
}

/// Facts about a whole trace, computed once when it is written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSummary {
    /// Earliest span start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// Latest span end, unix nanoseconds.
    pub end_unix_nano: u64,
    /// `service.name` of the root span, if the root has been received.
    pub root_service_name: Option<String>,
    /// Name of the root span, if the root has been received.
    pub root_span_name: Option<String>,
    /// Number of spans.
    pub span_count: u32,
    /// Whether any span has status error.
    pub has_error: bool,
}

impl TraceSummary {
    /// Duration of the trace, nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// Removes later copies of a span ID, keeping the first. The WAL may replay spans that already
/// reached a block, and clients retry, so copies are expected.
pub fn dedupe_spans(spans: &mut Vec<Span>) {
    let mut seen = std::collections::HashSet::with_capacity(spans.len());
    spans.retain(|s| seen.insert(s.span_id));
}

/// How the spans of one trace are laid out in a block, computed without moving them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceLayout {
    /// Indices into the spans, in depth-first order (children by start time, then span ID).
    /// Later copies of a span ID are left out.
    pub order: Vec<usize>,
    /// The nested-set numbers of the spans in `order`, position for position.
    pub sets: Vec<NestedSet>,
    /// The trace-level facts.
    pub summary: TraceSummary,
}

/// Lays out the spans of one trace (all sharing one trace ID) depth-first and numbers them as
/// nested sets. Copies of a span ID after the first are skipped. Parent cycles and missing
/// parents are tolerated: such spans become roots of their own subtrees.
pub fn trace_layout(spans: &[Span]) -> TraceLayout {
    let mut seen = std::collections::HashSet::with_capacity(spans.len());
    let mut nodes: Vec<usize> = (0..spans.len())
        .filter(|&i| seen.insert(spans[i].span_id))
        .collect();
    nodes.sort_unstable_by_key(|&i| (spans[i].start_unix_nano, spans[i].span_id));
    let n = nodes.len();
    let position: HashMap<SpanId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(p, &i)| (spans[i].span_id, p))
        .collect();
    // Children lists in start order, since `nodes` is sorted and we push in order.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (p, &i) in nodes.iter().enumerate() {
        match spans[i]
            .parent_span_id
            .and_then(|parent| position.get(&parent))
        {
            Some(&parent) if parent != p => children[parent].push(p),
            _ => roots.push(p),
        }
    }

    let mut order = Vec::with_capacity(n);
    let mut sets = vec![NestedSet::default(); n];
    let mut visited = vec![false; n];
    let mut counter = 0i32;
    let mut walk = |start: usize, order: &mut Vec<usize>, sets: &mut Vec<NestedSet>| {
        // Iterative DFS: (node, next child position).
        if visited[start] {
            return;
        }
        visited[start] = true;
        counter += 1;
        sets[start].left = counter;
        order.push(start);
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&child) = children[node].get(next) {
                stack.push((node, next + 1));
                if !visited[child] {
                    visited[child] = true;
                    counter += 1;
                    sets[child] = NestedSet {
                        left: counter,
                        right: 0,
                        parent: sets[node].left,
                    };
                    order.push(child);
                    stack.push((child, 0));
                }
            } else {
                counter += 1;
                sets[node].right = counter;
            }
        }
    };
    for &root in &roots {
        walk(root, &mut order, &mut sets);
    }
    // Spans caught in a parent cycle are reachable from no root: start a walk at each.
    for p in 0..n {
        walk(p, &mut order, &mut sets);
    }
    let summary = summarise(
        spans,
        nodes.iter().copied(),
        roots.iter().map(|&p| nodes[p]),
    );
    TraceLayout {
        sets: order.iter().map(|&p| sets[p]).collect(),
        order: order.iter().map(|&p| nodes[p]).collect(),
        summary,
    }
}

/// Puts the spans of one trace in the order of [`trace_layout`], dropping later copies of a span
/// ID, and returns their nested-set numbers and the trace summary.
pub fn order_trace(spans: &mut Vec<Span>) -> (Vec<NestedSet>, TraceSummary) {
    let layout = trace_layout(spans);
    let mut slots: Vec<Option<Span>> = spans.drain(..).map(Some).collect();
    spans.extend(layout.order.iter().filter_map(|&i| slots[i].take()));
    (layout.sets, layout.summary)
}

fn summarise(
    spans: &[Span],
    nodes: impl Iterator<Item = usize> + Clone,
    mut roots: impl Iterator<Item = usize>,
) -> TraceSummary {
    // The root is the earliest span without a parent ID; orphans (parent missing) don't count.
    let root = roots
        .find(|&i| spans[i].parent_span_id.is_none())
        .map(|i| &spans[i]);
    let all = || nodes.clone().map(|i| &spans[i]);
    TraceSummary {
        start_unix_nano: all().map(|s| s.start_unix_nano).min().unwrap_or(0),
        end_unix_nano: all()
            .map(|s| s.end_unix_nano.max(s.start_unix_nano))
            .max()
            .unwrap_or(0),
        root_service_name: root.and_then(|r| r.service_name()).map(str::to_owned),
        root_span_name: root.map(|r| r.name.clone()),
        span_count: u32::try_from(all().count()).unwrap_or(u32::MAX),
        has_error: all().any(Span::is_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::KeyValue;
    use crate::ids::TraceId;
    use crate::span::{Resource, Scope, SpanKind, StatusCode};
    use std::sync::Arc;

    fn span(id: u8, parent: Option<u8>, start: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            trace_state: String::new(),
            flags: 0,
            name: format!("op{id}"),
            kind: SpanKind::SERVER,
            start_unix_nano: start,
            end_unix_nano: start + 10,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: StatusCode::UNSET,
            status_message: String::new(),
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::str("service.name", format!("svc{id}"))],
                ..Default::default()
            }),
            scope: Arc::new(Scope::default()),
        }
    }

    #[test]
    fn orders_depth_first_and_numbers_nested_sets() {
        // root(1) -> a(2) -> c(4); root -> b(3); b starts before a.
        let mut spans = vec![
            span(4, Some(2), 40),
            span(2, Some(1), 30),
            span(1, None, 0),
            span(3, Some(1), 20),
        ];
        let (sets, summary) = order_trace(&mut spans);
        let ids: Vec<u8> = spans.iter().map(|s| s.span_id.0[0]).collect();
        assert_eq!(ids, vec![1, 3, 2, 4]);
        let lr: Vec<(i32, i32, i32)> = sets.iter().map(|s| (s.left, s.right, s.parent)).collect();
        assert_eq!(lr, vec![(1, 8, 0), (2, 3, 1), (4, 7, 1), (5, 6, 4)]);
        assert_eq!(summary.root_service_name.as_deref(), Some("svc1"));
        assert_eq!(summary.root_span_name.as_deref(), Some("op1"));
        assert_eq!(summary.start_unix_nano, 0);
        assert_eq!(summary.end_unix_nano, 50);
        assert_eq!(summary.span_count, 4);
        assert!(!summary.has_error);
    }

    #[test]
    fn orphans_and_cycles_still_get_numbers() {
        // 5 and 6 point at each other; 7's parent is missing.
        let mut spans = vec![
            span(5, Some(6), 1),
            span(6, Some(5), 2),
            span(7, Some(9), 3),
        ];
        let (sets, summary) = order_trace(&mut spans);
        assert_eq!(spans.len(), 3);
        assert!(sets.iter().all(|s| s.left > 0 && s.right > s.left));
        assert_eq!(summary.root_service_name, None);
        let mut lefts: Vec<i32> = sets.iter().map(|s| s.left).collect();
        lefts.sort_unstable();
        lefts.dedup();
        assert_eq!(lefts.len(), 3);
    }

    #[test]
    fn layout_skips_later_copies_without_moving_spans() {
        let spans = vec![span(2, Some(1), 5), span(1, None, 0), span(2, Some(1), 9)];
        let layout = trace_layout(&spans);
        assert_eq!(layout.order, vec![1, 0]);
        assert_eq!(layout.summary.span_count, 2);
        assert_eq!(
            layout.summary.end_unix_nano, 15,
            "the dropped copy does not count"
        );
    }

    #[test]
    fn dedupe_keeps_first_copy() {
        let mut spans = vec![span(1, None, 0), span(2, Some(1), 1), span(1, None, 5)];
        dedupe_spans(&mut spans);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].start_unix_nano, 0);
    }
}
