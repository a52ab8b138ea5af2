//! One bad object costs only itself (issue 14, point 4): a poison object of each kind is put
//! straight into the bucket — block data garbage or truncated, `meta.json` garbage or of the
//! wrong types, a garbage bloom shard, `tags.json`, tenant index and `compacted.json`, a rollup
//! segment's data truncated and its `meta.json` garbage — while an all-in-one process (ingest
//! and queries) and a separate compactor run over it, on local disk and on S3. Both keep
//! working; the rest of the tenant is compacted, counted in the rollups and aged out on
//! schedule; answers that needed a poison object say they are partial.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use serde_json::Value;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::catalog::list_entries;
use strata_block::{BlockConfig, BlockIdentity, EncodedBlock, Rollup, encode_block, layout};
use strata_model::{Span, TenantId, TraceId};
use strata_storage::Storage;
use uuid::Uuid;

use crate::support::{S3Server, StorageSection, Strata};

/// Data older than this is dropped (retention's last tier).
const DROP_AFTER_SECS: u64 = 45;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn hex(id: &TraceId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` workload traces whose spans start about ten seconds ago.
fn traces(seed: u64, n: usize) -> Vec<Vec<Span>> {
    let start = chrono::Utc::now() - chrono::Duration::seconds(10);
    let mut workload = Workload::new(WorkloadConfig {
        seed,
        start_unix_nano: u64::try_from(start.timestamp_nanos_opt().unwrap()).unwrap(),
        traces_per_second: 20.0,
        error_ratio: 0.1,
        slow_ratio: 0.0,
    });
    (0..n)
        .map(|_| strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0)
        .collect()
}

fn span_count(traces: &[Vec<Span>]) -> u64 {
    traces.iter().map(|t| t.len() as u64).sum()
}

/// The poison objects placed, by kind, and the traces of the blocks they spoil.
#[derive(Default)]
struct Poison {
    /// Blocks whose data cannot be read (garbage, truncated): partial answers, never counted.
    unreadable_data: Vec<(Uuid, Vec<Vec<Span>>)>,
    /// Blocks whose `meta.json` cannot be used: invisible, deleted past retention.
    unusable_meta: Vec<Uuid>,
    /// A block whose bloom shards are garbage: partial lookups, data fine.
    bad_bloom: Option<(Uuid, Vec<Vec<Span>>)>,
    /// A block whose `tags.json` is garbage: partial tags, data fine.
    bad_tags: Option<(Uuid, Vec<Vec<Span>>)>,
    /// A block with a garbage `compacted.json`: counts as replaced.
    bad_marker: Option<Uuid>,
    /// Rollup segments whose data or meta cannot be read.
    bad_segments: Vec<Uuid>,
    /// How many objects of each kind were placed.
    placed: BTreeMap<&'static str, usize>,
}

impl Poison {
    fn placed(&mut self, kind: &'static str) {
        *self.placed.entry(kind).or_default() += 1;
    }

    fn block_ids(&self) -> BTreeSet<Uuid> {
        self.unreadable_data
            .iter()
            .map(|(id, _)| *id)
            .chain(self.unusable_meta.iter().copied())
            .chain(self.bad_bloom.iter().map(|(id, _)| *id))
            .chain(self.bad_tags.iter().map(|(id, _)| *id))
            .chain(self.bad_marker)
            .collect()
    }
}

async fn upload(storage: &Storage, spans: &[Vec<Span>]) -> EncodedBlock {
    let block = encode_block(
        BlockIdentity::fresh(tenant()),
        BlockConfig::default(),
        spans.iter().flatten().cloned().collect::<Vec<Span>>(),
    )
    .unwrap();
    strata_block::upload_block(storage, &block).await.unwrap();
    block
}

async fn put(storage: &Storage, path: &strata_storage::Path, bytes: impl Into<Bytes>) {
    storage.put(path, bytes.into()).await.unwrap();
}

/// Writes one poison object of each kind into the bucket.
async fn place_poison(storage: &Storage) -> Poison {
    let mut poison = Poison::default();
    let t = tenant();

    let spans = traces(101, 8);
    let block = upload(storage, &spans).await;
    let id = block.meta.block_id;
    let garbage = vec![0x5au8; usize::try_from(block.meta.data_size).unwrap()];
    put(storage, &layout::data_path(&t, id), garbage).await;
    poison.unreadable_data.push((id, spans));
    poison.placed("data.parquet, garbage of the right size");

    let spans = traces(102, 8);
    let block = upload(storage, &spans).await;
    let id = block.meta.block_id;
    let half = block.data.slice(..block.data.len() / 2);
    put(storage, &layout::data_path(&t, id), half).await;
    poison.unreadable_data.push((id, spans));
    poison.placed("data.parquet, truncated");

    let block = upload(storage, &traces(103, 8)).await;
    let id = block.meta.block_id;
    put(
        storage,
        &layout::meta_path(&t, id),
        &b"{\"format\": \"strata-parq"[..],
    )
    .await;
    poison.unusable_meta.push(id);
    poison.placed("meta.json, truncated JSON");

    let block = upload(storage, &traces(104, 8)).await;
    let id = block.meta.block_id;
    let wrong = format!(
        "{{\"format\":\"strata-parquet\",\"format_version\":\"one\",\"block_id\":\"{id}\",\"trace_count\":-1}}"
    );
    put(storage, &layout::meta_path(&t, id), wrong).await;
    poison.unusable_meta.push(id);
    poison.placed("meta.json, wrong types");

    let spans = traces(105, 8);
    let block = upload(storage, &spans).await;
    let id = block.meta.block_id;
    for shard in 0..block.meta.bloom.shards {
        put(
            storage,
            &layout::bloom_path(&t, id, shard),
            vec![0xffu8; 64],
        )
        .await;
        poison.placed("bloom shard, garbage");
    }
    poison.bad_bloom = Some((id, spans));

    let spans = traces(106, 8);
    let block = upload(storage, &spans).await;
    let id = block.meta.block_id;
    put(
        storage,
        &layout::tags_path(&t, id),
        &b"{\"names\": [1, 2"[..],
    )
    .await;
    poison.bad_tags = Some((id, spans));
    poison.placed("tags.json, garbage");

    let block = upload(storage, &traces(107, 8)).await;
    let id = block.meta.block_id;
    let marker = layout::block_prefix(&t, id).join(layout::COMPACTED_FILE);
    put(storage, &marker, &b"\x00\x01 not a marker"[..]).await;
    poison.bad_marker = Some(id);
    poison.placed("compacted.json, garbage");

    put(
        storage,
        &layout::index_path(&t),
        &b"\x28\xb5\x2f\xfd garbage"[..],
    )
    .await;
    poison.placed("index.json.zst, garbage");

    for (seed, spoil) in [(108, "data"), (109, "meta")] {
        let mut rollup = Rollup::new();
        for span in traces(seed, 8).iter().flatten() {
            rollup.add_span(span, 60);
        }
        let (meta, data) =
            strata_block::encode_segment(&t, Uuid::now_v7(), &rollup, vec![], vec![]).unwrap();
        let prefix = layout::rollup_prefix(&t, meta.segment_id);
        strata_block::upload_segment(storage, &meta, data.clone())
            .await
            .unwrap();
        if spoil == "data" {
            put(
                storage,
                &prefix.join(layout::DATA_FILE),
                data.slice(..data.len() / 3),
            )
            .await;
            poison.placed("rollup data.parquet, truncated");
        } else {
            put(storage, &prefix.join(layout::META_FILE), &b"[]"[..]).await;
            poison.placed("rollup meta.json, wrong type");
        }
        poison.bad_segments.push(meta.segment_id);
    }
    poison
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(strata: &Strata) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: strata.api_url(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Option<String>, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let partial = response
            .headers()
            .get("x-strata-partial")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, partial, body)
    }

    async fn text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Trace by ID v2: the spans found and the partial message, if any.
    async fn trace(&self, id: &TraceId) -> (usize, Option<String>) {
        let (status, _, body) = self.get(&format!("/api/v2/traces/{}", hex(id))).await;
        assert_eq!(status, 200, "{body}");
        let spans = body["trace"]["resourceSpans"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
            .map(|s| s["spans"].as_array().map_or(0, Vec::len))
            .sum();
        let partial = (body["status"] == "PARTIAL").then(|| body["message"].to_string());
        (spans, partial)
    }

    /// Trace IDs `{ }` finds, and the partial header.
    async fn search_all(&self) -> (BTreeSet<String>, Option<String>) {
        let (status, partial, body) = self.get("/api/search?q=%7B%7D&limit=10000").await;
        assert_eq!(status, 200, "{body}");
        let ids = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["traceID"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('0')
                    .to_owned()
            })
            .collect();
        (ids, partial)
    }

    /// Spans the rollups count, and the partial header.
    async fn stats(&self) -> (u64, Option<String>) {
        let (status, partial, body) = self.get("/api/strata/stats?since=1h").await;
        assert_eq!(status, 200, "{body}");
        let counted = body["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["spanCount"].as_u64().unwrap())
            .sum();
        (counted, partial)
    }

    async fn push(&self, url: &str, traces: &[Vec<Span>]) {
        for spans in traces {
            let request =
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
                    resource_spans: strata_model::otlp::spans_to_resource_spans(spans),
                };
            let response = self
                .client
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
        let flushed = self
            .client
            .post(format!("{}/flush", self.base))
            .send()
            .await
            .unwrap();
        assert!(flushed.status().is_success(), "{}", flushed.status());
    }

    /// A counter of `/metrics` (`name{labels}`), 0 when absent.
    async fn metric(&self, series: &str) -> u64 {
        let (_, text) = self.text("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }
}

fn trimmed_hex(spans: &[Span]) -> String {
    hex(&spans[0].trace_id).trim_start_matches('0').to_owned()
}

async fn wait_for<F: std::future::Future<Output = Result<(), String>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if Instant::now() < deadline => {
                let _ = why;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(why) => panic!("{what}: {why}"),
        }
    }
}

fn poison_test(storage_yaml: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let section: StorageSection = serde_yaml_ng::from_str(storage_yaml).unwrap();
    let storage = Storage::from_config(&section.storage).unwrap();
    let sections = |compactor_enabled: bool| {
        format!(
            "{storage_yaml}ingester:\n  trace_idle_period: 1s\n  flush_check_period: 200ms\n\
             query:\n  blocklist_poll: 1s\n\
             compactor:\n  enabled: {compactor_enabled}\n  cycle: 1s\n  grace_period: 3s\n\
             retention:\n  tiers:\n    - after: 0s\n      keep: all\n    - after: {DROP_AFTER_SECS}s\n      keep: none\n  rollups_for: 1h\n"
        )
    };
    // Ingest and queries, no compactor yet: the poison is seen by queries first.
    let all = Strata::start_role(&dir.path().join("all"), "all", "", &sections(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let api = Api::new(&all);
        let good = [traces(1, 20), traces(2, 20)];
        for batch in &good {
            api.push(&all.traces_url(), batch).await;
        }
        let ingested: BTreeSet<Uuid> = list_entries(&storage, &tenant(), layout::BLOCKS_DIR)
            .await
            .unwrap()
            .into_keys()
            .collect();
        assert!(ingested.len() >= 2, "{ingested:?}");
        let poison = place_poison(&storage).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;

        // Queries: answered from the rest, partial where a poison object was needed.
        let (data_spans, data_partial) = api.trace(&poison.unreadable_data[0].1[0][0].trace_id).await;
        assert_eq!(data_spans, 0);
        assert!(data_partial.is_some(), "garbage data: not partial");
        let (_, truncated_partial) = api.trace(&poison.unreadable_data[1].1[0][0].trace_id).await;
        assert!(truncated_partial.is_some(), "truncated data: not partial");
        let (bloom_block, bloom_traces) = poison.bad_bloom.clone().unwrap();
        let (_, bloom_partial) = api.trace(&bloom_traces[0][0].trace_id).await;
        assert!(bloom_partial.is_some(), "garbage bloom of {bloom_block}: not partial");
        for trace in good.iter().flatten().step_by(7) {
            let (found, _) = api.trace(&trace[0].trace_id).await;
            assert_eq!(found, trace.len(), "a good trace is found whole");
        }
        let (found, search_partial) = api.search_all().await;
        for trace in good.iter().flatten().chain(&bloom_traces) {
            assert!(found.contains(&trimmed_hex(trace)), "search lost a good trace");
        }
        assert!(search_partial.is_some(), "search: not partial");
        let (status, tags_partial, _) = api.get("/api/v2/search/tags").await;
        assert_eq!(status, 200);
        assert!(tags_partial.is_some(), "tags: not partial");
        let (_, stats_partial) = api.stats().await;
        assert!(stats_partial.is_some(), "stats: not partial");
        assert_eq!(api.text("/ready").await.0, 200);

        // The compactor starts.
        let compactor = Strata::start_role(
            &dir.path().join("compactor"),
            "compactor",
            "",
            &sections(true),
        );
        let ops = Api::new(&compactor);
        let (tags_block, tags_traces) = poison.bad_tags.clone().unwrap();
        let readable = [&good[0], &good[1], &bloom_traces, &tags_traces];
        let expected: u64 = readable.iter().map(|t| span_count(t)).sum();
        wait_for("compaction of the readable blocks", Duration::from_secs(60), || async {
            let (counted, _) = api.stats().await;
            let entries = list_entries(&storage, &tenant(), layout::BLOCKS_DIR).await.unwrap();
            let left: Vec<&Uuid> = ingested
                .iter()
                .chain([&bloom_block, &tags_block])
                .filter(|id| entries.get(id).is_some_and(|e| !e.has_marker))
                .collect();
            if counted == expected && left.is_empty() && ops.metric("strata_compactor_jobs_total").await > 0 {
                Ok(())
            } else {
                Err(format!("rollups count {counted} of {expected} spans; not replaced: {left:?}"))
            }
        })
        .await;
        // The tenant index the compactor writes replaced the garbage one.
        assert!(strata_block::read_index(&storage, &tenant()).await.unwrap().is_some());

        // Both roles keep working: later pushes are flushed and found.
        let later = traces(3, 10);
        api.push(&all.traces_url(), &later).await;
        for trace in &later {
            let (found, _) = api.trace(&trace[0].trace_id).await;
            assert_eq!(found, trace.len(), "a later trace is found whole");
        }
        let (_, still_partial) = api.trace(&poison.unreadable_data[0].1[0][0].trace_id).await;
        assert!(still_partial.is_some(), "the unreadable block is still reported");
        assert_eq!(api.text("/ready").await.0, 200);
        assert_eq!(ops.text("/ready").await.0, 200);

        // Retention: everything is aged out on schedule, the unreadable blocks too; the
        // unusable metas go once their ID is past retention and grace. Rollups stay.
        let expected = expected + span_count(&later);
        let poison_ids = poison.block_ids();
        wait_for("retention", Duration::from_secs(120), || async {
            let entries = list_entries(&storage, &tenant(), layout::BLOCKS_DIR).await.unwrap();
            let (counted, _) = api.stats().await;
            if entries.is_empty() && counted == expected {
                Ok(())
            } else {
                let poisoned: Vec<&Uuid> = entries.keys().filter(|id| poison_ids.contains(id)).collect();
                Err(format!(
                    "{} entries left ({} poison: {poisoned:?}); rollups count {counted} of {expected}",
                    entries.len(),
                    poisoned.len()
                ))
            }
        })
        .await;
        let (counted, stats_partial) = api.stats().await;
        assert_eq!(counted, expected);
        assert!(stats_partial.is_some(), "the unreadable segments are still said");

        let mut figures = String::new();
        for series in [
            "strata_compactor_unreadable_objects_total{object=\"block\"}",
            "strata_compactor_unreadable_objects_total{object=\"block_meta\"}",
            "strata_compactor_unreadable_objects_total{object=\"marker\"}",
            "strata_compactor_unreadable_objects_total{object=\"segment\"}",
            "strata_compactor_unreadable_objects_total{object=\"segment_meta\"}",
            "strata_compactor_uncounted_drops_total",
            "strata_compactor_work_failures_total{work=\"job\"}",
            "strata_compactor_work_failures_total{work=\"fold\"}",
            "strata_compactor_work_failures_total{work=\"rollup_job\"}",
            "strata_compactor_entries_deleted_total",
            "strata_compactor_cycle_failures_total",
        ] {
            figures.push_str(&format!("  {series} {}\n", ops.metric(series).await));
        }
        for series in ["strata_query_block_errors_total", "strata_query_segment_errors_total", "strata_query_missing_blocks_total"] {
            figures.push_str(&format!("  {series} {}\n", api.metric(series).await));
        }
        eprintln!("poison on {label}: placed {:?}\n{figures}", poison.placed);
        let count = |s: &str| -> u64 {
            figures
                .lines()
                .find_map(|l| l.trim().strip_prefix(s)?.trim().parse().ok())
                .unwrap_or(0)
        };
        assert_eq!(count("strata_compactor_unreadable_objects_total{object=\"block\"}"), 2);
        assert_eq!(count("strata_compactor_unreadable_objects_total{object=\"block_meta\"}"), 2);
        assert_eq!(count("strata_compactor_unreadable_objects_total{object=\"marker\"}"), 1);
        assert_eq!(count("strata_compactor_unreadable_objects_total{object=\"segment\"}"), 1);
        assert_eq!(count("strata_compactor_unreadable_objects_total{object=\"segment_meta\"}"), 1);
        assert_eq!(count("strata_compactor_uncounted_drops_total"), 2);
        assert_eq!(count("strata_compactor_cycle_failures_total"), 0);
        compactor.stop();
    });
    all.stop();
}

#[test]
fn poison_objects_on_local_disk_cost_only_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let yaml = format!(
        "storage:\n  backend: local\n  local:\n    path: {}\n",
        bucket.display()
    );
    poison_test(&yaml, "local disk");
}

#[test]
fn poison_objects_on_s3_cost_only_themselves() {
    let s3 = S3Server::start("poison");
    poison_test(&s3.storage_yaml(), "S3");
}
