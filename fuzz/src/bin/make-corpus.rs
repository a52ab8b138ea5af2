//! Writes the seed corpora, `corpus/<target>/seed-*`, from the fixture and a few hand-made edge
//! cases: `cargo run --bin make-corpus -- <fuzz dir>` (what `fuzz/run --make-corpus` does).
//! Everything is deterministic, so running it again gives the same files.

use std::path::{Path, PathBuf};

// Built with the targets' coverage instrumentation, this program needs libFuzzer's runtime to
// link; it brings its own `main`, so libFuzzer's driver is never pulled in or run.
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join("corpus");
    let seeds = strata_fuzz::seeds::all();
    for (target, inputs) in &seeds {
        let target_dir = dir.join(target);
        if let Err(e) = write_target(&target_dir, inputs) {
            eprintln!("make-corpus: {}: {e}", target_dir.display());
            std::process::exit(1);
        }
        let bytes: usize = inputs.iter().map(Vec::len).sum();
        println!("{target}: {} seeds, {bytes} bytes", inputs.len());
    }
}

fn write_target(dir: &Path, inputs: &[Vec<u8>]) -> std::io::Result<()> {
    if dir.exists() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let seed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
            if seed {
                std::fs::remove_file(path)?;
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), input)?;
    }
    Ok(())
}
