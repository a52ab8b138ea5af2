//! Compiles `proto/strata/ingester/v1/ingester.proto`, the internal API between queriers and
//! ingesters, with protox (pure Rust, no `protoc`) and tonic's code generator. OTLP types map
//! to the `opentelemetry-proto` crate's.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let ingester = root.join("strata/ingester/v1/ingester.proto");
    let third_party = root.join("third_party");
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::compile([&ingester], [&root, &third_party])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".opentelemetry.proto", "::opentelemetry_proto::tonic")
        .compile_fds(descriptors)?;
    Ok(())
}
