//! What a compaction cycle did, as the runner tells its caller and the metrics.

/// What one cycle did, all tenants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// Block jobs run.
    pub jobs: u64,
    /// Blocks folded into rollups.
    pub folds: u64,
    /// Spans folds did not count because another block holds a copy that is counted.
    pub fold_copies: u64,
    /// Traces folds read from other blocks to look for copies (their bloom filter said maybe).
    pub fold_lookups: u64,
    /// Blocks dropped by retention.
    pub drops: u64,
    /// Of those, blocks whose spans could not be counted in rollups (their data was unreadable).
    pub uncounted_drops: u64,
    /// Spans read by jobs.
    pub spans_in: u64,
    /// Spans written by jobs.
    pub spans_out: u64,
    /// Bytes read by jobs.
    pub bytes_in: u64,
    /// Bytes written by jobs.
    pub bytes_out: u64,
    /// Rollup merges run.
    pub rollup_jobs: u64,
    /// Rollup segments dropped by `rollups_for`.
    pub rollup_drops: u64,
    /// Entries (blocks and segments) deleted.
    pub deleted: u64,
    /// Entries not deleted because something was written to them since they were listed.
    pub deletions_deferred: u64,
    /// Markers written for replaced entries a stopped compactor left unmarked.
    pub recovered_marks: u64,
    /// Units of work (folds, jobs, marks, rollup merges, deletions, index writes) that failed;
    /// each was logged, and the rest of the cycle went on.
    pub failed: u64,
}
