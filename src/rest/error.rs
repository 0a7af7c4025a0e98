//! Errors of the REST API and how they reach the client: always JSON
//! `{"error":{"code":"<HTTP status>","message":"..."}}`. Refusals by the
//! apiserver keep their status where AI Core gives it the same meaning. No I/O.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A refused request: the status and a message that says what to fix.
/// Messages never hold secret data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// An apiserver refusal of a call made as the caller, by its status code.
    pub fn from_apiserver(code: u16, message: &str) -> Self {
        match code {
            // Schema and CEL validation (422), malformed requests (400): the
            // apiserver's message names the field and the rule.
            400 | 422 => Self::bad_request(message),
            401 => Self::unauthorized("the bearer token was not accepted by Kubernetes"),
            403 | 404 | 409 | 429 => Self::new(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                message,
            ),
            500..=599 => Self::new(
                StatusCode::BAD_GATEWAY,
                format!("the Kubernetes API failed: {message}"),
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("unexpected answer {code} from the Kubernetes API: {message}"),
            ),
        }
    }

    /// A failed call made with the operator's own identity (the resource
    /// group lookup): not the caller's fault, so no apiserver status is
    /// passed on; the detail goes to the log.
    pub fn internal(what: &str, error: &kube::Error) -> Self {
        tracing::warn!(error = %error, "{what} failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
    }
}

/// A call made as the caller failed.
impl From<kube::Error> for ApiError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Self::from_apiserver(status.code, &status.message),
            other => {
                tracing::warn!(error = %other, "calling the Kubernetes API failed");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "the Kubernetes API could not be reached",
                )
            }
        }
    }
}

/// An error: every refusal has this shape, as in AI Core.
#[derive(Serialize, ToSchema)]
#[schema(as = BckndErrorResponse)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = BckndError)]
struct ErrorDetail<'a> {
    /// The HTTP status as a string, e.g. "404" (AI Core: a descriptive code).
    #[schema(example = "404")]
    code: String,
    /// What to fix; never holds secret data.
    #[schema(example = "secret my-generic-secret not found")]
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.status.as_u16().to_string(),
                message: &self.message,
            },
        };
        let mut response = json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `body` as an `application/json` response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        // Our response types always serialize; never send a half answer.
        Err(e) => {
            tracing::error!(error = %e, "serializing a response failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_apiserver_statuses() {
        let cases = [
            (422, StatusCode::BAD_REQUEST),
            (400, StatusCode::BAD_REQUEST),
            (401, StatusCode::UNAUTHORIZED),
            (403, StatusCode::FORBIDDEN),
            (404, StatusCode::NOT_FOUND),
            (409, StatusCode::CONFLICT),
            (429, StatusCode::TOO_MANY_REQUESTS),
            (503, StatusCode::BAD_GATEWAY),
            (418, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, want) in cases {
            assert_eq!(ApiError::from_apiserver(code, "m").status(), want, "{code}");
        }
        let invalid = ApiError::from_apiserver(422, "spec.labels: label keys must start");
        assert_eq!(invalid.message(), "spec.labels: label keys must start");
    }

    #[tokio::test]
    async fn renders_the_ai_core_error_shape() {
        let response = ApiError::unauthorized("no token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "401", "message": "no token"}})
        );
    }
}
