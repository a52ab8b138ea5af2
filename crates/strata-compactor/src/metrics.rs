//! The compactor's Prometheus metrics.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::report::CycleReport;

/// A kind of unit of work in a cycle, as `work` labels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Folding a block into a rollup segment.
    Fold,
    /// Merging (and filtering) blocks.
    Job,
    /// Writing a `compacted.json`.
    Mark,
    /// Merging rollup segments.
    RollupJob,
    /// Deleting an entry.
    Delete,
    /// Writing the tenant index.
    Index,
}

impl Work {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Work::Fold => "fold",
            Work::Job => "job",
            Work::Mark => "mark",
            Work::RollupJob => "rollup_job",
            Work::Delete => "delete",
            Work::Index => "index",
        }
    }

    /// The kind of object a failure of this work blames.
    pub(crate) fn object(self) -> Object {
        match self {
            Work::RollupJob => Object::Segment,
            _ => Object::Block,
        }
    }
}

/// A kind of object found unreadable, as `object` labels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Object {
    /// A block's data (`data.parquet`, or its footer).
    Block,
    /// A block's `meta.json`.
    BlockMeta,
    /// A `compacted.json`.
    Marker,
    /// A rollup segment's `data.parquet`.
    Segment,
    /// A rollup segment's `meta.json`.
    SegmentMeta,
}

impl Object {
    fn name(self) -> &'static str {
        match self {
            Object::Block => "block",
            Object::BlockMeta => "block_meta",
            Object::Marker => "marker",
            Object::Segment => "segment",
            Object::SegmentMeta => "segment_meta",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabel {
    work: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabel {
    object: &'static str,
}

/// Counters of the compactor's work. Cheap to clone; clones share values.
#[derive(Clone, Debug, Default)]
pub struct CompactorMetrics {
    pub(crate) cycles: Counter,
    pub(crate) failures: Counter,
    work_failures: Family<WorkLabel, Counter>,
    unreadable: Family<ObjectLabel, Counter>,
    uncounted_drops: Counter,
    deletions_deferred: Counter,
    fold_copies: Counter,
    pub(crate) jobs: Counter,
    pub(crate) spans_in: Counter,
    pub(crate) spans_out: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) deleted: Counter,
    pub(crate) last_cycle_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl CompactorMetrics {
    /// Registers every metric under `strata_compactor_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_compactor");
        r.register("cycles", "Compaction cycles run", self.cycles.clone());
        r.register(
            "cycle_failures",
            "Tenant compactions that failed (the tenant could not be listed)",
            self.failures.clone(),
        );
        r.register(
            "work_failures",
            "Units of compaction work that failed, by kind (fold, job, mark, rollup_job, delete, index); the rest of the cycle went on",
            self.work_failures.clone(),
        );
        r.register(
            "unreadable_objects",
            "Objects found unreadable, by kind (block, block_meta, marker, segment, segment_meta); each is counted when found and compacted around",
            self.unreadable.clone(),
        );
        r.register(
            "uncounted_drops",
            "Blocks dropped by retention whose data could not be read, so their spans are not in the rollups",
            self.uncounted_drops.clone(),
        );
        r.register(
            "deletions_deferred",
            "Entries not deleted because something was written to them since they were listed",
            self.deletions_deferred.clone(),
        );
        r.register(
            "fold_copies",
            "Spans folds did not count because another counted block holds a copy (stored twice by a WAL replay or a client retry)",
            self.fold_copies.clone(),
        );
        r.register(
            "jobs",
            "Block merge and rewrite jobs run",
            self.jobs.clone(),
        );
        r.register("spans_read", "Spans read by jobs", self.spans_in.clone());
        r.register(
            "spans_written",
            "Spans written by jobs",
            self.spans_out.clone(),
        );
        r.register(
            "bytes_read",
            "data.parquet bytes read by jobs",
            self.bytes_in.clone(),
        );
        r.register(
            "bytes_written",
            "data.parquet bytes written by jobs",
            self.bytes_out.clone(),
        );
        r.register(
            "entries_deleted",
            "Blocks and rollup segments deleted",
            self.deleted.clone(),
        );
        r.register(
            "last_cycle_seconds",
            "Duration of the last cycle",
            self.last_cycle_seconds.clone(),
        );
    }

    pub(crate) fn work_failed(&self, work: Work) {
        self.work_failures
            .get_or_create(&WorkLabel { work: work.name() })
            .inc();
    }

    pub(crate) fn unreadable(&self, object: Object) {
        self.unreadable
            .get_or_create(&ObjectLabel {
                object: object.name(),
            })
            .inc();
    }

    /// Units of work of one kind that failed so far (`fold`, `job`, `mark`, `rollup_job`,
    /// `delete`, `index`).
    pub fn work_failures(&self, work: &str) -> u64 {
        [
            Work::Fold,
            Work::Job,
            Work::Mark,
            Work::RollupJob,
            Work::Delete,
            Work::Index,
        ]
        .into_iter()
        .find(|w| w.name() == work)
        .map_or(0, |w| {
            self.work_failures
                .get_or_create(&WorkLabel { work: w.name() })
                .get()
        })
    }

    /// Objects of one kind found unreadable so far (`block`, `block_meta`, `marker`,
    /// `segment`, `segment_meta`).
    pub fn unreadable_objects(&self, object: &str) -> u64 {
        [
            Object::Block,
            Object::BlockMeta,
            Object::Marker,
            Object::Segment,
            Object::SegmentMeta,
        ]
        .into_iter()
        .find(|o| o.name() == object)
        .map_or(0, |o| {
            self.unreadable
                .get_or_create(&ObjectLabel { object: o.name() })
                .get()
        })
    }

    pub(crate) fn observe(&self, report: &CycleReport, took: Duration) {
        self.cycles.inc();
        self.jobs.inc_by(report.jobs);
        self.spans_in.inc_by(report.spans_in);
        self.spans_out.inc_by(report.spans_out);
        self.bytes_in.inc_by(report.bytes_in);
        self.bytes_out.inc_by(report.bytes_out);
        self.deleted.inc_by(report.deleted);
        self.uncounted_drops.inc_by(report.uncounted_drops);
        self.deletions_deferred.inc_by(report.deletions_deferred);
        self.fold_copies.inc_by(report.fold_copies);
        self.last_cycle_seconds.set(took.as_secs_f64());
    }
}
