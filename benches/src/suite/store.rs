//! A store of blocks on local disk written straight through the block writer (no server), for
//! the read benchmarks. Generation runs on this thread while blocks are encoded on every core;
//! a manifest beside the blocks lets a later run reuse the store when it asks for the same one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::{Span, TenantId, TraceId};
use strata_storage::{LocalConfig, Storage, StorageConfig};

use crate::workload::{Workload, WorkloadConfig};

/// The tenant every benchmark store is written for.
pub const TENANT: &str = "bench";

/// Which store: equal specs give byte-for-byte the same spans.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSpec {
    /// Blocks.
    pub blocks: usize,
    /// Traces in each block, consecutive in the workload stream.
    pub traces_per_block: usize,
    /// How blocks are written.
    pub block: BlockConfig,
}

/// A store on disk.
pub struct Store {
    /// Its directory (the storage root).
    pub dir: PathBuf,
    /// Storage over the directory.
    pub storage: Storage,
    /// The tenant.
    pub tenant: TenantId,
    /// Blocks written.
    pub blocks: usize,
    /// Every trace written and its earliest span start, in stream order.
    pub traces: Vec<(TraceId, u64)>,
    /// Spans written.
    pub spans: u64,
    /// Bytes of data files and bloom shards.
    pub bytes: u64,
    /// Seconds it took to write, or 0 when reused.
    pub write_secs: f64,
}

impl Store {
    /// Opens the store in `dir` if its manifest matches `spec`, or (re)writes it.
    pub async fn open_or_write(dir: &Path, spec: &StoreSpec) -> anyhow::Result<Store> {
        let storage = Storage::from_config(&StorageConfig {
            local: LocalConfig {
                path: dir.to_owned(),
            },
            ..Default::default()
        })?;
        let tenant = TenantId::new(TENANT)?;
        let manifest = dir.join("bench-store.json");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && let Ok(m) = serde_json::from_str::<serde_json::Value>(&text)
            && m["spec"] == spec_json(spec)
        {
            let traces = m["traces"]
                .as_array()
                .context("manifest traces")?
                .iter()
                .filter_map(|t| {
                    let id = TraceId::from_hex(t[0].as_str()?).ok()?;
                    Some((id, t[1].as_u64()?))
                })
                .collect();
            return Ok(Store {
                dir: dir.to_owned(),
                storage,
                tenant,
                blocks: spec.blocks,
                traces,
                spans: m["spans"].as_u64().unwrap_or(0),
                bytes: m["bytes"].as_u64().unwrap_or(0),
                write_secs: 0.0,
            });
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        let mut store = Store {
            dir: dir.to_owned(),
            storage,
            tenant,
            blocks: spec.blocks,
            traces: Vec::new(),
            spans: 0,
            bytes: 0,
            write_secs: 0.0,
        };
        store.write(spec).await?;
        let traces: Vec<_> = store
            .traces
            .iter()
            .map(|(id, start)| json!([id.to_hex(), start]))
            .collect();
        std::fs::write(
            &manifest,
            serde_json::to_vec(&json!({
                "spec": spec_json(spec),
                "traces": traces,
                "spans": store.spans,
                "bytes": store.bytes,
            }))?,
        )?;
        Ok(store)
    }

    async fn write(&mut self, spec: &StoreSpec) -> anyhow::Result<()> {
        let started = Instant::now();
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let mut workload = Workload::new(WorkloadConfig::default());
        let mut pending = tokio::task::JoinSet::new();
        for _ in 0..spec.blocks {
            let mut spans: Vec<Span> = Vec::new();
            for _ in 0..spec.traces_per_block {
                let (converted, _) =
                    strata_model::otlp::spans_from_request(workload.next_trace().into_request());
                if let Some(first) = converted.first() {
                    let start = converted.iter().map(|s| s.start_unix_nano).min();
                    self.traces.push((first.trace_id, start.unwrap_or(0)));
                }
                spans.extend(converted);
            }
            while pending.len() >= workers {
                self.finish_one(&mut pending).await?;
            }
            let identity = BlockIdentity::fresh(self.tenant.clone());
            let (config, storage) = (spec.block.clone(), self.storage.clone());
            pending.spawn(async move {
                let block =
                    tokio::task::spawn_blocking(move || encode_block(identity, config, spans))
                        .await??;
                upload_block(&storage, &block).await?;
                Ok::<_, anyhow::Error>((
                    block.meta.span_count,
                    block.meta.data_size + block.meta.bloom_size,
                ))
            });
        }
        while !pending.is_empty() {
            self.finish_one(&mut pending).await?;
        }
        self.write_secs = started.elapsed().as_secs_f64();
        Ok(())
    }

    async fn finish_one(
        &mut self,
        pending: &mut tokio::task::JoinSet<anyhow::Result<(u64, u64)>>,
    ) -> anyhow::Result<()> {
        if let Some(done) = pending.join_next().await {
            let (spans, bytes) = done??;
            self.spans += spans;
            self.bytes += bytes;
        }
        Ok(())
    }
}

fn spec_json(spec: &StoreSpec) -> serde_json::Value {
    json!({
        "blocks": spec.blocks,
        "traces_per_block": spec.traces_per_block,
        "block": format!("{:?}", spec.block),
        "workload": format!("{:?}", WorkloadConfig::default()),
    })
}
