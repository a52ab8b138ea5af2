//! Every config file we ship parses with Strata's own loader; the all-defaults example really is
//! the defaults; a bad config stops start-up with a message naming the key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use strata::Config;

use crate::support::repo_root;

/// Every Strata config under `deploy/`, as (where it came from, its text): each file whose name
/// starts with `strata` and ends in `.yaml`, and the `strata.yaml` key of every ConfigMap in a
/// Kubernetes manifest under `deploy/kubernetes/` (multi-document files split).
fn strata_configs_in_deploy() -> Vec<(String, String)> {
    let deploy = repo_root().join("deploy");
    let mut files = Vec::new();
    yaml_files(&deploy, &mut files);
    files.sort();
    let mut configs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        if path.starts_with(deploy.join("kubernetes")) {
            for (i, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
                let value = serde_yaml_ng::Value::deserialize(document)
                    .unwrap_or_else(|e| panic!("{} document {i}: {e}", path.display()));
                if value["kind"].as_str() != Some("ConfigMap") {
                    continue;
                }
                if let Some(config) = value["data"]["strata.yaml"].as_str() {
                    let map = value["metadata"]["name"].as_str().unwrap_or("?");
                    let origin = format!("{} (ConfigMap {map}, strata.yaml)", path.display());
                    configs.push((origin, config.to_owned()));
                }
            }
        }
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("strata") {
            configs.push((path.display().to_string(), text));
        }
    }
    configs
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn every_config_in_deploy_parses() {
    let configs = strata_configs_in_deploy();
    for (origin, text) in &configs {
        Config::parse(text, origin).unwrap_or_else(|e| panic!("{e:#}"));
    }
    // deploy/strata.yaml, strata-s3.yaml, compose/strata.yaml, the four in config/, and the
    // ConfigMaps of kubernetes/distributed and kubernetes/all-in-one; so that the test cannot
    // pass by finding none.
    let names: Vec<_> = configs.iter().map(|(origin, _)| origin.as_str()).collect();
    assert!(
        configs.len() >= 9,
        "expected at least 9 Strata configs in deploy/, found {}: {names:#?}",
        configs.len()
    );
}

#[test]
fn the_defaults_example_is_the_defaults() {
    let config = Config::load(&repo_root().join("deploy/strata.yaml")).unwrap();
    assert_eq!(
        config,
        Config::default(),
        "deploy/strata.yaml and the built-in defaults disagree"
    );
}

#[test]
fn bad_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, needle) in [
        (
            "ingester:\n  trace_idel_period: 5s\n",
            "unknown field `trace_idel_period`",
        ),
        ("storage:\n  backend: gcs\n", "storage.backend"),
        (
            "receivers:\n  otlp_grpc:\n    listen: not-an-address\n",
            "receivers.otlp_grpc.listen",
        ),
        (
            "block:\n  bloom_false_positive_rate: 2\n",
            "block.bloom_false_positive_rate",
        ),
    ] {
        std::fs::write(dir.path().join("bad.yaml"), yaml).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["--config", "bad.yaml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{yaml}: {stderr:?} should name {needle:?}"
        );
    }
}
