//! Strata's HTTP API on :3200. Today: `/ready` and `/metrics`. The Tempo-compatible query
//! endpoints Grafana calls (trace by ID, search, tags) join it with the query path.
//!
//! This crate is the only place that knows Tempo's HTTP shapes and status codes. It holds no
//! storage or ingest logic: it calls the roles through narrow handles.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Whether the process is ready to serve (all its roles started and none shutting down).
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the API handlers need.
#[derive(Clone)]
pub struct ApiState {
    /// Every role's metrics.
    pub registry: Arc<Registry>,
    /// Readiness.
    pub ready: ReadyCheck,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<ApiState>) -> Response {
    if (state.ready)() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
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
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use prometheus_client::metrics::counter::Counter;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    async fn get_text(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_follows_the_check_and_metrics_are_exposed() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        counter.inc_by(7);
        registry.register("strata_test_things", "Things", counter);
        let flag = Arc::new(AtomicBool::new(true));
        let check = Arc::clone(&flag);
        let app = router(ApiState {
            registry: Arc::new(registry),
            ready: Arc::new(move || check.load(Ordering::Relaxed)),
        });
        assert_eq!(
            get_text(app.clone(), "/ready").await,
            (StatusCode::OK, "ready".into())
        );
        flag.store(false, Ordering::Relaxed);
        assert_eq!(
            get_text(app.clone(), "/ready").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (status, text) = get_text(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("strata_test_things_total 7"), "{text}");
    }
}
