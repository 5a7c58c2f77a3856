//! The crate's error type. Every module returns [`Error`]; `api::error` maps it to the
//! HTTP contract's `{"error": {code, message, details}}` shape in one place.

use serde::Serialize;

use crate::meta::Problem;

/// A problem with one field of a record (422 details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Creating a certain duplicate (查重): the matches, as `duplicates::Match::to_json`.
    #[error("{} already exist(s) like this record: {}", .0.len(), .0.iter().filter_map(|m| m["title"].as_str()).collect::<Vec<_>>().join(", "))]
    Duplicate(Vec<serde_json::Value>),
    #[error("the record was changed by someone else (current version {current})")]
    VersionConflict { current: i64 },
    #[error("the record is invalid")]
    Validation(Vec<FieldError>),
    /// A hook's `reject(message)`: the business rule speaking in its own words.
    #[error("{message}")]
    Rejected { hook: String, message: String },
    /// A hook that threw or ran past its limits: the write it guarded is refused.
    #[error("hook {hook:?} failed: {message}; nothing was saved")]
    HookFailed { hook: String, message: String },
    #[error("the metadata package was rejected")]
    InvalidPackage(Vec<Problem>),
    #[error("{} field(s) may not be changed by you: {}", .0.len(), .0.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(", "))]
    ForbiddenFields(Vec<FieldError>),
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound(format!("{what} not found"))
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// HTTP status for the contract.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) | Error::ForbiddenFields(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::VersionConflict { .. } | Error::Duplicate(_) => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::TooManyRequests { .. } => 429,
            Error::Validation(_)
            | Error::InvalidPackage(_)
            | Error::Rejected { .. }
            | Error::HookFailed { .. } => 422,
            Error::Database(_) | Error::Internal(_) => 500,
        }
    }

    /// Stable machine-readable code for the contract.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) | Error::ForbiddenFields(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Duplicate(_) => "duplicate",
            Error::VersionConflict { .. } => "version_conflict",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Validation(_) => "validation_failed",
            Error::Rejected { .. } => "rejected",
            Error::HookFailed { .. } => "hook_failed",
            Error::InvalidPackage(_) => "invalid_metadata",
            Error::Database(_) => "database_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Structured details, where the error has them.
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            Error::Validation(errors) | Error::ForbiddenFields(errors) => {
                serde_json::to_value(errors).ok()
            }
            Error::InvalidPackage(problems) => serde_json::to_value(problems).ok(),
            Error::Duplicate(matches) => Some(serde_json::json!({ "matches": matches })),
            Error::VersionConflict { current } => {
                Some(serde_json::json!({ "current_version": current }))
            }
            Error::Rejected { hook, .. } | Error::HookFailed { hook, .. } => {
                Some(serde_json::json!({ "hook": hook }))
            }
            Error::TooManyRequests { retry_after_secs } => {
                Some(serde_json::json!({ "retry_after": retry_after_secs }))
            }
            _ => None,
        }
    }
}
