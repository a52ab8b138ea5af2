//! The WAL under faults, on the real binary: a full disk (a small tmpfs), EIO from `fdatasync`
//! (injected from outside with `strace`), a segment that cannot be read at start (mode 000 for a
//! process without `CAP_DAC_OVERRIDE`), and bytes flipped in the middle of a segment. Requests
//! the WAL cannot make durable get 503 / `UNAVAILABLE`, never a success; ingest resumes by
//! itself; every acknowledged span is found afterwards.
//!
//! These tests need root (they mount a tmpfs and attach `strace`), as the CI runs them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use strata_bench::workload::{Workload, WorkloadConfig};

use crate::support::{self, Strata};

use support::{SpanKey, span_keys};

fn requests(seed: u64, spans: usize, per_request: usize) -> Vec<ExportTraceServiceRequest> {
    Workload::new(WorkloadConfig {
        seed,
        ..Default::default()
    })
    .requests(spans, per_request)
}

/// Nothing flushes by itself: what is acknowledged stays in the WAL until the test stops or
/// kills the server.
const NO_FLUSH: &str =
    "ingester:\n  trace_idle_period: 1h\n  max_trace_live: 1h\n  max_block_duration: 1h\n";

/// What the server answered to one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Acknowledged,
    /// 503 with `Retry-After`, or gRPC `UNAVAILABLE`.
    Unavailable,
}

/// Sends exports over OTLP/gRPC (tonic) and OTLP/HTTP (reqwest), alternately.
struct Sender {
    runtime: tokio::runtime::Runtime,
    grpc: TraceServiceClient<tonic::transport::Channel>,
    http: reqwest::Client,
    traces_url: String,
    sent: usize,
    /// Spans of every acknowledged request.
    acked: HashSet<SpanKey>,
    /// Requests answered 503 / `UNAVAILABLE`, by protocol: (gRPC, HTTP).
    refused: (usize, usize),
}

impl Sender {
    fn new(strata: &Strata) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let grpc = runtime
            .block_on(TraceServiceClient::connect(strata.grpc_url()))
            .unwrap();
        Self {
            runtime,
            grpc,
            http: reqwest::Client::new(),
            traces_url: strata.traces_url(),
            sent: 0,
            acked: HashSet::new(),
            refused: (0, 0),
        }
    }

    /// Sends one request, over gRPC and HTTP in turn. Anything but a full acknowledgement or
    /// 503 / `UNAVAILABLE` fails the test.
    fn send(&mut self, request: ExportTraceServiceRequest) -> Answer {
        let keys = span_keys(&request);
        let grpc = self.sent.is_multiple_of(2);
        self.sent += 1;
        let answer = if grpc {
            self.send_grpc(request)
        } else {
            self.send_http(request)
        };
        match answer {
            Answer::Acknowledged => self.acked.extend(keys),
            Answer::Unavailable if grpc => self.refused.0 += 1,
            Answer::Unavailable => self.refused.1 += 1,
        }
        answer
    }

    fn send_grpc(&mut self, request: ExportTraceServiceRequest) -> Answer {
        match self.runtime.block_on(self.grpc.export(request)) {
            Ok(response) => {
                let response = response.into_inner();
                assert!(
                    response
                        .partial_success
                        .as_ref()
                        .is_none_or(|p| p.rejected_spans == 0),
                    "{response:?}"
                );
                Answer::Acknowledged
            }
            Err(status) if status.code() == tonic::Code::Unavailable => Answer::Unavailable,
            Err(status) => panic!("gRPC export: {status:?}"),
        }
    }

    fn send_http(&mut self, request: ExportTraceServiceRequest) -> Answer {
        let response = self.runtime.block_on(async {
            let response = self
                .http
                .post(&self.traces_url)
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let body = response.bytes().await.unwrap();
            (status, retry_after, body)
        });
        match response {
            (status, _, body) if status == 200 => {
                let answer = ExportTraceServiceResponse::decode(body).unwrap();
                assert!(
                    answer
                        .partial_success
                        .as_ref()
                        .is_none_or(|p| p.rejected_spans == 0),
                    "{answer:?}"
                );
                Answer::Acknowledged
            }
            (status, retry_after, body) if status == 503 => {
                assert!(
                    retry_after.is_some(),
                    "503 without Retry-After: {}",
                    String::from_utf8_lossy(&body)
                );
                Answer::Unavailable
            }
            (status, _, body) => panic!("HTTP export: {status} {}", String::from_utf8_lossy(&body)),
        }
    }

    /// Sends requests until one is acknowledged; fails the test after `within`.
    fn until_acknowledged(
        &mut self,
        requests: &mut impl Iterator<Item = ExportTraceServiceRequest>,
        within: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.send(requests.next().unwrap()) == Answer::Acknowledged {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "ingest did not resume within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The names of the files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Files in `dir` that hold no record (at most the 8-byte magic): what a failed segment
/// creation leaves behind.
fn empty_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.len() <= 8)
        .count()
}

/// The segment files in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

/// Every span in the blocks of the default tenant.
fn stored(dir: &Path) -> HashSet<SpanKey> {
    support::stored_spans(&dir.join("data/blocks"), "single-tenant")
        .iter()
        .map(|s| (s.trace_id.0, s.span_id.0))
        .collect()
}

/// Kills the server, starts it again on the same WAL and stops it cleanly, so that everything
/// the WAL holds is replayed and flushed; returns the spans then stored and the second log.
fn replay_and_flush(strata: Strata) -> (HashSet<SpanKey>, String) {
    let dir = strata.dir.clone();
    strata.kill9();
    let log = Strata::restart(&dir, "all").stop();
    (stored(&dir), log)
}

fn assert_nothing_lost(acked: &HashSet<SpanKey>, stored: &HashSet<SpanKey>, log: &str) {
    let lost = acked.difference(stored).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged spans lost:\n{log}",
        acked.len()
    );
}

/// A counter from `/metrics`, if it is there.
fn metric(strata: &Strata, name: &str) -> Option<u64> {
    let text = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::get(format!("{}/metrics", strata.api_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A tmpfs mounted on a directory for the test, unmounted when dropped (also when the test
/// fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount a tmpfs (this test needs root)"
        );
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn full_wal_disk_answers_unavailable_leaks_no_segments_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("data/wal");
    let disk = Tmpfs::mount(&wal, "2m");
    // All but 640 KiB of the disk is taken; deleting this file later gives the space back.
    let filler = wal.join("filler");
    std::fs::write(&filler, vec![7u8; (2048 - 640) << 10]).unwrap();
    let sections = format!("{NO_FLUSH}  wal:\n    segment_bytes: 64KiB\n");
    let strata = Strata::start(dir.path(), &sections);
    let mut sender = Sender::new(&strata);
    let mut requests = requests(21, 100_000, 100).into_iter();

    // Fill the disk, then keep sending for a while: every request that cannot be written is
    // refused, and the WAL directory does not fill up with empty segment files.
    let (mut first_refusal, mut most_files, mut most_empty) = (None, 0, 0);
    while sender.refused.0 < 10 || sender.refused.1 < 10 {
        assert!(sender.sent < 1000, "the disk never filled");
        if sender.send(requests.next().unwrap()) == Answer::Unavailable {
            let count = files(&wal).len();
            first_refusal.get_or_insert(count);
            most_files = most_files.max(count);
            most_empty = most_empty.max(empty_files(&wal));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let at_first_refusal = first_refusal.unwrap();
    let (sent_while_full, refused, acked_while_full) =
        (sender.sent, sender.refused, sender.acked.len());
    assert!(
        most_empty <= 1,
        "{most_empty} files without a record in the WAL directory while the disk was full: {:?}",
        files(&wal)
    );

    // Space comes back: ingest resumes without a restart.
    std::fs::remove_file(&filler).unwrap();
    let resumed_after = sender.until_acknowledged(&mut requests, Duration::from_secs(10));
    for _ in 0..10 {
        assert_eq!(sender.send(requests.next().unwrap()), Answer::Acknowledged);
    }
    assert!(!strata.log().contains("panicked"), "{}", strata.log());

    // Everything acknowledged was durable in the WAL: replayed after kill -9, it is all found.
    let acked = sender.acked.clone();
    drop(sender);
    let (stored, log) = replay_and_flush(strata);
    assert_nothing_lost(&acked, &stored, &log);
    eprintln!(
        "full disk: {} requests, refused {} gRPC + {} HTTP; {} spans acknowledged before the \
         disk was freed, {} in all, {} found after replay; {} files in the WAL directory at the \
         first refusal, at most {} while full, at most {} of them without a record; ingest \
         resumed {:?} after space came back",
        sent_while_full,
        refused.0,
        refused.1,
        acked_while_full,
        acked.len(),
        acked.intersection(&stored).count(),
        at_first_refusal,
        most_files,
        most_empty,
        resumed_after
    );
    drop(disk);
}

/// `strace` attached to a running process, injecting `EIO` into every `fdatasync` until it is
/// stopped (it detaches on SIGTERM).
struct FsyncFails(Child);

impl FsyncFails {
    fn attach(pid: u32) -> Self {
        let mut child = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=fdatasync"])
            .args(["-e", "inject=fdatasync:error=EIO", "-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is needed for this test (apt-get install strace)");
        // strace announces each thread it attached to; the first line means it is tracing.
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("attached"), "strace: {first}");
        std::thread::spawn(move || lines.for_each(drop));
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    fn detach(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for FsyncFails {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fsync_eio_answers_unavailable_without_spinning_and_ingest_recovers_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("data/wal");
    let strata = Strata::start(dir.path(), NO_FLUSH);
    let mut sender = Sender::new(&strata);
    let mut requests = requests(23, 100_000, 100).into_iter();
    for _ in 0..10 {
        assert_eq!(sender.send(requests.next().unwrap()), Answer::Acknowledged);
    }
    let acked_before = sender.acked.len();
    let segments_created = || metric(&strata, "strata_wal_segments_created_total").unwrap();
    let created_before = segments_created();

    // Every fdatasync fails: no request may be acknowledged.
    let eio = FsyncFails::attach(strata.pid());
    let start = Instant::now();
    let mut most_files = 0;
    for _ in 0..30 {
        assert_eq!(
            sender.send(requests.next().unwrap()),
            Answer::Unavailable,
            "acknowledged although fdatasync failed"
        );
        most_files = most_files.max(files(&wal).len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let failing_for = start.elapsed();
    let created = segments_created() - created_before;
    // After a failure the writer backs off (100ms doubling to 1s) before it opens a new segment,
    // instead of creating one per refused request.
    assert!(
        created <= 10,
        "{created} segments created for 30 refused requests in {failing_for:?}"
    );
    eio.detach();

    let resumed_after = sender.until_acknowledged(&mut requests, Duration::from_secs(10));
    for _ in 0..10 {
        assert_eq!(sender.send(requests.next().unwrap()), Answer::Acknowledged);
    }
    let acked = sender.acked.clone();
    let refused = sender.refused;
    drop(sender);
    let (stored, log) = replay_and_flush(strata);
    assert_nothing_lost(&acked, &stored, &log);
    eprintln!(
        "fdatasync EIO: refused {} gRPC + {} HTTP over {failing_for:?}, {created} segments \
         created meanwhile, at most {most_files} files in the WAL directory; {acked_before} \
         spans acknowledged before, {} in all, {} found after replay; ingest resumed \
         {resumed_after:?} after strace detached",
        refused.0,
        refused.1,
        acked.len(),
        acked.intersection(&stored).count(),
    );
}

/// The spans of every record of a segment file, by the format in `wal/record.rs`'s docs (read
/// here independently of Strata's reader), with each record's byte range.
fn records_of(segment: &[u8]) -> Vec<(std::ops::Range<usize>, Vec<SpanKey>)> {
    assert_eq!(&segment[..8], b"STRATAW1");
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        let Some(body) = segment.get(at + 8..at + 8 + len) else {
            break;
        };
        let tenant_len = usize::from(body[1]);
        let payload = &body[2 + tenant_len + 8..];
        let request = ExportTraceServiceRequest::decode(payload).unwrap();
        out.push((at..at + 8 + len, span_keys(&request)));
        at += 8 + len;
    }
    out
}

#[test]
fn unreadable_segment_at_start_is_set_aside_and_replayed_once_readable() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("data/wal");
    let sections = format!("{NO_FLUSH}  wal:\n    segment_bytes: 64KiB\n");
    let strata = Strata::start(dir.path(), &sections);
    let mut sender = Sender::new(&strata);
    for request in requests(25, 4_000, 100) {
        assert_eq!(sender.send(request), Answer::Acknowledged);
    }
    let acked = sender.acked.clone();
    drop(sender);
    strata.kill9();

    let all = segments(&wal);
    assert!(all.len() >= 3, "{all:?}");
    let victim = all[all.len() / 2].clone();
    let bytes = std::fs::read(&victim).unwrap();
    let in_victim: HashSet<SpanKey> = records_of(&bytes)
        .into_iter()
        .flat_map(|(_, keys)| keys)
        .collect();
    assert!(!in_victim.is_empty());
    let set_aside = PathBuf::from(format!("{}.unreadable", victim.display()));
    let chmod = |mode: &str, path: &Path| {
        assert!(
            Command::new("chmod")
                .arg(mode)
                .arg(path)
                .status()
                .unwrap()
                .success()
        );
    };

    // Root could still read a mode-000 file; a Strata without CAP_DAC_OVERRIDE cannot.
    chmod("000", &victim);
    let strata = Strata::restart_wrapped(
        dir.path(),
        "all",
        &[
            "setpriv",
            "--bounding-set",
            "-dac_override,-dac_read_search",
        ],
    );
    let unreadable = metric(&strata, "strata_wal_unreadable_segments_total");
    let log = strata.stop();
    assert!(
        set_aside.exists() && !victim.exists(),
        "not set aside (still in place: {}):\n{log}",
        victim.exists()
    );
    assert_eq!(
        std::fs::read(&set_aside).unwrap(),
        bytes,
        "set aside as it was"
    );
    assert!(
        log.contains("cannot read WAL segment; it is set aside"),
        "{log}"
    );
    assert_eq!(unreadable, Some(1), "{log}");
    let stored_then = stored(dir.path());
    assert!(stored_then.is_disjoint(&in_victim));
    let others: HashSet<SpanKey> = acked.difference(&in_victim).copied().collect();
    assert_nothing_lost(&others, &stored_then, &log);

    // The cause is fixed: the next start replays it and it becomes an ordinary segment.
    chmod("644", &set_aside);
    let log = Strata::restart(dir.path(), "all").stop();
    assert!(log.contains("reads cleanly now and was replayed"), "{log}");
    assert_nothing_lost(&acked, &stored(dir.path()), &log);
    assert_eq!(files(&wal), Vec::<String>::new(), "{log}");
    eprintln!(
        "unreadable segment: {} spans acknowledged, {} in the set-aside segment, {} found \
         while it was set aside, {} found after it was readable again",
        acked.len(),
        in_victim.len(),
        stored_then.intersection(&acked).count(),
        stored(dir.path()).intersection(&acked).count()
    );
}

#[test]
fn bytes_flipped_mid_segment_cost_only_the_records_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("data/wal");
    let strata = Strata::start(dir.path(), NO_FLUSH);
    let mut sender = Sender::new(&strata);
    for request in requests(27, 3_000, 100) {
        assert_eq!(sender.send(request), Answer::Acknowledged);
    }
    let (acked, sent) = (sender.acked.clone(), sender.sent);
    drop(sender);
    strata.kill9();

    let all = segments(&wal);
    assert_eq!(all.len(), 1, "{all:?}");
    let mut bytes = std::fs::read(&all[0]).unwrap();
    let records = records_of(&bytes);
    assert_eq!(records.len(), sent, "one record per request");
    // One record's length becomes implausible; another record's body gets a flipped byte.
    let (first, second) = (&records[sent / 3], &records[2 * sent / 3]);
    bytes[first.0.start..first.0.start + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let middle = (second.0.start + second.0.end) / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&all[0], &bytes).unwrap();
    let damaged: HashSet<SpanKey> = first.1.iter().chain(&second.1).copied().collect();
    let intact: HashSet<SpanKey> = acked.difference(&damaged).copied().collect();

    let log = Strata::restart(dir.path(), "all").stop();
    assert!(log.contains("WAL segment is damaged"), "{log}");
    let stored = stored(dir.path());
    assert_nothing_lost(&intact, &stored, &log);
    assert!(
        stored.is_disjoint(&damaged),
        "a damaged record was replayed"
    );
    eprintln!(
        "mid-segment damage: {} records, 2 damaged; {} spans acknowledged, {} in intact \
         records, {} found",
        records.len(),
        acked.len(),
        intact.len(),
        stored.intersection(&acked).count()
    );
}
