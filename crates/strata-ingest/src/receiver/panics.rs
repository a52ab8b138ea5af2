//! A panic while handling a request is a bug of ours, never the client's fault: both receivers
//! answer it (500 on OTLP/HTTP, `INTERNAL` on OTLP/gRPC) and log it, instead of resetting the
//! connection with nothing said. Nothing was acknowledged, so the client retries.

use std::any::Any;

use tower_http::catch_panic::CatchPanicLayer;

/// The handler a [`CatchPanicLayer`] calls with a panic's payload.
pub(crate) type OnPanic<B> = fn(Box<dyn Any + Send + 'static>) -> ::http::Response<B>;

fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// For the OTLP/HTTP router: a 500 with a plain-text body.
pub(crate) fn http_layer() -> CatchPanicLayer<OnPanic<axum::body::Body>> {
    CatchPanicLayer::custom(|panic| {
        tracing::error!(panic = %message(panic.as_ref()), "an OTLP/HTTP request panicked");
        let mut response = ::http::Response::new(axum::body::Body::from(
            "internal error: the request failed on the server\n",
        ));
        *response.status_mut() = ::http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// For the OTLP/gRPC server: an `INTERNAL` status.
pub(crate) fn grpc_layer() -> CatchPanicLayer<OnPanic<tonic::body::Body>> {
    CatchPanicLayer::custom(|panic| {
        tracing::error!(panic = %message(panic.as_ref()), "an OTLP/gRPC request panicked");
        tonic::Status::internal("internal error: the request failed on the server").into_http()
    })
}

#[cfg(test)]
mod tests {
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    async fn panics(
        _: ::http::Request<axum::body::Body>,
    ) -> Result<::http::Response<axum::body::Body>, std::convert::Infallible> {
        panic!("a bug")
    }

    /// Audit 1.9 / review E3: a panic in a handler reset the connection, unanswered and unlogged.
    #[tokio::test]
    async fn a_panic_answers_500_over_http_and_internal_over_grpc() {
        let request = || ::http::Request::new(axum::body::Body::empty());
        let mut http = http_layer().layer(tower::service_fn(panics));
        let response = http.ready().await.unwrap().call(request()).await.unwrap();
        assert_eq!(response.status(), ::http::StatusCode::INTERNAL_SERVER_ERROR);

        let mut grpc = grpc_layer().layer(tower::service_fn(panics));
        let response = grpc.ready().await.unwrap().call(request()).await.unwrap();
        assert_eq!(response.status(), ::http::StatusCode::OK);
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::Internal);
    }
}
