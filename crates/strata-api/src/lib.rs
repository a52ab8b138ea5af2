//! Strata's HTTP API on :3200: Grafana Tempo's query API as Grafana's Tempo data source calls it
//! (trace by ID v1 and v2, TraceQL search, tag names and values v1 and v2, echo, build info),
//! plus `/ready`, `/metrics` and Strata's own `/api/strata/stats` (rollups).
//!
//! This crate is the only place that knows Tempo's HTTP shapes, media types and status codes. It
//! holds no storage or ingest logic: queries go to a [`strata_query::Querier`].

mod error;
mod json;
pub mod proto;
pub mod search;
pub mod stats;
mod tags;
mod trace_by_id;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use strata_model::TenantId;
use strata_query::Querier;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, status_code};
pub use json::resource_spans as resource_spans_json;
pub use search::search_json;
pub use trace_by_id::PROTOBUF;

/// The version reported to Grafana: the Tempo API level Strata implements. Grafana enables
/// features by this number.
pub const TEMPO_API_VERSION: &str = "2.9.0";

/// Whether the process is ready to serve (all its roles started and none shutting down).
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the API handlers need.
#[derive(Clone)]
pub struct ApiState {
    /// Every role's metrics.
    pub registry: Arc<Registry>,
    /// Readiness.
    pub ready: ReadyCheck,
    /// Answers queries.
    pub querier: Arc<Querier>,
    /// Whether requests must name their tenant (`server.multitenancy_enabled`).
    pub multitenancy: bool,
}

/// Just `/ready` and `/metrics`: what a process without a querier (a compactor) serves.
pub fn ops_router(registry: Arc<Registry>, ready: ReadyCheck) -> Router {
    catch_panics(ops_routes(registry, ready))
}

fn ops_routes(registry: Arc<Registry>, ready: ReadyCheck) -> Router {
    Router::new()
        .route(
            "/ready",
            get(move || {
                let ready = Arc::clone(&ready);
                async move { ready_response(ready()) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move { metrics_response(&registry) }
            }),
        )
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let ops = ops_routes(Arc::clone(&state.registry), Arc::clone(&state.ready));
    let routes = Router::new()
        .route("/api/echo", get(|| async { "echo" }))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{id}", get(trace_by_id::v1))
        .route("/api/v2/traces/{id}", get(trace_by_id::v2))
        .route("/api/search", get(search::search))
        .route("/api/search/tags", get(tags::tags_v1))
        .route("/api/v2/search/tags", get(tags::tags_v2))
        .route("/api/search/tag/{name}/values", get(tags::values_v1))
        .route("/api/v2/search/tag/{name}/values", get(tags::values_v2))
        .route("/api/strata/stats", get(stats::stats))
        .with_state(state)
        .merge(ops);
    catch_panics(routes)
}

/// Makes a panic in any handler a 500 and an error log line, instead of a connection reset
/// with nothing logged (a panic is a bug of ours, never the client's fault).
pub fn catch_panics(routes: Router) -> Router {
    routes.layer(CatchPanicLayer::custom(panic_response))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(panic = %message, "a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "internal error: the request failed on the server\n",
    )
        .into_response()
}

/// The tenant of a request, by the rule every endpoint shares
/// ([`strata_model::tenant_from_header`]): 401 without one when multitenancy is on, 400 for an
/// invalid one.
pub(crate) fn tenant(state: &ApiState, headers: &HeaderMap) -> Result<TenantId, ApiError> {
    let value = headers
        .get(strata_model::TENANT_HEADER)
        .map(|v| v.as_bytes());
    strata_model::tenant_from_header(value, state.multitenancy).map_err(|e| ApiError {
        kind: e.kind(),
        message: format!("X-Scope-OrgID: {e}"),
    })
}

/// The header saying an answer may be incomplete, where Tempo's response has no status field
/// (search, tags): why, e.g. which ingesters did not answer.
pub const PARTIAL_HEADER: &str = "x-strata-partial";

/// Adds [`PARTIAL_HEADER`] when the answer is partial.
pub(crate) fn with_partial(mut response: Response, partial: Option<&str>) -> Response {
    if let Some(message) = partial {
        let text: String = message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(1024)
            .collect();
        if let Ok(value) = header::HeaderValue::from_str(&text) {
            response.headers_mut().insert(PARTIAL_HEADER, value);
        }
    }
    response
}

fn ready_response(ready: bool) -> Response {
    if ready {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn buildinfo() -> Response {
    axum::Json(serde_json::json!({
        "version": TEMPO_API_VERSION,
        "revision": format!("strata-{}", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}

fn metrics_response(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// Review E3 / audit 1.9: a handler that panicked reset the connection without an answer
    /// or a log line.
    #[tokio::test]
    async fn a_handler_that_panics_answers_500() {
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "ok" }));
        let app = catch_panics(routes);
        let call = |path: &'static str| {
            app.clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };
        let response = call("/boom").await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("internal error"));
        assert_eq!(call("/fine").await.unwrap().status(), StatusCode::OK);
    }
}
