//! Tag discovery as Grafana's autocomplete asks for it: `GET /api/search/tags`,
//! `/api/v2/search/tags` (by scope), `/api/search/tag/{name}/values` and
//! `/api/v2/search/tag/{scoped name}/values` (typed values). Names and values come from the
//! blocks' tag summaries and the ingester's recent data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use strata_query::{TagDiscovery, TagSummary, TagValue, TagValues};
use strata_traceql as tql;

use crate::error::ApiError;
use crate::trace_by_id::parse_range;
use crate::{ApiState, tenant, with_partial};

/// Attribute scopes, in the order v2 lists them.
const ATTRIBUTE_SCOPES: &[&str] = &["resource", "span", "event", "link", "instrumentation"];

/// The intrinsics TraceQL offers, listed under the `intrinsic` scope.
const INTRINSICS: &[&str] = &[
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// The `scope` parameter: which scopes to list (`None`: the default set).
fn scope_param(params: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match params
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None | Some("none") => Ok(None),
        Some(s) if s == "intrinsic" || s == "trace" || ATTRIBUTE_SCOPES.contains(&s) => {
            Ok(Some(s.to_owned()))
        }
        Some(other) => Err(ApiError::bad_request(format!("invalid scope: {other}"))),
    }
}

fn limit_param(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match params
        .get("limit")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => Ok(usize::MAX),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => Ok(usize::MAX),
            Ok(n) => Ok(n),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid limit: {v:?} is not a non-negative integer"
            ))),
        },
    }
}

async fn discover(
    state: &ApiState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<TagDiscovery, ApiError> {
    let tenant = tenant(state, headers)?;
    let range = parse_range(params)?;
    Ok(state.querier.tags(&tenant, range).await?)
}

fn metrics(found: &TagDiscovery) -> Value {
    json!({ "inspectedBytes": found.storage_bytes.to_string() })
}

fn names(summary: &TagSummary, scope: &str, limit: usize) -> Vec<String> {
    if scope == "intrinsic" {
        return INTRINSICS
            .iter()
            .take(limit)
            .map(|s| (*s).to_owned())
            .collect();
    }
    summary
        .scopes
        .get(scope)
        .map(|tags| tags.keys().take(limit).cloned().collect())
        .unwrap_or_default()
}

/// `GET /api/search/tags`: `{"tagNames": [...]}`; without a scope, resource and span names.
pub(crate) async fn tags_v1(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope_param(&params)?;
    let limit = limit_param(&params)?;
    let found = discover(&state, &headers, &params).await?;
    let scopes: Vec<&str> = match scope.as_deref() {
        None => vec!["resource", "span"],
        Some("trace") => vec![],
        Some(s) => vec![s],
    };
    let all: BTreeSet<String> = scopes
        .iter()
        .flat_map(|s| names(&found.summary, s, usize::MAX))
        .collect();
    let list: Vec<String> = all.into_iter().take(limit).collect();
    Ok(with_partial(
        axum::Json(json!({ "tagNames": list, "metrics": metrics(&found) })).into_response(),
        found.partial.as_deref(),
    ))
}

/// `GET /api/v2/search/tags`: `{"scopes": [{"name", "tags"}]}`, `limit` per scope.
pub(crate) async fn tags_v2(
    State(state): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope_param(&params)?;
    let limit = limit_param(&params)?;
    let found = discover(&state, &headers, &params).await?;
    let scopes: Vec<&str> = match scope.as_deref() {
        None => vec![
            "resource",
            "span",
            "intrinsic",
            "event",
            "link",
            "instrumentation",
        ],
        Some("trace") => vec![],
        Some(s) => vec![s],
    };
    let list: Vec<Value> = scopes
        .iter()
        .map(|s| (s, names(&found.summary, s, limit)))
        .filter(|(s, tags)| {
            scope.is_some() || !tags.is_empty() || ["resource", "span", "intrinsic"].contains(s)
        })
        .map(|(s, tags)| json!({ "name": s, "tags": tags }))
        .collect();
    Ok(with_partial(
        axum::Json(json!({ "scopes": list, "metrics": metrics(&found) })).into_response(),
        found.partial.as_deref(),
    ))
}

/// `GET /api/search/tag/{name}/values`: the string forms of a bare attribute's values, from span
/// and resource attributes.
pub(crate) async fn values_v1(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = limit_param(&params)?;
    let found = discover(&state, &headers, &params).await?;
    let mut values = BTreeSet::new();
    for scope in ["resource", "span"] {
        if let Some(v) = found.summary.scopes.get(scope).and_then(|t| t.get(&name)) {
            values.extend(v.values.iter().map(|t| t.value.clone()));
        }
    }
    let list: Vec<String> = values.into_iter().take(limit).collect();
    Ok(with_partial(
        axum::Json(json!({ "tagValues": list, "metrics": metrics(&found) })).into_response(),
        found.partial.as_deref(),
    ))
}

/// What a v2 tag names: an attribute in a scope, or an intrinsic.
fn parse_tag(tag: &str) -> Result<tql::FieldExpr, ApiError> {
    let bad = || ApiError::bad_request("tag name is not valid intrinsic or scoped attribute");
    if tag.contains(['{', '}']) {
        return Err(bad());
    }
    let query = tql::parse(&format!("{{ {tag} }}")).map_err(|_| bad())?;
    let tql::RootExpr::Spans(pipeline) = query.expr else {
        return Err(bad());
    };
    match pipeline.stages.as_slice() {
        [tql::Stage::Spanset(tql::SpansetExpr::Filter(f))] => match &f.expr {
            e @ (tql::FieldExpr::Attribute(..) | tql::FieldExpr::Intrinsic(..)) => Ok(e.clone()),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// The summary's values of a parsed tag.
fn tag_values(summary: &TagSummary, tag: &tql::FieldExpr) -> TagValues {
    let mut out = TagValues::default();
    let mut add = |v: Option<&TagValues>| {
        if let Some(v) = v {
            out.truncated |= v.truncated;
            out.values.extend(v.values.iter().cloned());
        }
    };
    match tag {
        tql::FieldExpr::Attribute(a, _) => {
            let scopes: &[&str] = match a.scope {
                tql::AttributeScope::None => &["resource", "span"],
                tql::AttributeScope::Resource => &["resource"],
                tql::AttributeScope::Span => &["span"],
                tql::AttributeScope::Event => &["event"],
                tql::AttributeScope::Link => &["link"],
                tql::AttributeScope::Instrumentation => &["instrumentation"],
            };
            for s in scopes {
                add(summary.scopes.get(*s).and_then(|t| t.get(&a.name)));
            }
        }
        tql::FieldExpr::Intrinsic(i, _) => {
            let key = match i.intrinsic {
                tql::Intrinsic::Name => Some("name"),
                tql::Intrinsic::Status => Some("status"),
                tql::Intrinsic::Kind => Some("kind"),
                tql::Intrinsic::StatusMessage => Some("statusMessage"),
                tql::Intrinsic::RootName => Some("rootName"),
                tql::Intrinsic::RootServiceName => Some("rootServiceName"),
                tql::Intrinsic::EventName => Some("event:name"),
                tql::Intrinsic::InstrumentationName => Some("instrumentation:name"),
                tql::Intrinsic::InstrumentationVersion => Some("instrumentation:version"),
                _ => None,
            };
            if let Some(key) = key {
                add(summary.intrinsics.get(key));
            }
        }
        _ => {}
    }
    out
}

/// Traces searched at most to narrow tag values by `q`.
const NARROW_TRACES: usize = 5000;

/// The values `tag` takes on the spans matching `q`, when `q` (parsed leniently: Grafana sends
/// half-typed queries) has conditions; `None` when there is nothing to narrow by. Best effort:
/// the newest [`NARROW_TRACES`] matching traces are looked at.
async fn narrow(
    state: &ApiState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    tag: &tql::FieldExpr,
) -> Result<Option<BTreeSet<String>>, ApiError> {
    let Some(mut query) = params
        .get("q")
        .and_then(|q| tql::parse_lenient(q))
        .filter(|q| q.validate().is_ok())
    else {
        return Ok(None);
    };
    if tql::parse("{}").is_ok_and(|all| all == query) {
        return Ok(None);
    }
    let tql::RootExpr::Spans(pipeline) = &mut query.expr else {
        return Ok(None);
    };
    pipeline
        .stages
        .push(tql::Stage::Select(vec![tag.clone()], tql::Pos::default()));
    let key = match tag {
        tql::FieldExpr::Attribute(a, _) => a.name.clone(),
        tql::FieldExpr::Intrinsic(i, _) => match i.intrinsic {
            tql::Intrinsic::Name => String::new(),
            tql::Intrinsic::Status => "status".into(),
            tql::Intrinsic::Kind => "kind".into(),
            tql::Intrinsic::StatusMessage => "statusMessage".into(),
            // Other intrinsics are not returned with spans: no narrowing.
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let request = strata_query::SearchRequest {
        query: std::sync::Arc::new(query),
        limit: NARROW_TRACES,
        spans_per_spanset: 0,
        range: parse_range(params)?,
        min_duration_nanos: None,
        max_duration_nanos: None,
    };
    let result = match state
        .querier
        .search(&tenant(state, headers)?, request)
        .await
    {
        Ok(result) => result,
        // A query that does not run is ignored, as a query that does not parse is.
        Err(e) if e.kind() == strata_model::ErrorKind::BadInput => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut values = BTreeSet::new();
    for span in result
        .traces
        .iter()
        .flat_map(|t| &t.spansets)
        .flat_map(|s| &s.spans)
    {
        if key.is_empty() {
            values.insert(span.name.clone());
        }
        for (k, v) in &span.attributes {
            if *k == key {
                values.insert(match v {
                    strata_query::OutValue::Str(s) => s.clone(),
                    strata_query::OutValue::Int(i) | strata_query::OutValue::Duration(i) => {
                        i.to_string()
                    }
                    strata_query::OutValue::Float(f) => f.to_string(),
                    strata_query::OutValue::Bool(b) => b.to_string(),
                });
            }
        }
    }
    Ok(Some(values))
}

/// `GET /api/v2/search/tag/{tag}/values`: typed values, `{"tagValues": [{"type","value"}]}`.
pub(crate) async fn values_v2(
    State(state): State<ApiState>,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let parsed = parse_tag(&tag)?;
    let limit = limit_param(&params)?;
    let found = discover(&state, &headers, &params).await?;
    let mut values = tag_values(&found.summary, &parsed);
    if let Some(narrowed) = narrow(&state, &headers, &params, &parsed).await? {
        values.values.retain(|v| narrowed.contains(&v.value));
    }
    // Sorted by value, then type, for a stable autocomplete list.
    let sorted: BTreeMap<(&str, &str), &TagValue> = values
        .values
        .iter()
        .map(|v| ((v.value.as_str(), v.ty.as_str()), v))
        .collect();
    let list: Vec<Value> = sorted
        .values()
        .take(limit)
        .map(|v| json!({ "type": v.ty, "value": v.value }))
        .collect();
    Ok(with_partial(
        axum::Json(json!({ "tagValues": list, "metrics": metrics(&found) })).into_response(),
        found.partial.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_tag_names_are_scoped_attributes_or_intrinsics() {
        assert!(parse_tag("resource.service.name").is_ok());
        assert!(parse_tag("span.http.method").is_ok());
        assert!(parse_tag(".service.name").is_ok());
        assert!(parse_tag("span:name").is_ok());
        assert!(parse_tag("status").is_ok());
        assert!(parse_tag("service.name").is_err());
        assert!(parse_tag("a } || { true").is_err());
        assert!(parse_tag("1 + 1").is_err());
    }
}
