//! A trace sent with the OpenTelemetry Python SDK comes back through Tempo's API (v2 and v1,
//! protobuf and JSON) span for span equal to what was sent: while it is only in the ingester,
//! after it is in a block, and when its spans are split across two blocks.

use crate::support::{Strata, run_python};

/// Nothing is cut until shutdown, so what is found before the first stop comes from memory.
/// The compactor stays off so the split-blocks case stays split.
const HOLD: &str =
    "ingester:\n  trace_idle_period: 1h\n  max_block_duration: 1h\ncompactor:\n  enabled: false\n";

fn send(strata: &Strata, out: &std::path::Path) -> String {
    let out = out.to_str().unwrap().to_owned();
    let sent = run_python(
        "otel_send.py",
        &[
            "--grpc",
            &strata.grpc.to_string(),
            "--http",
            &strata.traces_url(),
            "--out",
            &out,
        ],
    );
    assert!(sent.contains("sent 120 spans"), "{sent}");
    out
}

fn verify(strata: &Strata, expected: &[&str]) -> String {
    let api = format!("http://{}", strata.api);
    let mut args = vec!["--api", api.as_str()];
    for e in expected {
        args.extend(["--expected", e]);
    }
    run_python("verify_api.py", &args)
}

fn blocks(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("data/blocks/single-tenant/blocks")).map_or(0, |d| d.count())
}

#[test]
fn sdk_traces_come_back_from_memory_from_a_block_and_from_split_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Strata::start(dir.path(), HOLD);
    let first = send(&strata, &dir.path().join("first.json"));
    assert_eq!(blocks(dir.path()), 0);
    let verified = verify(&strata, &[&first]);
    assert!(
        verified.contains("verified 20 traces (480 spans in 4 forms)"),
        "from memory: {verified}"
    );
    strata.stop();
    assert_eq!(blocks(dir.path()), 1);

    let strata = Strata::start(dir.path(), HOLD);
    let verified = verify(&strata, &[&first]);
    assert!(
        verified.contains("verified 20 traces"),
        "from a block: {verified}"
    );
    // The SDK run again continues the same remote traces (every third trace ID repeats) with new
    // spans: those 4 traces end up split across two blocks (20 + 20 - 4 distinct trace IDs).
    let second = send(&strata, &dir.path().join("second.json"));
    strata.stop();
    assert_eq!(blocks(dir.path()), 2);

    let strata = Strata::start(dir.path(), HOLD);
    let verified = verify(&strata, &[&first, &second]);
    assert!(
        verified.contains("verified 36 traces (960 spans in 4 forms)"),
        "split across blocks: {verified}"
    );
    strata.stop();
}
