//! `AppError`: every admin API failure, rendered as `{"error": "...", "status": N}`. Internal
//! details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cluster::{Refusal, Rejected};
use crate::resources::validate::Invalid;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Unauthorized { message: String, basic: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(u64),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    /// Logged in full, answered as a bare "internal error".
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "admin API internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut res = (
            status,
            Json(super::views::ErrorBody {
                error: message,
                status: status.as_u16(),
            }),
        )
            .into_response();
        match self {
            AppError::Unauthorized { basic: true, .. } => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"dgate\""),
                );
            }
            // No leader yet, builds all busy: passing conditions.
            AppError::Unavailable(_) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::Unprocessable(e.to_string())
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<Rejected> for AppError {
    fn from(e: Rejected) -> Self {
        match e {
            Rejected::Refused(Refusal::Invalid(m) | Refusal::MissingReference(m)) => {
                AppError::Unprocessable(m)
            }
            Rejected::Refused(Refusal::NotFound(m)) => AppError::NotFound(m),
            Rejected::Refused(Refusal::Conflict(m)) => AppError::Conflict(m),
            Rejected::Storage(s) => s.into(),
            Rejected::Internal(m) => AppError::Internal(m),
            Rejected::Unavailable(m) => AppError::Unavailable(m),
        }
    }
}

/// A JSON body that failed to parse: syntax errors are 400, well-formed JSON of the wrong shape 422.
pub fn json_error(what: &str, e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            AppError::BadRequest(format!("malformed JSON in {what}: {e}"))
        }
        Category::Data => AppError::Unprocessable(format!("invalid {what}: {e}")),
    }
}
