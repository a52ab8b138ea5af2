//! The deployment files in `deploy/` that are not Strata configs (those are parsed by
//! `config_files`): Kubernetes manifests against the Kubernetes schemas in strict mode, the
//! compose file against the compose specification, the Grafana and collector configs, and the
//! names and ports they share. The checks are `tests/python/validate_deploy.py`, offline.

use crate::support::run_python;

/// Kubernetes objects under `deploy/kubernetes/`: 14 in `distributed/` (namespace, config, S3
/// secret; the ingester StatefulSet, its two headless Services, its Service and disruption
/// budget; the querier Deployment and Service; the compactor Deployment; the collector's
/// ConfigMap, Deployment and Service) and 4 in `all-in-one/` (namespace, config, StatefulSet,
/// Service). Change it with the manifests, so that none goes unchecked by accident.
const KUBERNETES_OBJECTS: usize = 18;

#[test]
fn deploy_manifests_and_compose_file_are_valid() {
    let out = run_python("validate_deploy.py", &[]);
    let line = out
        .lines()
        .find(|l| l.starts_with("kubernetes: "))
        .unwrap_or_else(|| panic!("no summary of the Kubernetes objects in:\n{out}"));
    let objects: usize = line["kubernetes: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the object count in {line:?}"));
    assert_eq!(
        objects, KUBERNETES_OBJECTS,
        "validate_deploy.py checked {objects} Kubernetes objects, expected {KUBERNETES_OBJECTS}:\n{out}"
    );
    for part in ["compose: ", "grafana: ", "collector: "] {
        assert!(
            out.contains(part),
            "validate_deploy.py did not check {part:?}:\n{out}"
        );
    }
    assert!(out.contains("validate_deploy: OK"), "{out}");
}
