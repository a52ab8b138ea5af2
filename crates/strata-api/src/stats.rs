//! `GET /api/strata/stats`: request, error and latency figures per operation from the tenant's
//! rollups, which outlive the raw spans. Not part of Tempo's API (Grafana does not call it);
//! `strata stats` prints it.
//!
//! Parameters: `service` and `name` (optional filters), and either `since` (a duration such as
//! `30d`, until now) or `start` and `end` (unix seconds). Answers:
//! `{"start", "end", "bucketSeconds", "segmentsRead", "operations": [{"service", "name", "kind",
//! "spanCount", "errorCount", "errorRate", "durationSumNanos", "durationAvgNanos", "p50Nanos",
//! "p90Nanos", "p99Nanos"}]}`. Quantiles are within 1% of the true value. When rollup segments
//! could not be read the answer is still given, with `X-Strata-Partial` saying so.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use strata_model::SpanKind;
use strata_query::{StatsRequest, StatsResult};

use crate::error::ApiError;
use crate::trace_by_id::parse_range;
use crate::{ApiState, tenant, with_partial};

/// The request's time range: `since`, or `start`/`end`, or the last 24 hours.
fn range(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    if let Some(since) = params
        .get("since")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let d = humantime::parse_duration(since)
            .map_err(|e| ApiError::bad_request(format!("invalid since: {since:?}: {e}")))?;
        let d = chrono::Duration::from_std(d)
            .map_err(|_| ApiError::bad_request(format!("invalid since: {since:?} is too long")))?;
        let start = now
            .checked_sub_signed(d)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        return Ok((start, now));
    }
    match parse_range(params)? {
        Some(r) => Ok((r.start, r.end)),
        None => Ok((now - chrono::Duration::hours(24), now)),
    }
}

fn filter(params: &HashMap<String, String>, key: &str) -> Option<String> {
    params.get(key).filter(|v| !v.is_empty()).cloned()
}

/// `GET /api/strata/stats`.
pub(crate) async fn stats(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let (start, end) = range(&params, Utc::now())?;
    let request = StatsRequest {
        service: filter(&params, "service"),
        name: filter(&params, "name"),
        start,
        end,
    };
    let result = state.querier.stats(&tenant, &request).await?;
    Ok(with_partial(
        axum::Json(stats_json(&request, &result)).into_response(),
        result.partial.as_deref(),
    ))
}

/// The JSON answer.
pub fn stats_json(request: &StatsRequest, result: &StatsResult) -> Value {
    let operations: Vec<Value> = result
        .operations
        .iter()
        .map(|op| {
            let c = &op.cell;
            let q = |p: f64| c.quantile(p).map(|v| v.round() as u64);
            json!({
                "service": op.service,
                "name": op.name,
                "kind": SpanKind(op.kind).name(),
                "spanCount": c.spans,
                "errorCount": c.errors,
                "errorRate": if c.spans == 0 { 0.0 } else { c.errors as f64 / c.spans as f64 },
                "durationSumNanos": c.duration_sum_nanos.to_string(),
                "durationAvgNanos": c.duration_sum_nanos.checked_div(c.spans).unwrap_or(0),
                "p50Nanos": q(0.5),
                "p90Nanos": q(0.9),
                "p99Nanos": q(0.99),
            })
        })
        .collect();
    json!({
        "start": request.start.to_rfc3339(),
        "end": request.end.to_rfc3339(),
        "bucketSeconds": result.bucket_seconds,
        "segmentsRead": result.segments_read,
        "operations": operations,
    })
}
