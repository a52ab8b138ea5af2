//! Client clocks do not control retention: spans that claim to end in 2262 or to start in 1970
//! are stored with their own times, but their block's range is clamped to when they were
//! received, so the block and its rollups age and go on schedule, and the block does not
//! overlap every time range.

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::support::{self, Strata};

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn span(trace: u8, start: u64, end: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: format!("clock-{trace}"),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

fn metas(root: &Path) -> Vec<strata_block::BlockMeta> {
    let dir = root.join("single-tenant/blocks");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("meta.json")).ok())
        .map(|bytes| strata_block::BlockMeta::parse(&bytes, "meta.json").unwrap())
        .collect()
}

fn entries(root: &Path, dir: &str) -> usize {
    std::fs::read_dir(root.join("single-tenant").join(dir)).map_or(0, |d| d.count())
}

#[test]
fn spans_from_2262_and_1970_do_not_keep_a_block_forever_or_age_it_early() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "ingester:\n  trace_idle_period: 200ms\n  max_block_duration: 500ms\n  \
                    flush_check_period: 100ms\n  ingestion_time_slack: {past: 2s, future: 1s}\n\
                    compactor:\n  cycle: 1s\n  grace_period: 1s\n\
                    retention:\n  tiers:\n    - {after: 0s, keep: all}\n    - {after: 8s, keep: none}\n  \
                    rollups_for: 12s\n";
    let strata = Strata::start(dir.path(), sections);
    let root = dir.path().join("data/blocks");
    let sent_after = now_nanos();
    let sixty_days = 60 * 86_400 * 1_000_000_000;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(1, now_nanos(), u64::MAX),
                    span(2, 0, 1_000_000_000),
                    span(
                        3,
                        now_nanos() - sixty_days,
                        now_nanos() - sixty_days + 1_000,
                    ),
                    span(4, now_nanos(), now_nanos() + 1_000_000),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, _) = runtime.block_on(support::post_otlp(&strata, &request, None));
    assert_eq!(status, 200);
    let sent_before = now_nanos();
    let deadline = Instant::now() + Duration::from_secs(30);
    let metas = loop {
        let metas = metas(&root);
        if metas.iter().map(|m| m.span_count).sum::<u64>() == 4 {
            break metas;
        }
        assert!(Instant::now() < deadline, "no block:\n{}", strata.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let nanos = |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap() as u64;
    for meta in &metas {
        let (start, end) = (nanos(meta.start_time), nanos(meta.end_time));
        assert!(
            start >= sent_after - 2_000_000_000 && end <= sent_before + 1_000_000_000,
            "block {} spans {}..{}, sent between {sent_after} and {sent_before}",
            meta.block_id,
            meta.start_time,
            meta.end_time
        );
    }
    // The spans keep the times they were sent with.
    runtime.block_on(async {
        for (trace, end) in [
            (1u8, u64::MAX.to_string()),
            (2, "1000000000".to_owned()),
            (3, (sent_after - sixty_days + 1_000).to_string()),
        ] {
            let id = strata_model::TraceId([trace; 16]).to_hex();
            let (spans, _) = support::trace_spans(strata.api, &id, None).await;
            assert_eq!(spans.len(), 1, "trace {trace}");
            if trace != 3 {
                assert_eq!(spans[0]["endTimeUnixNano"], end.as_str(), "{}", spans[0]);
            }
        }
        let (_, body) = support::api_get(strata.api, "/api/search?q=%7B%7D&limit=10", None).await;
        for trace in 1..=4 {
            assert!(
                body.contains(&format!("\"rootTraceName\":\"clock-{trace}\"")),
                "{body}"
            );
        }
    });
    // Retention keeps everything for 8 s and nothing after: the blocks go on schedule (their
    // range ends a second after they were received), then their rollups 12 s after their
    // one-minute bucket ends.
    let deadline = Instant::now() + Duration::from_secs(120);
    while entries(&root, "blocks") > 0 || entries(&root, "rollups") > 0 {
        assert!(
            Instant::now() < deadline,
            "still {} blocks and {} rollup segments after 120 s:\n{}",
            entries(&root, "blocks"),
            entries(&root, "rollups"),
            strata.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let took = Instant::now() - (deadline - Duration::from_secs(120));
    println!(
        "blocks and rollups of spans claiming 1970 and 2262 were gone {took:?} after the check"
    );
    strata.stop();
}
