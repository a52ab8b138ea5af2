//! The `query:` section of `strata.yaml`.

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// How queries find and read blocks.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// How often the blocklist is refreshed from object storage. Blocks an ingester in this
    /// process uploads are seen at once, without waiting for the poll. Default 30s.
    #[serde(with = "humantime_serde")]
    pub blocklist_poll: Duration,
    /// Memory for cached bloom filter shards. Default 64 MiB.
    pub bloom_cache_bytes: ByteSize,
    /// Memory for cached Parquet footers and page indexes. Default 256 MiB.
    pub footer_cache_bytes: ByteSize,
    /// Memory for cached block tag summaries (`tags.json`). Default 64 MiB.
    pub tag_cache_bytes: ByteSize,
    /// Blocks searched at once by one query. Default 16.
    pub concurrency: usize,
    /// A trace larger than this (OTLP-encoded) is returned truncated, marked partial. Default 50MB.
    pub max_trace_bytes: ByteSize,
    /// Where a querier running apart from the ingesters (`strata querier`) asks for the data
    /// not yet in the bucket.
    pub ingesters: IngestersConfig,
}

/// `query.ingesters`: the ingesters a separate querier asks for recent data, over their
/// internal API (`server.grpc_listen` of each `strata ingester`). Ignored by `strata all`, whose
/// querier reads its own ingester directly.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestersConfig {
    /// `host:port` of each ingester. Default none.
    pub addresses: Vec<String>,
    /// A `host:port` whose host resolves to every ingester's address (a Kubernetes headless
    /// Service does this), re-resolved every `refresh`. Default none.
    pub dns: Option<String>,
    /// How often `dns` is resolved again. Default 10s.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
    /// How long one request to one ingester may take before the answer is given without it
    /// (marked partial). Default 5s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for IngestersConfig {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            dns: None,
            refresh: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

impl IngestersConfig {
    /// Whether any ingester is configured.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.dns.is_none()
    }

    fn validate(&self) -> Result<(), String> {
        for (i, address) in self.addresses.iter().enumerate() {
            check_host_port(address).map_err(|e| format!("query.ingesters.addresses[{i}]: {e}"))?;
        }
        if let Some(dns) = &self.dns {
            check_host_port(dns).map_err(|e| format!("query.ingesters.dns: {e}"))?;
        }
        if self.refresh.is_zero() {
            return Err("query.ingesters.refresh must be above zero".into());
        }
        if self.timeout.is_zero() {
            return Err("query.ingesters.timeout must be above zero".into());
        }
        Ok(())
    }
}

/// `host:port`, with a host and a port number.
fn check_host_port(text: &str) -> Result<(), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("`{text}` has no valid host"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("`{text}` has no valid port"))?;
    Ok(())
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            blocklist_poll: Duration::from_secs(30),
            bloom_cache_bytes: ByteSize::mib(64),
            footer_cache_bytes: ByteSize::mib(256),
            tag_cache_bytes: ByteSize::mib(64),
            concurrency: 16,
            max_trace_bytes: ByteSize::mb(50),
            ingesters: IngestersConfig::default(),
        }
    }
}

impl QueryConfig {
    /// Checks values serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.blocklist_poll.is_zero() {
            return Err("query.blocklist_poll must be above zero".into());
        }
        if self.concurrency == 0 {
            return Err("query.concurrency must be above zero".into());
        }
        if self.max_trace_bytes.as_u64() == 0 {
            return Err("query.max_trace_bytes must be above zero".into());
        }
        self.ingesters.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingester_addresses_must_be_host_and_port() {
        let mut config = QueryConfig::default();
        config.ingesters.addresses = vec!["ingester-0:9095".into(), "[::1]:9095".into()];
        config.ingesters.dns = Some("strata-ingester.strata.svc.cluster.local:9095".into());
        assert_eq!(config.validate(), Ok(()));
        for (bad, key) in [
            ("ingester-0", "query.ingesters.addresses[2]"),
            (":9095", "query.ingesters.addresses[2]"),
            ("host:port", "query.ingesters.addresses[2]"),
        ] {
            let mut config = config.clone();
            config.ingesters.addresses.push(bad.into());
            let err = config.validate().unwrap_err();
            assert!(err.starts_with(key), "{bad}: {err}");
        }
        config.ingesters.dns = Some("http://x/y:1".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("query.ingesters.dns")
        );
    }
}
