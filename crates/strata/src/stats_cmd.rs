//! `strata stats`: request, error and latency figures per operation from the rollups, asked of
//! a running server (`--url`, `GET /api/strata/stats`) or read straight from a storage location
//! (`--storage`), printed as a table.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use strata_model::TenantId;
use strata_query::StatsRequest;

use crate::trace_cmd::{Source, api_get_json, local_querier};
use crate::trace_view::duration as format_duration;

/// What to report.
pub struct StatsArgs {
    /// Only this service.
    pub service: Option<String>,
    /// Only this span name.
    pub name: Option<String>,
    /// How far back from now.
    pub since: Duration,
}

/// Runs the query; returns the `/api/strata/stats` JSON.
pub async fn run(source: &Source, tenant: &TenantId, args: &StatsArgs) -> anyhow::Result<Value> {
    match source {
        Source::Url(url) => {
            let mut params =
                HashMap::from([("since".to_owned(), format!("{}s", args.since.as_secs()))]);
            for (key, value) in [("service", &args.service), ("name", &args.name)] {
                if let Some(v) = value {
                    params.insert(key.to_owned(), v.clone());
                }
            }
            api_get_json(url, "/api/strata/stats", &params, tenant).await
        }
        Source::Storage(path) => {
            let querier = local_querier(path).await?;
            let end = chrono::Utc::now();
            let since = chrono::Duration::from_std(args.since).context("--since is too long")?;
            let request = StatsRequest {
                service: args.service.clone(),
                name: args.name.clone(),
                start: end - since,
                end,
            };
            let result = querier.stats(tenant, &request).await?;
            Ok(strata_api::stats::stats_json(&request, &result))
        }
    }
}

fn nanos(v: &Value) -> String {
    v.as_u64()
        .map(format_duration)
        .unwrap_or_else(|| "-".into())
}

/// The figures as a table, one row per operation, busiest first.
pub fn render(response: &Value) -> String {
    let mut ops = response["operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ops.sort_by_key(|o| std::cmp::Reverse(o["spanCount"].as_u64().unwrap_or(0)));
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            let text = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            vec![
                text("service"),
                text("name"),
                text("kind"),
                o["spanCount"].as_u64().unwrap_or(0).to_string(),
                o["errorCount"].as_u64().unwrap_or(0).to_string(),
                format!("{:.2}%", o["errorRate"].as_f64().unwrap_or(0.0) * 100.0),
                nanos(&o["p50Nanos"]),
                nanos(&o["p90Nanos"]),
                nanos(&o["p99Nanos"]),
            ]
        })
        .collect();
    let header = [
        "SERVICE",
        "OPERATION",
        "KIND",
        "SPANS",
        "ERRORS",
        "ERROR %",
        "P50",
        "P90",
        "P99",
    ];
    let mut out = crate::table::render(&header, &rows);
    out.push_str(&format!(
        "{} operations from {} to {}; {}-second buckets; {} rollup segments read\n",
        rows.len(),
        response["start"].as_str().unwrap_or_default(),
        response["end"].as_str().unwrap_or_default(),
        response["bucketSeconds"].as_u64().unwrap_or(0),
        response["segmentsRead"].as_u64().unwrap_or(0),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_busiest_operation_first() {
        let response = serde_json::json!({
            "start": "a", "end": "b", "bucketSeconds": 60, "segmentsRead": 2,
            "operations": [
                {"service": "cart", "name": "GET /cart", "kind": "server", "spanCount": 10,
                 "errorCount": 1, "errorRate": 0.1, "p50Nanos": 2_000_000, "p90Nanos": 5_000_000, "p99Nanos": 9_000_000},
                {"service": "payment", "name": "POST /pay", "kind": "server", "spanCount": 30,
                 "errorCount": 0, "errorRate": 0.0, "p50Nanos": 1_500, "p90Nanos": null, "p99Nanos": 2_000_000_000u64},
            ]
        });
        let text = render(&response);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SERVICE"));
        assert!(
            lines[1].starts_with("payment") && lines[1].contains("2.00 s"),
            "{text}"
        );
        assert!(
            lines[2].contains("10.00%") && lines[2].contains("9.00 ms"),
            "{text}"
        );
        assert!(lines[3].starts_with("2 operations"));
    }
}
