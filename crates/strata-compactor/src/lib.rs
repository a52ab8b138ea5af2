//! Strata's compactor: merges the small blocks ingesters cut into larger ones, rewrites blocks
//! as they age through the retention tiers (sampling healthy traffic, keeping errors and slow
//! traces, finally dropping everything), folds every span into rollups before it can leave, and
//! deletes what was replaced once no query can still be reading it.
//!
//! The [`planner`] is a pure function of what the bucket holds and `now`; the [`Compactor`]
//! around it lists, runs the plan and writes the tenant index. Crash safety comes from the block
//! life cycle (`strata_block::catalog`): an output's `meta.json` is the commit point, and
//! readers ignore inputs it names.
//!
//! This crate is not for reading traces for queries (that is `strata-query`) and knows nothing
//! of ingesters or HTTP.

pub mod config;
mod counted;
mod error;
mod execute;
mod jobs;
mod listing;
mod metrics;
pub mod planner;
mod report;
pub mod retention;
mod runner;
mod unreadable;

pub use config::{CompactorConfig, RetentionConfig, RollupConfig};
pub use error::{Error, Result};
pub use jobs::JobOutcome;
pub use metrics::CompactorMetrics;
pub use planner::{Fold, Job, Plan, RollupJob, TenantView, entry_owner, plan};
pub use report::CycleReport;
pub use retention::{Keep, RetentionPolicy, Tier, TraceFacts, sample_point};
pub use runner::Compactor;
