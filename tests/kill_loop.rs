//! `kill -9` of the all-in-one process under load, again and again (`STRATA_KILL_LOOPS` times,
//! 3 by default; `tests/long-run` does 20), on local disk and on S3: every acknowledged span is
//! found by trace ID afterwards, and the rollups count every stored span exactly once, though
//! WAL replays re-upload spans that were already in blocks and clients resend requests whose
//! answer the kill cut off.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::{self, Load, S3Server, SpanKey, Strata};

fn loops() -> usize {
    std::env::var("STRATA_KILL_LOOPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

#[test]
fn kill_9_under_load_over_and_over_loses_nothing_and_counts_each_span_once() {
    kill_loop(None);
    let s3 = S3Server::start("kill-loop");
    kill_loop(Some(&s3));
}

#[allow(clippy::print_stdout)] // the figures the long run reports
fn kill_loop(s3: Option<&S3Server>) {
    let backend = if s3.is_some() { "s3" } else { "local" };
    let dir = tempfile::tempdir().unwrap();
    let storage_yaml = s3.map(S3Server::storage_yaml).unwrap_or_default();
    let sections = format!(
        "ingester:\n  trace_idle_period: 300ms\n  max_block_duration: 1s\n  flush_check_period: 100ms\n\
         compactor:\n  cycle: 1s\n  grace_period: 5s\n\
         query:\n  blocklist_poll: 1s\n{storage_yaml}"
    );
    let mut strata = Strata::start(dir.path(), &sections);
    let load = Load::start(strata.grpc_url(), 50, 17);
    let runs = loops();
    let began = Instant::now();
    for round in 0..runs {
        // Kills at varying points: mid-cut, mid-upload, mid-compaction.
        std::thread::sleep(Duration::from_millis(1500 + 700 * (round as u64 % 5)));
        strata.kill9();
        strata = Strata::restart(dir.path(), "all");
    }
    std::thread::sleep(Duration::from_secs(2));
    let sent = load.stop();
    println!(
        "{backend}: {runs} kills in {:.0?}; {} requests, {} spans acknowledged; failed attempts {:?}",
        began.elapsed(),
        sent.requests,
        sent.acked.len(),
        sent.refused
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::flush(&strata));
    // Every acknowledged span, by trace ID through the API.
    let mut by_trace: BTreeMap<[u8; 16], HashSet<[u8; 8]>> = BTreeMap::new();
    for (trace, span) in &sent.acked {
        by_trace.entry(*trace).or_default().insert(*span);
    }
    let mut missing = 0;
    runtime.block_on(async {
        for (trace, want) in &by_trace {
            let id = strata_model::TraceId(*trace).to_hex();
            let (spans, _) = support::trace_spans(strata.api, &id, None).await;
            let got: HashSet<[u8; 8]> = spans
                .iter()
                .filter_map(|s| s["spanId"].as_str())
                .filter_map(base64_span_id)
                .collect();
            missing += want.difference(&got).count();
        }
    });
    assert_eq!(
        missing,
        0,
        "{backend}: {missing} of {} acknowledged spans not found by trace ID",
        sent.acked.len()
    );
    // The rollups count what is stored, each distinct span once, once the compactor has
    // folded every block.
    let storage = match s3 {
        Some(s3) => s3.storage(),
        None => strata_storage::Storage::from_config(&strata_storage::StorageConfig {
            local: strata_storage::LocalConfig {
                path: dir.path().join("data/blocks"),
            },
            ..Default::default()
        })
        .unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (stored, broken) = runtime.block_on(support::bucket_spans(&storage, "single-tenant"));
        assert!(broken.is_empty(), "{backend}: {broken:?}");
        let mut distinct: HashSet<SpanKey> = HashSet::new();
        let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut copies = 0;
        for span in &stored {
            if distinct.insert((span.trace_id.0, span.span_id.0)) {
                let op = (
                    span.service_name().unwrap_or_default().to_owned(),
                    span.name.clone(),
                );
                *want.entry(op).or_default() += 1;
            } else {
                copies += 1;
            }
        }
        assert!(
            sent.acked.is_subset(&distinct),
            "{backend}: acknowledged spans missing from the bucket"
        );
        let (_, body) = runtime.block_on(support::api_get(
            strata.api,
            "/api/strata/stats?since=24h",
            None,
        ));
        let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
        for op in stats["operations"].as_array().into_iter().flatten() {
            let key = (
                op["service"].as_str().unwrap().to_owned(),
                op["name"].as_str().unwrap().to_owned(),
            );
            *got.entry(key).or_default() += op["spanCount"].as_u64().unwrap();
        }
        if got == want {
            println!(
                "{backend}: {} distinct spans stored ({copies} extra copies in blocks), rollups count each once",
                distinct.len()
            );
            break;
        }
        if Instant::now() > deadline {
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .take(5)
                .map(|(k, v)| (k, v, got.get(k)))
                .collect();
            panic!(
                "{backend}: rollups disagree with the {} distinct spans stored ({copies} extra copies): {diff:?}",
                distinct.len()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    strata.stop();
}

/// A span ID as OTLP JSON in Tempo's answers encodes it (base64 of the 8 bytes).
fn base64_span_id(text: &str) -> Option<[u8; 8]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}
