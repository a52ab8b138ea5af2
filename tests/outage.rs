//! An object-store outage under steady ingest loses nothing acknowledged: spans keep being
//! acknowledged (the WAL holds them) until the unflushed limit is reached, then clients get 429
//! / `RESOURCE_EXHAUSTED` and retry; the WAL stays bounded; once the store is back everything is
//! flushed, and no `meta.json` points at missing data. Run for an outage shorter than the
//! compactor's grace period (60 s) and one longer (90 s), with the compactor running.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{self, Load, Proxy, S3Server, Strata};

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("data/wal"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn metric(strata: &Strata, name: &str) -> f64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_, text) = runtime.block_on(support::api_get(strata.api, "/metrics", None));
    // Summed over labels.
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits `period`, sampling the WAL size every 250 ms; returns the largest seen.
fn watch_wal(dir: &Path, period: Duration) -> u64 {
    let until = Instant::now() + period;
    let mut most = 0;
    while Instant::now() < until {
        most = most.max(wal_bytes(dir));
        std::thread::sleep(Duration::from_millis(250));
    }
    most
}

#[test]
fn an_object_store_outage_under_load_loses_nothing_acknowledged() {
    let s3 = S3Server::start("outage");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(75);
    let sections = format!(
        "ingester:\n  trace_idle_period: 500ms\n  max_block_duration: 1s\n  flush_check_period: 100ms\n  \
         max_unflushed_bytes: 1MiB\n  flush_retry_initial_backoff: 500ms\n  flush_retry_max_backoff: 5s\n  \
         wal: {{segment_bytes: 256KiB}}\n\
         compactor:\n  cycle: 2s\n  grace_period: {}s\n\
         {}  retry: {{max_retries: 2, retry_timeout: 5s, request_timeout: 5s, connect_timeout: 1s}}\n",
        grace.as_secs(),
        s3.storage_yaml_at(&proxy.url())
    );
    let strata = Strata::start(dir.path(), &sections);
    let load = Load::start(strata.grpc_url(), 40, 3);
    let mut report = Vec::new();
    let warm_wal = watch_wal(dir.path(), Duration::from_secs(10));
    for (name, outage) in [
        ("60 s", Duration::from_secs(60)),
        ("over the grace period", grace + Duration::from_secs(15)),
    ] {
        let refused_before = load.refused("ResourceExhausted");
        proxy.go_down();
        let outage_wal = watch_wal(dir.path(), outage);
        let refused_during = load.refused("ResourceExhausted") - refused_before;
        proxy.come_back();
        // Back: the backlog flushes, the unflushed gauge falls back.
        let began = Instant::now();
        while metric(&strata, "strata_ingest_unflushed_bytes") > 300_000.0 {
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "backlog not flushed:\n{}",
                strata.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let drained = began.elapsed();
        report.push(format!(
            "outage {name} ({outage:?}): WAL at most {} KiB, {refused_during} requests refused with RESOURCE_EXHAUSTED, backlog flushed {drained:.1?} after",
            outage_wal >> 10
        ));
        assert!(
            refused_during > 0,
            "the unflushed limit was never reached during the {name} outage"
        );
        // Stored bytes bound the WAL (its records are the requests, resources once each):
        // max_unflushed_bytes, plus the segments still pinned by a few live traces.
        assert!(
            outage_wal < 4 << 20,
            "WAL grew to {outage_wal} bytes during the {name} outage"
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    let sent = load.stop();
    println!("warm-up WAL at most {} KiB", warm_wal >> 10);
    println!("{}", report.join("\n"));
    println!(
        "load: {} requests acknowledged, failed attempts {:?}",
        sent.requests, sent.refused
    );
    assert!(
        sent.refused.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "clients never saw 429: {:?}",
        sent.refused
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::flush(&strata));
    let log = strata.stop();
    let (stored, broken) = runtime.block_on(support::bucket_spans(&s3.storage(), "single-tenant"));
    assert!(broken.is_empty(), "{broken:?}");
    let stored: std::collections::HashSet<support::SpanKey> =
        stored.iter().map(|s| (s.trace_id.0, s.span_id.0)).collect();
    let lost: Vec<_> = sent.acked.difference(&stored).take(5).collect();
    println!(
        "spans acknowledged {}, found in the bucket {}",
        sent.acked.len(),
        stored.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged spans lost, e.g. {lost:?}\n{log}",
        sent.acked.difference(&stored).count(),
        sent.acked.len()
    );
    assert_eq!(
        wal_bytes(dir.path()),
        0,
        "the WAL is empty once everything is flushed"
    );
}
