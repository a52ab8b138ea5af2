//! Runs Tempo's TraceQL conformance corpus (`shared/conformance/traceql/test_examples.yaml`)
//! the way Tempo's own tests use it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_traceql::{Query, parse};

/// Where the corpus is: `$STRATA_TRACEQL_CORPUS` if set, else `shared/conformance/traceql/` next
/// to the repository (`../shared` from its root) or beside any directory above it, else the
/// workplace's `/work/shared` (where a clone made elsewhere, e.g. by CI under `/tmp`, finds it).
fn corpus_path() -> PathBuf {
    if let Some(path) = std::env::var_os("STRATA_TRACEQL_CORPUS") {
        return PathBuf::from(path);
    }
    let relative = "shared/conformance/traceql/test_examples.yaml";
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .chain([std::path::Path::new("/work")])
        .map(|dir| dir.join(relative))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| manifest.join("../../..").join(relative))
}

fn load() -> BTreeMap<String, Vec<String>> {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the TraceQL conformance corpus is missing: cannot read {}: {e} (it lives in \
             ../shared next to the repository; set STRATA_TRACEQL_CORPUS to its path)",
            path.display()
        )
    });
    let raw: BTreeMap<String, Option<Vec<String>>> =
        serde_yaml_ng::from_str(&text).expect("the corpus is not valid YAML");
    raw.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// Print → reparse must give an equal tree (positions are ignored by equality).
fn round_trip(query: &str, parsed: &Query) -> Result<(), String> {
    let printed = parsed.to_string();
    match parse(&printed) {
        Ok(again) if &again == parsed => Ok(()),
        Ok(again) => Err(format!(
            "round trip changed the tree: {query:?} printed as {printed:?}\n  before: {parsed:?}\n  after:  {again:?}"
        )),
        Err(e) => Err(format!(
            "round trip failed to parse: {query:?} printed as {printed:?}: {e}"
        )),
    }
}

#[test]
fn tempo_conformance_corpus() {
    let corpus = load();
    let expected_counts = [
        ("valid", 284),
        ("parse_fails", 87),
        ("validate_fails", 70),
        ("unsupported", 22),
    ];
    let mut failures: Vec<String> = Vec::new();
    for (section, count) in expected_counts {
        let queries = corpus
            .get(section)
            .unwrap_or_else(|| panic!("corpus has no `{section}` section"));
        println!("{section}: {} queries", queries.len());
        if queries.len() != count {
            failures.push(format!(
                "section `{section}` has {} queries, expected {count}",
                queries.len()
            ));
        }
        for q in queries {
            let result = parse(q);
            let failure = match (section, result) {
                ("parse_fails", Ok(parsed)) => Some(format!("parsed but should not: {parsed}")),
                ("parse_fails", Err(_)) => None,
                (_, Err(e)) => Some(format!("failed to parse: {e}")),
                ("valid", Ok(parsed)) => match parsed.validate() {
                    Err(e) => Some(format!("failed validation: {e}")),
                    Ok(()) => round_trip(q, &parsed).err(),
                },
                ("validate_fails", Ok(parsed)) => match parsed.validate() {
                    Ok(()) => Some("validated but should not".to_string()),
                    Err(e) if e.unsupported => {
                        Some(format!("reported unsupported instead of invalid: {e}"))
                    }
                    Err(_) => None,
                },
                ("unsupported", Ok(parsed)) => match parsed.validate() {
                    Ok(()) => Some("validated but should be unsupported".to_string()),
                    Err(e) if !e.unsupported => {
                        Some(format!("reported invalid instead of unsupported: {e}"))
                    }
                    Err(_) => round_trip(q, &parsed).err(),
                },
                (other, Ok(_)) => Some(format!("unknown section {other}")),
            };
            if let Some(f) = failure {
                failures.push(format!("[{section}] {q:?}: {f}"));
            }
        }
    }
    for section in corpus.keys() {
        if section != "dump" && !expected_counts.iter().any(|(s, _)| s == section) {
            failures.push(format!("unexpected corpus section `{section}`"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} conformance failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
