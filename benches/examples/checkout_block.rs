//! Writes one generated checkout trace that has both an injected error and a slow outlier into a
//! block under DIR (a `storage.local.path`), and prints its trace ID, for trying `strata trace`:
//!
//! cargo run -p strata-bench --example checkout_block -- /tmp/blocks
//! cargo run -p strata -- trace <printed ID> --storage /tmp/blocks

#![allow(clippy::print_stdout)] // The example's output is the trace ID.

use anyhow::Context;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::TenantId;
use strata_storage::{LocalConfig, Storage, StorageConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: checkout_block DIR")?;
    let mut workload = Workload::new(WorkloadConfig {
        error_ratio: 0.3,
        slow_ratio: 0.3,
        ..Default::default()
    });
    let trace = (0..100_000)
        .map(|_| workload.next_trace())
        .find(|t| t.flow == "checkout" && t.is_error && t.is_slow && t.span_count() >= 25)
        .context("no checkout trace with both an error and a slow outlier")?;
    let id = hex_id(&trace.trace_id);
    let (spans, _) = strata_model::otlp::spans_from_request(trace.into_request());
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig { path: dir.into() },
        ..Default::default()
    })?;
    let identity = BlockIdentity::fresh(TenantId::default_tenant());
    upload_block(
        &storage,
        &encode_block(identity, BlockConfig::default(), spans)?,
    )
    .await?;
    println!("{id}");
    Ok(())
}

fn hex_id(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
