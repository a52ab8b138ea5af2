//! Errors of the HTTP API and the one place error kinds become HTTP status codes. Bodies are plain
//! text, as Tempo's (`http.Error`) are.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_model::ErrorKind;

/// An error answer: a status and a plain-text message.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What to tell the client.
    pub message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            message: message.into(),
        }
    }
}

/// The HTTP status for an error kind.
pub fn status_code(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<strata_query::Error> for ApiError {
    fn from(e: strata_query::Error) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "query failed");
        }
        (
            status_code(self.kind),
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            format!("{}\n", self.message),
        )
            .into_response()
    }
}
