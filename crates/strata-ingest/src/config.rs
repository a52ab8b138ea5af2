//! Configuration of the write path: receivers, the ingester (WAL, trace assembly, block
//! cutting) and per-tenant limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;
use strata_model::TenantId;

/// The `receivers:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiversConfig {
    /// OTLP over gRPC.
    pub otlp_grpc: GrpcReceiverConfig,
    /// OTLP over HTTP.
    pub otlp_http: HttpReceiverConfig,
}

/// `receivers.otlp_grpc`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcReceiverConfig {
    /// Whether to listen at all. Default true.
    pub enabled: bool,
    /// Listen address. Default `0.0.0.0:4317`.
    pub listen: SocketAddr,
    /// Largest message accepted, after decompression. Default 4 MiB.
    pub max_message_bytes: ByteSize,
}

/// `receivers.otlp_http`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpReceiverConfig {
    /// Whether to listen at all. Default true.
    pub enabled: bool,
    /// Listen address. Default `0.0.0.0:4318`.
    pub listen: SocketAddr,
    /// Largest body accepted, before and after decompression. Default 4 MiB.
    pub max_body_bytes: ByteSize,
}

impl Default for ReceiversConfig {
    fn default() -> Self {
        Self {
            otlp_grpc: GrpcReceiverConfig {
                enabled: true,
                listen: SocketAddr::from(([0, 0, 0, 0], 4317)),
                max_message_bytes: ByteSize::mib(4),
            },
            otlp_http: HttpReceiverConfig {
                enabled: true,
                listen: SocketAddr::from(([0, 0, 0, 0], 4318)),
                max_body_bytes: ByteSize::mib(4),
            },
        }
    }
}

impl Default for GrpcReceiverConfig {
    fn default() -> Self {
        ReceiversConfig::default().otlp_grpc
    }
}

impl Default for HttpReceiverConfig {
    fn default() -> Self {
        ReceiversConfig::default().otlp_http
    }
}

/// The `ingester:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngesterConfig {
    /// The write-ahead log.
    pub wal: WalConfig,
    /// A trace that receives no span for this long is complete and moves to the head block.
    /// Default 10s.
    #[serde(with = "humantime_serde")]
    pub trace_idle_period: Duration,
    /// A trace still receiving spans after this long moves to the head block anyway; later spans
    /// start a new copy that queries merge. Default 60s.
    #[serde(with = "humantime_serde")]
    pub max_trace_live: Duration,
    /// The head block is cut once it holds this many bytes (OTLP-encoded size). Default 64 MiB.
    pub max_block_bytes: ByteSize,
    /// ... or once its first trace arrived this long ago. Default 2m.
    #[serde(with = "humantime_serde")]
    pub max_block_duration: Duration,
    /// How often traces are checked for idleness and head blocks for cutting. Default 1s.
    #[serde(with = "humantime_serde")]
    pub flush_check_period: Duration,
    /// Blocks encoded and uploaded at once. Default 2.
    pub concurrent_flushes: usize,
    /// Bytes (OTLP-encoded) held in memory, live or waiting to be flushed, above which pushes are
    /// refused with 429 / `ResourceExhausted` until flushing catches up. Default 512 MiB.
    pub max_unflushed_bytes: ByteSize,
    /// First wait before retrying a failed block upload; doubles up to `flush_retry_max_backoff`.
    /// Default 1s.
    #[serde(with = "humantime_serde")]
    pub flush_retry_initial_backoff: Duration,
    /// Longest wait between upload retries. Failed blocks are retried until they succeed; their
    /// spans stay in memory and in the WAL. Default 1m.
    #[serde(with = "humantime_serde")]
    pub flush_retry_max_backoff: Duration,
    /// How long the metas of uploaded blocks are kept for queriers that have not listed them yet.
    /// Default 15m.
    #[serde(with = "humantime_serde")]
    pub recent_block_retention: Duration,
    /// On shutdown, how long to keep trying to flush before exiting anyway (data not flushed is
    /// still in the WAL and is replayed at the next start). Default 1m.
    #[serde(with = "humantime_serde")]
    pub shutdown_flush_timeout: Duration,
    /// How far a block's time range may reach before and after the times its spans were
    /// received.
    pub ingestion_time_slack: IngestionTimeSlack,
}

/// `ingester.ingestion_time_slack`: a block's time range (what retention ages, what compaction
/// windows and time-range queries go by) is its spans' range clamped to
/// `[first received - past, last received + future]`. Spans keep the times their clients gave
/// them; only the block's range is clamped, so a client clock can neither keep a block forever
/// (a span ending in 2262) nor push its age back (a span starting in 1970).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestionTimeSlack {
    /// How long before it was received a span may start and still widen its block's range.
    /// Default 1h.
    #[serde(with = "humantime_serde")]
    pub past: Duration,
    /// How long after it was received a span may end and still widen its block's range.
    /// Default 5m.
    #[serde(with = "humantime_serde")]
    pub future: Duration,
}

impl Default for IngestionTimeSlack {
    fn default() -> Self {
        Self {
            past: Duration::from_secs(3600),
            future: Duration::from_secs(300),
        }
    }
}

/// `ingester.wal`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Directory of the segment files. Default `./data/wal`.
    pub path: PathBuf,
    /// A segment is closed and a new one started past this size. Default 64 MiB.
    pub segment_bytes: ByteSize,
    /// fsync each group of appended records before acknowledging them. Default true. Turning it
    /// off trades durability on power loss (not on process crash) for throughput.
    pub fsync: bool,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        Self {
            wal: WalConfig::default(),
            trace_idle_period: Duration::from_secs(10),
            max_trace_live: Duration::from_secs(60),
            max_block_bytes: ByteSize::mib(64),
            max_block_duration: Duration::from_secs(120),
            flush_check_period: Duration::from_secs(1),
            concurrent_flushes: 2,
            max_unflushed_bytes: ByteSize::mib(512),
            flush_retry_initial_backoff: Duration::from_secs(1),
            flush_retry_max_backoff: Duration::from_secs(60),
            recent_block_retention: Duration::from_secs(15 * 60),
            shutdown_flush_timeout: Duration::from_secs(60),
            ingestion_time_slack: IngestionTimeSlack::default(),
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data/wal"),
            segment_bytes: ByteSize::mib(64),
            fsync: true,
        }
    }
}

/// Limits of one tenant. The `limits:` section holds the defaults; `limits.per_tenant` overrides
/// any of them for named tenants.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// Sustained ingest rate per second, in stored bytes: each span's OTLP size plus that of its
    /// resource and scope, which every span's row repeats. Default 45 MB/s (about 15 MB/s of
    /// OTLP on the wire for typical resources: stored bytes are 3.0 times the wire bytes on the
    /// workload generator's traffic).
    pub ingestion_rate_bytes: ByteSize,
    /// Burst above the rate; a request that would store more than this is refused outright
    /// (it could never fit). Default 60 MB.
    pub ingestion_burst_bytes: ByteSize,
    /// Largest trace held live, in stored bytes; spans beyond it are refused. Default 5 MB.
    pub max_bytes_per_trace: ByteSize,
    /// Traces assembled in memory at once; spans of further new traces are refused.
    /// Default 100000.
    pub max_live_traces: usize,
    /// Longest attribute value (string or bytes) and status message stored; longer values are
    /// truncated and counted. Default 16 KiB.
    pub max_attribute_bytes: ByteSize,
    /// Longest attribute key; attributes with longer keys are dropped and counted. Default 1 KiB.
    pub max_attribute_key_bytes: ByteSize,
    /// Longest span name, event name, scope name and version, schema URL and trace state;
    /// longer ones are truncated and counted. Default 1 KiB.
    pub max_name_bytes: ByteSize,
    /// Most attributes of one span, resource, scope, event or link; the rest are dropped and
    /// counted. Default 128.
    pub max_attributes: usize,
    /// Most events of one span; the rest are dropped and counted. Default 128.
    pub max_events_per_span: usize,
    /// Most links of one span; the rest are dropped and counted. Default 128.
    pub max_links_per_span: usize,
    /// Deepest nesting of arrays and key/value lists in an attribute value; attributes nested
    /// deeper are dropped and counted. Default 8.
    pub max_attribute_depth: usize,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            ingestion_rate_bytes: ByteSize::mb(45),
            ingestion_burst_bytes: ByteSize::mb(60),
            max_bytes_per_trace: ByteSize::mb(5),
            max_live_traces: 100_000,
            max_attribute_bytes: ByteSize::kib(16),
            max_attribute_key_bytes: ByteSize::kib(1),
            max_name_bytes: ByteSize::kib(1),
            max_attributes: 128,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_attribute_depth: 8,
        }
    }
}

/// The deepest `max_attribute_depth` allowed: what the block's readers can parse back.
pub const MAX_ATTRIBUTE_DEPTH: usize = 30;

/// The `limits:` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Limits for every tenant.
    pub defaults: TenantLimits,
    /// Overrides by tenant ID; keys left out inherit `limits.defaults`.
    pub per_tenant: BTreeMap<String, TenantLimitsOverride>,
}

/// Per-tenant overrides of [`TenantLimits`]; each key left out inherits the default.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct TenantLimitsOverride {
    pub ingestion_rate_bytes: Option<ByteSize>,
    pub ingestion_burst_bytes: Option<ByteSize>,
    pub max_bytes_per_trace: Option<ByteSize>,
    pub max_live_traces: Option<usize>,
    pub max_attribute_bytes: Option<ByteSize>,
    pub max_attribute_key_bytes: Option<ByteSize>,
    pub max_name_bytes: Option<ByteSize>,
    pub max_attributes: Option<usize>,
    pub max_events_per_span: Option<usize>,
    pub max_links_per_span: Option<usize>,
    pub max_attribute_depth: Option<usize>,
}

impl LimitsConfig {
    /// The limits that apply to `tenant`.
    pub fn for_tenant(&self, tenant: &str) -> TenantLimits {
        let d = &self.defaults;
        match self.per_tenant.get(tenant) {
            None => d.clone(),
            Some(o) => TenantLimits {
                ingestion_rate_bytes: o.ingestion_rate_bytes.unwrap_or(d.ingestion_rate_bytes),
                ingestion_burst_bytes: o.ingestion_burst_bytes.unwrap_or(d.ingestion_burst_bytes),
                max_bytes_per_trace: o.max_bytes_per_trace.unwrap_or(d.max_bytes_per_trace),
                max_live_traces: o.max_live_traces.unwrap_or(d.max_live_traces),
                max_attribute_bytes: o.max_attribute_bytes.unwrap_or(d.max_attribute_bytes),
                max_attribute_key_bytes: o
                    .max_attribute_key_bytes
                    .unwrap_or(d.max_attribute_key_bytes),
                max_name_bytes: o.max_name_bytes.unwrap_or(d.max_name_bytes),
                max_attributes: o.max_attributes.unwrap_or(d.max_attributes),
                max_events_per_span: o.max_events_per_span.unwrap_or(d.max_events_per_span),
                max_links_per_span: o.max_links_per_span.unwrap_or(d.max_links_per_span),
                max_attribute_depth: o.max_attribute_depth.unwrap_or(d.max_attribute_depth),
            },
        }
    }
}

/// Checks values serde cannot; the error names the key.
pub fn validate(
    receivers: &ReceiversConfig,
    ingester: &IngesterConfig,
    limits: &LimitsConfig,
) -> Result<(), String> {
    let nonzero = |ok: bool, key: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{key} must be above zero"))
        }
    };
    nonzero(
        receivers.otlp_grpc.max_message_bytes.0 > 0,
        "receivers.otlp_grpc.max_message_bytes",
    )?;
    nonzero(
        receivers.otlp_http.max_body_bytes.0 > 0,
        "receivers.otlp_http.max_body_bytes",
    )?;
    for (bytes, key) in [
        (
            receivers.otlp_grpc.max_message_bytes,
            "receivers.otlp_grpc.max_message_bytes",
        ),
        (
            receivers.otlp_http.max_body_bytes,
            "receivers.otlp_http.max_body_bytes",
        ),
    ] {
        if bytes.as_u64() > crate::wal::MAX_PAYLOAD_LEN as u64 {
            return Err(format!(
                "{key} must be at most {} bytes, the largest request a WAL record holds",
                crate::wal::MAX_PAYLOAD_LEN
            ));
        }
    }
    nonzero(
        !ingester.trace_idle_period.is_zero(),
        "ingester.trace_idle_period",
    )?;
    nonzero(
        !ingester.max_trace_live.is_zero(),
        "ingester.max_trace_live",
    )?;
    nonzero(ingester.max_block_bytes.0 > 0, "ingester.max_block_bytes")?;
    nonzero(
        !ingester.max_block_duration.is_zero(),
        "ingester.max_block_duration",
    )?;
    nonzero(
        !ingester.flush_check_period.is_zero(),
        "ingester.flush_check_period",
    )?;
    nonzero(
        ingester.concurrent_flushes > 0,
        "ingester.concurrent_flushes",
    )?;
    nonzero(
        ingester.max_unflushed_bytes.0 > 0,
        "ingester.max_unflushed_bytes",
    )?;
    nonzero(
        ingester.wal.segment_bytes.0 >= 1024,
        "ingester.wal.segment_bytes (at least 1KiB)",
    )?;
    if ingester.wal.path.as_os_str().is_empty() {
        return Err("ingester.wal.path must not be empty".into());
    }
    if ingester.flush_retry_initial_backoff > ingester.flush_retry_max_backoff {
        return Err(
            "ingester.flush_retry_initial_backoff must not exceed ingester.flush_retry_max_backoff"
                .into(),
        );
    }
    let mut all = vec![("limits.defaults".to_owned(), limits.defaults.clone())];
    for tenant in limits.per_tenant.keys() {
        TenantId::new(tenant).map_err(|e| format!("limits.per_tenant.{tenant}: {e}"))?;
        all.push((
            format!("limits.per_tenant.{tenant}"),
            limits.for_tenant(tenant),
        ));
    }
    for (prefix, l) in all {
        nonzero(
            l.ingestion_rate_bytes.0 > 0,
            &format!("{prefix}.ingestion_rate_bytes"),
        )?;
        if l.ingestion_burst_bytes.0 < l.ingestion_rate_bytes.0 {
            return Err(format!(
                "{prefix}.ingestion_burst_bytes must be at least ingestion_rate_bytes"
            ));
        }
        nonzero(
            l.max_bytes_per_trace.0 > 0,
            &format!("{prefix}.max_bytes_per_trace"),
        )?;
        nonzero(l.max_live_traces > 0, &format!("{prefix}.max_live_traces"))?;
        nonzero(
            l.max_attribute_bytes.0 >= 16,
            &format!("{prefix}.max_attribute_bytes (at least 16)"),
        )?;
        nonzero(
            l.max_attribute_key_bytes.0 >= 16,
            &format!("{prefix}.max_attribute_key_bytes (at least 16)"),
        )?;
        nonzero(
            l.max_name_bytes.0 >= 16,
            &format!("{prefix}.max_name_bytes (at least 16)"),
        )?;
        // Nested values are stored as OTLP/JSON, which costs up to 4 JSON levels per level of
        // nesting (`{"kvlistValue":{"values":[{"value":...`); readers refuse JSON nested beyond
        // 128 levels.
        if l.max_attribute_depth > MAX_ATTRIBUTE_DEPTH {
            return Err(format!(
                "{prefix}.max_attribute_depth must be at most {MAX_ATTRIBUTE_DEPTH}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_limits_above_what_a_wal_record_holds_are_refused() {
        let ingester = IngesterConfig::default();
        let limits = LimitsConfig::default();
        let mut receivers = ReceiversConfig::default();
        assert_eq!(validate(&receivers, &ingester, &limits), Ok(()));
        receivers.otlp_grpc.max_message_bytes = ByteSize::mib(600);
        let e = validate(&receivers, &ingester, &limits).unwrap_err();
        assert!(
            e.starts_with("receivers.otlp_grpc.max_message_bytes"),
            "{e}"
        );
        receivers.otlp_grpc.max_message_bytes = ByteSize::mib(512);
        let e = validate(&receivers, &ingester, &limits).unwrap_err();
        assert!(e.contains("max_message_bytes"), "{e}");
        receivers.otlp_grpc.max_message_bytes = ByteSize::mib(4);
        receivers.otlp_http.max_body_bytes = ByteSize::gib(1);
        let e = validate(&receivers, &ingester, &limits).unwrap_err();
        assert!(e.starts_with("receivers.otlp_http.max_body_bytes"), "{e}");
        receivers.otlp_http.max_body_bytes = ByteSize::mib(511);
        assert_eq!(validate(&receivers, &ingester, &limits), Ok(()));
    }
}
