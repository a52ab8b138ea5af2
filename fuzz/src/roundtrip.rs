//! The round trip every accepted span must survive: model spans → `encode_block` →
//! `read_spans` → the same spans, up to the block format's documented normalisations.
//!
//! The normalisations (`schemas/block-v1.md`, and the block crate's own round-trip property
//! test): later copies of a span ID within a trace are dropped, the first kept; spans come back
//! in the block's order (compared here sorted by trace and span ID); the order of a span's and a
//! resource's attributes is not kept. Values are compared through their `Debug` form, so that a
//! NaN equals a NaN.

use std::collections::HashSet;
use std::sync::Arc;

use strata_block::{BlockConfig, BlockIdentity, encode_block, read_spans};
use strata_model::{KeyValue, Span, SpanId, TraceId};

use crate::fixture;

/// Encodes `spans` as a block with the default block config and reads them back; panics if
/// that fails or changes them.
pub fn check_block_round_trip(spans: Vec<Span>) {
    if spans.is_empty() {
        return;
    }
    let expected = expected(&spans);
    let identity = BlockIdentity {
        block_id: fixture::BLOCK_ID,
        ..BlockIdentity::fresh(fixture::tenant())
    };
    let block = match encode_block(identity, BlockConfig::default(), spans) {
        Ok(block) => block,
        Err(e) => panic!("spans the receivers accept do not encode as a block: {e}"),
    };
    assert_eq!(
        block.meta.span_count as usize,
        expected.len(),
        "meta.json counts another number of spans than were written"
    );
    let back = match read_spans(block.data.clone(), "fuzz") {
        Ok(back) => back,
        Err(e) => panic!("a block just written cannot be read back: {e}"),
    };
    let back = sorted(back);
    assert_eq!(
        back.len(),
        expected.len(),
        "span count after the round trip"
    );
    for (got, want) in back.iter().zip(&expected) {
        let (g, w) = (format!("{got:#?}"), format!("{want:#?}"));
        if g != w {
            panic!(
                "span {} of trace {} changed in the block:\n{}",
                got.span_id,
                got.trace_id,
                first_difference(&g, &w)
            );
        }
    }
}

/// What the block should give back: first copies only, normalised, sorted.
fn expected(spans: &[Span]) -> Vec<Span> {
    let mut seen: HashSet<(TraceId, SpanId)> = HashSet::new();
    let kept = spans
        .iter()
        .filter(|s| seen.insert((s.trace_id, s.span_id)))
        .cloned()
        .collect();
    sorted(kept)
}

fn sorted(spans: Vec<Span>) -> Vec<Span> {
    let mut spans: Vec<Span> = spans.into_iter().map(normalise).collect();
    spans.sort_by_key(|s| (s.trace_id, s.span_id));
    spans
}

fn normalise(mut span: Span) -> Span {
    fn sort(kvs: &mut [KeyValue]) {
        kvs.sort_by_cached_key(|kv| (kv.key.clone(), format!("{:?}", kv.value)));
    }
    sort(&mut span.attributes);
    let mut resource = (*span.resource).clone();
    sort(&mut resource.attributes);
    span.resource = Arc::new(resource);
    span
}

/// The first line where two pretty-printed spans differ, with a little context.
fn first_difference(got: &str, want: &str) -> String {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
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
