//! The compaction planner: a pure function from what a tenant's directory holds (and `now`) to
//! the work of one cycle. No IO, no clock; the runner does what the plan says.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use strata_block::catalog::{superseded, uuid_time};
use strata_block::{BlockMeta, RollupMeta};
use strata_model::TenantId;
use uuid::Uuid;

use crate::config::CompactorConfig;
use crate::retention::RetentionPolicy;

/// Most rollup segments merged by one job.
const MAX_ROLLUP_INPUTS: usize = 64;

/// What one listing of a tenant found, as plain data.
#[derive(Debug, Clone, Default)]
pub struct TenantView {
    /// Every block with a `meta.json`, live or not.
    pub blocks: Vec<Arc<BlockMeta>>,
    /// Blocks with a `compacted.json`, and when they were marked.
    pub marked: BTreeMap<Uuid, DateTime<Utc>>,
    /// Block directories with neither `meta.json` nor `compacted.json` (being written, or left
    /// behind by a writer that died), with when their newest object was written, by the
    /// bucket's clock.
    pub incomplete: BTreeMap<Uuid, DateTime<Utc>>,
    /// Blocks whose `meta.json` exists but cannot be parsed (or names another block).
    pub unparsable: BTreeSet<Uuid>,
    /// Blocks whose data could not be read lately: left out of folds and jobs, dropped when
    /// retention says so.
    pub unreadable: BTreeSet<Uuid>,
    /// Every rollup segment with a `meta.json`, live or not.
    pub segments: Vec<Arc<RollupMeta>>,
    /// Segments with a `compacted.json`, and when they were marked.
    pub segments_marked: BTreeMap<Uuid, DateTime<Utc>>,
    /// Segment directories with neither file, with their newest object's write time.
    pub segments_incomplete: BTreeMap<Uuid, DateTime<Utc>>,
    /// Segments whose `meta.json` cannot be parsed.
    pub segments_unparsable: BTreeSet<Uuid>,
    /// Segments whose data could not be read lately: left out of rollup merges.
    pub segments_unreadable: BTreeSet<Uuid>,
}

/// Merge (and, when the tier moves on, filter) blocks into one. Every input is already counted
/// in rollups (an ingester block is folded on its own first, and merged from the next cycle).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The blocks read, all of one time window.
    pub inputs: Vec<Arc<BlockMeta>>,
    /// Compaction level of the output.
    pub level: u32,
    /// The lowest tier among the inputs.
    pub from_tier: u32,
    /// The tier of the output.
    pub tier: u32,
}

/// Count a block's spans into a rollup segment named after it: every span that no block already
/// counted holds. A span stored twice — a WAL replay re-uploads spans that were already in a
/// block, a client resends a request whose answer it never got — is counted once.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    /// The block to count.
    pub block: Arc<BlockMeta>,
    /// Blocks whose spans are counted already (or are folded earlier in the same cycle) and whose
    /// time range overlaps this one's: where a copy of its spans can be. Folds run one after
    /// another, in plan order, so each sees the ones before it as counted.
    pub against: Vec<Arc<BlockMeta>>,
}

/// Merge rollup segments of one day, widening old buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupJob {
    /// The segments read.
    pub inputs: Vec<Arc<RollupMeta>>,
    /// Buckets starting before this (unix seconds) are widened to the coarse width.
    pub coarse_before: i64,
}

/// An entry to mark compacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The entry.
    pub id: Uuid,
    /// What replaced it (empty: dropped).
    pub replaced_by: Vec<Uuid>,
}

/// The work of one cycle for one tenant, in the order the runner does it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Blocks not yet counted in rollups, in the order they are to be folded (by block ID); none
    /// of them is an input of a job this cycle.
    pub folds: Vec<Fold>,
    /// Merges and tier rewrites.
    pub jobs: Vec<Job>,
    /// Blocks retention drops (their spans are in rollups already): marked, nothing written.
    pub drops: Vec<Uuid>,
    /// The drops whose spans never made it into rollups: blocks past the last kept tier whose
    /// data could not be read to fold them.
    pub uncounted_drops: Vec<Uuid>,
    /// Replaced blocks whose marker is missing (a compactor stopped before writing it).
    pub marks: Vec<Mark>,
    /// Block entries to delete: marked longer than the grace period ago, half deleted,
    /// abandoned without a meta (nothing written to them for the grace period), or with a meta
    /// that cannot be parsed once their ID says they are past retention.
    pub deletes: Vec<Uuid>,
    /// Rollup segment merges.
    pub rollup_jobs: Vec<RollupJob>,
    /// Segments past `rollups_for`.
    pub rollup_drops: Vec<Uuid>,
    /// Replaced segments whose marker is missing.
    pub rollup_marks: Vec<Mark>,
    /// Segment entries to delete.
    pub rollup_deletes: Vec<Uuid>,
}

impl Plan {
    /// Whether the plan does nothing.
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// The shard that owns a time window of a tenant: FNV-1a over the tenant and the window number.
/// Every block belongs to exactly one window, so compactors of different shards never share a
/// block.
pub fn owner(tenant: &TenantId, window: i64, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in tenant.as_str().bytes().chain(window.to_be_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

/// The shard that deletes an entry: FNV-1a over the tenant and the entry's ID. Entries
/// without a readable meta belong to no time window, so the ID decides; every entry has
/// exactly one owner.
pub fn entry_owner(tenant: &TenantId, id: Uuid, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in tenant.as_str().bytes().chain(id.into_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

fn past(now: DateTime<Utc>, since: DateTime<Utc>, period: Duration) -> bool {
    age(now, since) >= period
}

/// Plans one cycle for `tenant`.
pub fn plan(
    tenant: &TenantId,
    view: &TenantView,
    policy: &RetentionPolicy,
    config: &CompactorConfig,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let window = secs(config.window);
    let window_of = |meta: &BlockMeta| meta.end_time.timestamp().div_euclid(window);
    let owned = |w: i64| owner(tenant, w, config.shards) == config.shard;

    // Liveness, exactly as readers decide it.
    let gone = superseded(
        view.marked.keys().copied(),
        view.blocks.iter().map(|b| b.compacted_from.as_slice()),
    );
    let live: Vec<&Arc<BlockMeta>> = view
        .blocks
        .iter()
        .filter(|b| !gone.contains(&b.block_id))
        .collect();
    let live_ids: BTreeSet<Uuid> = live.iter().map(|b| b.block_id).collect();
    let folded: BTreeSet<Uuid> = view
        .segments
        .iter()
        .flat_map(|s| s.sources.iter().copied())
        .collect();
    let covered = |b: &BlockMeta| b.rolled_up || folded.contains(&b.block_id);

    // Blocks by the tier their age puts them in.
    let mut to_fold: Vec<Arc<BlockMeta>> = Vec::new();
    let mut rewrites: BTreeMap<(i64, u32), Vec<Arc<BlockMeta>>> = BTreeMap::new();
    let mut merges: BTreeMap<(i64, u32, u32), Vec<Arc<BlockMeta>>> = BTreeMap::new();
    for block in live.iter().filter(|b| owned(window_of(b))) {
        let target = policy.tier_for_age(age(now, block.end_time));
        let w = window_of(block);
        if view.unreadable.contains(&block.block_id) {
            // It cannot be read, so it cannot be folded, merged or rewritten; retention still
            // drops it on time, its spans uncounted.
            if target > block.retention_tier && policy.drops_everything(target) {
                plan.drops.push(block.block_id);
                if !covered(block) {
                    plan.uncounted_drops.push(block.block_id);
                }
            }
            continue;
        }
        if !covered(block) {
            // Counted first, on its own; merged, rewritten or dropped from the next cycle.
            to_fold.push(Arc::clone(block));
            continue;
        }
        if target > block.retention_tier {
            if policy.drops_everything(target) {
                plan.drops.push(block.block_id);
            } else {
                rewrites
                    .entry((w, target))
                    .or_default()
                    .push(Arc::clone(block));
            }
        } else {
            // Windows still filling merge level by level (bounded rewriting); settled windows
            // merge whatever is left, whatever its level.
            let settled = (w + 2) * window <= now.timestamp();
            let level = if settled { 0 } else { block.compaction_level };
            merges
                .entry((w, block.retention_tier, level))
                .or_default()
                .push(Arc::clone(block));
        }
    }
    for ((_, tier), blocks) in rewrites.into_iter().rev() {
        plan.jobs.extend(pack(blocks, config, 1, tier));
    }
    for ((_, tier, _), blocks) in merges.into_iter().rev() {
        plan.jobs.extend(pack(blocks, config, 2, tier));
    }
    let counted: Vec<&Arc<BlockMeta>> = live
        .iter()
        .copied()
        .filter(|b| covered(b) && !view.unreadable.contains(&b.block_id))
        .collect();
    plan.folds = folds_against(to_fold, &counted);

    // Finish what a stopped compactor left: markers, then deletions.
    plan.marks = missing_marks(
        view.blocks
            .iter()
            .map(|b| (b.block_id, b.compacted_from.as_slice())),
        &view.marked,
        &view.blocks.iter().map(|b| b.block_id).collect(),
    );
    let expired = policy.drop_age().map(|age| age + config.grace_period);
    plan.deletes = deletions(
        tenant,
        config,
        &Leftovers {
            marked: &view.marked,
            incomplete: &view.incomplete,
            unparsable: &view.unparsable,
            expired,
        },
        now,
    );

    plan_rollups(tenant, view, policy, config, now, &live_ids, &mut plan);
    plan
}

/// Packs blocks (one window, one target tier) into jobs within the input, trace and byte
/// bounds, smallest first. A job needs at least `min_inputs` inputs.
fn pack(
    mut blocks: Vec<Arc<BlockMeta>>,
    config: &CompactorConfig,
    min_inputs: usize,
    tier: u32,
) -> Vec<Job> {
    blocks.sort_by_key(|b| (b.data_size, b.block_id));
    let mut jobs = Vec::new();
    let mut current: Vec<Arc<BlockMeta>> = Vec::new();
    let (mut traces, mut bytes) = (0u64, 0u64);
    let mut finish = |current: &mut Vec<Arc<BlockMeta>>| {
        let inputs = std::mem::take(current);
        if inputs.len() >= min_inputs {
            let level = inputs.iter().map(|b| b.compaction_level).max().unwrap_or(0)
                + u32::from(inputs.len() > 1);
            jobs.push(Job {
                from_tier: inputs.iter().map(|b| b.retention_tier).min().unwrap_or(0),
                level,
                tier,
                inputs,
            });
        }
    };
    for block in blocks {
        let fits = current.len() < config.max_inputs
            && traces + block.trace_count <= config.max_job_traces
            && bytes + block.data_size <= config.max_job_bytes.as_u64();
        if !fits {
            finish(&mut current);
            traces = 0;
            bytes = 0;
        }
        traces += block.trace_count;
        bytes += block.data_size;
        current.push(block);
    }
    finish(&mut current);
    jobs
}

/// The folds of `blocks`, in block-ID order (the order ingesters made them, so an original is
/// counted before a later copy of its spans), each against the counted blocks and the earlier
/// folds whose time range overlaps its own.
fn folds_against(mut blocks: Vec<Arc<BlockMeta>>, counted: &[&Arc<BlockMeta>]) -> Vec<Fold> {
    blocks.sort_by_key(|b| b.block_id);
    let overlap = |a: &BlockMeta, b: &BlockMeta| {
        a.start_time <= b.end_time && b.start_time <= a.end_time && a.block_id != b.block_id
    };
    let mut folds: Vec<Fold> = Vec::with_capacity(blocks.len());
    for block in blocks {
        let against = counted
            .iter()
            .map(|c| Arc::clone(c))
            .chain(folds.iter().map(|f| Arc::clone(&f.block)))
            .filter(|c| overlap(c, &block))
            .collect();
        folds.push(Fold { block, against });
    }
    folds
}

/// Entries some other entry replaces that have no marker yet.
fn missing_marks<'a>(
    replacements: impl Iterator<Item = (Uuid, &'a [Uuid])>,
    marked: &BTreeMap<Uuid, DateTime<Utc>>,
    present: &BTreeSet<Uuid>,
) -> Vec<Mark> {
    let mut marks: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (by, replaced) in replacements {
        for id in replaced {
            if present.contains(id) && !marked.contains_key(id) {
                marks.entry(*id).or_default().push(by);
            }
        }
    }
    marks
        .into_iter()
        .map(|(id, replaced_by)| Mark { id, replaced_by })
        .collect()
}

/// The entries of one kind (blocks or segments) that are not live, for [`deletions`].
struct Leftovers<'a> {
    marked: &'a BTreeMap<Uuid, DateTime<Utc>>,
    incomplete: &'a BTreeMap<Uuid, DateTime<Utc>>,
    unparsable: &'a BTreeSet<Uuid>,
    /// How old an entry's ID must be for an unparsable meta to be deleted; `None`: never.
    expired: Option<Duration>,
}

/// The entries this shard deletes: marked ones past the grace period; ones without meta that
/// nothing has written to for the grace period (by the bucket's clock: a slow upload or a
/// writer with a skewed clock keeps refreshing it); ones whose meta cannot be parsed once even
/// the time in their ID is past retention and grace (data is never younger than the ID of the
/// entry holding it).
fn deletions(
    tenant: &TenantId,
    config: &CompactorConfig,
    entries: &Leftovers<'_>,
    now: DateTime<Utc>,
) -> Vec<Uuid> {
    let grace = config.grace_period;
    let mine = |id: &Uuid| entry_owner(tenant, *id, config.shards) == config.shard;
    let marked = entries
        .marked
        .iter()
        .filter(|(_, at)| past(now, **at, grace))
        .map(|(id, _)| *id);
    let abandoned = entries
        .incomplete
        .iter()
        .filter(|(_, written)| past(now, **written, grace))
        .map(|(id, _)| *id);
    let expired =
        entries
            .unparsable
            .iter()
            .copied()
            .filter(|id| match (entries.expired, uuid_time(*id)) {
                (Some(age), Some(made)) => past(now, made, age),
                _ => false,
            });
    marked
        .chain(abandoned)
        .chain(expired)
        .filter(|id| mine(id))
        .collect()
}

fn plan_rollups(
    tenant: &TenantId,
    view: &TenantView,
    policy: &RetentionPolicy,
    config: &CompactorConfig,
    now: DateTime<Utc>,
    live_blocks: &BTreeSet<Uuid>,
    plan: &mut Plan,
) {
    let gone = superseded(
        view.segments_marked.keys().copied(),
        view.segments.iter().map(|s| s.compacted_from.as_slice()),
    );
    let day_of = |s: &RollupMeta| s.start_time.timestamp().div_euclid(86_400);
    let owned = |day: i64| owner(tenant, day, config.shards) == config.shard;
    let coarse = u32::try_from(config.rollups.coarse_bucket.as_secs()).unwrap_or(u32::MAX);
    let coarse_before = (now.timestamp() - secs(config.rollups.coarse_after)).max(0);
    let coarse_before = coarse_before - coarse_before.rem_euclid(i64::from(coarse.max(1)));
    let mut days: BTreeMap<i64, Vec<Arc<RollupMeta>>> = BTreeMap::new();
    for segment in view
        .segments
        .iter()
        .filter(|s| !gone.contains(&s.segment_id))
    {
        if !owned(day_of(segment)) {
            continue;
        }
        if past(now, segment.end_time, policy.rollups_for()) {
            plan.rollup_drops.push(segment.segment_id);
            continue;
        }
        if view.segments_unreadable.contains(&segment.segment_id) {
            continue;
        }
        // A fold segment is what marks its block as counted: it can be merged away only once
        // that block has been replaced by one that says so itself.
        if segment.sources.iter().any(|b| live_blocks.contains(b)) {
            continue;
        }
        days.entry(day_of(segment))
            .or_default()
            .push(Arc::clone(segment));
    }
    for segments in days.into_values() {
        let widen = |s: &RollupMeta| {
            s.min_bucket_seconds < coarse && s.start_time.timestamp() < coarse_before
        };
        if segments.len() < 2 && !segments.iter().any(|s| widen(s)) {
            continue;
        }
        for chunk in segments.chunks(MAX_ROLLUP_INPUTS) {
            if chunk.len() >= 2 || chunk.iter().any(|s| widen(s)) {
                plan.rollup_jobs.push(RollupJob {
                    inputs: chunk.to_vec(),
                    coarse_before,
                });
            }
        }
    }
    plan.rollup_marks = missing_marks(
        view.segments
            .iter()
            .map(|s| (s.segment_id, s.compacted_from.as_slice())),
        &view.segments_marked,
        &view.segments.iter().map(|s| s.segment_id).collect(),
    );
    plan.rollup_deletes = deletions(
        tenant,
        config,
        &Leftovers {
            marked: &view.segments_marked,
            incomplete: &view.segments_incomplete,
            unparsable: &view.segments_unparsable,
            expired: Some(policy.rollups_for() + config.grace_period),
        },
        now,
    );
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
