//! The retention policy as the planner and the job runner use it: which tier a block of a given
//! age belongs in, and whether (and with what weight) a trace survives the move into it.
//!
//! Sampling is per trace by a hash of the trace ID, the same hash in every tier, so the traces
//! a 5% tier keeps are a subset of those a 10% tier kept. A trace's weight is therefore exactly
//! `1 / min(p)` over the tiers it passed, where `p` is 1 for a trace a tier keeps outright (an
//! error, a slow trace) and the sample rate otherwise: summing weights over what is left
//! estimates the original count without bias.

use std::time::Duration;

use strata_model::{Span, StatusCode, TraceId};

/// What a tier keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Keep {
    /// Every trace.
    All,
    /// No trace: only rollups remain.
    None,
    /// A trace is kept when any part holds.
    Rule {
        /// Fraction kept by hash of the trace ID.
        sample: f64,
        /// Keep traces with an error span.
        errors: bool,
        /// Keep traces longer than this.
        slower_than: Option<Duration>,
    },
}

/// One tier: from which age, what is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// Age of the data from which the tier applies.
    pub after: Duration,
    /// What it keeps.
    pub keep: Keep,
}

/// A validated policy: tiers by ascending age, the first from age 0.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionPolicy {
    tiers: Vec<Tier>,
    rollups_for: Duration,
}

/// The facts about a trace that retention looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceFacts {
    /// The trace ID (for the sampling hash).
    pub trace_id: TraceId,
    /// Any span has status error.
    pub has_error: bool,
    /// Latest end minus earliest start, nanoseconds.
    pub duration_nanos: u64,
}

impl TraceFacts {
    /// The facts of a trace's spans (all of one trace ID, at least one).
    pub fn of(trace_id: TraceId, spans: &[Span]) -> Self {
        let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(0);
        Self {
            trace_id,
            has_error: spans.iter().any(|s| s.status_code == StatusCode::ERROR),
            duration_nanos: end.saturating_sub(start),
        }
    }
}

/// Where a trace ID falls in [0, 1): its last 8 bytes (the random part of a W3C trace ID) mixed
/// by the SplitMix64 finaliser so that IDs which are not random still spread evenly.
pub fn sample_point(trace_id: &TraceId) -> f64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id.as_bytes()[8..]);
    let mut z = u64::from_be_bytes(low);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // The top 53 bits as a fraction: exact in an f64.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl RetentionPolicy {
    pub(crate) fn new(tiers: Vec<Tier>, rollups_for: Duration) -> Self {
        Self { tiers, rollups_for }
    }

    /// Everything kept forever (the fallback for a policy that failed validation).
    pub fn keep_everything() -> Self {
        Self::new(
            vec![Tier {
                after: Duration::ZERO,
                keep: Keep::All,
            }],
            Duration::from_secs(u64::from(u32::MAX)),
        )
    }

    /// The tiers, youngest first.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// How long rollups are kept.
    pub fn rollups_for(&self) -> Duration {
        self.rollups_for
    }

    /// The tier data of age `age` belongs in.
    pub fn tier_for_age(&self, age: Duration) -> u32 {
        let i = self.tiers.iter().rposition(|t| age >= t.after).unwrap_or(0);
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// Whether tier `tier` keeps no traces.
    pub fn drops_everything(&self, tier: u32) -> bool {
        matches!(self.tier(tier).map(|t| &t.keep), Some(Keep::None))
    }

    /// The age from which a tier keeps no traces: everything older is dropped. `None` when
    /// every tier keeps something.
    pub fn drop_age(&self) -> Option<Duration> {
        self.tiers
            .iter()
            .find(|t| matches!(t.keep, Keep::None))
            .map(|t| t.after)
    }

    fn tier(&self, tier: u32) -> Option<&Tier> {
        self.tiers.get(usize::try_from(tier).ok()?)
    }

    /// The weight of a trace of weight `weight` in tier `from` once moved to tier `to`, or
    /// `None` when one of the tiers after `from` up to `to` does not keep it.
    pub fn survive(&self, facts: &TraceFacts, from: u32, to: u32, weight: f64) -> Option<f64> {
        let point = sample_point(&facts.trace_id);
        let mut p_min = 1.0 / weight.max(1.0);
        for tier in (from.saturating_add(1))..=to {
            let p = match &self.tier(tier)?.keep {
                Keep::All => 1.0,
                Keep::None => return None,
                Keep::Rule {
                    sample,
                    errors,
                    slower_than,
                } => {
                    let slow = slower_than
                        .is_some_and(|d| u128::from(facts.duration_nanos) > d.as_nanos());
                    if (*errors && facts.has_error) || slow {
                        1.0
                    } else {
                        *sample
                    }
                }
            };
            if point >= p {
                return None;
            }
            p_min = f64::min(p_min, p);
        }
        Some(1.0 / p_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    /// The runbook policy: all; 10% + errors + slower than 1s; errors only; none.
    pub(crate) fn runbook() -> RetentionPolicy {
        RetentionPolicy::new(
            vec![
                Tier {
                    after: Duration::ZERO,
                    keep: Keep::All,
                },
                Tier {
                    after: Duration::from_secs(DAY),
                    keep: Keep::Rule {
                        sample: 0.10,
                        errors: true,
                        slower_than: Some(Duration::from_secs(1)),
                    },
                },
                Tier {
                    after: Duration::from_secs(7 * DAY),
                    keep: Keep::Rule {
                        sample: 0.0,
                        errors: true,
                        slower_than: None,
                    },
                },
                Tier {
                    after: Duration::from_secs(30 * DAY),
                    keep: Keep::None,
                },
            ],
            Duration::from_secs(400 * DAY),
        )
    }

    fn facts(n: u64, has_error: bool, duration_nanos: u64) -> TraceFacts {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&n.to_be_bytes());
        TraceFacts {
            trace_id: TraceId(id),
            has_error,
            duration_nanos,
        }
    }

    #[test]
    fn ages_map_to_tiers_at_their_boundaries() {
        let p = runbook();
        let h = |hours: u64| Duration::from_secs(hours * 3600);
        assert_eq!(p.tier_for_age(Duration::ZERO), 0);
        assert_eq!(p.tier_for_age(h(24) - Duration::from_nanos(1)), 0);
        assert_eq!(p.tier_for_age(h(24)), 1);
        assert_eq!(p.tier_for_age(h(7 * 24)), 2);
        assert_eq!(p.tier_for_age(h(30 * 24)), 3);
        assert_eq!(p.tier_for_age(h(365 * 24)), 3);
        assert!(p.drops_everything(3) && !p.drops_everything(2));
    }

    #[test]
    fn errors_and_slow_traces_stay_and_the_rest_is_sampled_with_its_weight() {
        let p = runbook();
        let n = 20_000u64;
        let mut kept = 0u64;
        let mut weights = 0.0;
        for i in 0..n {
            let f = facts(i, false, 1_000_000);
            if let Some(w) = p.survive(&f, 0, 1, 1.0) {
                assert_eq!(w, 10.0);
                assert!(sample_point(&f.trace_id) < 0.10);
                kept += 1;
                weights += w;
            }
        }
        // 10% of 20,000, within 4 standard deviations (sd = 42).
        assert!((1_832..=2_168).contains(&kept), "{kept}");
        assert!((weights - n as f64).abs() < 1_700.0, "{weights}");
        for i in 0..200 {
            assert_eq!(p.survive(&facts(i, true, 1), 0, 1, 1.0), Some(1.0));
            assert_eq!(
                p.survive(&facts(i, false, 1_000_000_001), 0, 1, 1.0),
                Some(1.0)
            );
            // Exactly 1s is not slower than 1s.
            let at_limit = facts(i, false, 1_000_000_000);
            assert_eq!(
                p.survive(&at_limit, 0, 1, 1.0).is_some(),
                sample_point(&at_limit.trace_id) < 0.10
            );
        }
    }

    #[test]
    fn later_tiers_keep_errors_only_then_nothing() {
        let p = runbook();
        assert_eq!(p.survive(&facts(1, true, 5), 1, 2, 1.0), Some(1.0));
        for i in 0..500 {
            assert_eq!(p.survive(&facts(i, false, 5_000_000_000), 1, 2, 1.0), None);
        }
        assert_eq!(p.survive(&facts(1, true, 5), 2, 3, 1.0), None);
        // A block that skipped a tier (the compactor was down) gets every rule on the way.
        assert_eq!(p.survive(&facts(1, true, 5), 0, 2, 1.0), Some(1.0));
        assert_eq!(p.survive(&facts(1, true, 5), 0, 3, 1.0), None);
    }

    #[test]
    fn nested_samples_keep_a_subset_and_compound_the_weight() {
        let twice = RetentionPolicy::new(
            vec![
                Tier {
                    after: Duration::ZERO,
                    keep: Keep::All,
                },
                Tier {
                    after: Duration::from_secs(DAY),
                    keep: Keep::Rule {
                        sample: 0.5,
                        errors: false,
                        slower_than: None,
                    },
                },
                Tier {
                    after: Duration::from_secs(2 * DAY),
                    keep: Keep::Rule {
                        sample: 0.1,
                        errors: false,
                        slower_than: None,
                    },
                },
            ],
            Duration::from_secs(DAY),
        );
        for i in 0..5_000 {
            let f = facts(i, false, 1);
            let first = twice.survive(&f, 0, 1, 1.0);
            let second = first.and_then(|w| twice.survive(&f, 1, 2, w));
            let direct = twice.survive(&f, 0, 2, 1.0);
            assert_eq!(second, direct);
            if let Some(w) = second {
                assert_eq!(w, 10.0);
                assert_eq!(first, Some(2.0));
            }
        }
    }

    #[test]
    fn sample_points_spread_evenly_even_for_sequential_ids() {
        let mut buckets = [0u32; 10];
        for i in 0..10_000u64 {
            let p = sample_point(&facts(i, false, 0).trace_id);
            assert!((0.0..1.0).contains(&p));
            buckets[(p * 10.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (880..=1_120).contains(&b)),
            "{buckets:?}"
        );
    }
}
