//! The block format is a contract: `schemas/block-v1.md` shows the Parquet schema, the dedicated
//! columns and the shape of `meta.json` exactly as written. This test fails when the code and the
//! document disagree; `UPDATE_GOLDEN=1` rewrites the document's generated sections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use strata_block::schema::{AttrScope, DEDICATED_COLUMNS, DedicatedType};
use strata_block::{BlockConfig, BlockIdentity, encode_block};
use strata_model::{
    AttrValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TenantId, TraceId,
};

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/block-v1.md")
}

fn rollup_doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/rollup-v1.md")
}

fn sample_block() -> strata_block::EncodedBlock {
    let identity = BlockIdentity::fresh(TenantId::new("single-tenant").unwrap());
    encode_block(identity, BlockConfig::default(), [sample_span()]).unwrap()
}

fn sample_span() -> Span {
    Span {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([2; 8]),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 0,
        name: "GET /".into(),
        kind: SpanKind::SERVER,
        start_unix_nano: 1_767_225_600_000_000_000,
        end_unix_nano: 1_767_225_600_100_000_000,
        attributes: vec![
            KeyValue {
                key: "http.route".into(),
                value: AttrValue::Str("/".into()),
            },
            KeyValue {
                key: "app.retries".into(),
                value: AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Int(2)]),
            },
        ],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status_code: StatusCode::UNSET,
        status_message: String::new(),
        resource: Arc::new(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: AttrValue::Str("web".into()),
            }],
            ..Resource::default()
        }),
        scope: Arc::new(Scope::default()),
    }
}

fn parquet_schema_text(block: &strata_block::EncodedBlock) -> String {
    file_schema_text(block.data.clone())
}

fn file_schema_text(data: bytes::Bytes) -> String {
    let reader = SerializedFileReader::new(data).unwrap();
    let mut out = Vec::new();
    parquet::schema::printer::print_schema(&mut out, reader.metadata().file_metadata().schema());
    format!("```\n{}```", String::from_utf8(out).unwrap())
}

fn dedicated_table() -> String {
    let mut out = String::from("| column | attribute | scope | type |\n|---|---|---|---|\n");
    for c in DEDICATED_COLUMNS {
        let scope = match c.scope {
            AttrScope::Resource => "resource",
            AttrScope::Span => "span",
        };
        let ty = match c.ty {
            DedicatedType::Str => "string",
            DedicatedType::Int => "int64",
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {scope} | {ty} |\n",
            c.column, c.key
        ));
    }
    out.trim_end().to_owned()
}

/// The meta's JSON with values that change from run to run, or with any encoder change, replaced
/// by placeholders, so the example is stable yet shows every key.
fn meta_example(block: &strata_block::EncodedBlock) -> String {
    let mut meta: serde_json::Value = serde_json::from_slice(&block.meta.to_json()).unwrap();
    for key in [
        "block_id",
        "created_at",
        "data_size",
        "footer_size",
        "bloom_size",
    ] {
        meta[key] = serde_json::Value::String(format!("<{key}>"));
    }
    for group in meta["row_groups"].as_array_mut().unwrap() {
        group["size"] = serde_json::Value::String("<size>".into());
    }
    format!(
        "```json\n{}\n```",
        serde_json::to_string_pretty(&meta).unwrap()
    )
}

fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN {name} -->");
    let end = format!("<!-- END {name} -->");
    let start = doc
        .find(&begin)
        .unwrap_or_else(|| panic!("{begin} missing"))
        + begin.len();
    let stop = doc.find(&end).unwrap_or_else(|| panic!("{end} missing"));
    format!("{}\n{body}\n{}", &doc[..start], &doc[stop..])
}

/// Compares a document with what the code writes, or rewrites it under `UPDATE_GOLDEN=1`.
fn check(path: PathBuf, expected: impl FnOnce(&str) -> String) {
    let doc = std::fs::read_to_string(&path).unwrap();
    let expected = expected(&doc);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    if doc != expected {
        let first = doc
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{} no longer matches what Strata writes (first difference at line {}):\n  \
             document: {:?}\n  written:  {:?}\nIf the change is deliberate, run \
             UPDATE_GOLDEN=1 cargo test -p strata-block --test schema_doc and review the diff.",
            path.display(),
            first + 1,
            doc.lines().nth(first).unwrap_or(""),
            expected.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn written_rollup_schema_matches_the_document() {
    let mut rollup = strata_block::Rollup::new();
    let mut span = sample_span();
    rollup.add_span(&span, 60);
    span.status_code = StatusCode::ERROR;
    rollup.add_span(&span, 60);
    let tenant = TenantId::new("single-tenant").unwrap();
    let source = uuid::Uuid::now_v7();
    let (meta, data) =
        strata_block::encode_segment(&tenant, source, &rollup, vec![source], vec![]).unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&meta.to_json()).unwrap();
    for key in ["segment_id", "created_at", "data_size"] {
        meta[key] = serde_json::Value::String(format!("<{key}>"));
    }
    meta["sources"] = serde_json::json!(["<block_id>"]);
    check(rollup_doc_path(), |doc| {
        let doc = replace_section(doc, "rollup-schema", &file_schema_text(data));
        replace_section(
            &doc,
            "rollup-meta-example",
            &format!(
                "```json\n{}\n```",
                serde_json::to_string_pretty(&meta).unwrap()
            ),
        )
    });
}

#[test]
fn written_schema_matches_the_document() {
    let block = sample_block();
    check(doc_path(), |doc| block_doc(doc, &block));
}

fn block_doc(doc: &str, block: &strata_block::EncodedBlock) -> String {
    let mut expected = doc.to_owned();
    expected = replace_section(&expected, "parquet-schema", &parquet_schema_text(block));
    expected = replace_section(&expected, "dedicated-columns", &dedicated_table());
    expected = replace_section(&expected, "meta-example", &meta_example(block));
    let tags: serde_json::Value = serde_json::from_slice(&block.tags).unwrap();
    expected = replace_section(
        &expected,
        "tags-example",
        &format!(
            "```json\n{}\n```",
            serde_json::to_string_pretty(&tags).unwrap()
        ),
    );
    expected
}
