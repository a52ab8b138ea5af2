//! The fuzz targets, one function each over the fuzzer's bytes.

mod block;
mod internal;
mod meta;
mod otlp;
mod recent;
mod traceql;
mod wal;

pub use block::{block_file, footer_start};
pub use internal::internal_api;
pub use meta::meta_parsers;
pub use otlp::{otlp_json, otlp_proto};
pub use traceql::traceql;
pub use wal::wal_record;

/// The names of the targets, as `fuzz/run` and `corpus/` know them.
pub const NAMES: [&str; 7] = [
    "otlp_proto",
    "otlp_json",
    "wal_record",
    "traceql",
    "meta_parsers",
    "block_file",
    "internal_api",
];

/// Runs target `name` on one input; false if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "otlp_proto" => otlp_proto(data),
        "otlp_json" => otlp_json(data),
        "wal_record" => wal_record(data),
        "traceql" => traceql(data),
        "meta_parsers" => meta_parsers(data),
        "block_file" => block_file(data),
        "internal_api" => internal_api(data),
        _ => return false,
    }
    true
}
