//! The one error type of the HTTP API.
//!
//! Every failure leaves the server as `{"error": {"code": "...", "message": "..."}}` with a
//! status chosen by one exhaustive match over [`ErrorKind`] ([`status_for`]): adding a kind
//! to `ragd-core` does not compile until it has a status here.
//!
//! The compatibility protocols answer in their own error shapes, so their SDKs raise the
//! right exceptions: OpenAI's `{"error": {"message", "type", "param", "code"}}` under `/v1`
//! and Ollama's `{"error": "..."}` under its `/api/...` routes ([`Protocol`]). The status is
//! the same in every shape; [`ApiError::into_response_for`] picks the body.

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
    /// A more precise code than the kind's, for protocols that have one (OpenAI's
    /// `model_not_found`, ...).
    code: Option<&'static str>,
    /// The request field at fault, for protocols that name it (OpenAI's `param`).
    param: Option<&'static str>,
}

/// Which protocol's error shape a response takes; chosen by the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ragd's own API: `{"error": {"code", "message"}}`.
    Ragd,
    /// The OpenAI-compatible API under `/v1`.
    OpenAi,
    /// The Ollama-compatible API (`/api/...` outside `/api/v1`).
    Ollama,
}

impl Protocol {
    /// The protocol a request path belongs to.
    #[must_use]
    pub fn of_path(path: &str) -> Self {
        if path == "/v1" || path.starts_with("/v1/") {
            Self::OpenAi
        } else if path.starts_with("/api/") && !path.starts_with("/api/v1/") && path != "/api/v1" {
            Self::Ollama
        } else {
            Self::Ragd
        }
    }
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

/// The body of an error of the OpenAI-compatible API (documentation; built by
/// [`ApiError::into_response_for`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// What went wrong.
    pub error: OpenAiErrorDetail,
}

/// OpenAI's error object.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// What happened, for humans.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A stable code (`model_not_found`, `context_length_exceeded`, or ragd's error code).
    pub code: String,
}

/// The body of an error of the Ollama-compatible API (documentation).
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaErrorBody {
    /// What went wrong, for humans.
    pub error: String,
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
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), code: None, param: None }
    }

    /// The same error with a protocol-specific `code` (shown by protocols that have one;
    /// ragd's own API keeps the kind's code).
    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The same error naming the request field at fault.
    #[must_use]
    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response in `protocol`'s error shape, with the same status and headers.
    #[must_use]
    pub fn into_response_for(self, protocol: Protocol) -> Response {
        let status = self.status();
        let kind = self.kind;
        let mut response = match protocol {
            Protocol::Ragd => {
                let body =
                    ErrorBody { error: ErrorDetail { code: kind.code(), message: self.message } };
                (status, Json(body)).into_response()
            }
            Protocol::OpenAi => {
                let kind_type = match status.as_u16() {
                    401 => "authentication_error",
                    403 => "permission_error",
                    429 => "rate_limit_error",
                    500.. => "server_error",
                    _ => "invalid_request_error",
                };
                let code = self.code.or_else(|| {
                    if kind == ErrorKind::ContextTooLong {
                        Some("context_length_exceeded")
                    } else if kind == ErrorKind::Unauthorized {
                        Some("invalid_api_key")
                    } else {
                        None
                    }
                });
                let body = serde_json::json!({"error": {
                    "message": self.message,
                    "type": kind_type,
                    "param": self.param,
                    "code": code.unwrap_or_else(|| kind.code()),
                }});
                (status, Json(body)).into_response()
            }
            Protocol::Ollama => {
                (status, Json(serde_json::json!({ "error": self.message }))).into_response()
            }
        };
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
            | ErrorKind::Forbidden
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Unsupported
            | ErrorKind::Internal => {}
        }
        response
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

/// The answer when no chat model is loaded, wherever a route needs one.
pub(crate) fn no_chat_model() -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "no chat model is loaded; load one with POST /api/v1/models/load",
    )
}

impl From<ragd_chat::Error> for ApiError {
    fn from(err: ragd_chat::Error) -> Self {
        // The library does not know its routes; the HTTP answer says where to load a model.
        if matches!(err, ragd_chat::Error::NoModel) {
            return no_chat_model();
        }
        Self::new(err.kind(), err.to_string())
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
        self.into_response_for(Protocol::Ragd)
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
            (ErrorKind::Forbidden, 403),
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
    fn protocols_are_told_apart_by_path() {
        assert_eq!(Protocol::of_path("/v1/chat/completions"), Protocol::OpenAi);
        assert_eq!(Protocol::of_path("/v1"), Protocol::OpenAi);
        assert_eq!(Protocol::of_path("/api/chat"), Protocol::Ollama);
        assert_eq!(Protocol::of_path("/api/v1/documents"), Protocol::Ragd);
        assert_eq!(Protocol::of_path("/api/v1"), Protocol::Ragd);
        assert_eq!(Protocol::of_path("/v10/x"), Protocol::Ragd);
        assert_eq!(Protocol::of_path("/health"), Protocol::Ragd);
    }

    #[tokio::test]
    async fn each_protocol_has_its_error_shape_and_the_same_status() {
        let err = ApiError::new(ErrorKind::NotFound, "no model x").with_code("model_not_found");
        let openai = err.clone().into_response_for(Protocol::OpenAi);
        assert_eq!(openai.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value =
            serde_json::from_slice(&openai.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body["error"]["message"], "no model x");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "model_not_found");
        assert!(body["error"]["param"].is_null());

        let ollama = err.clone().into_response_for(Protocol::Ollama);
        assert_eq!(ollama.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value =
            serde_json::from_slice(&ollama.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body, serde_json::json!({"error": "no model x"}));

        // ragd's own shape keeps the kind's code.
        let ragd = err.into_response();
        let body: serde_json::Value =
            serde_json::from_slice(&ragd.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"]["code"], "not_found");

        let long = ApiError::new(ErrorKind::ContextTooLong, "too long")
            .into_response_for(Protocol::OpenAi);
        assert_eq!(long.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value =
            serde_json::from_slice(&long.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        let busy = ApiError::new(ErrorKind::Overloaded, "busy").into_response_for(Protocol::OpenAi);
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(busy.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn core_errors_keep_kind_and_message() {
        let err: ApiError = ragd_core::Error::not_found("document x").into();
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.message, "document x");
    }
}
