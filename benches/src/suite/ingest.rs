//! End-to-end ingest: a real `strata` process (release build, WAL fsync'd as by default)
//! receives pre-encoded OTLP/gRPC requests of the standard workload over loopback from several
//! concurrent streams, as fast as it acknowledges them or paced at a fixed rate, then shuts down,
//! flushing everything to blocks on local disk, which are then measured.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::otlp::{EXPORT_PATH, export_raw};
use crate::report::quantile_ms;
use crate::workload::{Workload, WorkloadConfig};

/// How to load the server.
#[derive(Clone, Debug)]
pub struct IngestArgs {
    /// Spans to send.
    pub spans: usize,
    /// Concurrent gRPC streams (each its own connection).
    pub streams: usize,
    /// Spans per request.
    pub batch: usize,
    /// Send at this many spans a second; `None` sends as fast as acknowledgements come.
    pub rate: Option<f64>,
    /// The `strata` binary.
    pub strata: PathBuf,
}

impl IngestArgs {
    /// 1M spans in 512-span requests over 8 streams, unpaced, against `target/release/strata`.
    pub fn new(strata: PathBuf) -> Self {
        Self {
            spans: 1_000_000,
            streams: 8,
            batch: 512,
            rate: None,
            strata,
        }
    }
}

/// The workload as pre-encoded request bodies, made once and sent by every repeat.
pub struct EncodedWorkload {
    /// Request bodies.
    pub requests: Vec<Bytes>,
    /// Spans in all of them.
    pub spans: usize,
    /// Bytes of all of them.
    pub bytes: usize,
}

impl EncodedWorkload {
    /// The first `spans` spans of the standard workload in requests of `batch` spans.
    pub fn new(spans: usize, batch: usize) -> Self {
        let requests: Vec<Bytes> = Workload::new(WorkloadConfig::default())
            .requests(spans, batch)
            .iter()
            .map(|r| Bytes::from(prost::Message::encode_to_vec(r)))
            .collect();
        let bytes = requests.iter().map(Bytes::len).sum();
        Self {
            requests,
            spans,
            bytes,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct IngestRun {
    /// Spans acknowledged per second, first send to last acknowledgement.
    pub spans_per_sec: f64,
    /// OTLP protobuf megabytes (10^6) acknowledged per second.
    pub mb_per_sec: f64,
    /// Acknowledgement latency, median, ms.
    pub ack_p50_ms: f64,
    /// Acknowledgement latency, 99th percentile, ms.
    pub ack_p99_ms: f64,
    /// Peak resident memory of the server (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// WAL fsyncs during the send.
    pub fsyncs: f64,
    /// Requests acknowledged per fsync.
    pub requests_per_fsync: f64,
    /// Seconds from SIGTERM to exit (flushing everything).
    pub shutdown_flush_secs: f64,
    /// Bytes of every object written (data, bloom shards, tags, meta), per span.
    pub bytes_per_span_at_rest: f64,
    /// OTLP protobuf bytes received per span.
    pub otlp_bytes_per_span: f64,
    /// OTLP bytes received ÷ bytes at rest.
    pub otlp_over_rest: f64,
    /// Objects written.
    pub objects: usize,
}

/// Starts the server, sends `workload`, stops the server and measures what it stored.
pub async fn run(args: &IngestArgs, workload: &EncodedWorkload) -> anyhow::Result<IngestRun> {
    anyhow::ensure!(
        args.strata.exists(),
        "{} not found: cargo build --release -p strata",
        args.strata.display()
    );
    let dir = std::env::temp_dir().join(format!(
        "strata-ingest-bench-{}-{}",
        std::process::id(),
        crate::suite::unique()
    ));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(args, workload, &dir).await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn run_in(
    args: &IngestArgs,
    workload: &EncodedWorkload,
    dir: &Path,
) -> anyhow::Result<IngestRun> {
    // Limits are raised so that the server never refuses: the benchmark measures what it can
    // take, not where it pushes back. Everything else is the default.
    std::fs::write(
        dir.join("strata.yaml"),
        "server: {http_listen: '127.0.0.1:0', log_level: 'warn,strata::server=info'}\n\
         receivers: {otlp_grpc: {listen: '127.0.0.1:0'}, otlp_http: {listen: '127.0.0.1:0'}}\n\
         limits: {defaults: {ingestion_rate_bytes: 100GB, ingestion_burst_bytes: 100GB, max_live_traces: 10000000}}\n\
         ingester: {max_unflushed_bytes: 8GiB}\n",
    )?;
    let mut child = Server(
        Command::new(&args.strata)
            .args(["--config", "strata.yaml"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let pid = child.0.id();
    let mut lines = BufReader::new(child.0.stderr.take().context("stderr")?).lines();
    let (mut grpc, mut api) = (None, None);
    while grpc.is_none() || api.is_none() {
        let line = lines.next().context("strata exited before listening")??;
        let addr = line.split("addr=").nth(1).map(|a| a.trim().to_owned());
        if line.contains("role=otlp-grpc") {
            grpc = addr;
        } else if line.contains("role=api") {
            api = addr;
        }
    }
    let (grpc, api) = (grpc.context("grpc")?, api.context("api")?);
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let peak_rss = Arc::new(AtomicU64::new(0));
    let watcher = {
        let peak = Arc::clone(&peak_rss);
        std::thread::spawn(move || {
            while let Some(kb) = peak_rss_kib(pid) {
                peak.fetch_max(kb * 1024, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let sent = send(
        &grpc,
        Arc::new(workload.requests.clone()),
        args.streams,
        args.rate.map(|r| r / args.batch.max(1) as f64),
    )
    .await;
    let syncs = metric(&api, "strata_wal_syncs_total");
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let flush_started = Instant::now();
    let status = child.0.wait()?;
    let shutdown_flush_secs = flush_started.elapsed().as_secs_f64();
    let _ = watcher.join();
    let (elapsed, latencies) = sent?;
    let syncs = syncs?;
    anyhow::ensure!(status.success(), "strata exited with {status}");

    let (objects, at_rest, stored_spans) = bytes_at_rest(&dir.join("data/blocks"))?;
    anyhow::ensure!(
        stored_spans == workload.spans as u64,
        "blocks hold {stored_spans} spans, sent {}",
        workload.spans
    );
    let spans = workload.spans as f64;
    Ok(IngestRun {
        spans_per_sec: spans / elapsed,
        mb_per_sec: workload.bytes as f64 / elapsed / 1e6,
        ack_p50_ms: quantile_ms(&latencies, 0.50),
        ack_p99_ms: quantile_ms(&latencies, 0.99),
        peak_rss_mib: peak_rss.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        fsyncs: syncs,
        requests_per_fsync: latencies.len() as f64 / syncs,
        shutdown_flush_secs,
        bytes_per_span_at_rest: at_rest as f64 / spans,
        otlp_bytes_per_span: workload.bytes as f64 / spans,
        otlp_over_rest: workload.bytes as f64 / at_rest as f64,
        objects,
    })
}

/// The server process, killed if the benchmark stops before it has exited.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `VmHWM` of a process, KiB; `None` once it has exited.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Sends every request over `streams` connections; with `requests_per_sec`, request `i` is not
/// sent before `i / requests_per_sec` seconds from the start. Returns the seconds from the first
/// send to the last acknowledgement and every request's latency.
async fn send(
    grpc: &str,
    requests: Arc<Vec<Bytes>>,
    streams: usize,
    requests_per_sec: Option<f64>,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let next = Arc::new(AtomicU64::new(0));
    let mut channels = Vec::new();
    for _ in 0..streams.max(1) {
        channels.push(
            tonic::transport::Channel::from_shared(format!("http://{grpc}"))?
                .connect()
                .await?,
        );
    }
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for channel in channels {
        let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = requests.get(i) else { break };
                if let Some(rate) = requests_per_sec {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate))
                        .await;
                }
                let sent = Instant::now();
                let response = export_raw(&channel, body.clone(), false, None, EXPORT_PATH).await?;
                latencies.push(sent.elapsed());
                if let Some(partial) = response.partial_success
                    && partial.rejected_spans > 0
                {
                    bail!("spans rejected: {}", partial.error_message);
                }
            }
            Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((started.elapsed().as_secs_f64(), all))
}

/// Reads one sample of `/metrics` with a bare HTTP/1.0 request.
fn metric(api: &str, name: &str) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(api)?;
    stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {api}\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .with_context(|| format!("{name} not in /metrics"))
}

/// Objects under the block root, their bytes, and the spans their metas count.
fn bytes_at_rest(root: &Path) -> anyhow::Result<(usize, u64, u64)> {
    let (mut files, mut bytes, mut spans) = (0, 0, 0);
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            bytes += path.metadata()?.len();
            if path.file_name().is_some_and(|n| n == "meta.json") {
                let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
                spans += meta["span_count"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok((files, bytes, spans))
}
