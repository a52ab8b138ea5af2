//! `strata search '<traceql>'`: run a search on a running server (`--url`) or straight over a
//! storage location (`--storage`), and print the matching traces as a table.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;
use strata_model::TenantId;

use crate::trace_cmd::{Source, api_get_json, local_querier};
use crate::trace_view::duration as format_duration;

/// What to search.
pub struct SearchArgs {
    /// The TraceQL query.
    pub query: String,
    /// How far back from now (`None`: all data).
    pub since: Option<Duration>,
    /// At most this many traces.
    pub limit: usize,
}

fn params(args: &SearchArgs) -> HashMap<String, String> {
    let mut params = HashMap::from([
        ("q".to_owned(), args.query.clone()),
        ("limit".to_owned(), args.limit.to_string()),
    ]);
    if let Some(since) = args.since {
        let now = chrono::Utc::now().timestamp();
        let start = now - i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
        params.insert("start".into(), start.max(1).to_string());
        params.insert("end".into(), now.to_string());
    }
    params
}

/// Runs the search; returns Tempo's `SearchResponse` JSON.
pub async fn run(source: &Source, tenant: &TenantId, args: &SearchArgs) -> anyhow::Result<Value> {
    let params = params(args);
    match source {
        Source::Url(url) => api_get_json(url, "/api/search", &params, tenant).await,
        Source::Storage(path) => {
            let querier = local_querier(path).await?;
            strata_api::search_json(&querier, tenant, &params)
                .await
                .map(|(body, _)| body)
                .map_err(|e| anyhow::anyhow!("{}", e.message))
        }
    }
}

/// The result as a table: start, root service, root name, duration, matched spans.
pub fn render(response: &Value) -> String {
    let traces = response["traces"].as_array().cloned().unwrap_or_default();
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(traces.len());
    for t in &traces {
        let start = t["startTimeUnixNano"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map(|n| {
                chrono::DateTime::from_timestamp_nanos(n)
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string()
            })
            .unwrap_or_default();
        let duration = t["durationMs"].as_u64().unwrap_or(0);
        let matched: u64 = t["spanSets"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["matched"].as_u64()).sum())
            .unwrap_or(0);
        rows.push(vec![
            t["traceID"].as_str().unwrap_or_default().to_owned(),
            start,
            t["rootServiceName"].as_str().unwrap_or_default().to_owned(),
            t["rootTraceName"].as_str().unwrap_or_default().to_owned(),
            if duration == 0 {
                "<1 ms".to_owned()
            } else {
                format_duration(duration.saturating_mul(1_000_000))
            },
            matched.to_string(),
        ]);
    }
    let header = [
        "TRACE ID",
        "START (UTC)",
        "ROOT SERVICE",
        "ROOT NAME",
        "DURATION",
        "MATCHED",
    ];
    let mut out = crate::table::render(&header, &rows);
    let m = &response["metrics"];
    let _ = writeln!(
        out,
        "{} traces; inspected {} traces, {} spans, {} bytes in {} blocks",
        rows.len(),
        m["inspectedTraces"].as_u64().unwrap_or(0),
        m["inspectedSpans"].as_str().unwrap_or("0"),
        m["inspectedBytes"].as_str().unwrap_or("0"),
        m["completedJobs"].as_u64().unwrap_or(0),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_row_per_trace() {
        let response = serde_json::json!({
            "traces": [{"traceID": "abc", "rootServiceName": "frontend", "rootTraceName": "GET /",
                        "startTimeUnixNano": "1700000000000000000", "durationMs": 1500,
                        "spanSets": [{"spans": [], "matched": 2}]}],
            "metrics": {"inspectedTraces": 10, "inspectedSpans": "50", "inspectedBytes": "1000", "completedJobs": 1}
        });
        let text = render(&response);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TRACE ID"));
        assert!(lines[1].contains("frontend") && lines[1].contains("GET /"));
        assert!(lines[1].contains("2023-11-14 22:13:20.000"));
        assert!(lines[1].ends_with('2'));
        assert!(lines[2].starts_with("1 traces"));
    }
}
