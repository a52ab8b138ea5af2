//! Planner tests: plain data in, plan out, `now` fixed.

use chrono::TimeZone;
use strata_block::BloomMeta;

use super::*;
use crate::config::RetentionConfig;

const HOUR: i64 = 3600;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn tenant() -> TenantId {
    TenantId::new("t").unwrap()
}

fn runbook() -> RetentionPolicy {
    let yaml = "tiers:\n  - after: 0h\n    keep: all\n  - after: 24h\n    keep: { sample: 0.10, errors: true, slower_than: 1s }\n  - after: 7d\n    keep: { errors: true }\n  - after: 30d\n    keep: none\nrollups_for: 400d\n";
    let config: RetentionConfig = serde_yaml_ng::from_str(yaml).unwrap();
    config.validate().unwrap();
    config.policy_for("t")
}

/// A block whose data ends `ago` seconds before `now()`.
fn block(ago: i64, level: u32, tier: u32, traces: u64) -> Arc<BlockMeta> {
    let end = now() - chrono::Duration::seconds(ago);
    Arc::new(BlockMeta {
        format: "strata-parquet".into(),
        format_version: 1,
        block_id: Uuid::now_v7(),
        tenant: "t".into(),
        created_at: end,
        start_time: end - chrono::Duration::seconds(10),
        end_time: end,
        min_trace_id: "00".into(),
        max_trace_id: "ff".into(),
        trace_count: traces,
        span_count: traces * 10,
        data_size: traces * 100,
        footer_size: 10,
        bloom_size: 10,
        bloom: BloomMeta {
            false_positive_rate: 0.001,
            shards: 1,
        },
        row_groups: vec![],
        compaction_level: level,
        retention_tier: tier,
        compacted_from: vec![],
        rolled_up: level > 0 || tier > 0,
    })
}

fn with(meta: &Arc<BlockMeta>, f: impl FnOnce(&mut BlockMeta)) -> Arc<BlockMeta> {
    let mut m = (**meta).clone();
    f(&mut m);
    Arc::new(m)
}

fn segment(start_ago: i64, bucket: u32, sources: Vec<Uuid>) -> Arc<RollupMeta> {
    let start = now() - chrono::Duration::seconds(start_ago);
    Arc::new(RollupMeta {
        format: "strata-rollup".into(),
        format_version: 1,
        segment_id: sources.first().copied().unwrap_or_else(Uuid::now_v7),
        tenant: "t".into(),
        created_at: now(),
        start_time: start,
        end_time: start + chrono::Duration::seconds(60),
        row_count: 1,
        span_count: 1,
        data_size: 100,
        min_bucket_seconds: bucket,
        sources,
        compacted_from: vec![],
    })
}

/// The block as it is once folded into rollups.
fn counted(meta: &Arc<BlockMeta>) -> Arc<BlockMeta> {
    with(meta, |m| m.rolled_up = true)
}

fn fold_ids(folds: &[Fold]) -> Vec<Uuid> {
    folds.iter().map(|f| f.block.block_id).collect()
}

fn ids(blocks: &[Arc<BlockMeta>]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = blocks.iter().map(|b| b.block_id).collect();
    ids.sort();
    ids
}

/// Aligns `now()` so that tests control which window a block falls in.
fn in_window(offset_in_window: i64, windows_ago: i64) -> i64 {
    let into = now().timestamp().rem_euclid(HOUR);
    into - offset_in_window + windows_ago * HOUR
}

#[test]
fn blocks_of_one_window_and_level_merge_and_other_windows_do_not() {
    let a = counted(&block(in_window(100, 0), 0, 0, 10));
    let b = counted(&block(in_window(200, 0), 0, 0, 20));
    let c = block(in_window(300, 1), 0, 0, 30);
    let d = block(in_window(400, 0), 1, 0, 40);
    let view = TenantView {
        blocks: vec![a.clone(), b.clone(), c.clone(), d],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert_eq!(p.jobs.len(), 1, "{p:#?}");
    let job = &p.jobs[0];
    assert_eq!(ids(&job.inputs), ids(&[a, b]));
    assert_eq!((job.level, job.tier, job.from_tier), (1, 0, 0));
    // c is not counted yet: folded; d (level 1) is already rolled up.
    assert_eq!(fold_ids(&p.folds), ids(&[c]));
}

#[test]
fn settled_windows_merge_across_levels() {
    let a = block(in_window(100, 3), 2, 0, 10);
    let b = counted(&block(in_window(200, 3), 0, 0, 20));
    let view = TenantView {
        blocks: vec![a, b],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.jobs[0].level, 3);
}

/// Blocks not yet counted are folded before anything else reads them, one after another in
/// block-ID order, each against the counted blocks and earlier folds its time range overlaps
/// (where copies of its spans can be); they join jobs only once counted.
#[test]
fn uncounted_blocks_are_folded_first_in_id_order_against_what_overlaps_them() {
    let counted_block = counted(&block(in_window(100, 0), 0, 0, 10));
    let first = block(in_window(105, 0), 0, 0, 10);
    let second = block(in_window(102, 0), 0, 0, 10);
    let elsewhere = block(in_window(1800, 0), 0, 0, 10);
    let view = TenantView {
        blocks: vec![
            elsewhere.clone(),
            second.clone(),
            counted_block.clone(),
            first.clone(),
        ],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert!(
        p.jobs.is_empty(),
        "uncounted blocks are not merged yet: {p:#?}"
    );
    assert_eq!(
        fold_ids(&p.folds),
        vec![first.block_id, second.block_id, elsewhere.block_id],
        "in ID order"
    );
    let against: Vec<Vec<Uuid>> = p.folds.iter().map(|f| ids(&f.against)).collect();
    assert_eq!(against[0], vec![counted_block.block_id]);
    assert_eq!(against[1], ids(&[counted_block, first]));
    assert!(against[2].is_empty(), "nothing overlaps it: {against:?}");
}

#[test]
fn jobs_stay_within_their_bounds() {
    let blocks: Vec<_> = (0..10)
        .map(|i| counted(&block(in_window(10 + i, 0), 0, 0, 100)))
        .collect();
    let config = CompactorConfig {
        max_inputs: 3,
        max_job_traces: 250,
        ..CompactorConfig::default()
    };
    let view = TenantView {
        blocks: blocks.clone(),
        ..TenantView::default()
    };
    let p = plan(&tenant(), &view, &runbook(), &config, now());
    assert_eq!(p.jobs.len(), 5, "{p:#?}");
    for job in &p.jobs {
        assert!(job.inputs.len() >= 2 && job.inputs.len() <= 3);
        assert!(job.inputs.iter().map(|b| b.trace_count).sum::<u64>() <= 250);
    }
    let mut all: Vec<Uuid> = p.jobs.iter().flat_map(|j| ids(&j.inputs)).collect();
    all.sort();
    assert_eq!(all, ids(&blocks));
}

#[test]
fn blocks_crossing_into_a_tier_are_rewritten_even_alone() {
    let fresh = block(23 * HOUR, 1, 0, 10);
    let day_old = block(25 * HOUR, 1, 0, 10);
    let week_old = block(8 * 24 * HOUR, 2, 1, 10);
    let month_old = block(31 * 24 * HOUR, 2, 2, 10);
    let month_old_unfolded = with(&block(31 * 24 * HOUR + 5, 0, 0, 10), |m| {
        m.rolled_up = false
    });
    let view = TenantView {
        blocks: vec![
            fresh,
            day_old.clone(),
            week_old.clone(),
            month_old.clone(),
            month_old_unfolded.clone(),
        ],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    let rewrites: Vec<(Vec<Uuid>, u32, u32)> = p
        .jobs
        .iter()
        .map(|j| (ids(&j.inputs), j.from_tier, j.tier))
        .collect();
    assert!(
        rewrites.contains(&(vec![day_old.block_id], 0, 1)),
        "{rewrites:?}"
    );
    assert!(
        rewrites.contains(&(vec![week_old.block_id], 1, 2)),
        "{rewrites:?}"
    );
    assert_eq!(rewrites.len(), 2);
    // Past the last kept tier: dropped once its spans are in rollups, folded first otherwise.
    assert_eq!(p.drops, vec![month_old.block_id]);
    assert_eq!(fold_ids(&p.folds), vec![month_old_unfolded.block_id]);
}

#[test]
fn replaced_blocks_are_not_planned_and_get_their_marker() {
    let a = block(in_window(100, 0), 0, 0, 10);
    let b = block(in_window(200, 0), 0, 0, 10);
    let out = with(&block(in_window(150, 0), 1, 0, 20), |m| {
        m.compacted_from = vec![a.block_id, b.block_id]
    });
    let view = TenantView {
        blocks: vec![a.clone(), b.clone(), out.clone()],
        marked: BTreeMap::from([(b.block_id, now())]),
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert!(p.jobs.is_empty() && p.folds.is_empty(), "{p:#?}");
    assert_eq!(
        p.marks,
        vec![Mark {
            id: a.block_id,
            replaced_by: vec![out.block_id]
        }]
    );
}

#[test]
fn deletion_waits_for_the_grace_period() {
    let config = CompactorConfig::default();
    let (old, young, half_deleted) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let grace = chrono::Duration::from_std(config.grace_period).unwrap();
    let view = TenantView {
        marked: BTreeMap::from([
            (old, now() - grace),
            (young, now() - grace + chrono::Duration::seconds(1)),
            (half_deleted, now() - grace - chrono::Duration::seconds(9)),
        ]),
        ..TenantView::default()
    };
    let p = plan(&tenant(), &view, &runbook(), &config, now());
    let mut expected = vec![old, half_deleted];
    expected.sort();
    let mut got = p.deletes;
    got.sort();
    assert_eq!(got, expected);
}

/// Audit 5.5 item 1: an entry without meta was deleted once the time in its ID was older than
/// the grace period. An ingester retrying an upload for longer than that, or one whose clock
/// is behind, makes IDs that look abandoned while their objects are still being written.
#[test]
fn entries_without_meta_are_deleted_by_when_they_were_written_not_by_their_id() {
    let config = CompactorConfig::default();
    let grace = chrono::Duration::from_std(config.grace_period).unwrap();
    let second = chrono::Duration::seconds(1);
    let long_ago = strata_block::catalog::uuid_floor(now() - grace * 30);
    let just_now = strata_block::catalog::uuid_floor(now() - second);
    let slow_upload = long_ago;
    let skewed_clock = strata_block::catalog::uuid_floor(now() - grace * 2);
    let abandoned = Uuid::now_v7();
    let view = TenantView {
        incomplete: BTreeMap::from([
            // An old ID, still being written to.
            (slow_upload, now() - second),
            // A writer whose clock is two grace periods behind, writing now.
            (skewed_clock, now() - grace + second),
            // A young ID (or a clock ahead) untouched for the grace period.
            (abandoned, now() - grace),
        ]),
        segments_incomplete: BTreeMap::from([
            // A fold segment is named after its block: an old ID, written now.
            (just_now, now() - grace - second),
            (long_ago, now()),
        ]),
        ..TenantView::default()
    };
    let p = plan(&tenant(), &view, &runbook(), &config, now());
    assert_eq!(p.deletes, vec![abandoned]);
    assert_eq!(p.rollup_deletes, vec![just_now]);
}

#[test]
fn each_leftover_entry_is_deleted_by_exactly_one_shard() {
    let grace = chrono::Duration::from_std(CompactorConfig::default().grace_period).unwrap();
    let long_ago = now() - grace * 2;
    let entries: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    let view = TenantView {
        marked: entries[..20].iter().map(|id| (*id, long_ago)).collect(),
        incomplete: entries[20..].iter().map(|id| (*id, long_ago)).collect(),
        segments_incomplete: entries.iter().map(|id| (*id, long_ago)).collect(),
        ..TenantView::default()
    };
    let (mut blocks, mut segments, mut per_shard) = (Vec::new(), Vec::new(), Vec::new());
    for shard in 0..3 {
        let config = CompactorConfig {
            shards: 3,
            shard,
            ..CompactorConfig::default()
        };
        let p = plan(&tenant(), &view, &runbook(), &config, now());
        per_shard.push(p.deletes.len());
        blocks.extend(p.deletes);
        segments.extend(p.rollup_deletes);
    }
    blocks.sort();
    segments.sort();
    let mut all = entries;
    all.sort();
    assert_eq!(blocks, all);
    assert_eq!(segments, all);
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");
}

/// Audit 2.4: an unreadable block went back into a fold or a job every cycle, and the job's
/// failure stopped everything else.
#[test]
fn an_unreadable_block_is_planned_around_and_still_dropped_by_retention() {
    let bad = block(in_window(100, 0), 0, 0, 10);
    let good_a = counted(&block(in_window(200, 0), 0, 0, 10));
    let good_b = counted(&block(in_window(300, 0), 0, 0, 10));
    let bad_alone = block(in_window(100, 2), 0, 0, 10);
    let month = 31 * 24 * HOUR;
    let bad_expired = with(&block(month, 0, 0, 10), |m| m.rolled_up = false);
    let bad_expired_counted = block(month + 5, 1, 1, 10);
    let bad_week_old = block(8 * 24 * HOUR, 1, 1, 10);
    let view = TenantView {
        blocks: vec![
            bad.clone(),
            good_a.clone(),
            good_b.clone(),
            bad_alone.clone(),
            bad_expired.clone(),
            bad_expired_counted.clone(),
            bad_week_old.clone(),
        ],
        unreadable: BTreeSet::from([
            bad.block_id,
            bad_alone.block_id,
            bad_expired.block_id,
            bad_expired_counted.block_id,
            bad_week_old.block_id,
        ]),
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    // The good blocks of the bad one's window merge without it.
    assert_eq!(p.jobs.len(), 1, "{p:#?}");
    assert_eq!(ids(&p.jobs[0].inputs), ids(&[good_a, good_b]));
    // Nothing unreadable is folded or rewritten (the week-old one stays in its tier).
    assert!(p.folds.is_empty(), "{p:#?}");
    // Past the last kept tier, both go, and the one never folded is said to be uncounted.
    let mut drops = p.drops.clone();
    drops.sort();
    assert_eq!(drops, ids(&[bad_expired.clone(), bad_expired_counted]));
    assert_eq!(p.uncounted_drops, vec![bad_expired.block_id]);
}

#[test]
fn unparsable_metas_are_deleted_once_their_id_is_past_retention_and_grace() {
    let config = CompactorConfig::default();
    let grace = chrono::Duration::from_std(config.grace_period).unwrap();
    let retention = chrono::Duration::days(30);
    let second = chrono::Duration::seconds(1);
    let id_at = |at: DateTime<Utc>| strata_block::catalog::uuid_floor(at);
    let expired = id_at(now() - retention - grace - second);
    let in_grace = id_at(now() - retention - grace + second);
    let young = id_at(now() - chrono::Duration::days(2));
    let view = TenantView {
        unparsable: BTreeSet::from([expired, in_grace, young]),
        segments_unparsable: BTreeSet::from([expired, id_at(now() - chrono::Duration::days(401))]),
        ..TenantView::default()
    };
    let p = plan(&tenant(), &view, &runbook(), &config, now());
    assert_eq!(p.deletes, vec![expired]);
    assert_eq!(
        p.rollup_deletes,
        vec![id_at(now() - chrono::Duration::days(401))]
    );
    // A policy that never drops never deletes them.
    let keep = RetentionPolicy::keep_everything();
    assert!(
        plan(&tenant(), &view, &keep, &config, now())
            .deletes
            .is_empty()
    );
}

#[test]
fn unreadable_rollup_segments_are_not_merged_but_still_expire() {
    let a = segment(HOUR, 60, vec![]);
    let b = segment(HOUR + 60, 60, vec![]);
    let bad = segment(HOUR + 120, 60, vec![]);
    let bad_expired = segment(401 * 24 * HOUR, 3600, vec![]);
    let view = TenantView {
        segments: vec![a.clone(), b.clone(), bad.clone(), bad_expired.clone()],
        segments_unreadable: BTreeSet::from([bad.segment_id, bad_expired.segment_id]),
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert_eq!(p.rollup_jobs.len(), 1, "{p:#?}");
    let mut inputs: Vec<Uuid> = p.rollup_jobs[0]
        .inputs
        .iter()
        .map(|s| s.segment_id)
        .collect();
    inputs.sort();
    let mut expected = vec![a.segment_id, b.segment_id];
    expected.sort();
    assert_eq!(inputs, expected);
    assert_eq!(p.rollup_drops, vec![bad_expired.segment_id]);
}

#[test]
fn two_shards_split_the_blocks_without_overlap() {
    let blocks: Vec<_> = (0..40)
        .flat_map(|w| {
            [
                block(in_window(10, w), 0, 0, 1),
                block(in_window(20, w), 0, 0, 1),
            ]
        })
        .collect();
    let view = TenantView {
        blocks: blocks.clone(),
        ..TenantView::default()
    };
    let mut seen = BTreeSet::new();
    let mut per_shard = Vec::new();
    for shard in 0..2 {
        let config = CompactorConfig {
            shards: 2,
            shard,
            ..CompactorConfig::default()
        };
        let p = plan(&tenant(), &view, &runbook(), &config, now());
        let touched: Vec<Uuid> = p
            .jobs
            .iter()
            .flat_map(|j| j.inputs.iter().map(|b| b.block_id))
            .chain(p.folds.iter().map(|f| f.block.block_id))
            .collect();
        per_shard.push(touched.len());
        for id in touched {
            assert!(seen.insert(id), "{id} planned by both shards");
        }
    }
    assert_eq!(seen, ids(&blocks).into_iter().collect());
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");
}

#[test]
fn rollup_segments_merge_per_day_once_their_blocks_are_replaced() {
    let live = block(in_window(100, 0), 0, 0, 1);
    let gone = Uuid::now_v7();
    let waiting = segment(HOUR, 60, vec![live.block_id]);
    let settled_a = segment(HOUR, 60, vec![gone]);
    let settled_b = segment(HOUR + 60, 60, vec![]);
    let view = TenantView {
        blocks: vec![live],
        segments: vec![waiting, settled_a.clone(), settled_b.clone()],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    // The three are on one day only if now() is not just after midnight: it is noon.
    assert_eq!(p.rollup_jobs.len(), 1, "{p:#?}");
    let mut inputs: Vec<Uuid> = p.rollup_jobs[0]
        .inputs
        .iter()
        .map(|s| s.segment_id)
        .collect();
    inputs.sort();
    let mut expected = vec![settled_a.segment_id, settled_b.segment_id];
    expected.sort();
    assert_eq!(inputs, expected);
}

#[test]
fn old_rollups_are_widened_and_expired_ones_dropped() {
    let week = 7 * 24 * HOUR;
    let old_fine = segment(week + 2 * 24 * HOUR, 60, vec![]);
    let old_coarse = segment(week + 3 * 24 * HOUR, 3600, vec![]);
    let expired = segment(401 * 24 * HOUR, 3600, vec![]);
    let view = TenantView {
        segments: vec![old_fine.clone(), old_coarse, expired.clone()],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert_eq!(p.rollup_drops, vec![expired.segment_id]);
    assert_eq!(p.rollup_jobs.len(), 1);
    assert_eq!(p.rollup_jobs[0].inputs[0].segment_id, old_fine.segment_id);
    assert_eq!(
        p.rollup_jobs[0].coarse_before,
        (now().timestamp() - week) / HOUR * HOUR
    );
}

#[test]
fn a_quiet_tenant_plans_nothing() {
    let merged = block(in_window(100, 5), 3, 0, 10);
    let view = TenantView {
        blocks: vec![merged],
        ..TenantView::default()
    };
    let p = plan(
        &tenant(),
        &view,
        &runbook(),
        &CompactorConfig::default(),
        now(),
    );
    assert!(p.is_empty(), "{p:#?}");
}
