//! Strata as separate processes on one S3 bucket (moto): two `strata ingester`s (each with its
//! own WAL), a `strata querier` asking both over their internal gRPC API, and a
//! `strata compactor`. The OpenTelemetry Python SDK sends over both ingesters (OTLP/gRPC to one,
//! OTLP/HTTP to the other, some traces split over both); every trace must be found through the
//! querier, with exactly the spans the SDK had acknowledged, while it is only in the ingesters,
//! after they flush, with an ingester down (from the bucket, marked partial), after compaction,
//! and with the querier and the compactor killed with SIGKILL under load.
//!
//! The sender dates its spans three hours back (`otel_spread.py --hours-ago`), so all of a run
//! falls in one compaction window that has already ended: the compactor's planner merges every
//! live block of such a window into one, which makes "compaction settled" exact (one live block
//! in the window) whatever the wall clock says.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_block::BlockMeta;
use strata_block::catalog::{list_entries, superseded};
use strata_model::TenantId;
use strata_storage::Storage;
use uuid::Uuid;

use crate::support::{S3Server, StorageSection, Strata, run_python, spawn_python};

/// What `otel_spread.py` recorded: every acknowledged trace (32 hex digits) and its span count.
struct Sent {
    traces: BTreeMap<String, usize>,
    spans: usize,
    split: Vec<String>,
    seconds: f64,
}

fn read_sent(path: &Path) -> Sent {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("the sender's record")).unwrap();
    let traces: BTreeMap<String, usize> = json["traces"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, n)| (id.clone(), n.as_u64().unwrap() as usize))
        .collect();
    assert_eq!(json["failed_spans"], 0, "exports failed: {json}");
    assert_eq!(json["dropped_spans"], 0, "the SDK dropped spans: {json}");
    Sent {
        spans: json["spans"].as_u64().unwrap() as usize,
        split: json["split"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect(),
        seconds: json["seconds"].as_f64().unwrap_or(0.0),
        traces,
    }
}

/// A trace by ID as the querier answered it.
#[derive(Debug)]
struct TraceAnswer {
    spans: usize,
    status: Option<String>,
    message: Option<String>,
}

/// `{ }` search as the querier answered it.
#[derive(Debug)]
struct SearchAnswer {
    /// Trace IDs as 32 hex digits, in answer order (duplicates kept).
    ids: Vec<String>,
    /// The `X-Strata-Partial` header.
    partial: Option<String>,
}

/// One block entry of the bucket.
#[derive(Debug, Clone)]
struct Entry {
    meta: Option<BlockMeta>,
    marked: bool,
    live: bool,
}

/// The HTTP client, and the bucket read directly with Strata's storage and catalog code.
struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    storage: Storage,
}

fn pad(id: &str) -> String {
    format!("{id:0>32}").to_lowercase()
}

impl Client {
    fn new(s3: &S3Server) -> Self {
        let section: StorageSection = serde_yaml_ng::from_str(&s3.storage_yaml()).unwrap();
        Self {
            rt: tokio::runtime::Runtime::new().unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            storage: Storage::from_config(&section.storage).unwrap(),
        }
    }

    fn get(&self, url: &str) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
        self.rt.block_on(get(&self.http, url))
    }

    fn ready(&self, api: SocketAddr) -> Result<(), String> {
        let (status, _, body) = self.get(&format!("http://{api}/ready"))?;
        (status == 200)
            .then_some(())
            .ok_or_else(|| format!("/ready: {status} {}", String::from_utf8_lossy(&body)))
    }

    fn wait_ready(&self, strata: &Strata) {
        eventually(
            &format!("{} ready", strata.role),
            Duration::from_secs(30),
            || self.ready(strata.api),
        );
    }

    /// Every trace of `ids` by ID (eight requests at a time).
    fn traces(
        &self,
        api: SocketAddr,
        ids: &[String],
    ) -> BTreeMap<String, Result<TraceAnswer, String>> {
        self.rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for chunk in ids.chunks(ids.len().div_ceil(8).max(1)) {
                let (http, chunk) = (self.http.clone(), chunk.to_vec());
                tasks.spawn(async move {
                    let mut out = Vec::new();
                    for id in chunk {
                        let answer = trace_by_id(&http, api, &id).await;
                        out.push((id, answer));
                    }
                    out
                });
            }
            let mut all = BTreeMap::new();
            while let Some(done) = tasks.join_next().await {
                all.extend(done.unwrap());
            }
            all
        })
    }

    /// A 200 answer's headers and JSON body; `Err` naming `what` otherwise.
    fn get_json(
        &self,
        url: &str,
        what: &str,
    ) -> Result<(reqwest::header::HeaderMap, serde_json::Value), String> {
        let (status, headers, body) = self.get(url)?;
        if status != 200 {
            return Err(format!(
                "{what}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let json = serde_json::from_slice(&body).map_err(|e| format!("{what}: {e}"))?;
        Ok((headers, json))
    }

    fn search_all(&self, api: SocketAddr) -> Result<SearchAnswer, String> {
        let url = format!("http://{api}/api/search?q=%7B%20%7D&limit=100000&spss=1");
        let (headers, json) = self.get_json(&url, "search")?;
        let ids = json["traces"]
            .as_array()
            .ok_or_else(|| format!("search answer without traces: {json}"))?
            .iter()
            .map(|t| pad(t["traceID"].as_str().unwrap_or_default()))
            .collect();
        Ok(SearchAnswer {
            ids,
            partial: partial_header(&headers),
        })
    }

    /// Values of `resource.service.name` (v2 tag values) and the partial header.
    fn services(&self, api: SocketAddr) -> Result<(BTreeSet<String>, Option<String>), String> {
        let url = format!("http://{api}/api/v2/search/tag/resource.service.name/values");
        let (headers, json) = self.get_json(&url, "tag values")?;
        let values = json["tagValues"]
            .as_array()
            .ok_or_else(|| format!("tag values answer: {json}"))?
            .iter()
            .filter_map(|v| v["value"].as_str().map(str::to_owned))
            .collect();
        Ok((values, partial_header(&headers)))
    }

    /// `POST /flush` on an ingester's API.
    fn flush(&self, ingester: &Strata) -> (u16, String) {
        self.rt.block_on(async {
            let response = self
                .http
                .post(format!("{}/flush", ingester.api_url()))
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .expect("POST /flush");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }

    /// A sample's value on `/metrics` (`name` as exposed, e.g. `strata_compactor_cycles_total`).
    fn metric(&self, api: SocketAddr, name: &str) -> Result<f64, String> {
        let (status, _, body) = self.get(&format!("http://{api}/metrics"))?;
        if status != 200 {
            return Err(format!("/metrics: {status}"));
        }
        let text = String::from_utf8_lossy(&body);
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(name)?;
                let value = if rest.starts_with('{') {
                    rest.split('}').nth(1)?
                } else {
                    rest
                };
                value.split_whitespace().next()?.parse().ok()
            })
            .ok_or_else(|| format!("no {name} on /metrics:\n{text}"))
    }

    /// Every block entry of the default tenant, with its meta, marker and liveness (the rule of
    /// `strata_block::catalog`: a meta, no `compacted.json`, named in no other `compacted_from`).
    fn bucket(&self) -> BTreeMap<Uuid, Entry> {
        self.rt.block_on(async {
            let tenant = TenantId::default_tenant();
            let listed = list_entries(&self.storage, &tenant, "blocks")
                .await
                .expect("list the bucket");
            let mut entries = BTreeMap::new();
            for (id, entry) in listed {
                let meta = if entry.has_meta {
                    // A block deleted between the listing and this read has no meta any more.
                    match self
                        .storage
                        .get(&strata_block::layout::meta_path(&tenant, id))
                        .await
                    {
                        Ok(bytes) => Some(BlockMeta::parse(&bytes, "meta.json").unwrap()),
                        Err(_) => None,
                    }
                } else {
                    None
                };
                entries.insert(
                    id,
                    Entry {
                        meta,
                        marked: entry.has_marker,
                        live: false,
                    },
                );
            }
            let gone = superseded(
                entries.iter().filter(|(_, e)| e.marked).map(|(id, _)| *id),
                entries
                    .values()
                    .filter_map(|e| e.meta.as_ref())
                    .map(|m| m.compacted_from.as_slice()),
            );
            for (id, entry) in &mut entries {
                entry.live = entry.meta.is_some() && !gone.contains(id);
            }
            entries
        })
    }
}

fn partial_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-strata-partial")
        .map(|v| v.to_str().unwrap_or("<not text>").to_owned())
}

async fn get(
    http: &reqwest::Client,
    url: &str,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok((status, headers, body.to_vec()))
}

async fn trace_by_id(
    http: &reqwest::Client,
    api: SocketAddr,
    id: &str,
) -> Result<TraceAnswer, String> {
    let (status, _, body) = get(http, &format!("http://{api}/api/v2/traces/{id}")).await?;
    if status != 200 {
        return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let spans = json["trace"]["resourceSpans"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
                .map(|s| s["spans"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    Ok(TraceAnswer {
        spans,
        status: json["status"].as_str().map(str::to_owned),
        message: json["message"].as_str().map(str::to_owned),
    })
}

/// Calls `check` every half second until it is `Ok` or `timeout` passes (then fails with its
/// last error); returns its value and how long it took. When it took more than one try, says
/// why the first failed.
fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> (T, Duration) {
    let began = Instant::now();
    let mut first: Option<String> = None;
    let mut tries = 0;
    loop {
        tries += 1;
        match check() {
            Ok(value) => {
                if let Some(first) = first {
                    let first: String = first.chars().take(600).collect();
                    eprintln!("  ({what}: ok at try {tries}; the first failed: {first})");
                }
                return (value, began.elapsed());
            }
            Err(e) if began.elapsed() < timeout => {
                first.get_or_insert(e);
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("{what}: still failing after {timeout:?} ({tries} tries): {e}"),
        }
    }
}

/// Every sent trace by ID through the querier, then `{ }` search: each trace has exactly the
/// spans acknowledged, the search lists every trace once and nothing else, and every answer is
/// partial (v2 `status: PARTIAL` with a message; the `X-Strata-Partial` header) exactly when
/// `partial` says.
fn check_all(client: &Client, api: SocketAddr, sent: &Sent, partial: bool) -> Result<(), String> {
    check_ids(client, api, &sent.traces, partial)?;
    check_search_all(client, api, sent, partial)
}

/// Each trace of `traces` by ID: exactly its span count, partial exactly when `partial` says.
fn check_ids(
    client: &Client,
    api: SocketAddr,
    traces: &BTreeMap<String, usize>,
    partial: bool,
) -> Result<(), String> {
    let ids: Vec<String> = traces.keys().cloned().collect();
    let mut wrong = Vec::new();
    for (id, answer) in client.traces(api, &ids) {
        let want = traces[&id];
        match answer {
            Err(e) => wrong.push(format!("{id}: {e}")),
            Ok(a) if a.spans != want => {
                wrong.push(format!("{id}: {} spans, sent {want} ({a:?})", a.spans));
            }
            Ok(a) if partial && (a.status.as_deref() != Some("PARTIAL") || a.message.is_none()) => {
                wrong.push(format!("{id}: not marked partial: {a:?}"));
            }
            Ok(a) if !partial && a.status.is_some() => {
                wrong.push(format!("{id}: marked {a:?}"));
            }
            Ok(_) => {}
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{} of {} traces wrong by ID, e.g.:\n  {}",
            wrong.len(),
            ids.len(),
            wrong[..wrong.len().min(8)].join("\n  ")
        ));
    }
    Ok(())
}

/// `{ }` search lists every sent trace once and nothing else, partial exactly when `partial`
/// says.
fn check_search_all(
    client: &Client,
    api: SocketAddr,
    sent: &Sent,
    partial: bool,
) -> Result<(), String> {
    let search = client.search_all(api)?;
    check_search(&search, sent)?;
    match (&search.partial, partial) {
        (None, true) => Err("search is not marked partial".to_owned()),
        (Some(p), false) => Err(format!("search marked partial: {p}")),
        _ => Ok(()),
    }
}

/// `result`, its error followed by the last warnings and errors `strata` logged.
fn with_log<T>(result: Result<T, String>, strata: &Strata) -> Result<T, String> {
    result.map_err(|e| {
        let log = strata.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        let tail = &lines[lines.len().saturating_sub(6)..];
        format!(
            "{e}\n{} {} warnings and errors, the last:\n  {}",
            strata.role,
            lines.len(),
            tail.join("\n  ")
        )
    })
}

/// Prints how many warnings and errors each process logged, with the last of them.
fn report_warnings(processes: &[&Strata]) {
    for strata in processes {
        let log = strata.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        if let Some(last) = lines.last() {
            let last: String = last.chars().take(400).collect();
            eprintln!(
                "  {} logged {} warnings/errors, the last: {last}",
                strata.role,
                lines.len()
            );
        }
    }
}

/// No trace twice in a search answer; then exactly the traces sent.
fn check_search(search: &SearchAnswer, sent: &Sent) -> Result<(), String> {
    let twice = twice(&search.ids);
    if !twice.is_empty() {
        return Err(format!(
            "search lists {} traces twice: {twice:?}",
            twice.len()
        ));
    }
    let found: BTreeSet<&String> = search.ids.iter().collect();
    let want: BTreeSet<&String> = sent.traces.keys().collect();
    if found != want {
        let missing: Vec<_> = want.difference(&found).take(5).collect();
        let extra: Vec<_> = found.difference(&want).take(5).collect();
        return Err(format!(
            "search found {} traces of {}: missing {} (e.g. {missing:?}), unexpected {} (e.g. {extra:?})",
            found.len(),
            want.len(),
            want.difference(&found).count(),
            found.difference(&want).count()
        ));
    }
    Ok(())
}

fn twice(ids: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.iter()
        .filter(|id| !seen.insert(id.as_str()))
        .cloned()
        .collect()
}

/// The IDs of the blocks an ingester logged as flushed (uploaded).
fn flushed_blocks(log: &str) -> BTreeSet<Uuid> {
    log.lines()
        .filter(|l| l.contains("flushed block"))
        .filter_map(|l| {
            let token = l.split("block=").nth(1)?.split_whitespace().next()?;
            Uuid::parse_str(token.trim_matches('"')).ok()
        })
        .collect()
}

fn live(bucket: &BTreeMap<Uuid, Entry>) -> Vec<&BlockMeta> {
    bucket
        .values()
        .filter(|e| e.live)
        .filter_map(|e| e.meta.as_ref())
        .collect()
}

/// Done when the live blocks are one block of compaction level 1 or more (all data is in one
/// window) replacing others; returns it.
fn merged_into_one(bucket: &BTreeMap<Uuid, Entry>) -> Result<BlockMeta, String> {
    let live = live(bucket);
    let describe = || {
        live.iter()
            .map(|m| {
                format!(
                    "{} level {} traces {} spans {} from {}",
                    m.block_id,
                    m.compaction_level,
                    m.trace_count,
                    m.span_count,
                    m.compacted_from.len()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match live.as_slice() {
        [one] if one.compaction_level >= 1 && !one.compacted_from.is_empty() => Ok((*one).clone()),
        _ => Err(format!(
            "{} live blocks ({} entries in all): {}",
            live.len(),
            bucket.len(),
            describe()
        )),
    }
}

fn window_of(meta: &BlockMeta) -> i64 {
    meta.end_time.timestamp().div_euclid(3600)
}

fn storage_and(yaml: &str, s3: &S3Server) -> String {
    format!("{yaml}{}", s3.storage_yaml())
}

fn querier_yaml(ingesters: &[&Strata]) -> String {
    let addresses: Vec<String> = ingesters
        .iter()
        .map(|i| format!("'{}'", i.internal.expect("an ingester's internal address")))
        .collect();
    format!(
        "query:\n  blocklist_poll: 1s\n  ingesters:\n    addresses: [{}]\n    timeout: 2s\n",
        addresses.join(", ")
    )
}

const COMPACTOR: &str = "compactor:\n  cycle: 1s\n  grace_period: 5s\n";

/// Two ingesters with `ingester_yaml` (each in its own directory, so with its own WAL) and a
/// querier asking both, all on `s3`.
fn ingesters_and_querier(
    root: &Path,
    s3: &S3Server,
    ingester_yaml: &str,
) -> (Strata, Strata, Strata) {
    let ingester = |name: &str| {
        Strata::start_role(
            &root.join(name),
            "ingester",
            "",
            &storage_and(ingester_yaml, s3),
        )
    };
    let a = ingester("ingester-a");
    let b = ingester("ingester-b");
    let querier = Strata::start_role(
        &root.join("querier"),
        "querier",
        "",
        &storage_and(&querier_yaml(&[&a, &b]), s3),
    );
    (a, b, querier)
}

#[test]
fn two_ingesters_one_querier_one_compactor_on_s3_find_every_trace_before_flush_after_flush_and_after_compaction()
 {
    let s3 = S3Server::start("distributed");
    let root = tempfile::tempdir().unwrap();
    let client = Client::new(&s3);
    // Nothing is cut before the test flushes.
    let hold = "ingester:\n  trace_idle_period: 1h\n  max_trace_live: 1h\n  max_block_duration: 1h\n  flush_check_period: 200ms\n";
    let (a, b, querier) = ingesters_and_querier(root.path(), &s3, hold);
    for s in [&a, &b, &querier] {
        client.wait_ready(s);
    }

    let record = root.path().join("sent.json");
    let out = run_python(
        "otel_spread.py",
        &[
            "--grpc",
            &a.grpc.to_string(),
            "--http",
            &b.traces_url(),
            "--out",
            record.to_str().unwrap(),
            "--traces",
            "60",
        ],
    );
    let sent = read_sent(&record);
    eprintln!("{}", out.trim());
    assert_eq!(sent.traces.len(), 60, "{out}");
    assert_eq!(sent.spans, 240, "{out}");
    assert_eq!(sent.split.len(), 12, "{out}");

    // Before any flush: nothing in the bucket, everything through the querier from both
    // ingesters' memory (the split traces merged from both).
    let before = client.bucket();
    assert!(before.is_empty(), "blocks before any flush: {before:?}");
    let ((), took) = eventually(
        "every trace through the querier before flush",
        Duration::from_secs(30),
        || with_log(check_all(&client, querier.api, &sent, false), &querier),
    );
    eprintln!(
        "before flush: 60 traces, 240 spans (12 split over both ingesters) found in {took:?}"
    );
    let both = BTreeSet::from(["spread-a".to_owned(), "spread-b".to_owned()]);
    eventually(
        "both services in the tag values before flush",
        Duration::from_secs(30),
        || match client.services(querier.api)? {
            (values, None) if values.is_superset(&both) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // Flush both: their blocks are in the bucket, and every trace is found at once.
    for ingester in [&a, &b] {
        let (status, body) = client.flush(ingester);
        assert_eq!(status, 200, "POST /flush: {body}\n{}", ingester.log());
    }
    let (from_a, from_b) = (flushed_blocks(&a.log()), flushed_blocks(&b.log()));
    assert!(
        !from_a.is_empty(),
        "ingester A flushed nothing:\n{}",
        a.log()
    );
    assert!(
        !from_b.is_empty(),
        "ingester B flushed nothing:\n{}",
        b.log()
    );
    let flushed: BTreeSet<Uuid> = from_a.union(&from_b).copied().collect();
    let bucket = client.bucket();
    let live_ids: BTreeSet<Uuid> = live(&bucket).iter().map(|m| m.block_id).collect();
    assert_eq!(
        live_ids, flushed,
        "the bucket's live blocks are the flushed ones"
    );
    let stored_spans: u64 = live(&bucket).iter().map(|m| m.span_count).sum();
    let stored_traces: u64 = live(&bucket).iter().map(|m| m.trace_count).sum();
    assert_eq!(stored_spans as usize, sent.spans);
    // A split trace is in a block of each ingester.
    assert_eq!(stored_traces as usize, sent.traces.len() + sent.split.len());
    assert!(
        live(&bucket).iter().all(|m| m.compaction_level == 0),
        "compacted before any compactor ran: {bucket:?}"
    );
    let windows: BTreeSet<i64> = live(&bucket).iter().map(|m| window_of(m)).collect();
    assert_eq!(windows.len(), 1, "{windows:?}");
    with_log(check_all(&client, querier.api, &sent, false), &querier)
        .unwrap_or_else(|e| panic!("right after the flush: {e}"));
    eprintln!(
        "after flush: {} blocks from A, {} from B ({stored_traces} trace copies, {stored_spans} spans)",
        from_a.len(),
        from_b.len()
    );

    // Ingester B down: every trace still comes from the bucket, each answer marked partial.
    let (b_dir, b_internal) = (b.dir.clone(), b.internal);
    b.stop();
    let ((), took) = eventually(
        "every trace, marked partial, with ingester B down",
        Duration::from_secs(30),
        || with_log(check_all(&client, querier.api, &sent, true), &querier),
    );
    eventually(
        "tag values marked partial with ingester B down",
        Duration::from_secs(30),
        || match client.services(querier.api)? {
            (values, Some(_)) if values.is_superset(&both) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    eprintln!("ingester B down: every trace found, marked partial, after {took:?}");

    // B back (same dir, same addresses): complete again.
    let b = Strata::restart(&b_dir, "ingester");
    assert_eq!(b.internal, b_internal);
    let ((), took) = eventually(
        "every trace complete once ingester B is back",
        Duration::from_secs(30),
        || with_log(check_all(&client, querier.api, &sent, false), &querier),
    );
    eprintln!("ingester B back: complete again after {took:?}");

    // The compactor merges the window's blocks into one, then deletes the inputs.
    let compactor = Strata::start_role(
        &root.path().join("compactor"),
        "compactor",
        "",
        &storage_and(COMPACTOR, &s3),
    );
    let (merged, took) = eventually(
        "the flushed blocks merged into one",
        Duration::from_secs(60),
        || merged_into_one(&client.bucket()),
    );
    assert_eq!(
        merged
            .compacted_from
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        flushed
    );
    assert_eq!(merged.span_count as usize, sent.spans);
    assert_eq!(merged.trace_count as usize, sent.traces.len());
    eprintln!(
        "compaction: {} blocks merged into {} (level {}) in {took:?}",
        flushed.len(),
        merged.block_id,
        merged.compaction_level
    );
    let ((), took) = eventually(
        "the inputs deleted after the grace period",
        Duration::from_secs(60),
        || {
            let bucket = client.bucket();
            let left: Vec<_> = flushed
                .iter()
                .filter(|id| bucket.contains_key(id))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("inputs still there: {left:?}"))
            }
        },
    );
    eprintln!("inputs deleted {took:?} after the merge");
    let ((), took) = eventually(
        "every trace complete after compaction",
        Duration::from_secs(30),
        || with_log(check_all(&client, querier.api, &sent, false), &querier),
    );
    eprintln!("after compaction: every trace found once, complete, after {took:?}");
    let jobs = client
        .metric(compactor.api, "strata_compactor_jobs_total")
        .unwrap();
    assert!(jobs >= 1.0, "compactor jobs: {jobs}");

    report_warnings(&[&compactor, &querier, &a, &b]);
    for s in [compactor, querier, a, b] {
        s.stop();
    }
}

/// What the load test does to a process at a moment.
#[derive(Debug, Clone, Copy)]
enum Kill {
    Compactor,
    /// As soon as the compactor logs a plan with a job in it (or after 15 s without one).
    CompactorInAJob,
    Querier,
}

#[test]
fn killing_the_querier_or_the_compactor_under_load_loses_nothing() {
    let s3 = S3Server::start("distributed-load");
    let root = tempfile::tempdir().unwrap();
    let client = Client::new(&s3);
    // Blocks are cut every few seconds, so the compactor has work all through the load.
    let fast = "ingester:\n  trace_idle_period: 1s\n  max_block_duration: 3s\n  flush_check_period: 200ms\n";
    let (a, b, mut querier) = ingesters_and_querier(root.path(), &s3, fast);
    let querier_dir = querier.dir.clone();
    let compactor_dir = root.path().join("compactor");
    let mut compactor = Strata::start_role(
        &compactor_dir,
        "compactor",
        "  log_level: info,strata_compactor=debug\n",
        &storage_and(COMPACTOR, &s3),
    );
    for s in [&a, &b, &querier, &compactor] {
        client.wait_ready(s);
    }

    let record = root.path().join("sent.json");
    let sender_log = root.path().join("sender.log");
    let mut sender = spawn_python(
        "otel_spread.py",
        &[
            "--grpc",
            &a.grpc.to_string(),
            "--http",
            &b.traces_url(),
            "--out",
            record.to_str().unwrap(),
            "--seconds",
            "25",
            "--rate",
            "30",
        ],
        &sender_log,
    );
    let began = Instant::now();
    let schedule = [
        (4.0, Kill::Compactor),
        (7.5, Kill::Querier),
        (10.0, Kill::CompactorInAJob),
        (14.5, Kill::Querier),
        (18.0, Kill::Compactor),
    ];
    let mut compactor_jobs = 0.0;
    let mut events = Vec::new();
    for (at, kill) in schedule {
        // Scheduling, not a condition: the kills land at different moments of the load.
        let wait = Duration::from_secs_f64(at).saturating_sub(began.elapsed());
        std::thread::sleep(wait);
        match kill {
            Kill::Compactor | Kill::CompactorInAJob => {
                // Each instance does some work before it dies.
                let (cycles, _) = eventually(
                    "the compactor runs a cycle",
                    Duration::from_secs(20),
                    || match client.metric(compactor.api, "strata_compactor_cycles_total")? {
                        n if n >= 1.0 => Ok(n),
                        n => Err(format!("{n} cycles")),
                    },
                );
                let mut how = "between cycles";
                if matches!(kill, Kill::CompactorInAJob) {
                    let seen = compactor.log().len();
                    let deadline = Instant::now() + Duration::from_secs(15);
                    while Instant::now() < deadline {
                        if compactor.log()[seen..].contains("jobs: [Job") {
                            how = "right after it planned a job";
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                compactor_jobs += client
                    .metric(compactor.api, "strata_compactor_jobs_total")
                    .unwrap_or(0.0);
                compactor.kill9();
                events.push(format!(
                    "{:.1}s: compactor killed {how} after {cycles} cycles",
                    began.elapsed().as_secs_f64()
                ));
                compactor = Strata::restart(&compactor_dir, "compactor");
            }
            Kill::Querier => {
                querier.kill9();
                events.push(format!(
                    "{:.1}s: querier killed",
                    began.elapsed().as_secs_f64()
                ));
                querier = Strata::restart(&querier_dir, "querier");
                client.wait_ready(&querier);
                // Mid-load and mid-compaction, a search never lists a trace twice.
                let (search, _) = eventually(
                    "a search through the restarted querier",
                    Duration::from_secs(30),
                    || client.search_all(querier.api),
                );
                let twice = twice(&search.ids);
                assert!(twice.is_empty(), "mid-load search lists {twice:?} twice");
                events.push(format!(
                    "{:.1}s: restarted querier's search: {} traces, none twice",
                    began.elapsed().as_secs_f64(),
                    search.ids.len()
                ));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = sender.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the sender did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let sender_out = std::fs::read_to_string(&sender_log).unwrap();
    assert!(status.success(), "the sender failed:\n{sender_out}");
    let sent = read_sent(&record);
    for e in &events {
        eprintln!("{e}");
    }
    eprintln!("{}", sender_out.lines().last().unwrap_or_default());
    assert!(
        sent.traces.len() > 300,
        "only {} traces sent",
        sent.traces.len()
    );

    // Straight after the load, some of it still in the ingesters and compaction still going:
    // the search finds every acknowledged trace once, and a fifth of them (every fifth ID) are
    // whole by ID.
    let load_ended = Instant::now();
    let sample: BTreeMap<String, usize> = sent
        .traces
        .iter()
        .step_by(5)
        .map(|(id, n)| (id.clone(), *n))
        .collect();
    let ((), took) = eventually(
        "every acknowledged trace in search and a sample by ID right after the load",
        Duration::from_secs(60),
        || {
            with_log(
                check_ids(&client, querier.api, &sample, false)
                    .and_then(|()| check_search_all(&client, querier.api, &sent, false)),
                &querier,
            )
        },
    );
    eprintln!(
        "right after the load: {} traces once in search, {} by ID, after {took:?}",
        sent.traces.len(),
        sample.len()
    );

    // Flush what is left; the restarted compactor settles the bucket into one block.
    let cycles_before = client
        .metric(compactor.api, "strata_compactor_cycles_total")
        .unwrap();
    for ingester in [&a, &b] {
        let (status, body) = client.flush(ingester);
        assert_eq!(status, 200, "POST /flush: {body}");
    }
    let flushed = flushed_blocks(&a.log()).len() + flushed_blocks(&b.log()).len();
    let live_before = live(&client.bucket()).len();
    let (merged, _) = eventually(
        "the bucket settled into one block",
        Duration::from_secs(120),
        || merged_into_one(&client.bucket()),
    );
    let settled_after = load_ended.elapsed();
    assert_eq!(merged.span_count as usize, sent.spans);
    assert_eq!(merged.trace_count as usize, sent.traces.len());
    let ((), took) = eventually(
        "every acknowledged trace after the bucket settled",
        Duration::from_secs(60),
        || with_log(check_all(&client, querier.api, &sent, false), &querier),
    );
    eprintln!(
        "after settling: {} traces, {} spans, each whole by ID and once in search, after {took:?}",
        sent.traces.len(),
        sent.spans
    );
    let (cycles_after, _) = eventually(
        "the restarted compactor keeps cycling",
        Duration::from_secs(20),
        || match client.metric(compactor.api, "strata_compactor_cycles_total")? {
            n if n > cycles_before => Ok(n),
            n => Err(format!("{n} cycles, {cycles_before} before")),
        },
    );
    let last_jobs = client
        .metric(compactor.api, "strata_compactor_jobs_total")
        .unwrap();
    assert!(last_jobs >= 1.0, "the last compactor ran no job");
    eprintln!(
        "settled {settled_after:.1?} after the load ended: {flushed} blocks flushed in all, \
         {live_before} live after the final flush, now 1 (level {}, {} traces, {} spans); \
         compaction jobs: {} by the killed compactors, {last_jobs} by the last (cycles \
         {cycles_before} -> {cycles_after}); load {:.1}s",
        merged.compaction_level,
        merged.trace_count,
        merged.span_count,
        compactor_jobs,
        sent.seconds
    );

    report_warnings(&[&compactor, &querier, &a, &b]);
    for s in [compactor, querier, a, b] {
        s.stop();
    }
}
