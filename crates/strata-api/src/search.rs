//! `GET /api/search`: TraceQL search (`q`), or the legacy tag search (`tags` in logfmt,
//! `minDuration`, `maxDuration`), with `limit`, `spss` and `start`/`end`, answered in Tempo's
//! `SearchResponse` JSON shape.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use strata_model::TenantId;
use strata_query::{OutValue, Querier, SearchRequest, SearchResult, SpansetHit, TraceHit};
use strata_traceql as tql;

use crate::error::ApiError;
use crate::trace_by_id::parse_range;
use crate::{ApiState, tenant, with_partial};

/// Traces returned when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` honoured; larger values are capped.
pub const MAX_LIMIT: usize = 262_144;
/// Spans per spanset when `spss` is not given.
pub const DEFAULT_SPSS: usize = 3;
/// The largest `spss` accepted.
pub const MAX_SPSS: usize = 100;

/// Root service name shown for a trace whose root span has not arrived.
const NO_ROOT: &str = "<root span not yet received>";

/// Parses and validates TraceQL, with errors as Tempo's API gives them (400, plain text, with the
/// position).
pub(crate) fn parse_query(q: &str) -> Result<tql::Query, ApiError> {
    let query = tql::parse(q).map_err(|e| ApiError::bad_request(e.to_string()))?;
    query
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(query)
}

fn number(params: &HashMap<String, String>, key: &str) -> Result<Option<usize>, ApiError> {
    match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid {key}: {v:?} is not a non-negative integer"
            ))
        }),
    }
}

/// Parses a Go duration (`300ms`, `1.5s`, `1h30m`) into nanoseconds.
pub(crate) fn go_duration(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total < u64::MAX as f64).then_some(total as u64)
}

/// Splits logfmt: `key=value key="quoted value"`.
fn logfmt(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid tags: {why}"));
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad(&format!("expected key=value, found {key:?}")));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad("unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(bad(&format!("key {key:?} given twice")));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The legacy tag search as TraceQL: each tag is a case-insensitive substring match on a span or
/// resource attribute (or the intrinsics `name`, `status.code`, `root.name`,
/// `root.service.name`), and the trace must match every tag (on any of its spans).
fn tags_query(tags: &[(String, String)]) -> tql::Query {
    let pos = tql::Pos::default();
    let filters = tags.iter().map(|(key, value)| {
        let field = |i: tql::Intrinsic| {
            tql::FieldExpr::Intrinsic(
                tql::IntrinsicRef {
                    intrinsic: i,
                    scoped: false,
                },
                pos,
            )
        };
        let expr = if key == "status.code" {
            let status = match value.to_ascii_lowercase().as_str() {
                "error" | "2" | "status_code_error" => tql::Status::Error,
                "ok" | "1" | "status_code_ok" => tql::Status::Ok,
                _ => tql::Status::Unset,
            };
            tql::FieldExpr::Binary {
                op: tql::BinaryOp::Eq,
                lhs: Box::new(field(tql::Intrinsic::Status)),
                rhs: Box::new(tql::FieldExpr::Static(tql::Static::Status(status), pos)),
                pos,
            }
        } else {
            let lhs = match key.as_str() {
                "name" => field(tql::Intrinsic::Name),
                "root.name" => field(tql::Intrinsic::RootName),
                "root.service.name" => field(tql::Intrinsic::RootServiceName),
                _ => tql::FieldExpr::Attribute(
                    tql::Attribute {
                        scope: tql::AttributeScope::None,
                        parent: false,
                        name: key.clone(),
                    },
                    pos,
                ),
            };
            tql::FieldExpr::Binary {
                op: tql::BinaryOp::Regex,
                lhs: Box::new(lhs),
                rhs: Box::new(tql::FieldExpr::Static(
                    tql::Static::String(format!("(?is).*{}.*", regex::escape(value))),
                    pos,
                )),
                pos,
            }
        };
        tql::SpansetExpr::Filter(tql::SpansetFilter { expr, pos })
    });
    let all = filters
        .reduce(|lhs, rhs| tql::SpansetExpr::Op {
            op: tql::SpansetOp::And,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            pos,
        })
        .unwrap_or(tql::SpansetExpr::Filter(tql::SpansetFilter {
            expr: tql::FieldExpr::Static(tql::Static::Bool(true), pos),
            pos,
        }));
    tql::Query {
        expr: tql::RootExpr::Spans(tql::Pipeline {
            stages: vec![tql::Stage::Spanset(all)],
            pos,
        }),
        hints: Vec::new(),
    }
}

/// Reads the search parameters into a request.
pub(crate) fn request(params: &HashMap<String, String>) -> Result<SearchRequest, ApiError> {
    let q = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    let tags = params
        .get("tags")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty());
    let query = match (q, tags) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid request: q and tags cannot be combined",
            ));
        }
        (Some(q), None) => parse_query(q)?,
        (None, tags) => tags_query(&logfmt(tags.unwrap_or(""))?),
    };
    let limit = match number(params, "limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(ApiError::bad_request(
                "invalid limit: must be greater than 0",
            ));
        }
        Some(n) => n.min(MAX_LIMIT),
    };
    let spss = match number(params, "spss")? {
        None | Some(0) => DEFAULT_SPSS,
        Some(n) if n > MAX_SPSS => {
            return Err(ApiError::bad_request(format!(
                "invalid spss: {n} is over the maximum of {MAX_SPSS}"
            )));
        }
        Some(n) => n,
    };
    let duration = |key: &str| -> Result<Option<u64>, ApiError> {
        match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => go_duration(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("invalid {key}: {v:?} is not a duration"))
            }),
        }
    };
    let (min, max) = (duration("minDuration")?, duration("maxDuration")?);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(ApiError::bad_request(
            "invalid minDuration and maxDuration: minDuration is greater than maxDuration",
        ));
    }
    Ok(SearchRequest {
        query: Arc::new(query),
        limit,
        spans_per_spanset: spss,
        range: parse_range(params)?,
        min_duration_nanos: min,
        max_duration_nanos: max,
    })
}

/// `GET /api/search`.
pub(crate) async fn search(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let (body, partial) = search_json(&state.querier, &tenant, &params).await?;
    Ok(with_partial(
        axum::Json(body).into_response(),
        partial.as_deref(),
    ))
}

/// Answers a search given `/api/search`'s query parameters, as Tempo's `SearchResponse` JSON,
/// and says why it may be incomplete. The HTTP handler and `strata search --storage` both use
/// it.
pub async fn search_json(
    querier: &Querier,
    tenant: &TenantId,
    params: &HashMap<String, String>,
) -> Result<(Value, Option<String>), ApiError> {
    let request = request(params)?;
    let result = querier.search(tenant, request).await?;
    Ok((response_json(&result), result.partial))
}

/// An attribute value as OTLP/JSON `AnyValue`.
pub(crate) fn any_value(v: &OutValue) -> Value {
    match v {
        OutValue::Str(s) => json!({ "stringValue": s }),
        OutValue::Int(i) => json!({ "intValue": i.to_string() }),
        OutValue::Duration(d) => json!({ "intValue": d.to_string() }),
        OutValue::Float(f) => json!({ "doubleValue": f }),
        OutValue::Bool(b) => json!({ "boolValue": b }),
    }
}

fn attributes(list: &[(String, OutValue)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(k, v)| json!({ "key": k, "value": any_value(v) }))
            .collect(),
    )
}

fn spanset_json(set: &SpansetHit) -> Value {
    let spans: Vec<Value> = set
        .spans
        .iter()
        .map(|s| {
            let mut span = serde_json::Map::new();
            span.insert("spanID".into(), json!(s.span_id.to_hex()));
            span.insert("name".into(), json!(s.name));
            span.insert(
                "startTimeUnixNano".into(),
                json!(s.start_unix_nano.to_string()),
            );
            span.insert(
                "durationNanos".into(),
                json!(s.duration_nanos.max(0).to_string()),
            );
            if !s.attributes.is_empty() {
                span.insert("attributes".into(), attributes(&s.attributes));
            }
            Value::Object(span)
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("spans".into(), Value::Array(spans));
    out.insert("matched".into(), json!(set.matched));
    if !set.attributes.is_empty() {
        out.insert("attributes".into(), attributes(&set.attributes));
    }
    Value::Object(out)
}

fn trace_json(t: &TraceHit) -> Value {
    let mut out = serde_json::Map::new();
    // Tempo writes trace IDs in search results without leading zeros.
    let hex = t.trace_id.to_hex();
    let trimmed = hex.trim_start_matches('0');
    out.insert(
        "traceID".into(),
        json!(if trimmed.is_empty() { "0" } else { trimmed }),
    );
    out.insert(
        "rootServiceName".into(),
        json!(t.root_service_name.as_deref().unwrap_or(NO_ROOT)),
    );
    if let Some(name) = t.root_span_name.as_deref().filter(|n| !n.is_empty()) {
        out.insert("rootTraceName".into(), json!(name));
    }
    out.insert(
        "startTimeUnixNano".into(),
        json!(t.start_unix_nano.to_string()),
    );
    let ms = u32::try_from(t.duration_nanos / 1_000_000).unwrap_or(u32::MAX);
    if ms > 0 {
        out.insert("durationMs".into(), json!(ms));
    }
    let sets: Vec<Value> = t.spansets.iter().map(spanset_json).collect();
    if let Some(first) = sets.first() {
        out.insert("spanSet".into(), first.clone());
    }
    out.insert("spanSets".into(), Value::Array(sets));
    Value::Object(out)
}

/// Tempo's `SearchResponse` JSON.
pub(crate) fn response_json(result: &SearchResult) -> Value {
    let m = &result.metrics;
    json!({
        "traces": result.traces.iter().map(trace_json).collect::<Vec<_>>(),
        "metrics": {
            "inspectedTraces": m.inspected_traces,
            "inspectedBytes": m.inspected_bytes.to_string(),
            "inspectedSpans": m.inspected_spans.to_string(),
            "totalBlocks": m.total_blocks,
            "completedJobs": m.searched_blocks,
            "totalJobs": m.searched_blocks,
            "totalBlockBytes": m.total_block_bytes.to_string(),
            "backendReads": m.storage_reads.to_string(),
            "backendBytes": m.inspected_bytes.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("100ms"), Some(100_000_000));
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(go_duration("0"), Some(0));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("ms"), None);
        assert_eq!(go_duration("5 parsecs"), None);
    }

    #[test]
    fn logfmt_pairs() -> Result<(), ApiError> {
        assert_eq!(
            logfmt(r#"service.name=foo http.url="/a b" x=1"#)?,
            vec![
                ("service.name".into(), "foo".into()),
                ("http.url".into(), "/a b".into()),
                ("x".into(), "1".into())
            ]
        );
        assert!(logfmt("a=1 a=2").is_err());
        assert!(logfmt("novalue").is_err());
        assert!(logfmt(r#"a="open"#).is_err());
        assert!(logfmt("")?.is_empty());
        Ok(())
    }
}
