//! The `compactor:` and `retention:` sections of `strata.yaml`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::retention::{Keep, RetentionPolicy, Tier};

/// `compactor:`: how blocks are merged and how often.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// Run the compactor in the all-in-one process. Default true.
    pub enabled: bool,
    /// Time between cycles. Default 30s.
    #[serde(with = "humantime_serde")]
    pub cycle: Duration,
    /// Blocks are merged only with blocks whose data ends in the same window. Default 1h.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Most input blocks of one job. Default 8.
    pub max_inputs: usize,
    /// Most traces one job reads (the sum over its inputs). Default 5,000,000.
    pub max_job_traces: u64,
    /// Most bytes of `data.parquet` one job reads. The output is built in memory, so this bounds
    /// the memory of a job too. Default 512 MiB.
    pub max_job_bytes: ByteSize,
    /// How long a replaced or dropped block is kept before it is deleted, so queries already
    /// running can finish with it; also how long nothing must have been written to an entry
    /// without `meta.json` (by the bucket's clock) before it is deleted as abandoned.
    /// Default 1h.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// How long a block or rollup segment whose data could not be read is left out of folds,
    /// jobs and rollup merges before it is tried again (retention still drops it on time).
    /// Default 1h.
    #[serde(with = "humantime_serde")]
    pub unreadable_retry: Duration,
    /// Folds and jobs of one tenant run at once (each on a core while it decodes and encodes).
    /// Default 2.
    pub concurrent_jobs: usize,
    /// Compactors sharing one bucket. Each owns the time windows whose hash falls in its shard,
    /// so no two ever compact the same block. Default 1.
    pub shards: u32,
    /// This compactor's shard, `0..shards`. Shard 0 also writes the tenant indexes. Default 0.
    pub shard: u32,
    /// Rollup bucket widths.
    pub rollups: RollupConfig,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cycle: Duration::from_secs(30),
            window: Duration::from_secs(3600),
            max_inputs: 8,
            max_job_traces: 5_000_000,
            max_job_bytes: ByteSize::mib(512),
            grace_period: Duration::from_secs(3600),
            unreadable_retry: Duration::from_secs(3600),
            concurrent_jobs: 2,
            shards: 1,
            shard: 0,
            rollups: RollupConfig::default(),
        }
    }
}

/// `compactor.rollups:`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RollupConfig {
    /// Bucket width spans are folded into. Default 1m.
    #[serde(with = "humantime_serde")]
    pub bucket: Duration,
    /// Width buckets are widened to once their data is older than `coarse_after`. Default 1h.
    #[serde(with = "humantime_serde")]
    pub coarse_bucket: Duration,
    /// Age after which buckets are widened. Default 7d.
    #[serde(with = "humantime_serde")]
    pub coarse_after: Duration,
}

impl Default for RollupConfig {
    fn default() -> Self {
        Self {
            bucket: Duration::from_secs(60),
            coarse_bucket: Duration::from_secs(3600),
            coarse_after: Duration::from_secs(7 * 86_400),
        }
    }
}

impl CompactorConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |d: Duration, key: &str| match d.is_zero() {
            true => Err(format!("compactor.{key} must be above zero")),
            false => Ok(()),
        };
        positive(self.cycle, "cycle")?;
        positive(self.window, "window")?;
        positive(self.rollups.bucket, "rollups.bucket")?;
        positive(self.unreadable_retry, "unreadable_retry")?;
        if self.max_inputs < 2 {
            return Err("compactor.max_inputs must be at least 2".into());
        }
        if self.max_job_traces == 0 || self.max_job_bytes.as_u64() == 0 {
            return Err(
                "compactor.max_job_traces and compactor.max_job_bytes must be above zero".into(),
            );
        }
        if self.concurrent_jobs == 0 {
            return Err("compactor.concurrent_jobs must be at least 1".into());
        }
        if self.shards == 0 {
            return Err("compactor.shards must be at least 1".into());
        }
        if self.shard >= self.shards {
            return Err(format!(
                "compactor.shard must be below compactor.shards ({})",
                self.shards
            ));
        }
        let r = &self.rollups;
        if r.bucket.as_secs() == 0 || r.bucket.subsec_nanos() != 0 {
            return Err("compactor.rollups.bucket must be a whole number of seconds".into());
        }
        if !r
            .coarse_bucket
            .as_secs()
            .is_multiple_of(r.bucket.as_secs().max(1))
            || r.coarse_bucket.subsec_nanos() != 0
            || r.coarse_bucket < r.bucket
        {
            return Err(
                "compactor.rollups.coarse_bucket must be a whole multiple of compactor.rollups.bucket"
                    .into(),
            );
        }
        if !86_400u64.is_multiple_of(r.coarse_bucket.as_secs().max(1)) {
            return Err("compactor.rollups.coarse_bucket must divide a day".into());
        }
        Ok(())
    }
}

/// One tier as written in YAML.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Age of the data (now minus the block's end time) from which this tier applies.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// What the tier keeps: `all`, `none`, or `{ sample, errors, slower_than }`.
    pub keep: KeepConfig,
}

/// `keep:` as written: a word or a rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeepConfig {
    /// `all` or `none`.
    Word(KeepWord),
    /// `{ sample: 0.1, errors: true, slower_than: 1s }`.
    Rule(KeepRuleConfig),
}

/// The words `keep:` takes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum KeepWord {
    /// Keep every trace.
    All,
    /// Keep no trace (rollups only).
    None,
}

/// A keep rule: a trace is kept when any part holds.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeepRuleConfig {
    /// Fraction of traces kept by a deterministic hash of the trace ID, 0 to 1.
    pub sample: f64,
    /// Keep every trace with a span of status error.
    pub errors: bool,
    /// Keep every trace longer than this.
    #[serde(with = "humantime_serde")]
    pub slower_than: Option<Duration>,
}

/// The tiers and rollup retention of one tenant as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantRetentionConfig {
    /// The tiers, by ascending `after`; the first must be `after: 0s`.
    pub tiers: Vec<TierConfig>,
    /// How long rollups are kept. Default 400d.
    #[serde(with = "humantime_serde", default = "default_rollups_for")]
    pub rollups_for: Duration,
}

fn default_rollups_for() -> Duration {
    Duration::from_secs(400 * 86_400)
}

/// `retention:`: the default policy and per-tenant overrides.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// The tiers every tenant gets. Default: everything for 14 days, then rollups only.
    #[serde(default = "default_tiers")]
    pub tiers: Vec<TierConfig>,
    /// How long rollups are kept. Default 400d.
    #[serde(with = "humantime_serde", default = "default_rollups_for")]
    pub rollups_for: Duration,
    /// Whole policies by tenant ID, replacing the default for that tenant.
    #[serde(default)]
    pub per_tenant: BTreeMap<String, TenantRetentionConfig>,
}

fn default_tiers() -> Vec<TierConfig> {
    vec![
        TierConfig {
            after: Duration::ZERO,
            keep: KeepConfig::Word(KeepWord::All),
        },
        TierConfig {
            after: Duration::from_secs(14 * 86_400),
            keep: KeepConfig::Word(KeepWord::None),
        },
    ]
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            tiers: default_tiers(),
            rollups_for: default_rollups_for(),
            per_tenant: BTreeMap::new(),
        }
    }
}

impl RetentionConfig {
    /// Checks every policy; the error names the key (`retention.tiers[1].keep.sample`).
    pub fn validate(&self) -> Result<(), String> {
        policy_from(&self.tiers, self.rollups_for, "retention")?;
        for (tenant, policy) in &self.per_tenant {
            strata_model::TenantId::new(tenant)
                .map_err(|e| format!("retention.per_tenant.{tenant}: {e}"))?;
            policy_from(
                &policy.tiers,
                policy.rollups_for,
                &format!("retention.per_tenant.{tenant}"),
            )?;
        }
        Ok(())
    }

    /// The policy of `tenant`. Only call after [`RetentionConfig::validate`] passed; an invalid
    /// policy falls back to keeping everything.
    pub fn policy_for(&self, tenant: &str) -> RetentionPolicy {
        let (tiers, rollups_for, key) = match self.per_tenant.get(tenant) {
            Some(p) => (
                &p.tiers,
                p.rollups_for,
                format!("retention.per_tenant.{tenant}"),
            ),
            None => (&self.tiers, self.rollups_for, "retention".to_owned()),
        };
        policy_from(tiers, rollups_for, &key).unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid retention policy; keeping everything");
            RetentionPolicy::keep_everything()
        })
    }
}

fn policy_from(
    tiers: &[TierConfig],
    rollups_for: Duration,
    key: &str,
) -> Result<RetentionPolicy, String> {
    if tiers.is_empty() {
        return Err(format!("{key}.tiers must list at least one tier"));
    }
    if rollups_for.is_zero() {
        return Err(format!("{key}.rollups_for must be above zero"));
    }
    let mut out = Vec::with_capacity(tiers.len());
    for (i, tier) in tiers.iter().enumerate() {
        let at = format!("{key}.tiers[{i}]");
        if i == 0 && !tier.after.is_zero() {
            return Err(format!(
                "{at}.after must be 0s: the first tier holds new data"
            ));
        }
        if i > 0 && tier.after <= tiers[i - 1].after {
            return Err(format!(
                "{at}.after must be later than {key}.tiers[{}].after: tiers go in order of age",
                i - 1
            ));
        }
        if i > 0 && matches!(tiers[i - 1].keep, KeepConfig::Word(KeepWord::None)) {
            return Err(format!(
                "{at}: it follows a tier with keep: none, which leaves nothing to keep"
            ));
        }
        let keep = match &tier.keep {
            KeepConfig::Word(KeepWord::All) => Keep::All,
            KeepConfig::Word(KeepWord::None) => Keep::None,
            KeepConfig::Rule(rule) => {
                if !(0.0..=1.0).contains(&rule.sample) {
                    return Err(format!(
                        "{at}.keep.sample must be between 0 and 1, not {}",
                        rule.sample
                    ));
                }
                if rule.sample == 0.0 && !rule.errors && rule.slower_than.is_none() {
                    return Err(format!(
                        "{at}.keep keeps nothing; write keep: none for a rollups-only tier"
                    ));
                }
                Keep::Rule {
                    sample: rule.sample,
                    errors: rule.errors,
                    slower_than: rule.slower_than,
                }
            }
        };
        out.push(Tier {
            after: tier.after,
            keep,
        });
    }
    Ok(RetentionPolicy::new(out, rollups_for))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RetentionConfig, String> {
        let config: RetentionConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn the_runbook_policy_is_expressible() {
        let config = parse(
            "tiers:\n  - after: 0h\n    keep: all\n  - after: 24h\n    keep: { sample: 0.10, errors: true, slower_than: 1s }\n  - after: 7d\n    keep: { errors: true }\n  - after: 30d\n    keep: none\nrollups_for: 400d\n",
        )
        .unwrap();
        let policy = config.policy_for("anyone");
        assert_eq!(policy.tiers().len(), 4);
        assert_eq!(
            policy.tiers()[1].keep,
            Keep::Rule {
                sample: 0.10,
                errors: true,
                slower_than: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(policy.tiers()[3].after, Duration::from_secs(30 * 86_400));
        assert_eq!(policy.rollups_for(), Duration::from_secs(400 * 86_400));
    }

    #[test]
    fn bad_policies_name_the_key() {
        let cases = [
            (
                "tiers:\n  - after: 0h\n    keep: all\n  - after: 7d\n    keep: none\n  - after: 1d\n    keep: all\n",
                "retention.tiers[2].after",
            ),
            (
                "tiers:\n  - after: 0h\n    keep: all\n  - after: 1d\n    keep: { sample: 1.5 }\n",
                "retention.tiers[1].keep.sample",
            ),
            (
                "tiers:\n  - after: 0h\n    keep: all\n  - after: 1d\n    keep: { sample: -0.1, errors: true }\n",
                "retention.tiers[1].keep.sample",
            ),
            (
                "tiers:\n  - after: 1h\n    keep: all\n",
                "retention.tiers[0].after",
            ),
            ("tiers: []\n", "retention.tiers"),
            (
                "tiers:\n  - after: 0h\n    keep: none\n  - after: 1d\n    keep: all\n",
                "retention.tiers[1]",
            ),
            (
                "tiers:\n  - after: 0h\n    keep: all\nper_tenant:\n  team-a:\n    tiers:\n      - after: 0h\n        keep: all\n      - after: 2h\n        keep: {}\n",
                "retention.per_tenant.team-a.tiers[1].keep",
            ),
            (
                "tiers:\n  - after: 0h\n    keep: all\nrollups_for: 0s\n",
                "retention.rollups_for",
            ),
        ];
        for (yaml, key) in cases {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(key), "{yaml}: {err}");
        }
    }

    #[test]
    fn tenants_get_their_own_policy() {
        let config = parse(
            "per_tenant:\n  team-a:\n    tiers:\n      - after: 0s\n        keep: all\n      - after: 1d\n        keep: { errors: true }\n    rollups_for: 30d\n",
        )
        .unwrap();
        assert_eq!(config.policy_for("team-a").tiers().len(), 2);
        assert_eq!(
            config.policy_for("team-a").rollups_for(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(config.policy_for("team-b").tiers()[1].keep, Keep::None);
    }

    #[test]
    fn compactor_config_checks_ranges() {
        let mut c = CompactorConfig::default();
        assert!(c.validate().is_ok());
        c.shard = 1;
        assert!(c.validate().unwrap_err().contains("compactor.shard"));
        c = CompactorConfig::default();
        c.max_inputs = 1;
        assert!(c.validate().unwrap_err().contains("compactor.max_inputs"));
        c = CompactorConfig::default();
        c.rollups.coarse_bucket = Duration::from_secs(90);
        assert!(c.validate().unwrap_err().contains("coarse_bucket"));
    }
}
