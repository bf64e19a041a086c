//! The one error type of the HTTP API.
//!
//! Every failure leaves the server as `{"error": {"code": "...", "message": "..."}}` with a
//! status chosen by one exhaustive match over [`ErrorKind`] ([`status_for`]): adding a kind
//! to `ragd-core` does not compile until it has a status here.

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ragd_core::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;

/// `Retry-After` of `overloaded` answers, in seconds.
const RETRY_AFTER_SECS: &str = "2";

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The machine-readable code and the human-readable message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, one of `ErrorKind`'s (`not_found`, `invalid_input`, ...).
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// What happened, for humans.
    #[schema(example = "document 0192f0c4-... not found")]
    pub message: String,
}

/// The HTTP status for each kind of error.
#[must_use]
pub const fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput | ErrorKind::ContextTooLong => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The classification.
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The body's `error` object.
    #[must_use]
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail { code: self.kind.code(), message: self.message.clone() }
    }

    /// The HTTP status this error is answered with.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        status_for(self.kind)
    }
}

impl From<ragd_core::Error> for ApiError {
    fn from(err: ragd_core::Error) -> Self {
        if err.kind() == ErrorKind::Internal {
            // Log the whole chain; the client gets the message only.
            tracing::error!(error = ?err, "internal error");
        }
        Self::new(err.kind(), err.message())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // `JsonRejection` is non-exhaustive; its status already says which case it is.
        Self::new(kind_from_status(rejection.status()), rejection.body_text())
    }
}

impl From<ragd_ingest::Error> for ApiError {
    fn from(err: ragd_ingest::Error) -> Self {
        ragd_core::Error::from(err).into()
    }
}

impl From<ragd_search::Error> for ApiError {
    fn from(err: ragd_search::Error) -> Self {
        ragd_core::Error::from(err).into()
    }
}

/// Rejections of axum's extractors carry the right status already; keep it.
fn kind_from_status(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::PayloadTooLarge,
        _ => ErrorKind::InvalidInput,
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(kind_from_status(rejection.status()), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(kind_from_status(rejection.status()), rejection.body_text())
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        Self::new(kind_from_status(rejection.status()), rejection.body_text())
    }
}

impl From<MultipartError> for ApiError {
    fn from(err: MultipartError) -> Self {
        Self::new(kind_from_status(err.status()), err.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = self.kind;
        let body = ErrorBody { error: ErrorDetail { code: kind.code(), message: self.message } };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match kind {
            // Queues drain within seconds; a client may retry after this.
            ErrorKind::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            ErrorKind::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorKind::NotFound
            | ErrorKind::InvalidInput
            | ErrorKind::Conflict
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::ContextTooLong
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Unsupported
            | ErrorKind::Internal => {}
        }
        response
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s, so a malformed body gets the
/// same error shape as everything else.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A path-parameter extractor whose rejections (a malformed id) are [`ApiError`]s.
#[derive(Debug, Clone, Copy, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A query-string extractor whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn every_kind_has_a_status_and_a_json_body() {
        for kind in ErrorKind::ALL {
            let response = ApiError::new(kind, format!("boom {kind}")).into_response();
            let status = response.status();
            assert!(status.is_client_error() || status.is_server_error(), "{kind}: {status}");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["code"], kind.code());
            assert_eq!(body["error"]["message"], format!("boom {kind}"));
        }
    }

    #[test]
    fn statuses_are_the_documented_ones() {
        let expected = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::Conflict, 409),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UnsupportedMediaType, 415),
            (ErrorKind::ContextTooLong, 400),
            (ErrorKind::Overloaded, 429),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Timeout, 504),
            (ErrorKind::Unsupported, 501),
            (ErrorKind::Internal, 500),
        ];
        assert_eq!(expected.len(), ErrorKind::ALL.len(), "every kind is listed");
        for (kind, status) in expected {
            assert_eq!(status_for(kind).as_u16(), status, "{kind}");
        }
    }

    #[test]
    fn core_errors_keep_kind_and_message() {
        let err: ApiError = ragd_core::Error::not_found("document x").into();
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.message, "document x");
    }
}
