//! The crate graph is part of the design (docs/ARCHITECTURE.md): each crate may depend only on
//! the crates listed for it here. The three roles never import each other; the block format
//! knows no query language.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::repo_root;

/// Allowed dependencies on other Strata crates, for every crate in the workspace.
const ALLOWED: &[(&str, &[&str])] = &[
    ("strata-model", &[]),
    ("strata-storage", &[]),
    ("strata-traceql", &[]),
    ("strata-block", &["strata-model", "strata-storage"]),
    (
        "strata-ingest",
        &["strata-model", "strata-block", "strata-storage"],
    ),
    (
        "strata-query",
        &[
            "strata-model",
            "strata-block",
            "strata-storage",
            "strata-traceql",
        ],
    ),
    (
        "strata-compactor",
        &["strata-model", "strata-block", "strata-storage"],
    ),
    (
        "strata-api",
        &["strata-model", "strata-query", "strata-traceql"],
    ),
    (
        "strata",
        &[
            "strata-model",
            "strata-storage",
            "strata-block",
            "strata-ingest",
            "strata-query",
            "strata-compactor",
            "strata-api",
        ],
    ),
    (
        "strata-bench",
        &[
            "strata-model",
            "strata-block",
            "strata-compactor",
            "strata-query",
            "strata-storage",
            "strata-traceql",
        ],
    ),
];

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(c, deps)| (*c, deps.iter().copied().collect()))
        .collect();
    let mut workspace = BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        workspace.insert(package["name"].as_str().unwrap().to_owned());
    }
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let allowed = allowed.get(name).unwrap_or_else(|| {
            panic!(
                "crate {name} is not in the architecture table; add it and to docs/ARCHITECTURE.md"
            )
        });
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let dev = dep["kind"].as_str() == Some("dev");
            if workspace.contains(dep_name) && !dev {
                assert!(
                    allowed.contains(dep_name),
                    "{name} must not depend on {dep_name}"
                );
            }
        }
    }
}
