//! The tag summary of a block written by the compactor's streaming merge holds every tag of its
//! inputs: the merge frees each row group's resources before it reads the next, so nothing may
//! recognise a resource by its address alone.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use strata_block::{
    BlockConfig, BlockIdentity, BlockWriter, TagSummary, TraceMerge, encode_block, upload_block,
};
use strata_model::{
    KeyValue, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TenantId, TraceId,
};
use strata_storage::Storage;

/// One single-span trace per service, each with its own resource and scope.
fn traces(first: u8, services: std::ops::Range<usize>) -> Vec<Span> {
    services
        .map(|i| {
            let mut trace_id = [0u8; 16];
            trace_id[0] = first;
            trace_id[8..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Span {
                trace_id: TraceId(trace_id),
                span_id: SpanId([7; 8]),
                parent_span_id: None,
                trace_state: String::new(),
                flags: 0,
                name: format!("op-{i}"),
                kind: SpanKind::SERVER,
                start_unix_nano: 1_700_000_000_000_000_000,
                end_unix_nano: 1_700_000_000_001_000_000,
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                events: Vec::new(),
                dropped_events_count: 0,
                links: Vec::new(),
                dropped_links_count: 0,
                status_code: StatusCode::UNSET,
                status_message: String::new(),
                resource: Arc::new(Resource {
                    attributes: vec![
                        KeyValue::str("service.name", format!("service-{i}")),
                        KeyValue::str("host.id", format!("host-{i}")),
                    ],
                    ..Default::default()
                }),
                scope: Arc::new(Scope {
                    name: format!("lib-{i}"),
                    ..Default::default()
                }),
            }
        })
        .collect()
}

fn values(summary: &TagSummary, scope: &str, tag: &str) -> BTreeSet<String> {
    summary.scopes[scope][tag]
        .values
        .iter()
        .map(|v| v.value.clone())
        .collect()
}

#[tokio::test]
async fn a_merged_blocks_tags_hold_every_resource_of_its_inputs() {
    let storage = Storage::in_memory();
    let tenant = TenantId::new("t").unwrap();
    // Small row groups: the merge reads (and frees) many of them.
    let config = BlockConfig {
        row_group_max_spans: 4,
        ..BlockConfig::default()
    };
    let mut inputs = Vec::new();
    let mut want = TagSummary::default();
    for (first, services) in [(1u8, 0..60), (2u8, 60..120)] {
        let block = encode_block(
            BlockIdentity::fresh(tenant.clone()),
            config.clone(),
            traces(first, services),
        )
        .unwrap();
        upload_block(&storage, &block).await.unwrap();
        let tags = TagSummary::parse(&block.tags, "input").unwrap();
        for (scope, names) in tags.scopes {
            for (name, vals) in names {
                want.scopes
                    .entry(scope.clone())
                    .or_default()
                    .entry(name)
                    .or_default()
                    .values
                    .extend(vals.values);
            }
        }
        inputs.push(Arc::new(block.meta));
    }
    assert_eq!(values(&want, "resource", "service.name").len(), 120);

    let mut merge = TraceMerge::open(&storage, &inputs).await.unwrap();
    let mut writer = BlockWriter::new(BlockIdentity::fresh(tenant.clone()), config).unwrap();
    while let Some(trace) = merge.next_with(|_, _| {}).await.unwrap() {
        writer.push_trace(&trace.spans).unwrap();
    }
    let merged = writer.finish().unwrap();
    let got = TagSummary::parse(&merged.tags, "merged").unwrap();
    for tag in ["service.name", "host.id"] {
        assert_eq!(
            values(&got, "resource", tag),
            values(&want, "resource", tag),
            "resource.{tag}"
        );
    }
    let scope_names = |s: &TagSummary| -> BTreeSet<String> {
        s.intrinsics["instrumentation:name"]
            .values
            .iter()
            .map(|v| v.value.clone())
            .collect()
    };
    assert_eq!(scope_names(&got).len(), 120);
}
