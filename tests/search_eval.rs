//! The search evaluation suite: TraceQL queries over the generated workload, answered by the real
//! `strata` over HTTP (`/api/search`, as Grafana calls it) and, independently, by DuckDB running
//! the same question in SQL over the same Parquet files (`tests/python/search_eval.py`). Part of
//! the data is in blocks, part only in the ingester's memory, so both paths are checked.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::{Span, TenantId};
use strata_storage::{LocalConfig, Storage, StorageConfig};

use crate::support::{Strata, run_python};

/// Nothing is cut while the test runs, so what was sent stays in memory.
/// Traces stay in memory, and the compactor stays off: DuckDB reads the block files themselves,
/// and a merge would show it the inputs and the output at once.
const HOLD: &str =
    "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\ncompactor:\n  enabled: false\n";

fn spans_of(requests: &[ExportTraceServiceRequest]) -> Vec<Span> {
    requests
        .iter()
        .flat_map(|r| strata_model::otlp::spans_from_request(r.clone()).0)
        .collect()
}

fn identity() -> BlockIdentity {
    BlockIdentity::fresh(TenantId::default_tenant())
}

fn trim(id: &str) -> String {
    let t = id.trim_start_matches('0').to_ascii_lowercase();
    if t.is_empty() { "0".into() } else { t }
}

#[test]
fn search_agrees_with_duckdb_over_blocks_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let blocks_dir = dir.path().join("data/blocks");
    let reference_dir = dir.path().join("reference");
    std::fs::create_dir_all(&blocks_dir).unwrap();
    std::fs::create_dir_all(&reference_dir).unwrap();
    let mut workload = Workload::new(WorkloadConfig {
        seed: 7,
        error_ratio: 0.1,
        slow_ratio: 0.05,
        ..Default::default()
    });
    let mut batch = |n: usize| -> Vec<ExportTraceServiceRequest> {
        (0..n)
            .map(|_| workload.next_trace().into_request())
            .collect()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Four blocks, as an ingester would have left them.
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig {
            path: blocks_dir.clone(),
        },
        ..Default::default()
    })
    .unwrap();
    let mut total_traces = 0;
    for _ in 0..4 {
        let spans = spans_of(&batch(400));
        let block = encode_block(identity(), BlockConfig::default(), spans).unwrap();
        total_traces += block.meta.trace_count;
        runtime.block_on(upload_block(&storage, &block)).unwrap();
    }
    // And traces that only the running ingester holds; DuckDB gets a copy as a Parquet file.
    let live = batch(300);
    let live_orders: std::collections::BTreeSet<String> = spans_of(&live)
        .iter()
        .flat_map(|s| s.attributes.iter())
        .filter(|a| a.key == "app.order.id")
        .filter_map(|a| a.value.as_str().map(str::to_owned))
        .collect();
    let reference = encode_block(identity(), BlockConfig::default(), spans_of(&live)).unwrap();
    total_traces += reference.meta.trace_count;
    std::fs::write(reference_dir.join("data.parquet"), &reference.data).unwrap();

    let strata = Strata::start(dir.path(), HOLD);
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(strata.grpc_url())
            .await
            .unwrap();
        for request in live {
            let response = client.export(request).await.unwrap().into_inner();
            assert!(
                response
                    .partial_success
                    .is_none_or(|p| p.rejected_spans == 0)
            );
        }
    });

    let expected: serde_json::Value = serde_json::from_str(&run_python(
        "search_eval.py",
        &[
            blocks_dir.to_str().unwrap(),
            reference_dir.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let cases = expected.as_array().unwrap();
    assert!(cases.len() >= 40, "the suite has {} queries", cases.len());

    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for case in cases {
        let q = case["q"].as_str().unwrap();
        let want: BTreeMap<String, Option<u64>> = case["expected"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (trim(k), v.as_u64()))
            .collect();
        let url = reqwest::Url::parse_with_params(
            &format!("http://{}/api/search", strata.api),
            &[("q", q), ("limit", "100000"), ("spss", "100")],
        )
        .unwrap();
        let (status, body) = runtime.block_on(async {
            let r = client.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        });
        if !status.is_success() {
            failures.push(format!("{q}: HTTP {status}: {body}"));
            continue;
        }
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let got: BTreeMap<String, Option<u64>> = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let sets = t["spanSets"].as_array().unwrap();
                let matched = (sets.len() == 1).then(|| sets[0]["matched"].as_u64().unwrap());
                (trim(t["traceID"].as_str().unwrap()), matched)
            })
            .collect();
        summary.push(format!("{:>4} traces  {q}", want.len()));
        if want.is_empty() || want.len() as u64 == total_traces {
            failures.push(format!(
                "{q}: the reference matches {} of {total_traces} traces; pick a query that discriminates",
                want.len()
            ));
        }
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            failures.push(format!(
                "{q}: {} expected, {} returned; missing {:?}; unexpected {:?}",
                want.len(),
                got.len(),
                &missing[..missing.len().min(5)],
                &extra[..extra.len().min(5)]
            ));
            continue;
        }
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, m)| m.is_some() && got[*k] != **m)
            .map(|(k, m)| format!("{k}: matched {:?}, expected {m:?}", got[k]))
            .collect();
        if !wrong.is_empty() {
            failures.push(format!("{q}: {}", wrong[..wrong.len().min(5)].join("; ")));
        }
    }
    // Tag values of data only in memory are offered too.
    let values: serde_json::Value = serde_json::from_str(&runtime.block_on(async {
        client
            .get(format!(
                "http://{}/api/v2/search/tag/span.app.order.id/values",
                strata.api
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }))
    .unwrap();
    let offered: std::collections::BTreeSet<String> = values["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap().to_owned())
        .collect();
    assert!(!live_orders.is_empty());
    assert!(
        live_orders.is_subset(&offered),
        "order IDs only in memory are missing from tag values"
    );
    eprintln!(
        "{total_traces} traces; {} queries:\n{}",
        cases.len(),
        summary.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    strata.stop();
}
