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

/// The error shape, as the OpenAPI document declares it.
#[derive(poem_openapi::Object)]
#[oai(rename = "Error")]
struct ErrorBody {
    error: ErrorInfo,
}

/// What went wrong.
#[derive(poem_openapi::Object)]
#[oai(rename = "ErrorInfo")]
struct ErrorInfo {
    /// Stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `duplicate`, `version_conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `validation_failed`, `rejected`,
    /// `hook_failed`, `invalid_metadata`, `too_many_requests`, `database_error`,
    /// `internal_error`.
    code: String,
    /// For people; a bad parameter or body is named at its start.
    message: String,
    /// Where the error has them: `[{field, message}]` (`validation_failed`,
    /// `forbidden` fields), `[{path, message}]` (`invalid_metadata`), or an object
    /// (`matches`, `current_version`, `hook`, `retry_after`).
    details: Option<serde_json::Value>,
}

/// The statuses every operation may answer with the error shape. Beyond the
/// operation's own refusals, any operation can meet a malformed request (400), a
/// missing or expired token (401), an unknown entity (404), a body over the limit
/// (413) or without its content type (415), or a rate limit (429).
const ERROR_STATUSES: &[(u16, &str)] = &[
    (
        400,
        "Malformed request: bad JSON, a bad parameter, filter, cursor or `If-Match` (the message names it).",
    ),
    (401, "No, invalid or expired token; wrong login."),
    (
        403,
        "Not allowed: no role grants the action, administrator or designer rights needed, or fields closed to the caller's writes.",
    ),
    (
        404,
        "Unknown entity, record or other resource, or one the caller may not see.",
    ),
    (
        409,
        "Conflict: `conflict`, `duplicate` (`details.matches`) or `version_conflict` (`details.current_version`).",
    ),
    (413, "The request body is over the size limit."),
    (
        415,
        "The body's content type is missing or not one the operation takes.",
    ),
    (
        422,
        "The request is well-formed but refused: `validation_failed`, `rejected`, `hook_failed`, `invalid_metadata`.",
    ),
    (
        429,
        "Too many failed logins or requests; `Retry-After` and `details.retry_after` say when to try again.",
    ),
    (
        500,
        "`database_error` or `internal_error`: logged server-side; the message says nothing internal.",
    ),
];

/// What the `Retry-After` header of a 429 says, in the document's both places.
const RETRY_AFTER: &str = "Seconds to wait before trying again.";

/// An operation's failure: answers exactly as [`Error`] (or a framework error) does
/// through [`to_contract`], and declares [`ERROR_STATUSES`] with the error shape in
/// the OpenAPI document.
pub struct ApiError(poem::Error);

/// What the API's operations return.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error.into())
    }
}

impl From<poem::Error> for ApiError {
    fn from(error: poem::Error) -> Self {
        ApiError(error)
    }
}

impl From<ApiError> for poem::Error {
    fn from(error: ApiError) -> Self {
        error.0
    }
}

impl poem_openapi::ApiResponse for ApiError {
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses};
        use poem_openapi::types::Type;
        MetaResponses {
            responses: ERROR_STATUSES
                .iter()
                .map(|&(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorBody::schema_ref(),
                    }],
                    headers: match status {
                        429 => vec![MetaHeader {
                            name: "Retry-After".into(),
                            description: Some(RETRY_AFTER.into()),
                            required: true,
                            deprecated: false,
                            schema: u64::schema_ref(),
                        }],
                        _ => vec![],
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        use poem_openapi::types::Type;
        ErrorBody::register(registry);
    }
}

/// [`ERROR_STATUSES`] as the OpenAPI document's `responses` entries, for the paths
/// spliced in per tenant.
pub fn error_responses_json() -> serde_json::Value {
    let responses: serde_json::Map<String, serde_json::Value> =
        <ApiError as poem_openapi::ApiResponse>::meta()
            .responses
            .into_iter()
            .map(|response| {
                let status = response.status.unwrap_or_default().to_string();
                let mut entry = json!({
                    "description": response.description,
                    "content": {"application/json; charset=utf-8": {
                        "schema": {"$ref": "#/components/schemas/Error"}
                    }},
                });
                if !response.headers.is_empty() {
                    entry["headers"] = json!({"Retry-After": {
                        "description": RETRY_AFTER,
                        "required": true,
                        "schema": {"type": "integer", "format": "uint64"}
                    }});
                }
                (status, entry)
            })
            .collect();
    serde_json::Value::Object(responses)
}
