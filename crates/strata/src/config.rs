//! `strata.yaml`: one section per concern, each owned and validated by its crate. Every key has
//! a default (see docs/configuration.md); unknown keys and bad values stop start-up with a
//! message naming the key.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use strata_block::BlockConfig;
use strata_compactor::{CompactorConfig, RetentionConfig};
use strata_ingest::config::{IngesterConfig, LimitsConfig, ReceiversConfig};
use strata_query::QueryConfig;
use strata_storage::StorageConfig;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP API server and logging.
    pub server: ServerConfig,
    /// OTLP receivers.
    pub receivers: ReceiversConfig,
    /// The ingester: WAL, trace assembly, block cutting.
    pub ingester: IngesterConfig,
    /// Per-tenant limits.
    pub limits: LimitsConfig,
    /// Object storage.
    pub storage: StorageConfig,
    /// Block encoding.
    pub block: BlockConfig,
    /// Queries: blocklist polling, caches, limits.
    pub query: QueryConfig,
    /// The compactor: merging, cycles, sharding, rollup buckets.
    pub compactor: CompactorConfig,
    /// Retention tiers and rollup retention, per tenant overridable.
    pub retention: RetentionConfig,
}

/// `server:`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP API (Tempo's API, `/ready`, `/metrics`). Default `0.0.0.0:3200`.
    pub http_listen: SocketAddr,
    /// Address of the internal gRPC API that `strata ingester` serves to queriers (recent
    /// traces, search over them, recent blocks, tags). Default `0.0.0.0:9095`.
    pub grpc_listen: SocketAddr,
    /// When true, every request must name its tenant in `X-Scope-OrgID` (401 / `UNAUTHENTICATED`
    /// otherwise); when false the header is ignored and everything belongs to `single-tenant`.
    /// Default false.
    pub multitenancy_enabled: bool,
    /// Log filter, in `RUST_LOG` syntax (`info`, `strata_ingest=debug,info`). Default `info`;
    /// the `RUST_LOG` environment variable wins when set.
    pub log_level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_listen: SocketAddr::from(([0, 0, 0, 0], 3200)),
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9095)),
            multitenancy_enabled: false,
            log_level: "info".into(),
        }
    }
}

impl Config {
    /// Parses YAML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let config: Self =
            serde_yaml_ng::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        config.validate().with_context(|| origin.to_owned())?;
        Ok(config)
    }

    /// Reads and parses a YAML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.server.log_level.trim().is_empty() {
            bail!("server.log_level must not be empty");
        }
        strata_ingest::config::validate(&self.receivers, &self.ingester, &self.limits)
            .map_err(anyhow::Error::msg)?;
        self.storage.validate()?;
        self.block.validate().map_err(anyhow::Error::msg)?;
        self.query.validate().map_err(anyhow::Error::msg)?;
        self.compactor.validate().map_err(anyhow::Error::msg)?;
        self.retention.validate().map_err(anyhow::Error::msg)?;
        let ports = [
            ("server.http_listen", self.server.http_listen, true),
            ("server.grpc_listen", self.server.grpc_listen, true),
            (
                "receivers.otlp_grpc.listen",
                self.receivers.otlp_grpc.listen,
                self.receivers.otlp_grpc.enabled,
            ),
            (
                "receivers.otlp_http.listen",
                self.receivers.otlp_http.listen,
                self.receivers.otlp_http.enabled,
            ),
        ];
        for (i, (a, addr_a, on_a)) in ports.iter().enumerate() {
            for (b, addr_b, on_b) in &ports[i + 1..] {
                if *on_a && *on_b && addr_a == addr_b && addr_a.port() != 0 {
                    bail!("{a} and {b} are both {addr_a}");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let config = Config::parse("", "test").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.receivers.otlp_grpc.listen.port(), 4317);
        assert_eq!(config.receivers.otlp_http.listen.port(), 4318);
        assert_eq!(config.server.http_listen.port(), 3200);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::parse("ingester:\n  wal:\n    fsynk: true\n", "strata.yaml").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("ingester.wal") && text.contains("fsynk"),
            "{text}"
        );
        let err =
            Config::parse("ingester:\n  trace_idle_period: soon\n", "strata.yaml").unwrap_err();
        assert!(
            format!("{err:#}").contains("ingester.trace_idle_period"),
            "{err:#}"
        );
        let err = Config::parse("limits:\n  defaults:\n    max_live_traces: 0\n", "x").unwrap_err();
        assert!(
            format!("{err:#}").contains("limits.defaults.max_live_traces"),
            "{err:#}"
        );
        let err = Config::parse("storage:\n  backend: s3\n", "x").unwrap_err();
        assert!(format!("{err:#}").contains("storage.s3.bucket"), "{err:#}");
        let err = Config::parse("block:\n  zstd_level: 40\n", "x").unwrap_err();
        assert!(format!("{err:#}").contains("block.zstd_level"), "{err:#}");
        let err = Config::parse(
            "retention:\n  tiers:\n    - after: 0h\n      keep: all\n    - after: 1d\n      keep: { sample: 2 }\n",
            "x",
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("retention.tiers[1].keep.sample"),
            "{err:#}"
        );
        let err = Config::parse("compactor:\n  shards: 2\n  shard: 2\n", "x").unwrap_err();
        assert!(format!("{err:#}").contains("compactor.shard"), "{err:#}");
    }

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        let config = Config::parse(
            "ingester:\n  max_block_bytes: 32MiB\n  trace_idle_period: 2s\nlimits:\n  per_tenant:\n    team-a:\n      max_live_traces: 5\n",
            "x",
        )
        .unwrap();
        assert_eq!(config.ingester.max_block_bytes.as_u64(), 32 << 20);
        assert_eq!(config.ingester.trace_idle_period.as_secs(), 2);
        assert_eq!(config.limits.for_tenant("team-a").max_live_traces, 5);
        assert_eq!(
            config.limits.for_tenant("team-a").max_bytes_per_trace,
            config.limits.defaults.max_bytes_per_trace
        );
    }
}
