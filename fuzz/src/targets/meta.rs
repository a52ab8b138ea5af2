//! `meta_parsers`: the small objects of a bucket through their parsers. Byte 0 picks the parser,
//! the rest is the object. What parses must print and parse back to the same value.
//!
//! 0 `meta.json` (`BlockMeta::parse`), 1 `tags.json` (`TagSummary::parse`), 2 a tenant index as
//! stored (`TenantIndex::decode`, zstd), 3 the same with the input as the JSON inside (the harness
//! compresses it), 4 `compacted.json` (`CompactedMarker::parse`), 5 a rollup segment's
//! `meta.json` (`RollupMeta::parse`), 6 a rollup segment's `data.parquet` (`decode_segment`),
//! 7 a bloom shard (`BloomShard::parse`).

use bytes::Bytes;
use strata_block::catalog::CompactedMarker;
use strata_block::{BlockMeta, BloomShard, RollupMeta, TagSummary, TenantIndex};
use strata_model::TraceId;

use crate::fixture;

/// One object, after its selector byte.
pub fn meta_parsers(data: &[u8]) {
    crate::panics::install();
    let Some((&which, object)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            if let Ok(meta) = BlockMeta::parse(object, "fuzz/meta.json") {
                let again = BlockMeta::parse(&meta.to_json(), "again");
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&meta),
                    "meta.json does not print back"
                );
            }
        }
        1 => {
            if let Ok(tags) = TagSummary::parse(object, "fuzz/tags.json") {
                let again = TagSummary::parse(&tags.to_json(), "again");
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&tags),
                    "tags.json does not print back"
                );
            }
        }
        2 => tenant_index(object),
        3 => {
            if let Ok(compressed) = zstd::bulk::compress(object, 1) {
                tenant_index(&compressed);
            }
        }
        4 => {
            if let Ok(marker) = CompactedMarker::parse(object, "fuzz/compacted.json") {
                let again = CompactedMarker::parse(&marker.to_json(), "again");
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&marker),
                    "a marker does not print back"
                );
            }
        }
        5 => {
            if let Ok(meta) = RollupMeta::parse(object, "fuzz/rollup meta.json") {
                let again = RollupMeta::parse(&meta.to_json(), "again");
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&meta),
                    "a rollup meta does not print back"
                );
            }
        }
        6 => rollup_segment(object),
        _ => {
            if let Ok(shard) = BloomShard::parse(object, "fuzz") {
                for id in fixture::TRACE_IDS {
                    let _ = shard.may_contain(&TraceId(id));
                }
            }
        }
    }
}

fn tenant_index(bytes: &[u8]) {
    let tenant = fixture::tenant();
    if let Ok(index) = TenantIndex::decode(bytes, "fuzz/index.json.zst", &tenant) {
        match index.encode() {
            Ok(encoded) => {
                let again = TenantIndex::decode(&encoded, "again", &tenant);
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&index),
                    "an index does not print back"
                );
            }
            Err(e) => panic!("an index that decodes does not encode: {e}"),
        }
    }
}

fn rollup_segment(bytes: &[u8]) {
    let Ok(rollup) = strata_block::decode_segment(Bytes::copy_from_slice(bytes), "fuzz") else {
        return;
    };
    if rollup.is_empty() {
        return;
    }
    let rows = |r: &strata_block::Rollup| -> Vec<String> {
        r.rows()
            .map(|(k, c)| format!("{k:?} {} {} {}", c.spans, c.errors, c.duration_sum_nanos))
            .collect()
    };
    let encoded = strata_block::encode_segment(
        &fixture::tenant(),
        fixture::BLOCK_ID,
        &rollup,
        Vec::new(),
        Vec::new(),
    );
    match encoded {
        Ok((_, data)) => match strata_block::decode_segment(data, "again") {
            Ok(again) => assert_eq!(
                rows(&again),
                rows(&rollup),
                "a rollup segment does not write back"
            ),
            Err(e) => panic!("a rollup segment written from a decoded one does not decode: {e}"),
        },
        Err(e) => panic!("a decoded rollup does not encode: {e}"),
    }
}
