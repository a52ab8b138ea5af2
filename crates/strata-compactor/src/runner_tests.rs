//! The compactor over a real bucket (local disk or memory): what it deletes, and what one bad
//! object costs.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::catalog::{list_entries, uuid_floor};
use strata_block::{
    BlockConfig, BlockIdentity, EncodedBlock, commit_block, encode_block, layout, upload_block,
    upload_block_files,
};
use strata_model::{Span, TenantId};
use strata_storage::{LocalConfig, Storage, StorageConfig};
use uuid::Uuid;

use super::*;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn local(dir: &std::path::Path) -> Storage {
    Storage::from_config(&StorageConfig {
        local: LocalConfig {
            path: dir.to_owned(),
        },
        ..Default::default()
    })
    .unwrap()
}

fn compactor(storage: &Storage, metrics: &CompactorMetrics) -> Compactor {
    let retention: RetentionConfig = serde_yaml_ng::from_str(
        "tiers:\n  - after: 0h\n    keep: all\n  - after: 30d\n    keep: none\nrollups_for: 400d\n",
    )
    .unwrap();
    retention.validate().unwrap();
    Compactor::new(
        storage.clone(),
        CompactorConfig::default(),
        retention,
        BlockConfig::default(),
        metrics.clone(),
    )
}

/// `traces` traces of the workload, starting `ago` before now.
fn spans(traces: usize, seed: u64, ago: chrono::Duration) -> Vec<Span> {
    let start = Utc::now() - ago;
    let mut workload = Workload::new(WorkloadConfig {
        seed,
        start_unix_nano: u64::try_from(start.timestamp_nanos_opt().unwrap()).unwrap(),
        traces_per_second: 50.0,
        error_ratio: 0.1,
        slow_ratio: 0.05,
    });
    (0..traces)
        .flat_map(|_| {
            strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
        })
        .collect()
}

fn block_with_id(id: Uuid, spans: Vec<Span>) -> EncodedBlock {
    let identity = BlockIdentity {
        block_id: id,
        ..BlockIdentity::fresh(tenant())
    };
    encode_block(identity, BlockConfig::default(), spans).unwrap()
}

/// Sets the mtime of every file under `dir` to `ago` before now.
fn age_files(dir: &std::path::Path, ago: Duration) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }
}

fn block_dir(root: &std::path::Path, id: Uuid) -> std::path::PathBuf {
    root.join(tenant().as_str())
        .join("blocks")
        .join(id.to_string())
}

async fn block_ids(storage: &Storage) -> BTreeSet<Uuid> {
    list_entries(storage, &tenant(), layout::BLOCKS_DIR)
        .await
        .unwrap()
        .into_keys()
        .collect()
}

/// Audit 5.5 item 1 (finding 9): an entry without `meta.json` was deleted once the time in
/// its ID was older than the grace period, by any shard. An ingester upload retrying for
/// longer than that, an ingester whose clock is behind, and a fold of an old block all write
/// entries whose ID looks old while they are being written: their data went, and the meta
/// that came after it pointed at nothing.
#[test]
fn entries_still_being_written_are_not_deleted_and_abandoned_ones_are() {
    let root = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = local(root.path());
        let metrics = CompactorMetrics::default();
        let compactor = compactor(&storage, &metrics);
        let hour = chrono::Duration::hours(1);

        // A slow retrying upload: its ID was made three hours ago, its files just now.
        let slow = block_with_id(uuid_floor(Utc::now() - hour * 3), spans(20, 1, hour * 3));
        upload_block_files(&storage, &slow).await.unwrap();
        // An ingester whose clock is two hours behind, uploading now.
        let skewed = block_with_id(uuid_floor(Utc::now() - hour * 2), spans(20, 2, hour * 2));
        upload_block_files(&storage, &skewed).await.unwrap();
        // A fold segment of an old block, data written, meta not yet (another shard's fold).
        let old_block = uuid_floor(Utc::now() - hour * 5);
        let fold = layout::rollup_prefix(&tenant(), old_block).join("data.parquet");
        storage
            .put(&fold, Bytes::from_static(b"PAR1"))
            .await
            .unwrap();
        // Abandoned: a young ID, nothing written to it for two hours.
        let abandoned = block_with_id(Uuid::now_v7(), spans(20, 3, chrono::Duration::minutes(5)));
        upload_block_files(&storage, &abandoned).await.unwrap();
        age_files(
            &block_dir(root.path(), abandoned.meta.block_id),
            Duration::from_secs(7200),
        );

        let report = compactor.run_cycle(Utc::now()).await.unwrap();
        assert_eq!(report.deleted, 1, "{report:?}");
        let left = block_ids(&storage).await;
        assert!(
            left.contains(&slow.meta.block_id),
            "the slow upload was deleted"
        );
        assert!(
            left.contains(&skewed.meta.block_id),
            "the skewed upload was deleted"
        );
        assert!(
            !left.contains(&abandoned.meta.block_id),
            "the abandoned entry is still there"
        );
        assert!(
            storage.get(&fold).await.is_ok(),
            "the fold in progress was deleted"
        );

        // The metas arrive: both blocks are whole, and the compactor takes them in.
        commit_block(&storage, &slow.meta).await.unwrap();
        commit_block(&storage, &skewed.meta).await.unwrap();
        for block in [&slow, &skewed] {
            let data = layout::data_path(&tenant(), block.meta.block_id);
            assert_eq!(
                storage.get(&data).await.unwrap().len() as u64,
                block.meta.data_size
            );
        }
        let report = compactor.run_cycle(Utc::now()).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        assert!(report.jobs + report.folds > 0, "{report:?}");
    });
}

/// A block whose data cannot be read among good blocks of the same window.
async fn corrupt_block_among_good_ones(storage: &Storage) -> (Uuid, Vec<Uuid>) {
    let mut good = Vec::new();
    for seed in 0..3 {
        let block = encode_block(
            BlockIdentity::fresh(tenant()),
            BlockConfig::default(),
            spans(30, seed, chrono::Duration::minutes(10)),
        )
        .unwrap();
        upload_block(storage, &block).await.unwrap();
        good.push(block.meta.block_id);
    }
    let bad = encode_block(
        BlockIdentity::fresh(tenant()),
        BlockConfig::default(),
        spans(30, 9, chrono::Duration::minutes(10)),
    )
    .unwrap();
    upload_block(storage, &bad).await.unwrap();
    // Same size, garbage bytes: the meta still describes it, the reader refuses it.
    let path = layout::data_path(&tenant(), bad.meta.block_id);
    let garbage = vec![0x5a; usize::try_from(bad.meta.data_size).unwrap()];
    storage.put(&path, Bytes::from(garbage)).await.unwrap();
    (bad.meta.block_id, good)
}

/// Audit 2.4 (finding 3): the first fold or job that failed aborted the cycle with `?`, so
/// one unreadable block stopped the merges, drops, rollups, deletions and the tenant index of
/// its whole tenant, every cycle.
#[test]
fn one_unreadable_block_costs_only_itself() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = Storage::in_memory();
        let metrics = CompactorMetrics::default();
        let compactor = compactor(&storage, &metrics);
        let (bad, good) = corrupt_block_among_good_ones(&storage).await;
        // A tenant index that is garbage, a marker that is garbage on another entry.
        storage
            .put(
                &layout::index_path(&tenant()),
                Bytes::from_static(b"not zstd"),
            )
            .await
            .unwrap();

        let now = Utc::now();
        let first = compactor.run_cycle(now).await.unwrap();
        assert!(first.failed >= 1, "{first:?}");
        assert_eq!(metrics.unreadable_objects("block"), 1);
        // The index was written anyway, and it is readable.
        let index = strata_block::read_index(&storage, &tenant())
            .await
            .unwrap()
            .unwrap();
        assert!(index.blocks.iter().any(|b| b.block_id == bad));

        // The next cycles merge the good blocks without the bad one.
        for _ in 0..4 {
            compactor.run_cycle(now).await.unwrap();
        }
        let index = strata_block::read_index(&storage, &tenant())
            .await
            .unwrap()
            .unwrap();
        let live: BTreeSet<Uuid> = index.blocks.iter().map(|b| b.block_id).collect();
        assert!(live.contains(&bad), "the bad block is left alone: {live:?}");
        for id in &good {
            assert!(
                !live.contains(id),
                "good block {id} was not compacted: {live:?}"
            );
        }
        // Failures so far: the first job only; the bad block is not read again before retry.
        assert_eq!(metrics.unreadable_objects("block"), 1);

        // Past the last kept tier, it is dropped like any other, its spans uncounted.
        // (Its memory has expired by then: the first cycle tries to fold it once more.)
        let later = now + chrono::Duration::days(31);
        let mut uncounted = 0;
        for _ in 0..3 {
            uncounted += compactor.run_cycle(later).await.unwrap().uncounted_drops;
        }
        assert_eq!(uncounted, 1);
        let index = strata_block::read_index(&storage, &tenant())
            .await
            .unwrap()
            .unwrap();
        assert!(index.compacted.contains(&bad));
    });
}

/// A `meta.json` far larger than any meta is refused unread (it would be read whole), and the
/// entry is treated as one whose meta cannot be parsed.
#[test]
fn an_oversized_meta_is_not_read() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = Storage::in_memory();
        let metrics = CompactorMetrics::default();
        let compactor = compactor(&storage, &metrics);
        let id = Uuid::now_v7();
        let huge =
            vec![b' '; usize::try_from(strata_block::catalog::MAX_SMALL_OBJECT_BYTES).unwrap() + 1];
        storage
            .put(&layout::meta_path(&tenant(), id), Bytes::from(huge))
            .await
            .unwrap();
        let read_before = storage.metrics().bytes_read();
        compactor.run_cycle(Utc::now()).await.unwrap();
        assert_eq!(metrics.unreadable_objects("block_meta"), 1);
        assert!(storage.metrics().bytes_read() - read_before < 1 << 20);
        // Still there: its ID is not past retention.
        assert!(block_ids(&storage).await.contains(&id));
    });
}
