//! Compiles `proto/tempopb/tempo.proto` with protox (pure Rust, no `protoc`) and prost-build.
//! OTLP message types map to the `opentelemetry-proto` crate's, so a `Trace` holds the same
//! `ResourceSpans` the rest of Strata uses.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let tempo = root.join("tempopb/tempo.proto");
    let third_party = root.join("third_party");
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::compile([&tempo], [&root, &third_party])?;
    prost_build::Config::new()
        .extern_path(".opentelemetry.proto", "::opentelemetry_proto::tonic")
        .compile_fds(descriptors)?;
    Ok(())
}
