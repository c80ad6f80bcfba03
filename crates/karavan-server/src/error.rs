//! The HTTP API's one error type and its table of stable error codes.
//!
//! Every error body is `{ "error": { "code", "message" } }`, sometimes with more fields beside `error`
//! (the violations of an invalid document, a kill notice). A 5xx never carries internals: they are
//! logged with context and the client gets a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use karavan_domain::ParseError;
use karavan_store::StoreError;
use serde_json::{Map, Value, json};

/// A stable error code. The table below is the contract; codes are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 401: no `Authorization: Bearer KEY`, or a key that is malformed, unknown or revoked.
    Unauthorized,
    /// 403: the key's role may not do this, or the resource belongs to another member.
    Forbidden,
    /// 404: no such resource, or one the caller may not see (the two are not told apart).
    NotFound,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 410: the item was killed; the body carries the kill notice.
    ItemKilled,
    /// 400: the body is not well-formed JSON.
    InvalidJson,
    /// 400: an XML document (NewsML-G2, a feed) could not be read; the message says what is wrong.
    InvalidDocument,
    /// 400: a field, parameter or header has a bad value; the message names it.
    InvalidRequest,
    /// 422: the document is not valid ninjs of the version it was read as.
    InvalidNinjs,
    /// 409: this uri and version were stored before with different content.
    VersionConflict,
    /// 409: the version is older than the item's current version.
    StaleVersion,
    /// 409: another conflict, such as a name already taken.
    Conflict,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 408: the request body did not arrive within the server's deadline.
    RequestTimeout,
    /// 415: the body's content type is not one the route accepts.
    UnsupportedMediaType,
    /// 500: something broke on our side; see the server log.
    Internal,
    /// 503: the server is shutting down.
    Unavailable,
    /// 503: the server's storage is full; nothing was written. Try again once space is freed
    /// (`/healthz` says `degraded` meanwhile).
    StorageFull,
    /// 503: the feature needs a local model (language identification, embeddings) that is not
    /// installed; the message says which and how to install it.
    ModelNotInstalled,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::ItemKilled => StatusCode::GONE,
            ErrorCode::InvalidJson | ErrorCode::InvalidDocument | ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidNinjs => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::VersionConflict | ErrorCode::StaleVersion | ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable | ErrorCode::StorageFull | ErrorCode::ModelNotInstalled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ItemKilled => "item_killed",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidDocument => "invalid_document",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidNinjs => "invalid_ninjs",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::StaleVersion => "stale_version",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::ModelNotInstalled => "model_not_installed",
        }
    }

    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ItemKilled,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidDocument,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidNinjs,
        ErrorCode::VersionConflict,
        ErrorCode::StaleVersion,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::StorageFull,
        ErrorCode::ModelNotInstalled,
    ];
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra top-level fields of the body, beside `error`.
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), extra: Map::new() }
    }

    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("no {what} with that id is visible to you"))
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// Logs an internal failure with its context and hides it from the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, context, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; the server log has the details")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ParseError> for ApiError {
    fn from(error: ParseError) -> ApiError {
        ApiError::invalid(format!("{}: {}", error.field, error.message))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if error.is_storage_full() {
            tracing::error!(%error, "the storage is full; writes are refused until space is freed");
            return ApiError::new(
                ErrorCode::StorageFull,
                "the server's storage is full: nothing was stored; try again once space has been freed",
            );
        }
        match error {
            StoreError::NotFound(message) => ApiError::new(ErrorCode::NotFound, message),
            StoreError::Invalid(message) => ApiError::invalid(message),
            StoreError::Conflict { code: "stale_version", message } => ApiError::new(ErrorCode::StaleVersion, message),
            StoreError::Conflict { code: "version_conflict", message } => {
                ApiError::new(ErrorCode::VersionConflict, message)
            }
            StoreError::Conflict { message, .. } => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Closed => ApiError::new(ErrorCode::Unavailable, "the server is shutting down"),
            other => ApiError::internal("store", other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".to_string(), json!({ "code": self.code.as_str(), "message": self.message }));
        body.extend(self.extra);
        (self.code.status(), Json(Value::Object(body))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
