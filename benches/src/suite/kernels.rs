//! The criterion micro-benchmarks (`benches/kernels.rs`), run through cargo and read back from
//! criterion's own sample files, so the report shows them beside the system figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::report::{Samples, Section, Table, num, spread};

/// Runs `cargo bench -p strata-bench --bench kernels` (criterion's own sampling) and reports
/// the time per iteration over its samples, and the throughput where the benchmark declares one.
/// `filter` narrows the benchmarks run, as criterion's command-line filter does.
pub fn run(filter: Option<&str>) -> anyhow::Result<Section> {
    let home = std::env::temp_dir().join(format!("strata-criterion-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args([
            "bench",
            "--locked",
            "-p",
            "strata-bench",
            "--bench",
            "kernels",
            "--",
        ])
        .args(["--noplot"])
        .args(filter)
        .env("CRITERION_HOME", &home);
    let output = cargo.output().context("running cargo bench")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let section = read_results(&home);
    std::fs::remove_dir_all(&home).ok();
    section
}

fn read_results(home: &Path) -> anyhow::Result<Section> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut stack = vec![home.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    found.push(path);
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found.sort();
    let mut table = Table::new(&[
        "kernel",
        "time per iteration (min / median / max over samples)",
        "throughput (median)",
    ]);
    for dir in &found {
        let read = |name: &str| -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::from_slice(&std::fs::read(dir.join(name))?)?)
        };
        let (bench, sample) = (read("benchmark.json")?, read("sample.json")?);
        let numbers = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
                .unwrap_or_default()
        };
        let (iters, times) = (numbers(&sample["iters"]), numbers(&sample["times"]));
        let per_iter = Samples(
            iters
                .iter()
                .zip(&times)
                .filter(|(i, _)| **i > 0.0)
                .map(|(i, t)| t / i)
                .collect(),
        );
        let (value, unit) = scale_nanos(per_iter.median());
        let scaled = Samples(
            per_iter
                .0
                .iter()
                .map(|t| t / (per_iter.median() / value))
                .collect(),
        );
        let median_secs = per_iter.median() / 1e9;
        let throughput = match &bench["throughput"] {
            t if t["Elements"].is_u64() => format!(
                "{} elements/s",
                num(t["Elements"].as_f64().unwrap_or(0.0) / median_secs)
            ),
            t if t["Bytes"].is_u64() => format!(
                "{} MB/s",
                num(t["Bytes"].as_f64().unwrap_or(0.0) / median_secs / 1e6)
            ),
            _ => String::new(),
        };
        table.row(vec![
            bench["full_id"].as_str().unwrap_or("?").to_owned(),
            format!("{} {unit}", spread(&scaled)),
            throughput,
        ]);
    }
    anyhow::ensure!(
        !found.is_empty(),
        "criterion wrote no results under {}",
        home.display()
    );
    Ok(Section {
        title: "Kernels (criterion)".into(),
        setup: "`cargo bench -p strata-bench --bench kernels`: criterion's sampling (warm-up, \
                then its samples); time per iteration of each sample. Elements are spans."
            .into(),
        tables: vec![table],
        notes: Vec::new(),
    })
}

/// A time in nanoseconds as a value and a unit that reads well.
fn scale_nanos(ns: f64) -> (f64, &'static str) {
    if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    }
}
