//! Scanning blocks for a search: statistics, the page index and dictionaries rule out what they
//! can, and what is read is exactly the rows and columns asked for.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow::array::{Array, StringArray};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::schema::col;
use strata_block::{
    BlockConfig, BlockIdentity, EncodedBlock, Prune, PruneOp, PruneValue, ReadStats, encode_block,
    open_block_file, read_rows, scan_block, upload_block,
};
use strata_model::{Span, TenantId};
use strata_storage::Storage;

async fn block(storage: &Storage) -> (EncodedBlock, Vec<Span>) {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 11,
        ..Default::default()
    });
    let spans: Vec<Span> = (0..300)
        .flat_map(|_| {
            strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
        })
        .collect();
    let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
    let config = BlockConfig {
        row_group_max_spans: 1000,
        ..Default::default()
    };
    let block = encode_block(identity, config, spans.clone()).unwrap();
    upload_block(storage, &block).await.unwrap();
    (block, spans)
}

fn service_is(name: &str) -> Prune {
    Prune::Column {
        column: "resource_service_name".into(),
        op: PruneOp::Eq,
        value: PruneValue::Str(name.into()),
    }
}

#[tokio::test]
async fn dictionaries_rule_out_absent_strings_and_keep_present_ones() {
    let storage = Storage::in_memory();
    let (block, spans) = block(&storage).await;
    let stats = Arc::new(ReadStats::default());
    let file = open_block_file(&storage, &block.meta, &stats)
        .await
        .unwrap();
    let columns = [col::TRACE_ID, "resource_service_name"];

    // "cart" sorts between existing names: only the dictionaries can say it is absent.
    let absent = Arc::new(ReadStats::default());
    let (groups, counts) = scan_block(
        &storage,
        &block.meta,
        &file,
        &columns,
        &service_is("carts"),
        &absent,
    )
    .await
    .unwrap();
    assert!(counts.row_groups > 3);
    assert!(groups.is_empty());
    assert_eq!(counts.row_groups_skipped, counts.row_groups);
    assert!(
        absent.bytes() < block.meta.data_size / 50,
        "read {} of {} bytes",
        absent.bytes(),
        block.meta.data_size
    );

    let present = Arc::new(ReadStats::default());
    let (groups, counts) = scan_block(
        &storage,
        &block.meta,
        &file,
        &columns,
        &service_is("cart"),
        &present,
    )
    .await
    .unwrap();
    let expected = spans
        .iter()
        .filter(|s| s.service_name() == Some("cart"))
        .count();
    let mut found = 0;
    for g in &groups {
        let names = g
            .batch
            .column_by_name("resource_service_name")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        found += (0..names.len())
            .filter(|&i| names.is_valid(i) && names.value(i) == "cart")
            .count();
        assert_eq!(g.batch.num_columns(), 2, "only the projected columns");
    }
    assert_eq!(found, expected, "no row with the value is ruled out");
    assert!(counts.rows_read > 0);
}

#[tokio::test]
async fn page_statistics_rule_out_and_rows_are_read_back_exactly() {
    let storage = Storage::in_memory();
    let (block, _) = block(&storage).await;
    let stats = Arc::new(ReadStats::default());
    let file = open_block_file(&storage, &block.meta, &stats)
        .await
        .unwrap();
    let slow = Prune::Column {
        column: col::DURATION.into(),
        op: PruneOp::Gt,
        value: PruneValue::Int(3_600_000_000_000),
    };
    let (groups, counts) = scan_block(
        &storage,
        &block.meta,
        &file,
        &[col::TRACE_ID],
        &slow,
        &stats,
    )
    .await
    .unwrap();
    assert!(groups.is_empty());
    assert_eq!(counts.rows_read, 0);

    let (groups, _) = scan_block(
        &storage,
        &block.meta,
        &file,
        &[col::TRACE_ID, col::NAME],
        &Prune::Any,
        &stats,
    )
    .await
    .unwrap();
    let g = &groups[1];
    let names = |batch: &arrow::array::RecordBatch| -> Vec<String> {
        let a = batch
            .column_by_name(col::NAME)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        (0..a.len()).map(|i| a.value(i).to_owned()).collect()
    };
    let all = names(&g.batch);
    let rows = [0usize, 3, 4, 5, all.len() - 1];
    let batch = read_rows(
        &storage,
        &block.meta,
        &file,
        g.group,
        &rows,
        &[col::NAME],
        &stats,
    )
    .await
    .unwrap();
    let picked: Vec<String> = rows.iter().map(|&r| all[r].clone()).collect();
    assert_eq!(names(&batch), picked);
    assert!(
        read_rows(
            &storage,
            &block.meta,
            &file,
            g.group,
            &[5, 3],
            &[col::NAME],
            &stats
        )
        .await
        .is_err(),
        "rows must be sorted"
    );
}
