//! End-to-end ingest benchmark: a real `strata` process (release build, WAL fsync'd as by
//! default) receives pre-encoded OTLP/gRPC requests of the standard workload over loopback from
//! several concurrent streams, then shuts down, flushing everything to blocks on local disk.
//!
//! Reports spans/s and MB/s sustained (first send to last acknowledgement), acknowledgement
//! latency p50/p99, the server's peak RSS, bytes per span at rest, and OTLP protobuf bytes
//! received ÷ bytes at rest.
//!
//! cargo build --release -p strata -p strata-bench
//! target/release/ingest [--spans N] [--streams K] [--batch SPANS] [--strata PATH]

#![allow(clippy::print_stdout)] // A benchmark program's output is its report.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use strata_bench::otlp::{EXPORT_PATH, export_raw};
use strata_bench::workload::{Workload, WorkloadConfig};

struct Args {
    spans: usize,
    streams: usize,
    batch: usize,
    strata: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        spans: 1_000_000,
        streams: 8,
        batch: 512,
        strata: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/strata"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--spans" => args.spans = value.parse()?,
            "--streams" => args.streams = value.parse()?,
            "--batch" => args.batch = value.parse()?,
            "--strata" => args.strata = value.into(),
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    anyhow::ensure!(
        args.strata.exists(),
        "{} not found: cargo build --release -p strata",
        args.strata.display()
    );
    let requests: Vec<Bytes> = Workload::new(WorkloadConfig::default())
        .requests(args.spans, args.batch)
        .iter()
        .map(|r| Bytes::from(prost::Message::encode_to_vec(r)))
        .collect();
    let otlp_bytes: usize = requests.iter().map(Bytes::len).sum();

    let dir = std::env::temp_dir().join(format!("strata-ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("strata.yaml"),
        "server: {http_listen: '127.0.0.1:0', log_level: 'warn,strata::server=info'}\n\
         receivers: {otlp_grpc: {listen: '127.0.0.1:0'}, otlp_http: {listen: '127.0.0.1:0'}}\n\
         limits: {defaults: {ingestion_rate_bytes: 100GB, ingestion_burst_bytes: 100GB, max_live_traces: 10000000}}\n\
         ingester: {max_unflushed_bytes: 4GiB}\n",
    )?;
    let mut child = Command::new(&args.strata)
        .args(["--config", "strata.yaml"])
        .current_dir(&dir)
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
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
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak.fetch_max(kb * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let (elapsed, mut latencies) = runtime.block_on(send(&grpc, requests, args.streams))?;
    let syncs = metric(&api, "strata_wal_syncs_total")?;
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let flush_started = Instant::now();
    let status = child.wait()?;
    let flush_secs = flush_started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "strata exited with {status}");
    let _ = watcher.join();

    let (files, at_rest, stored_spans) = bytes_at_rest(&dir.join("data/blocks"))?;
    anyhow::ensure!(
        stored_spans == args.spans as u64,
        "blocks hold {stored_spans} spans, sent {}",
        args.spans
    );
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    println!("| figure | value |\n|---|---|");
    println!(
        "| spans sent | {} in {} requests of ≤{} spans, {} streams |",
        args.spans,
        latencies.len(),
        args.batch,
        args.streams
    );
    println!(
        "| ingest rate | {:.0} spans/s |",
        args.spans as f64 / elapsed
    );
    println!(
        "| ingest bandwidth | {:.1} MB/s of OTLP protobuf |",
        otlp_bytes as f64 / elapsed / 1e6
    );
    println!(
        "| ack latency p50 / p99 | {:.1} ms / {:.1} ms |",
        pct(0.50),
        pct(0.99)
    );
    println!("| shutdown flush | {flush_secs:.1} s |");
    println!(
        "| WAL fsyncs | {syncs:.0} ({:.1} requests per fsync) |",
        latencies.len() as f64 / syncs
    );
    println!(
        "| server peak RSS | {:.0} MiB |",
        peak_rss.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    println!(
        "| OTLP protobuf received | {:.1} bytes/span |",
        otlp_bytes as f64 / args.spans as f64
    );
    println!(
        "| at rest ({files} objects) | {:.1} bytes/span |",
        at_rest as f64 / args.spans as f64
    );
    println!(
        "| OTLP ÷ at rest | {:.1} |",
        otlp_bytes as f64 / at_rest as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn send(
    grpc: &str,
    requests: Vec<Bytes>,
    streams: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))?
            .connect()
            .await?;
        let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = requests.get(i) else { break };
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

/// Bytes of every object under the block root, and the spans their metas count.
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
