//! The JSON of `/v2/admin/secrets`: request bodies and their extractors
//! (every refusal a JSON error that never quotes secret data), the `{name}`
//! path segment, and the response shapes, which have no field for data.
//! Pure, no I/O; the mapping to objects is in `objects`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::api::SecretData;
use crate::api::validation::check_secret_name;

/// Largest request body accepted (a Secret holds at most 1 MiB as well).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An AI Core label, `{"key": "ext.ai.sap.com/...", "value": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// `POST` body. `SecretData`'s `Debug` redacts the values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub data: SecretData,
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// `PATCH` body: `data` replaces the whole data map (rotation); a label
/// with value `""` is removed, others are set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    pub data: Option<SecretData>,
    #[serde(default)]
    pub labels: Option<Vec<Label>>,
}

/// One secret in a list, and the core of `GET /{name}`.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    pub created_at: Option<Time>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// `GET /{name}`: tenant-wide secrets add the replication map, under its
/// documented name and its older alias.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group_secret_replication_status: Option<BTreeMap<String, bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group_secrets_sync_status: Option<BTreeMap<String, bool>>,
}

/// `GET` (list).
#[derive(Debug, PartialEq, Serialize)]
pub struct List {
    pub count: usize,
    pub resources: Vec<Summary>,
}

/// Answer of `POST`, `PATCH` and `DELETE`.
#[derive(Debug, PartialEq, Serialize)]
pub struct Message {
    pub message: &'static str,
    pub name: String,
}

impl Message {
    pub fn created(name: &str) -> Self {
        Self {
            message: "secret has been created",
            name: name.to_owned(),
        }
    }

    pub fn modified(name: &str) -> Self {
        Self {
            message: "The secret has been modified",
            name: name.to_owned(),
        }
    }

    pub fn deleted(name: &str) -> Self {
        Self {
            message: "The secret has been deleted",
            name: name.to_owned(),
        }
    }
}

/// A JSON request body of at most [`MAX_BODY_BYTES`]; every refusal is a
/// JSON error (413 when too large), never axum's plain-text rejection.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                    ),
                    status => ApiError::new(status, rejection.body_text()),
                })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// `bytes` as `T`. serde's messages for a wrong type or value quote the
/// value, which may be secret data: those keep only where and what was
/// expected.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        let detail = if message.starts_with("invalid type") || message.starts_with("invalid value")
        {
            let expected = message
                .split_once(", expected ")
                .and_then(|(_, rest)| rest.rsplit_once(" at line "))
                .map(|(expected, _)| format!(" (expected {expected})"))
                .unwrap_or_default();
            format!(
                "a value has the wrong type{expected} at line {} column {}",
                e.line(),
                e.column()
            )
        } else {
            message
        };
        ApiError::bad_request(format!("request body is not valid: {detail}"))
    })
}

/// The `{name}` path segment, checked as an AI Core secret name.
pub struct Name(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        check_secret_name(&name).map_err(ApiError::bad_request)?;
        Ok(Name(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_keep_where_but_not_what() {
        let err = parse_json::<CreateRequest>(br#"{"name": "s", "data": {"pin": 123456}}"#)
            .expect_err("type");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(!err.message().contains("123456"), "{err:?}");
        assert!(err.message().contains("expected a string"), "{err:?}");
        // The documents' PATCH example lacks a comma: a syntax error, in JSON.
        let err = parse_json::<PatchRequest>(b"{\"data\": {\"k\": \"YQ==\"}\n\"labels\": []}")
            .expect_err("syntax");
        assert!(err.message().contains("line 2 column 1"), "{err:?}");
    }

    #[test]
    fn list_and_messages_have_the_documented_shape() {
        let list = List {
            count: 2,
            resources: vec![Summary {
                name: "S".into(),
                created_at: None,
                labels: Vec::new(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&list).expect("json"),
            serde_json::json!({"count": 2, "resources": [{"name": "S", "createdAt": null}]})
        );
        assert_eq!(
            serde_json::to_value(Message::created("S")).expect("json"),
            serde_json::json!({"message": "secret has been created", "name": "S"})
        );
    }
}
