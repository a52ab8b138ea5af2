//! Nothing acknowledged is lost: not on `kill -9`, not with a torn WAL tail.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use strata_bench::workload::{Workload, WorkloadConfig};

use crate::support::{self, Strata};

use support::{SpanKey, span_keys};

/// Sends the requests over `streams` concurrent gRPC connections; returns the spans of every
/// request the server acknowledged in full.
fn send_all(
    url: &str,
    requests: Vec<ExportTraceServiceRequest>,
    streams: usize,
) -> HashSet<SpanKey> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut chunks: Vec<Vec<ExportTraceServiceRequest>> =
            (0..streams).map(|_| Vec::new()).collect();
        for (i, r) in requests.into_iter().enumerate() {
            chunks[i % streams].push(r);
        }
        let mut tasks = Vec::new();
        for chunk in chunks {
            let url = url.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut client = TraceServiceClient::connect(url).await.unwrap();
                let mut acked = Vec::new();
                for request in chunk {
                    let keys = span_keys(&request);
                    let response = client.export(request).await.unwrap().into_inner();
                    assert!(
                        response
                            .partial_success
                            .as_ref()
                            .is_none_or(|p| p.rejected_spans == 0),
                        "{response:?}"
                    );
                    acked.extend(keys);
                }
                acked
            }));
        }
        let mut all = HashSet::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    })
}

/// Every span stored in the blocks under `dir/data/blocks` for the default tenant.
fn stored_spans(dir: &Path) -> HashSet<SpanKey> {
    support::stored_spans(&dir.join("data/blocks"), "single-tenant")
        .iter()
        .map(|s| (s.trace_id.0, s.span_id.0))
        .collect()
}

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("data/wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn kill_9_after_acknowledged_sends_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Blocks are cut and flushed continuously while we send, so at the kill some spans are in
    // blocks, some in a block being uploaded and some only in the WAL.
    let sections = "ingester:\n  trace_idle_period: 300ms\n  max_block_duration: 500ms\n  flush_check_period: 100ms\n";
    let strata = Strata::start(dir.path(), sections);
    let requests = Workload::new(WorkloadConfig {
        seed: 7,
        ..Default::default()
    })
    .requests(30_000, 300);
    let acked = send_all(&strata.grpc_url(), requests, 4);
    assert_eq!(acked.len(), 30_000);
    let first_log = strata.kill9();
    assert!(
        wal_bytes(dir.path()) > 0,
        "the WAL should hold unflushed spans at the kill:\n{first_log}"
    );
    let before_restart = stored_spans(dir.path());
    assert!(
        before_restart.len() < acked.len(),
        "everything was flushed before the kill; the test proves nothing"
    );

    let strata = Strata::start(dir.path(), sections);
    let log = strata.stop();
    assert!(log.contains("replayed the WAL"), "{log}");
    let stored = stored_spans(dir.path());
    let missing: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged spans lost, e.g. {missing:?}",
        acked.difference(&stored).count()
    );
    assert_eq!(
        wal_bytes(dir.path()),
        0,
        "WAL not emptied after flushing everything"
    );
}

#[test]
fn torn_wal_tail_is_skipped_and_what_precedes_it_survives() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\n";
    let strata = Strata::start(dir.path(), sections);
    let requests = Workload::new(WorkloadConfig {
        seed: 11,
        ..Default::default()
    })
    .requests(2_000, 200);
    let acked = send_all(&strata.grpc_url(), requests, 2);
    strata.kill9();
    // A crash in the middle of a write leaves half a record at the end of the last segment.
    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("data/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let last = segments.last().expect("a WAL segment");
    let mut file = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(&[200, 1, 0, 0, 9, 9, 9, 9, 1, 2, 3])
        .unwrap();
    drop(file);

    let strata = Strata::start(dir.path(), sections);
    let log = strata.stop();
    assert!(log.contains("ends in damage"), "{log}");
    let stored = stored_spans(dir.path());
    assert!(
        acked.is_subset(&stored),
        "{} acknowledged spans lost",
        acked.difference(&stored).count()
    );
}

/// On local disk a block must be on stable storage before the WAL segments holding its spans
/// are deleted, or a power cut after the deletion loses acknowledged spans (the page cache holds
/// the block, and a `kill -9` test cannot tell). Watched from outside with `strace`: every
/// `fsync` with the file it names, and every unlink.
#[test]
fn local_blocks_are_fsynced_before_the_wal_segments_holding_their_spans_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("syscalls.txt");
    let trace_arg = trace.display().to_string();
    // Tiny segments, so each request group starts a new one and the old ones are deleted as
    // soon as their spans are in a block.
    let sections = "ingester:\n  trace_idle_period: 200ms\n  max_block_duration: 300ms\n  \
                    flush_check_period: 100ms\n  wal:\n    segment_bytes: 1KiB\n";
    let strata = Strata::start_wrapped(
        &[
            "strace",
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=fsync,fdatasync,unlink,unlinkat",
            "-o",
            &trace_arg,
        ],
        dir.path(),
        "all",
        "",
        sections,
    );
    let requests = Workload::new(WorkloadConfig {
        seed: 5,
        ..Default::default()
    })
    .requests(400, 40);
    let acked = send_all(&strata.grpc_url(), requests, 1);
    assert_eq!(acked.len(), 400);
    let wal_unlink = |line: &str| line.contains("unlink") && line.contains(".wal\"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let lines = loop {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        if text.lines().any(wal_unlink) {
            break text.lines().map(str::to_owned).collect::<Vec<_>>();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no WAL segment was deleted within 60 s:\n{}",
            strata.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let first_unlink = lines.iter().position(|l| wal_unlink(l)).unwrap();
    let before = &lines[..first_unlink];
    let blocks = dir.path().join("data/blocks/single-tenant/blocks");
    let blocks = blocks.display().to_string();
    let synced = |what: &dyn Fn(&str) -> bool| {
        before
            .iter()
            .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
            .filter_map(|l| l.split('<').nth(1)?.split('>').next())
            .any(|path| path.starts_with(&blocks) && what(&path[blocks.len()..]))
    };
    // `/<block-id>/data.parquet#<n>` (object_store writes a staging file, fsyncs it, renames it
    // into place and fsyncs the directory).
    let file = |name: &'static str| {
        move |rest: &str| rest.matches('/').count() == 2 && rest.contains(name)
    };
    assert!(
        synced(&file("/data.parquet")),
        "no data.parquet was fsynced before the first WAL segment was deleted:\n{}",
        before.join("\n")
    );
    assert!(synced(&file("/meta.json")), "meta.json not fsynced first");
    assert!(synced(&file("/bloom-0")), "bloom-0 not fsynced first");
    assert!(
        synced(&|rest: &str| rest.matches('/').count() == 1),
        "no block directory was fsynced before the first WAL segment was deleted"
    );
    strata.stop();
}
