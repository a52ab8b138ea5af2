//! Shared helpers for the black-box tests: the `strata` binary on loopback ports, the Python
//! virtualenv with the real OpenTelemetry SDK and Parquet readers, and an S3 server.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python interpreter with `tests/requirements.txt` installed: `$STRATA_TEST_PYTHON`, else
/// `.venv/bin/python` in the repository (what `tests/run` creates).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python environment for the black-box tests: run tests/run (or \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt`)"
    );
    venv
}

/// Starts a script from `tests/python` in the background, its stdout and stderr going to
/// `log` (the caller waits for it).
pub fn spawn_python(script: &str, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Command::new(python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run python")
}

/// Runs a script from `tests/python` and fails the test, with its output, if it fails.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `strata` process.
pub struct Strata {
    child: Child,
    /// Whether `child` is a wrapper (`strace`) whose own child is `strata`.
    wrapped: bool,
    pub dir: PathBuf,
    /// The subcommand it runs: `all`, `ingester`, `querier` or `compactor`.
    pub role: String,
    /// OTLP gRPC receiver; the API address for a role without receivers.
    pub grpc: SocketAddr,
    /// OTLP/HTTP receiver; the API address for a role without receivers.
    pub http: SocketAddr,
    /// HTTP API (`server.http_listen`).
    pub api: SocketAddr,
    /// The ingester's internal gRPC API (`server.grpc_listen`): `strata ingester` only.
    pub internal: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

/// The listeners each role logs (`listening role=<listener> addr=...`).
fn listeners_of(role: &str) -> &'static [&'static str] {
    match role {
        "all" => &["otlp-grpc", "otlp-http", "api"],
        "ingester" => &["otlp-grpc", "otlp-http", "api", "internal-grpc"],
        "querier" | "compactor" => &["api"],
        other => panic!("unknown role {other}"),
    }
}

impl Strata {
    /// Starts `strata` in `dir` with `sections` (YAML for any section but `server` and
    /// `receivers`, which are set to ephemeral loopback ports) and waits until it listens.
    pub fn start(dir: &Path, sections: &str) -> Self {
        Self::start_role(dir, "all", "", sections)
    }

    /// Starts `strata <role>` in `dir`: `server_extra` are more lines under `server:` (indented
    /// two spaces; a `log_level:` among them replaces the default one), `sections` the other
    /// sections. Every listener is on an ephemeral loopback port; waits until each listener the
    /// role opens is logged. Once it listens, `dir/strata.yaml` is rewritten with the ports it
    /// got, so [`Strata::restart`] listens on the same addresses.
    pub fn start_role(dir: &Path, role: &str, server_extra: &str, sections: &str) -> Self {
        Self::start_wrapped(&[], dir, role, server_extra, sections)
    }

    /// [`Strata::start_role`] with the process started by a wrapper command (`strace ...`), which
    /// is given the `strata` command line after its own arguments. The wrapper must start
    /// `strata` as its child; [`Strata::stop`] signals that child.
    pub fn start_wrapped(
        wrapper: &[&str],
        dir: &Path,
        role: &str,
        server_extra: &str,
        sections: &str,
    ) -> Self {
        let log_level = if server_extra.contains("log_level:") {
            ""
        } else {
            "  log_level: info,strata_ingest=debug\n"
        };
        let config = format!(
            "server:\n  http_listen: 127.0.0.1:0\n  grpc_listen: 127.0.0.1:0\n{log_level}{server_extra}\
             receivers:\n  otlp_grpc: {{listen: '127.0.0.1:0'}}\n  otlp_http: {{listen: '127.0.0.1:0'}}\n{sections}"
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("strata.yaml"), &config).unwrap();
        let strata = Self::spawn(wrapper, true, dir, role).unwrap_or_else(|log| panic!("{log}"));
        // Pin the ports it got, for a restart.
        let mut pinned = config.replacen(
            "http_listen: 127.0.0.1:0",
            &format!("http_listen: {}", strata.api),
            1,
        );
        if let Some(internal) = strata.internal {
            pinned = pinned.replacen(
                "grpc_listen: 127.0.0.1:0",
                &format!("grpc_listen: {internal}"),
                1,
            );
        }
        if listeners_of(role).contains(&"otlp-grpc") {
            pinned = pinned
                .replacen(
                    "otlp_grpc: {listen: '127.0.0.1:0'}",
                    &format!("otlp_grpc: {{listen: '{}'}}", strata.grpc),
                    1,
                )
                .replacen(
                    "otlp_http: {listen: '127.0.0.1:0'}",
                    &format!("otlp_http: {{listen: '{}'}}", strata.http),
                    1,
                );
        }
        std::fs::write(dir.join("strata.yaml"), pinned).unwrap();
        strata
    }

    /// Starts `strata <role>` again in `dir` with the `strata.yaml` already there (as
    /// [`Strata::start_role`] left it: same ports, same WAL). Retries for a few seconds while a
    /// port of the previous process is still taken.
    pub fn restart(dir: &Path, role: &str) -> Self {
        Self::restart_wrapped(dir, role, &[])
    }

    /// [`Strata::restart`] with the binary run by `wrapper`, a command that `exec`s its
    /// arguments so the process ID stays Strata's (`setpriv ...`, `prlimit ...`).
    pub fn restart_wrapped(dir: &Path, role: &str, wrapper: &[&str]) -> Self {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Self::spawn(wrapper, false, dir, role) {
                Ok(strata) => return strata,
                Err(log) if log.contains("in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("restart of strata {role}: {log}"),
            }
        }
    }

    /// Runs `strata <role> --config strata.yaml` in `dir` (under `wrapper`, if not empty) and
    /// waits for its listeners; `Err` with the log if it exits first. With `child_of_wrapper`
    /// the wrapper (`strace`) runs `strata` as its child; otherwise it `exec`s it (`setpriv`).
    fn spawn(
        wrapper: &[&str],
        child_of_wrapper: bool,
        dir: &Path,
        role: &str,
    ) -> Result<Self, String> {
        let wanted = listeners_of(role);
        let strata = env!("CARGO_BIN_EXE_strata");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(strata);
                command
            }
            None => Command::new(strata),
        };
        let mut child = command
            .args([role, "--config", "strata.yaml"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = log.lock().unwrap().clone();
            let addr = |listener: &str| -> Option<SocketAddr> {
                text.lines()
                    .filter(|l| l.contains("listening") && l.contains(&format!("role={listener} ")))
                    .find_map(|l| {
                        l.split("addr=")
                            .nth(1)?
                            .split_whitespace()
                            .next()?
                            .parse()
                            .ok()
                    })
            };
            let found: Vec<Option<SocketAddr>> = wanted.iter().map(|l| addr(l)).collect();
            if found.iter().all(Option::is_some) {
                let api = addr("api").unwrap();
                return Ok(Self {
                    child,
                    wrapped: child_of_wrapper && !wrapper.is_empty(),
                    dir: dir.to_owned(),
                    role: role.to_owned(),
                    grpc: addr("otlp-grpc").unwrap_or(api),
                    http: addr("otlp-http").unwrap_or(api),
                    api,
                    internal: addr("internal-grpc"),
                    log,
                });
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let text = log.lock().unwrap().clone();
                return Err(format!(
                    "strata {role} exited ({status}) before listening:\n{text}"
                ));
            }
            assert!(
                Instant::now() < deadline,
                "strata {role} did not start in time (waiting for {wanted:?}):\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://` URL of the HTTP API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The process ID of `strata` (not of a wrapper).
    pub fn pid(&self) -> u32 {
        if !self.wrapped {
            return self.child.id();
        }
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        std::fs::read_to_string(&children)
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("the wrapper has no child ({children})"))
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `http://` URL of the OTLP gRPC receiver.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// URL of the OTLP/HTTP traces endpoint.
    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// Sends SIGTERM and waits for a clean exit; returns the log.
    pub fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        let status = self.wait(Duration::from_secs(120));
        let log = self.log();
        assert!(
            status.success(),
            "strata exited with {status} after SIGTERM:\n{log}"
        );
        log
    }

    /// Kills the process with SIGKILL: no flush, no goodbye.
    pub fn kill9(mut self) -> String {
        if self.wrapped {
            Command::new("kill")
                .args(["-KILL", &self.pid().to_string()])
                .status()
                .unwrap();
        }
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the log reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "strata did not exit in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        if self.wrapped
            && let Ok(text) =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.child.id()))
        {
            for pid in text.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config file holding just a `storage:` section, as [`S3Server::storage_yaml`] writes it.
#[derive(serde::Deserialize)]
pub struct StorageSection {
    pub storage: strata_storage::StorageConfig,
}

/// A `moto_server` S3 endpoint on loopback (data in memory), with one bucket.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    pub fn start(bucket: &str) -> Self {
        let port = free_port();
        let moto = python().with_file_name("moto_server");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let server = Self {
            child,
            endpoint,
            bucket: bucket.to_owned(),
        };
        run_python(
            "s3_bucket.py",
            &["--endpoint", &server.endpoint, "--bucket", bucket],
        );
        server
    }

    /// The `storage:` section pointing at this server.
    pub fn storage_yaml(&self) -> String {
        self.storage_yaml_at(&self.endpoint)
    }

    /// The `storage:` section for this server's bucket reached at `endpoint` (a [`Proxy`]).
    pub fn storage_yaml_at(&self, endpoint: &str) -> String {
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket: {}\n    endpoint: {}\n    region: us-east-1\n    \
             access_key_id: test\n    secret_access_key: test\n    path_style: true\n    allow_http: true\n",
            self.bucket, endpoint
        )
    }

    /// A handle on the bucket, for tests to read what Strata stored.
    pub fn storage(&self) -> strata_storage::Storage {
        let section: StorageSection = serde_yaml_ng::from_str(&self.storage_yaml()).unwrap();
        strata_storage::Storage::from_config(&section.storage).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the live blocks of `tenant` in `storage` hold, read with Strata's own block reader
/// (blocks marked compacted, or replaced by another block, left out), and every block whose
/// `meta.json` names an object that is missing.
pub async fn bucket_spans(
    storage: &strata_storage::Storage,
    tenant: &str,
) -> (Vec<strata_model::Span>, Vec<String>) {
    use strata_block::{BlockMeta, layout};
    let tenant = strata_model::TenantId::new(tenant).unwrap();
    let entries = strata_block::catalog::list_entries(storage, &tenant, layout::BLOCKS_DIR)
        .await
        .unwrap();
    let mut metas = Vec::new();
    let mut missing = Vec::new();
    for (id, entry) in &entries {
        if !entry.has_meta || entry.has_marker {
            continue;
        }
        let bytes = storage.get(&layout::meta_path(&tenant, *id)).await.unwrap();
        let meta = BlockMeta::parse(&bytes, "meta.json").unwrap();
        let names: Vec<String> = entry
            .objects
            .iter()
            .filter_map(|o| o.path.filename().map(str::to_owned))
            .collect();
        let mut wanted = vec!["data.parquet".to_owned(), "tags.json".to_owned()];
        wanted.extend((0..meta.bloom.shards).map(|i| format!("bloom-{i}")));
        for name in wanted {
            if !names.contains(&name) {
                missing.push(format!("block {id} has a meta.json but no {name}"));
            }
        }
        metas.push(meta);
    }
    let replaced: std::collections::HashSet<_> = metas
        .iter()
        .flat_map(|m| m.compacted_from.clone())
        .collect();
    let mut spans = Vec::new();
    for meta in metas.iter().filter(|m| !replaced.contains(&m.block_id)) {
        match storage
            .get(&layout::data_path(&tenant, meta.block_id))
            .await
        {
            Ok(data) => spans.extend(strata_block::read_spans(data, "test").unwrap()),
            Err(e) => missing.push(format!("block {}: {e}", meta.block_id)),
        }
    }
    (spans, missing)
}

/// Every span in the live blocks of `tenant` under a local storage root, read with Strata's own
/// block reader: blocks marked compacted, or replaced by another block, are left out (the
/// compactor runs in every server). Each block must have its `meta.json` (or be in deletion).
pub fn stored_spans(root: &Path, tenant: &str) -> Vec<strata_model::Span> {
    let dir = root.join(tenant).join("blocks");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut metas = Vec::new();
    for block in entries.map(|e| e.unwrap().path()) {
        if block.join("compacted.json").exists() {
            continue;
        }
        let meta = std::fs::read(block.join("meta.json"))
            .unwrap_or_else(|e| panic!("block without meta: {}: {e}", block.display()));
        let meta = strata_block::BlockMeta::parse(&meta, "test").unwrap();
        metas.push((block, meta));
    }
    let replaced: std::collections::HashSet<_> = metas
        .iter()
        .flat_map(|(_, m)| m.compacted_from.clone())
        .collect();
    let mut spans = Vec::new();
    for (block, meta) in metas {
        if replaced.contains(&meta.block_id) {
            continue;
        }
        let data = std::fs::read(block.join("data.parquet")).unwrap();
        spans.extend(strata_block::read_spans(data.into(), "test").unwrap());
    }
    spans
}

/// The peak resident memory of a process so far (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmHWM for {pid}"))
}

/// `GET` of a path on the HTTP API, with an optional tenant; the status and body.
pub async fn api_get(api: SocketAddr, path: &str, tenant: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://{api}{path}"));
    if let Some(tenant) = tenant {
        request = request.header("x-scope-orgid", tenant);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The spans of a trace as `/api/v2/traces/{id}` returns them (OTLP JSON objects), and the
/// answer's `status`.
pub async fn trace_spans(
    api: SocketAddr,
    trace_id: &str,
    tenant: Option<&str>,
) -> (Vec<serde_json::Value>, Option<String>) {
    let (status, body) = api_get(api, &format!("/api/v2/traces/{trace_id}"), tenant).await;
    assert_eq!(status, 200, "trace {trace_id}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let spans = json["trace"]["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|ss| ss["spans"].as_array().cloned().unwrap_or_default())
        .collect();
    (spans, json["status"].as_str().map(str::to_owned))
}

/// A TCP proxy on loopback in front of a server (the S3 test server), that can be taken down
/// and brought back: while it is down every connection, open or new, is closed at once, as a
/// store that is unreachable looks to its clients.
pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// Forwards connections to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let (flag, conns) = (Arc::clone(&down), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut conns = conns.lock().unwrap();
                    conns.retain(|c| c.peer_addr().is_ok());
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { addr, down, open }
    }

    /// `http://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the upstream away: open connections are cut, new ones closed at once.
    pub fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Brings the upstream back.
    pub fn come_back(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A span's identity: trace ID and span ID.
pub type SpanKey = ([u8; 16], [u8; 8]);

/// The identity of every span of a request (whose IDs are valid).
pub fn span_keys(
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> Vec<SpanKey> {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| {
            (
                s.trace_id.clone().try_into().unwrap(),
                s.span_id.clone().try_into().unwrap(),
            )
        })
        .collect()
}

/// `POST /flush` on the HTTP API: every live trace cut into blocks and uploaded.
pub async fn flush(strata: &Strata) {
    let response = reqwest::Client::new()
        .post(format!("{}/flush", strata.api_url()))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "POST /flush: {}",
        response.status()
    );
}

/// An OTLP/HTTP protobuf export, with a tenant if given; the status and the body.
pub async fn post_otlp(
    strata: &Strata,
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    tenant: Option<&str>,
) -> (u16, bytes::Bytes) {
    use prost::Message;
    let mut post = reqwest::Client::new()
        .post(strata.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec());
    if let Some(tenant) = tenant {
        post = post.header("x-scope-orgid", tenant);
    }
    let response = post.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap())
}

/// What a [`Load`] sent and what the server said.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Spans of every request the server acknowledged in full.
    pub acked: std::collections::HashSet<SpanKey>,
    /// Failed attempts by gRPC code name (each retried until acknowledged or stopped).
    pub refused: std::collections::BTreeMap<String, usize>,
    /// Requests acknowledged.
    pub requests: usize,
}

/// Steady ingest over OTLP/gRPC from a background thread, as an OpenTelemetry exporter sends:
/// one trace of the workload generator per request, `per_second` requests a second, a failed
/// request retried every 250 ms (reconnecting as needed) until it is acknowledged.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    refused: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
    thread: Option<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(grpc_url: String, per_second: u32, seed: u64) -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let refused: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
        let seen = Arc::clone(&refused);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut workload =
                    strata_bench::workload::Workload::new(strata_bench::workload::WorkloadConfig {
                        seed,
                        ..Default::default()
                    });
                let mut report = LoadReport::default();
                let mut client = None;
                let pause = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
                let running = || !flag.load(std::sync::atomic::Ordering::SeqCst);
                let refuse = |report: &mut LoadReport, code: String| {
                    *seen.lock().unwrap().entry(code.clone()).or_default() += 1;
                    *report.refused.entry(code).or_default() += 1;
                };
                while running() {
                    let request = workload.next_trace().into_request();
                    let keys = span_keys(&request);
                    while running() {
                        if client.is_none() {
                            let endpoint =
                                tonic::transport::Endpoint::from_shared(grpc_url.clone())
                                    .unwrap()
                                    .connect_timeout(Duration::from_secs(1))
                                    .timeout(Duration::from_secs(10));
                            client = endpoint.connect().await.ok().map(TraceServiceClient::new);
                        }
                        let Some(c) = client.as_mut() else {
                            refuse(&mut report, "connect".into());
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            continue;
                        };
                        match c.export(request.clone()).await {
                            Ok(response) => {
                                let rejected = response
                                    .into_inner()
                                    .partial_success
                                    .map_or(0, |p| p.rejected_spans);
                                assert_eq!(rejected, 0, "spans of a good request refused");
                                report.acked.extend(keys.iter().copied());
                                report.requests += 1;
                                break;
                            }
                            Err(status) => {
                                refuse(&mut report, format!("{:?}", status.code()));
                                if matches!(
                                    status.code(),
                                    tonic::Code::Unavailable | tonic::Code::Unknown
                                ) {
                                    client = None;
                                }
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
                report
            })
        });
        Self {
            stop,
            refused,
            thread: Some(thread),
        }
    }

    /// Failed attempts so far with the gRPC code named `code` (`ResourceExhausted`, ...).
    pub fn refused(&self, code: &str) -> usize {
        self.refused.lock().unwrap().get(code).copied().unwrap_or(0)
    }

    /// Stops sending (an unacknowledged request in flight is abandoned) and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}
