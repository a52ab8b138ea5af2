//! Compaction: how fast the compactor merges ingester blocks and rewrites them into the next
//! retention tier, and what a span costs at rest before and after. Each repeat starts from a copy
//! of the same store of level-0 blocks (the store itself is kept and reused), runs the compactor
//! with an injected clock until it settles, and reads the figures from its cycle reports and the
//! blocks' metas.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use strata_block::BlockConfig;
use strata_compactor::{
    Compactor, CompactorConfig, CompactorMetrics, CycleReport, RetentionConfig,
};
use strata_query::{Querier, QueryConfig, QueryMetrics};
use strata_storage::{LocalConfig, Storage, StorageConfig};

use super::store::Store;
use super::{progress, unique};
use crate::report::{FIGURE_HEADER, Samples, Section, Table};

/// The runbook policy the rewrite is measured with.
const RUNBOOK: &str = "tiers:\n  - after: 0h\n    keep: all\n  - after: 24h\n    keep: { sample: 0.10, errors: true, slower_than: 1s }\n  - after: 7d\n    keep: { errors: true }\n  - after: 30d\n    keep: none\nrollups_for: 400d\n";

/// One repeat's figures.
struct Run {
    merge_spans_per_sec: f64,
    merge_secs: f64,
    merged_spans: u64,
    rewrite_spans_per_sec: f64,
    bytes_per_span_before: f64,
    bytes_per_span_merged: f64,
    blocks_after_merge: usize,
    kept_spans: u64,
    bytes_per_kept_span: f64,
    at_rest_ratio: f64,
}

/// Copies a directory tree (a local bucket) file by file.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Runs cycles at `now` until one does nothing; the reports summed and the time taken.
async fn settle(compactor: &Compactor, now: DateTime<Utc>) -> anyhow::Result<(CycleReport, f64)> {
    let started = Instant::now();
    let mut total = CycleReport::default();
    for _ in 0..20 {
        let r = compactor.run_cycle(now).await?;
        let quiet = r.jobs + r.folds + r.drops + r.rollup_jobs + r.deleted + r.recovered_marks == 0;
        total.jobs += r.jobs;
        total.spans_in += r.spans_in;
        total.spans_out += r.spans_out;
        total.bytes_in += r.bytes_in;
        total.bytes_out += r.bytes_out;
        if quiet {
            break;
        }
    }
    Ok((total, started.elapsed().as_secs_f64()))
}

/// (data bytes, spans, blocks) of the live blocks.
async fn at_rest(storage: &Storage) -> anyhow::Result<(u64, u64, usize)> {
    let querier = Querier::new(
        storage.clone(),
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    );
    querier.poll_blocklist().await?;
    let blocks = querier
        .blocklist()
        .blocks(&strata_model::TenantId::new(super::store::TENANT)?);
    Ok((
        blocks.iter().map(|b| b.data_size + b.bloom_size).sum(),
        blocks.iter().map(|b| b.span_count).sum(),
        blocks.len(),
    ))
}

async fn run_once(store: &Store) -> anyhow::Result<Run> {
    let dir = std::env::temp_dir().join(format!(
        "strata-bench-compaction-{}-{}",
        std::process::id(),
        unique()
    ));
    copy_tree(&store.dir, &dir)?;
    let result = measure(store, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(store: &Store, dir: &Path) -> anyhow::Result<Run> {
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig {
            path: dir.to_owned(),
        },
        ..Default::default()
    })?;
    let retention: RetentionConfig = serde_yaml_ng::from_str(RUNBOOK)?;
    retention.validate().map_err(anyhow::Error::msg)?;
    let compactor = Compactor::new(
        storage.clone(),
        CompactorConfig::default(),
        retention,
        BlockConfig::default(),
        CompactorMetrics::default(),
    );
    let (before_bytes, before_spans, _) = at_rest(&storage).await?;
    let last_start = store.traces.iter().map(|t| t.1).max().unwrap_or(0);
    let data_end = DateTime::from_timestamp_nanos(i64::try_from(last_start).unwrap_or(i64::MAX));
    // Merging: shortly after the data, every window settled.
    let (merge, merge_secs) = settle(&compactor, data_end + Duration::hours(3)).await?;
    let (merged_bytes, merged_spans, blocks_after_merge) = at_rest(&storage).await?;
    // Into tier 1: a 10% sample plus every error and slow trace.
    let (rewrite, rewrite_secs) = settle(&compactor, data_end + Duration::hours(26)).await?;
    let (kept_bytes, kept_spans, _) = at_rest(&storage).await?;
    let per = |bytes: u64, spans: u64| bytes as f64 / spans.max(1) as f64;
    Ok(Run {
        merge_spans_per_sec: merge.spans_in as f64 / merge_secs,
        merge_secs,
        merged_spans: merge.spans_in,
        rewrite_spans_per_sec: rewrite.spans_in as f64 / rewrite_secs,
        bytes_per_span_before: per(before_bytes, before_spans),
        bytes_per_span_merged: per(merged_bytes, merged_spans),
        blocks_after_merge,
        kept_spans,
        bytes_per_kept_span: per(kept_bytes, kept_spans),
        at_rest_ratio: before_bytes as f64 / kept_bytes.max(1) as f64,
    })
}

/// Runs the benchmark `repeats` times over `store`.
pub async fn run(store: &Store, repeats: usize) -> anyhow::Result<Section> {
    let mut runs = Vec::new();
    for i in 0..repeats.max(1) {
        progress(&format!("compaction run {} of {}", i + 1, repeats.max(1)));
        runs.push(run_once(store).await?);
    }
    let pick = |f: fn(&Run) -> f64| Samples(runs.iter().map(f).collect());
    let mut table = Table::new(FIGURE_HEADER);
    table.figure(
        "merge throughput",
        "spans/s",
        &pick(|r| r.merge_spans_per_sec),
        None,
    );
    table.figure("merge, whole store", "s", &pick(|r| r.merge_secs), None);
    table.figure(
        "spans read by merges",
        "spans",
        &pick(|r| r.merged_spans as f64),
        None,
    );
    table.figure(
        "blocks after merging",
        "blocks",
        &pick(|r| r.blocks_after_merge as f64),
        None,
    );
    table.figure(
        "tier-1 rewrite throughput",
        "spans/s read",
        &pick(|r| r.rewrite_spans_per_sec),
        None,
    );
    table.figure(
        "bytes per span, ingester blocks",
        "B",
        &pick(|r| r.bytes_per_span_before),
        None,
    );
    table.figure(
        "bytes per span, merged",
        "B",
        &pick(|r| r.bytes_per_span_merged),
        None,
    );
    table.figure(
        "spans kept by tier 1",
        "spans",
        &pick(|r| r.kept_spans as f64),
        None,
    );
    table.figure(
        "bytes per kept span, tier 1",
        "B",
        &pick(|r| r.bytes_per_kept_span),
        None,
    );
    table.figure(
        "bytes at rest, ingester blocks ÷ tier 1",
        "×",
        &pick(|r| r.at_rest_ratio),
        None,
    );
    Ok(Section {
        title: "Compaction".into(),
        setup: format!(
            "{} level-0 blocks of {} spans ({} traces, {:.1} MB of data and blooms) written through \
             the block writer; each of {} repeats compacts a copy with the default compactor \
             settings (window 1h, up to 8 inputs per job, one job at a time) and the runbook \
             retention policy, clock injected: first until merging settles, then 26 h later \
             into tier 1. Throughput is spans read by jobs (folds into rollups included) per \
             second of wall time; bytes are data.parquet plus bloom shards of the live blocks.",
            store.blocks,
            store.spans,
            store.traces.len(),
            store.bytes as f64 / 1e6,
            repeats.max(1)
        ),
        tables: vec![table],
        notes: Vec::new(),
    })
}
