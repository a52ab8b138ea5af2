//! The compactor end to end, with an injected clock: the workload is cut into ingester-like
//! blocks on local disk, aged through every retention tier of the runbook policy, and checked
//! after each step through the querier (trace by ID, search, stats) and the blocks themselves;
//! then the compactor is stopped at every step it can die at and restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, BlockTraceReader, encode_block, upload_block};
use strata_compactor::{
    Compactor, CompactorConfig, CompactorMetrics, CycleReport, RetentionConfig, sample_point,
};
use strata_model::{Span, StatusCode, TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics, SearchRequest, StatsRequest};
use strata_storage::faults::{Faults, Op, Requests};
use strata_storage::{LocalConfig, Storage, StorageConfig};

const RUNBOOK: &str = "tiers:\n  - after: 0h\n    keep: all\n  - after: 24h\n    keep: { sample: 0.10, errors: true, slower_than: 1s }\n  - after: 7d\n    keep: { errors: true }\n  - after: 30d\n    keep: none\nrollups_for: 400d\n";

/// The original data: every span by trace.
struct Original {
    traces: BTreeMap<TraceId, Vec<Span>>,
    start: DateTime<Utc>,
}

impl Original {
    fn has_error(&self, id: &TraceId) -> bool {
        self.traces[id]
            .iter()
            .any(|s| s.status_code == StatusCode::ERROR)
    }

    fn duration_nanos(&self, id: &TraceId) -> u64 {
        let spans = &self.traces[id];
        let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap();
        let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap();
        end - start
    }

    /// The traces (and weights) each tier of the runbook keeps, computed from the spans.
    fn expected(&self, tier: u32) -> BTreeMap<TraceId, f64> {
        self.traces
            .keys()
            .filter_map(|id| {
                let error = self.has_error(id);
                let slow = self.duration_nanos(id) > 1_000_000_000;
                let sampled = sample_point(id) < 0.10;
                match tier {
                    0 => Some((*id, 1.0)),
                    1 if error || slow => Some((*id, 1.0)),
                    1 if sampled => Some((*id, 10.0)),
                    2 if error => Some((*id, 1.0)),
                    _ => None,
                }
            })
            .collect()
    }
}

fn local_storage(dir: &std::path::Path) -> Storage {
    Storage::from_config(&StorageConfig {
        local: LocalConfig {
            path: dir.to_owned(),
        },
        ..Default::default()
    })
    .unwrap()
}

/// Writes `blocks` ingester-like blocks of the workload; the spans of a few traces are split
/// over two neighbouring blocks, as a trace that went idle and then got late spans would be.
async fn ingest(
    storage: &Storage,
    traces: usize,
    blocks: usize,
    seed: u64,
    split: bool,
) -> Original {
    ingest_at_rate(storage, traces, blocks, seed, split, 50.0).await
}

async fn ingest_at_rate(
    storage: &Storage,
    traces: usize,
    blocks: usize,
    seed: u64,
    split: bool,
    traces_per_second: f64,
) -> Original {
    let start_unix_nano = 1_767_225_600_000_000_000;
    let mut workload = Workload::new(WorkloadConfig {
        seed,
        start_unix_nano,
        traces_per_second,
        error_ratio: 0.1,
        slow_ratio: 0.05,
    });
    let generated: Vec<Vec<Span>> = (0..traces)
        .map(|_| strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0)
        .collect();
    let per_block = traces.div_ceil(blocks);
    let mut block_spans: Vec<Vec<Span>> = vec![Vec::new(); blocks];
    for (i, spans) in generated.iter().enumerate() {
        let b = i / per_block;
        if split && i % per_block == 0 && b > 0 {
            // The first trace of each block but the first leaves half its spans behind.
            let (early, late) = spans.split_at(spans.len() / 2);
            block_spans[b - 1].extend_from_slice(early);
            block_spans[b].extend_from_slice(late);
        } else {
            block_spans[b].extend_from_slice(spans);
        }
    }
    let tenant = TenantId::default_tenant();
    for spans in block_spans {
        let block = encode_block(
            BlockIdentity::fresh(tenant.clone()),
            BlockConfig::default(),
            spans,
        )
        .unwrap();
        upload_block(storage, &block).await.unwrap();
    }
    let mut by_trace = BTreeMap::new();
    for spans in generated {
        by_trace.insert(spans[0].trace_id, spans);
    }
    Original {
        traces: by_trace,
        start: chrono::DateTime::from_timestamp_nanos(start_unix_nano as i64),
    }
}

fn compactor(storage: &Storage) -> Compactor {
    sharded_compactor(storage, CompactorConfig::default())
}

fn sharded_compactor(storage: &Storage, config: CompactorConfig) -> Compactor {
    let retention: RetentionConfig = serde_yaml_ng::from_str(RUNBOOK).unwrap();
    retention.validate().unwrap();
    Compactor::new(
        storage.clone(),
        config,
        retention,
        BlockConfig::default(),
        CompactorMetrics::default(),
    )
}

fn quiet(r: &CycleReport) -> bool {
    r.jobs + r.folds + r.drops + r.rollup_jobs + r.rollup_drops + r.deleted + r.recovered_marks == 0
}

/// Runs cycles at `now` until one has nothing to do.
async fn settle(compactor: &Compactor, now: DateTime<Utc>) -> strata_compactor::Result<u32> {
    for cycles in 1..=12 {
        if quiet(&compactor.run_cycle(now).await?) {
            return Ok(cycles);
        }
    }
    panic!("compaction at {now} did not settle in 12 cycles");
}

/// Every trace in the live blocks, with its span count and weight, read block by block; a
/// trace in two live blocks fails the test.
async fn stored(storage: &Storage) -> BTreeMap<TraceId, (usize, f64)> {
    let querier = querier(storage).await;
    let mut out = BTreeMap::new();
    for meta in querier.blocklist().blocks(&TenantId::default_tenant()) {
        let mut reader = BlockTraceReader::open(storage, meta).await.unwrap();
        while let Some(trace) = reader.next().await.unwrap() {
            let previous = out.insert(trace.trace_id, (trace.spans.len(), trace.weight));
            assert!(
                previous.is_none(),
                "trace {} is in two live blocks",
                trace.trace_id
            );
        }
    }
    out
}

async fn querier(storage: &Storage) -> Querier {
    let querier = Querier::new(
        storage.clone(),
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    );
    querier.poll_blocklist().await.unwrap();
    querier
}

/// Trace IDs `{ }` finds, asserting none comes twice.
async fn search_all(querier: &Querier) -> BTreeSet<TraceId> {
    let request = SearchRequest {
        query: Arc::new(strata_traceql::parse("{ }").unwrap()),
        limit: 1_000_000,
        spans_per_spanset: 1,
        range: None,
        min_duration_nanos: None,
        max_duration_nanos: None,
    };
    let result = querier
        .search(&TenantId::default_tenant(), request)
        .await
        .unwrap();
    let mut ids = BTreeSet::new();
    for hit in result.traces {
        assert!(
            ids.insert(hit.trace_id),
            "search returned {} twice",
            hit.trace_id
        );
    }
    ids
}

/// Span and error counts per (service, span name) of the original spans.
fn true_counts(original: &Original) -> BTreeMap<(String, String), (u64, u64)> {
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for span in original.traces.values().flatten() {
        let key = (
            span.service_name().unwrap_or_default().to_owned(),
            span.name.to_string(),
        );
        let c = counts.entry(key).or_default();
        c.0 += 1;
        c.1 += u64::from(span.status_code == StatusCode::ERROR);
    }
    counts
}

/// Checks the rollups against the original spans: exact counts per operation, and p99 within
/// the sketch's bound for operations with at least 100 spans. Returns the bucket width seen.
/// The rollups' figures over the whole of the original data.
async fn all_stats(storage: &Storage, original: &Original) -> strata_query::StatsResult {
    querier(storage)
        .await
        .stats(
            &TenantId::default_tenant(),
            &StatsRequest {
                service: None,
                name: None,
                start: original.start - Duration::days(1),
                end: original.start + Duration::days(2),
            },
        )
        .await
        .unwrap()
}

/// Span and error counts per (service, span name) in the rollups.
fn rollup_counts(stats: &strata_query::StatsResult) -> BTreeMap<(String, String), (u64, u64)> {
    let mut got: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for op in &stats.operations {
        let c = got
            .entry((op.service.clone(), op.name.clone()))
            .or_default();
        c.0 += op.cell.spans;
        c.1 += op.cell.errors;
    }
    got
}

async fn check_rollups(storage: &Storage, original: &Original) -> u32 {
    let stats = all_stats(storage, original).await;
    let got = rollup_counts(&stats);
    assert_eq!(got, true_counts(original), "rollup counts per operation");
    let mut checked = 0;
    for op in stats.operations.iter().filter(|o| o.cell.spans >= 100) {
        let mut durations: Vec<u64> = original
            .traces
            .values()
            .flatten()
            .filter(|s| {
                s.service_name().unwrap_or_default() == op.service
                    && *s.name == *op.name
                    && s.kind.0 == op.kind
            })
            .map(|s| s.end_unix_nano - s.start_unix_nano)
            .collect();
        durations.sort_unstable();
        assert_eq!(durations.len() as u64, op.cell.spans);
        let truth = durations[(0.99 * (durations.len() - 1) as f64) as usize] as f64;
        let estimate = op.cell.quantile(0.99).unwrap();
        let bound = strata_block::SKETCH_RELATIVE_ACCURACY * truth;
        assert!(
            (estimate - truth).abs() <= bound + 1e-9,
            "{} {}: p99 {estimate} vs true {truth} (bound {bound})",
            op.service,
            op.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} operations had 100 spans");
    stats.bucket_seconds
}

fn dirs(root: &std::path::Path, sub: &str) -> usize {
    std::fs::read_dir(root.join("single-tenant").join(sub))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn compaction_ages_traces_through_every_tier_and_rollups_outlive_them() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = local_storage(dir.path());
        let original = ingest(&storage, 1_500, 6, 11, true).await;
        let compactor = compactor(&storage);
        let t0 = original.start;
        let all_spans: usize = original.traces.values().map(Vec::len).sum();

        // Fresh: the six blocks of one window merge into one; nothing is dropped.
        settle(&compactor, t0 + Duration::minutes(5)).await.unwrap();
        let live = querier(&storage)
            .await
            .blocklist()
            .blocks(&TenantId::default_tenant());
        assert_eq!(live.len(), 1, "one window, one block");
        assert_eq!(live[0].compaction_level, 1);
        assert_eq!(live[0].span_count as usize, all_spans);
        let now_stored = stored(&storage).await;
        assert_eq!(now_stored.len(), original.traces.len());
        for (id, spans) in &original.traces {
            assert_eq!(now_stored[id], (spans.len(), 1.0), "trace {id}");
        }
        assert_eq!(check_rollups(&storage, &original).await, 60);

        // Each tier in turn: exactly the traces it keeps, with their weights.
        for (tier, age) in [
            (1, Duration::hours(25)),
            (2, Duration::days(8)),
            (3, Duration::days(31)),
        ] {
            settle(&compactor, t0 + age).await.unwrap();
            let expected = original.expected(tier);
            let got: BTreeMap<TraceId, f64> = stored(&storage)
                .await
                .into_iter()
                .map(|(id, (n, w))| {
                    assert_eq!(n, original.traces[&id].len(), "trace {id} lost spans");
                    (id, w)
                })
                .collect();
            assert_eq!(got, expected, "tier {tier}");
            let weighted = expected.values().filter(|w| **w > 1.0).count();
            eprintln!(
                "tier {tier}: {} of {} traces kept ({weighted} sampled, weight 10)",
                expected.len(),
                original.traces.len()
            );
            let q = querier(&storage).await;
            assert_eq!(
                search_all(&q).await,
                expected.keys().copied().collect::<BTreeSet<_>>()
            );
            for id in expected.keys().take(20) {
                let found = q
                    .find_trace(&TenantId::default_tenant(), id, None)
                    .await
                    .unwrap();
                assert_eq!(found.spans.len(), original.traces[id].len());
            }
            if tier == 1 {
                let sampled = expected.values().filter(|w| **w == 10.0).count();
                let kept_outright = expected.values().filter(|w| **w == 1.0).count();
                assert!(
                    sampled > 50 && kept_outright > 100,
                    "{sampled} {kept_outright}"
                );
                // Scaled back, the sampled healthy traces estimate the healthy total.
                let healthy = original
                    .traces
                    .keys()
                    .filter(|id| {
                        !original.has_error(id) && original.duration_nanos(id) <= 1_000_000_000
                    })
                    .count() as f64;
                let estimate = sampled as f64 * 10.0;
                assert!(
                    (estimate - healthy).abs() < 0.25 * healthy,
                    "{estimate} vs {healthy}"
                );
            }
            // Rollups keep every span's figures, whatever the blocks lost; buckets widen after 7d.
            let width = check_rollups(&storage, &original).await;
            assert_eq!(width, if tier >= 2 { 3600 } else { 60 }, "tier {tier}");
        }
        assert!(stored(&storage).await.is_empty());

        // Past the grace period nothing of the blocks is left in the bucket.
        settle(&compactor, t0 + Duration::days(31) + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(dirs(dir.path(), "blocks"), 0);
        check_rollups(&storage, &original).await;

        // Past rollups_for, the rollups go too.
        settle(&compactor, t0 + Duration::days(401)).await.unwrap();
        assert!(all_stats(&storage, &original).await.operations.is_empty());
        settle(&compactor, t0 + Duration::days(401) + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(dirs(dir.path(), "rollups"), 0);
    });
}

/// What every state of the bucket must give: no trace twice (search, blocks), every trace that
/// must be there found whole by ID, and rollups never counting a span twice.
async fn check_once(storage: &Storage, original: &Original, must: &BTreeSet<TraceId>) {
    let q = querier(storage).await;
    let found = search_all(&q).await;
    assert!(found.is_subset(&original.traces.keys().copied().collect()));
    assert!(
        must.is_subset(&found),
        "{} traces missing",
        must.difference(&found).count()
    );
    let blocks = stored(storage).await;
    // Every 8th trace by ID (the whole set is checked at the end of each step).
    for id in must.iter().step_by(8) {
        let trace = q
            .find_trace(&TenantId::default_tenant(), id, None)
            .await
            .unwrap();
        assert_eq!(trace.spans.len(), original.traces[id].len(), "trace {id}");
        assert_eq!(blocks[id].0, original.traces[id].len());
    }
    let stats = all_stats(storage, original).await;
    let counted: u64 = stats.operations.iter().map(|o| o.cell.spans).sum();
    let total: usize = original.traces.values().map(Vec::len).sum();
    assert!(
        counted as usize <= total,
        "rollups count {counted} of {total} spans"
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    strata_bench::suite::compaction::copy_tree(from, to).unwrap();
}

/// The step of the compactor's work a stopped request was: which object it would have
/// written or deleted.
fn step_of(op: Op, path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or("");
    match (op, path.contains("/rollups/"), file) {
        (Op::Delete, _, "meta.json") => "delete meta.json",
        (Op::Delete, _, "compacted.json") => "delete compacted.json",
        (Op::Delete, _, _) => "delete data",
        (Op::Put, _, "compacted.json") => "write compacted.json",
        (Op::Put, _, "index.json.zst") => "write the tenant index",
        (Op::Put, true, "meta.json") => "write a rollup segment's meta.json",
        (Op::Put, true, _) => "write a rollup segment's data",
        (Op::Put, false, "meta.json") => "write a block's meta.json",
        (Op::Put, false, _) => "write a block's data, bloom or tags",
        _ => "other",
    }
}

/// For each step of the scenario, from the same starting bucket: let the compactor make its
/// first write or delete and stop it at the next (from outside, with a storage that fails that
/// request and every later one), then at the one after, ... (each from a copy of the bucket as
/// it was), check what a reader sees, restart a clean compactor, and check again once it has
/// settled.
#[test]
fn a_compactor_stopped_at_any_step_leaves_every_trace_readable_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let (bucket, snapshot) = (root.path().join("bucket"), root.path().join("snapshot"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let original = ingest(&local_storage(&bucket), 120, 3, 5, false).await;
        let t0 = original.start;
        let mut stopped_at: BTreeSet<&str> = BTreeSet::new();
        let scenario = [
            (t0 + Duration::minutes(5), 0),
            (t0 + Duration::hours(2), 0),
            (t0 + Duration::hours(25), 1),
            (t0 + Duration::hours(27), 1),
            (t0 + Duration::days(8), 2),
            (t0 + Duration::days(8) + Duration::hours(2), 2),
        ];
        let mut restarts = 0;
        for (now, tier) in scenario {
            // Traces no state of this step may lose: those kept by the tier being entered
            // (the tier being left keeps more).
            let must: BTreeSet<TraceId> = original.expected(tier).into_keys().collect();
            let _ = std::fs::remove_dir_all(&snapshot);
            copy_tree(&bucket, &snapshot);
            for stop_at in 0.. {
                std::fs::remove_dir_all(&bucket).unwrap();
                copy_tree(&snapshot, &bucket);
                let storage = local_storage(&bucket);
                let faults = Faults::new();
                faults.stop_at(Requests::Writes, "", stop_at);
                let stopped = compactor(&storage.with_faults(&faults));
                let result = settle(&stopped, now).await;
                let Some((op, path)) = faults.stopped_at() else {
                    result.unwrap();
                    break;
                };
                stopped_at.insert(step_of(op, &path));
                restarts += 1;
                check_once(&storage, &original, &must).await;
                // Restarted: a new process knows only the bucket.
                settle(&compactor(&storage), now).await.unwrap();
                let got: BTreeMap<TraceId, f64> = stored(&storage)
                    .await
                    .into_iter()
                    .map(|(id, (_, w))| (id, w))
                    .collect();
                assert_eq!(
                    got,
                    original.expected(tier),
                    "after a stop at {op:?} {path} and a restart"
                );
                check_rollups_exact(&storage, &original).await;
            }
            check_once(&storage_of(&bucket), &original, &must).await;
        }
        let got: BTreeMap<TraceId, f64> = stored(&storage_of(&bucket))
            .await
            .into_iter()
            .map(|(id, (_, w))| (id, w))
            .collect();
        assert_eq!(got, original.expected(2));
        for step in [
            "write a rollup segment's data",
            "write a rollup segment's meta.json",
            "write a block's data, bloom or tags",
            "write a block's meta.json",
            "write compacted.json",
            "write the tenant index",
            "delete meta.json",
            "delete data",
            "delete compacted.json",
        ] {
            assert!(
                stopped_at.contains(step),
                "never stopped at {step:?}: {stopped_at:?}"
            );
        }
        eprintln!("{restarts} stops and restarts; stopped at {stopped_at:?}");
        assert!(restarts >= 60, "{restarts} restarts");
    });
}

fn storage_of(dir: &std::path::Path) -> Storage {
    local_storage(dir)
}

async fn check_rollups_exact(storage: &Storage, original: &Original) {
    let stats = all_stats(storage, original).await;
    assert_eq!(rollup_counts(&stats), true_counts(original));
}

/// Two compactors of two shards on one S3 bucket (moto), running their cycles at the same time:
/// no block is an input of two compactions, both do work, and every trace is readable once.
#[test]
fn two_compactors_on_one_s3_bucket_never_compact_the_same_block() {
    let s3 = crate::support::S3Server::start("compaction");
    let yaml = s3.storage_yaml();
    let config: crate::support::StorageSection = serde_yaml_ng::from_str(&yaml).unwrap();
    let storage = Storage::from_config(&config.storage).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // 600 traces over about 8 hours, cut into 16 blocks: two or three per hour window.
        let original = ingest_at_rate(&storage, 600, 16, 3, false, 600.0 / 28_800.0).await;
        let now = original.start + Duration::hours(12);
        let shard = |shard| {
            sharded_compactor(
                &storage,
                CompactorConfig {
                    shards: 2,
                    shard,
                    ..CompactorConfig::default()
                },
            )
        };
        let (a, b) = (shard(0), shard(1));
        let mut jobs = [0u64; 2];
        for _ in 0..6 {
            let (ra, rb) = tokio::join!(a.run_cycle(now), b.run_cycle(now));
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            jobs[0] += ra.jobs;
            jobs[1] += rb.jobs;
            if quiet(&ra) && quiet(&rb) {
                break;
            }
        }
        assert!(jobs[0] > 0 && jobs[1] > 0, "jobs per shard: {jobs:?}");
        // Every block ever written as an output names its inputs; none may be named twice.
        let tenant = TenantId::default_tenant();
        let entries = strata_block::catalog::list_entries(&storage, &tenant, "blocks")
            .await
            .unwrap();
        let mut inputs = BTreeSet::new();
        let mut outputs = 0;
        for (id, entry) in &entries {
            if !entry.has_meta {
                continue;
            }
            let bytes = storage
                .get(&strata_block::layout::meta_path(&tenant, *id))
                .await
                .unwrap();
            let meta = strata_block::BlockMeta::parse(&bytes, "meta").unwrap();
            outputs += usize::from(!meta.compacted_from.is_empty());
            for input in meta.compacted_from {
                assert!(inputs.insert(input), "block {input} was compacted twice");
            }
        }
        assert!(outputs >= 2, "{outputs} outputs");
        let q = querier(&storage).await;
        assert_eq!(
            search_all(&q).await,
            original.traces.keys().copied().collect::<BTreeSet<_>>()
        );
        let blocks = stored(&storage).await;
        assert_eq!(blocks.len(), original.traces.len());
        check_rollups_exact(&storage, &original).await;
    });
}

/// The real server with a fast compactor: spans sent over OTLP/HTTP reach the rollups, and
/// `/api/strata/stats` and `strata stats` report their exact counts per operation.
#[test]
fn stats_come_from_the_rollups_over_http_and_the_cli() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let strata = crate::support::Strata::start(
        dir.path(),
        "ingester:\n  trace_idle_period: 1s\n  max_block_duration: 2s\n  flush_check_period: 200ms\ncompactor:\n  cycle: 1s\n",
    );
    let now = Utc::now().timestamp_nanos_opt().unwrap() as u64;
    let mut workload = Workload::new(WorkloadConfig {
        seed: 9,
        start_unix_nano: now - 120_000_000_000,
        traces_per_second: 1.0,
        ..WorkloadConfig::default()
    });
    let requests: Vec<_> = (0..40)
        .map(|_| workload.next_trace().into_request())
        .collect();
    let original = Original {
        traces: requests
            .iter()
            .flat_map(|r| strata_model::otlp::spans_from_request(r.clone()).0)
            .fold(BTreeMap::new(), |mut m: BTreeMap<TraceId, Vec<Span>>, s| {
                m.entry(s.trace_id).or_default().push(s);
                m
            }),
        start: Utc::now(),
    };
    let total: usize = original.traces.values().map(Vec::len).sum();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = format!("http://{}", strata.api);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for request in &requests {
            let response = client
                .post(strata.traces_url())
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let stats = loop {
            let response = client
                .get(format!("{api}/api/strata/stats?since=1h"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            let counted: u64 = body["operations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["spanCount"].as_u64().unwrap())
                .sum();
            if counted as usize == total {
                break body;
            }
            assert!(counted as usize <= total, "{counted} of {total}");
            assert!(
                std::time::Instant::now() < deadline,
                "rollups hold {counted} of {total} spans"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        let mut got: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for op in stats["operations"].as_array().unwrap() {
            let c = got
                .entry((
                    op["service"].as_str().unwrap().to_owned(),
                    op["name"].as_str().unwrap().to_owned(),
                ))
                .or_default();
            c.0 += op["spanCount"].as_u64().unwrap();
            c.1 += op["errorCount"].as_u64().unwrap();
        }
        assert_eq!(got, true_counts(&original));
        let bad = client
            .get(format!("{api}/api/strata/stats?since=soon"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(bad.text().await.unwrap().contains("since"));
    });
    let (busiest, _) = true_counts(&original)
        .into_iter()
        .max_by_key(|(k, c)| (c.0, std::cmp::Reverse(k.clone())))
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "stats",
            "--url",
            &api,
            "--since",
            "1h",
            "--service",
            &busiest.0,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SERVICE"), "{text}");
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with(&busiest.0)),
        "{text}"
    );
    assert!(text.contains(&busiest.1), "{text}");
    strata.stop();
}

/// Spans stored twice are counted once. A WAL replay after a crash re-uploads spans that were
/// already in a block (a whole trace, or the part of it in a segment still pinned), and a
/// client resends a request whose answer it never got; the copies land in later blocks, maybe
/// alone in their compaction window, maybe several to a block. The rollups must count what is
/// stored, each distinct span once, before and after the copies are merged.
#[test]
fn spans_stored_twice_by_a_wal_replay_or_a_client_retry_are_counted_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let storage = local_storage(dir.path());
        let original = ingest(&storage, 120, 3, 31, false).await;
        let traces: Vec<&Vec<Span>> = original.traces.values().collect();
        let tenant = TenantId::default_tenant();
        let upload = |spans: Vec<Span>| {
            let storage = storage.clone();
            let tenant = tenant.clone();
            async move {
                let block =
                    encode_block(BlockIdentity::fresh(tenant), BlockConfig::default(), spans)
                        .unwrap();
                upload_block(&storage, &block).await.unwrap();
            }
        };
        // A replay: whole traces again, and the first half of others.
        let mut replay: Vec<Span> = traces[..20]
            .iter()
            .flat_map(|t| t.iter().cloned())
            .collect();
        for t in &traces[20..40] {
            replay.extend(t[..t.len() / 2].iter().cloned());
        }
        upload(replay).await;
        // A retry: a few traces a third time, in a block of their own.
        upload(
            traces[10..25]
                .iter()
                .flat_map(|t| t.iter().cloned())
                .collect(),
        )
        .await;
        let compactor = compactor(&storage);
        // Folded, not merged yet: the copies are in different live blocks.
        let report = compactor
            .run_cycle(original.start + Duration::minutes(10))
            .await
            .unwrap();
        assert_eq!(report.folds, 5, "{report:?}");
        assert!(report.jobs == 0, "{report:?}");
        let copies: usize = traces[..20].iter().map(|t| t.len()).sum::<usize>()
            + traces[20..40].iter().map(|t| t.len() / 2).sum::<usize>()
            + traces[10..25].iter().map(|t| t.len()).sum::<usize>();
        assert_eq!(report.fold_copies as usize, copies, "{report:?}");
        println!(
            "5 folds of {} spans: {} copies found with {} trace lookups in other blocks",
            original.traces.values().map(Vec::len).sum::<usize>() + copies,
            report.fold_copies,
            report.fold_lookups
        );
        let stats = all_stats(&storage, &original).await;
        assert_eq!(
            rollup_counts(&stats),
            true_counts(&original),
            "before the copies are merged"
        );
        // Merged: still counted once, and stored once.
        settle(&compactor, original.start + Duration::hours(4))
            .await
            .unwrap();
        let stats = all_stats(&storage, &original).await;
        assert_eq!(
            rollup_counts(&stats),
            true_counts(&original),
            "after compaction"
        );
        let stored = stored(&storage).await;
        for (id, spans) in &original.traces {
            assert_eq!(stored.get(id).map(|s| s.0), Some(spans.len()), "trace {id}");
        }
    });
}
