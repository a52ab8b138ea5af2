//! Every config file we ship parses with Strata's own loader; the all-defaults example really is
//! the defaults; a bad config stops start-up with a message naming the key.

use std::process::Command;

use strata::Config;

use crate::support::repo_root;

#[test]
fn every_config_in_deploy_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("deploy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml")
            && !path.to_string_lossy().contains("compose")
        {
            Config::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the example configs in deploy/");
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
