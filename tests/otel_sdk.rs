//! The OpenTelemetry Python SDK sends over OTLP gRPC and HTTP; pyarrow and DuckDB find every
//! span in the blocks, field by field.

use crate::support::{S3Server, Strata, run_python};

/// Sends the SDK's traces (tenant header only when given); returns where the record of what was
/// sent is.
fn send_with_sdk(strata: &Strata, dir: &std::path::Path, tenant: Option<&str>) -> String {
    let expected = dir.join("expected.json").to_str().unwrap().to_owned();
    let (grpc, http) = (strata.grpc.to_string(), strata.traces_url());
    let mut args = vec!["--grpc", &grpc, "--http", &http, "--out", &expected];
    if let Some(tenant) = tenant {
        args.extend(["--tenant", tenant]);
    }
    let sent = run_python("otel_send.py", &args);
    assert!(sent.contains("sent 120 spans"), "{sent}");
    expected
}

const FAST_CUT: &str =
    "ingester:\n  trace_idle_period: 1s\n  max_block_duration: 2s\n  flush_check_period: 200ms\n";

#[test]
fn otel_sdk_spans_reach_local_blocks_field_for_field() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Strata::start(dir.path(), FAST_CUT);
    let expected = send_with_sdk(&strata, dir.path(), None);
    let log = strata.stop();
    assert!(log.contains("flushed block"), "{log}");
    let verified = run_python(
        "verify_blocks.py",
        &[
            "--expected",
            &expected,
            "--local",
            dir.path().join("data/blocks").to_str().unwrap(),
        ],
    );
    assert!(verified.contains("verified 120 spans"), "{verified}");
    // Everything was flushed, so the WAL holds nothing any more.
    let wal: Vec<_> = std::fs::read_dir(dir.path().join("data/wal"))
        .unwrap()
        .collect();
    assert!(
        wal.is_empty(),
        "WAL segments left after a clean shutdown: {wal:?}"
    );
}

#[test]
fn otel_sdk_spans_reach_s3_blocks_field_for_field() {
    let s3 = S3Server::start("strata-e2e");
    let dir = tempfile::tempdir().unwrap();
    let strata = Strata::start_role(
        dir.path(),
        "all",
        "  multitenancy_enabled: true\n",
        &format!("{FAST_CUT}{}", s3.storage_yaml()),
    );
    let expected = send_with_sdk(&strata, dir.path(), Some("team-s3"));
    let log = strata.stop();
    assert!(log.contains("s3:http://127.0.0.1"), "{log}");
    assert!(
        !dir.path().join("data/blocks/team-s3").exists(),
        "blocks went to local disk"
    );
    let verified = run_python(
        "verify_blocks.py",
        &[
            "--expected",
            &expected,
            "--s3-endpoint",
            &s3.endpoint,
            "--bucket",
            &s3.bucket,
            "--tenant",
            "team-s3",
        ],
    );
    assert!(verified.contains("verified 120 spans"), "{verified}");
}
