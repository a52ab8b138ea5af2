//! `GET /api/traces/{id}` (v1) and `GET /api/v2/traces/{id}`, as Grafana's Tempo data source
//! calls them: hex ID in the path (case-insensitive, left-padded when short), optional `start`
//! and `end` in unix seconds, `Accept: application/protobuf` for protobuf, JSON otherwise.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use prost::Message;
use serde_json::json;
use strata_model::TraceId;
use strata_model::otlp::spans_to_resource_spans;
use strata_query::{TimeRange, TraceLookup};

use crate::error::ApiError;
use crate::proto;
use crate::{ApiState, json, tenant};

/// Media type Grafana asks for.
pub const PROTOBUF: &str = "application/protobuf";

/// Whether the client asked for protobuf.
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(PROTOBUF))
}

fn parse_id(text: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(text).map_err(|e| ApiError::bad_request(format!("invalid trace ID: {e}")))
}

/// `start`/`end` in unix seconds; none, one or both. `end` before `start` is an error.
pub(crate) fn parse_range(params: &HashMap<String, String>) -> Result<Option<TimeRange>, ApiError> {
    let seconds = |key: &str| -> Result<Option<i64>, ApiError> {
        match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<u32>().map(|s| Some(i64::from(s))).map_err(|_| {
                ApiError::bad_request(format!("invalid {key}: {v:?} is not unix seconds"))
            }),
        }
    };
    let (start, end) = (seconds("start")?, seconds("end")?);
    if start.unwrap_or(0) == 0 && end.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(i64::from(u32::MAX)));
    if end < start {
        return Err(ApiError::bad_request(format!(
            "invalid start and end: end ({end}) is before start ({start})"
        )));
    }
    let time = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    // `end` names a whole second; include all of it.
    Ok(Some(TimeRange {
        start: time(start),
        end: time(end + 1),
    }))
}

async fn lookup(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    params: &HashMap<String, String>,
) -> Result<TraceLookup, ApiError> {
    let tenant = tenant(state, headers)?;
    let id = parse_id(id)?;
    let range = parse_range(params)?;
    Ok(state.querier.find_trace(&tenant, &id, range).await?)
}

/// `GET /api/v2/traces/{id}`: `TraceByIDResponse`; not found is 200 with an empty trace; a trace
/// over the size limit comes back truncated with status `PARTIAL`.
pub(crate) async fn v2(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = lookup(&state, &headers, &id, &params).await?;
    let resource_spans = spans_to_resource_spans(&found.spans);
    let metrics = proto::TraceByIdMetrics {
        inspected_bytes: found.storage_bytes,
        backend_reads: found.storage_reads,
        backend_bytes: found.storage_bytes,
        additional_metrics: HashMap::new(),
    };
    let status = if found.partial.is_some() {
        proto::PartialStatus::Partial
    } else {
        proto::PartialStatus::Complete
    };
    if wants_protobuf(&headers) {
        let response = proto::TraceByIdResponse {
            trace: Some(proto::Trace { resource_spans }),
            metrics: Some(metrics),
            status: status as i32,
            message: found.partial.unwrap_or_default(),
        };
        return Ok(([(header::CONTENT_TYPE, PROTOBUF)], response.encode_to_vec()).into_response());
    }
    let mut body = serde_json::Map::new();
    let trace = if resource_spans.is_empty() {
        json!({})
    } else {
        json!({ "resourceSpans": json::resource_spans(&resource_spans) })
    };
    body.insert("trace".into(), trace);
    body.insert("metrics".into(), metrics_json(&metrics));
    if let Some(message) = found.partial {
        body.insert("status".into(), json!("PARTIAL"));
        body.insert("message".into(), json!(message));
    }
    Ok(axum::Json(serde_json::Value::Object(body)).into_response())
}

fn metrics_json(m: &proto::TraceByIdMetrics) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, value) in [
        ("inspectedBytes", m.inspected_bytes),
        ("backendReads", m.backend_reads),
        ("backendBytes", m.backend_bytes),
    ] {
        if value != 0 {
            out.insert(key.into(), json!(value.to_string()));
        }
    }
    serde_json::Value::Object(out)
}

/// `GET /api/traces/{id}`: a bare `Trace`, or JSON `{"batches": [...]}`; 404 when not found, 422
/// when over the size limit.
pub(crate) async fn v1(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = lookup(&state, &headers, &id, &params).await?;
    if found.spans.is_empty() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    if found.truncated {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            found.partial.unwrap_or_default(),
        )
            .into_response());
    }
    let resource_spans = spans_to_resource_spans(&found.spans);
    if wants_protobuf(&headers) {
        let trace = proto::Trace { resource_spans };
        return Ok(([(header::CONTENT_TYPE, PROTOBUF)], trace.encode_to_vec()).into_response());
    }
    Ok(axum::Json(json!({ "batches": json::resource_spans(&resource_spans) })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_query_parameters() {
        let params = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert_eq!(parse_range(&params(&[])).unwrap(), None);
        assert_eq!(
            parse_range(&params(&[("start", "0"), ("end", "0")])).unwrap(),
            None
        );
        let range = parse_range(&params(&[("start", "100"), ("end", "200")]))
            .unwrap()
            .unwrap();
        assert_eq!(range.start.timestamp(), 100);
        assert_eq!(range.end.timestamp(), 201);
        assert!(parse_range(&params(&[("start", "200"), ("end", "100")])).is_err());
        assert!(parse_range(&params(&[("start", "soon")])).is_err());
    }
}
