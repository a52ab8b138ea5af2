//! The `strata` server: configuration composed from every crate's section, the roles wired
//! together, signals and shutdown. The binary in `main.rs` is a thin CLI over this.

pub mod config;
pub mod search_cmd;
pub mod server;
pub mod stats_cmd;
mod table;
mod telemetry;
pub mod trace_cmd;
pub mod trace_view;

pub use config::Config;
pub use telemetry::init_logging;
