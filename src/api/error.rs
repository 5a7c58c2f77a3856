//! The one place where errors become HTTP responses in the contract's shape:
//! `{"error": {"code", "message", "details"}}`.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

impl poem::error::ResponseError for Error {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(Error::status(self)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn as_response(&self) -> Response {
        if matches!(self, Error::Database(_) | Error::Internal(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let message = match self {
            // Database internals are logged, not shown.
            Error::Database(_) => "the database could not complete the request".to_string(),
            other => other.to_string(),
        };
        let mut response = body(
            poem::error::ResponseError::status(self),
            self.code(),
            &message,
            self.details(),
        );
        if let Error::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(poem::http::header::RETRY_AFTER, (*retry_after_secs).into());
        }
        response
    }
}

fn body(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<serde_json::Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(details) = details {
        error["details"] = details;
    }
    poem::web::Json(json!({ "error": error }))
        .with_status(status)
        .into_response()
}

/// Errors raised by the framework (bad JSON, unknown route, oversized body, …) get the
/// same shape as ours.
pub async fn to_contract(error: poem::Error) -> Response {
    if error.is::<Error>() || error.is::<crate::web::page::LoginFirst>() {
        return error.into_response();
    }
    let status = error.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    };
    let message = match status {
        StatusCode::NOT_FOUND => "no such endpoint".to_string(),
        StatusCode::UNAUTHORIZED => {
            "authentication required: send Authorization: Bearer <token>".to_string()
        }
        _ => error.to_string(),
    };
    body(status, code, &message, None)
}
