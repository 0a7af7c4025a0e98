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
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Required, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::error::ApiError;
use crate::api::validation::check_secret_name;
use crate::api::{BASE64_PATTERN, SecretData};

/// Largest request body accepted (a Secret holds at most 1 MiB as well).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

// The schema names are those of SAP's AI Core spec, which the SDKs are
// generated from: a client generated from our document gets their types.

/// An AI Core label, `{"key": "ext.ai.sap.com/...", "value": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BckndGenericSecretLabel)]
pub struct Label {
    /// `ext.ai.sap.com/` and a Kubernetes label name (it labels the replicas).
    // The patterns are `check_label`'s rules.
    #[schema(
        example = "ext.ai.sap.com/team",
        max_length = 78,
        pattern = r"^ext\.ai\.sap\.com/[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
    )]
    pub key: String,
    /// A Kubernetes label value (at most 63 characters, AI Core allows 5000);
    /// `""` in a PATCH removes the label.
    #[schema(
        example = "payments",
        max_length = 63,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?$"
    )]
    pub value: String,
}

/// A new secret: its name, data and labels.
// `SecretData`'s `Debug` redacts the values; the example holds placeholders.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BckndGenericSecretPostBody, example = json!({
    "name": "my-generic-secret",
    "data": {"apiKey": "<base64 of the value>"},
    "labels": [{"key": "ext.ai.sap.com/team", "value": "payments"}]
}))]
pub struct CreateRequest {
    /// The AI Core name (see the `secretName` path parameter for the rule).
    #[schema(example = "my-generic-secret", max_length = 253)]
    pub name: String,
    pub data: SecretData,
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A change: `data` replaces the whole data map (rotation); a label with
/// value `""` is removed, others are set. Unlike AI Core, `data` may be
/// left out to change labels only.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BckndGenericSecretPatchBody)]
pub struct PatchRequest {
    #[serde(default)]
    pub data: Option<SecretData>,
    #[serde(default)]
    pub labels: Option<Vec<Label>>,
}

/// One secret in a list: metadata only, never data.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BckndGenericSecretSummary)]
pub struct Summary {
    #[schema(example = "my-generic-secret")]
    pub name: String,
    /// The object's `creationTimestamp` (null only for an object without one).
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub created_at: Option<Time>,
    /// Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub labels: Vec<Label>,
}

/// One secret: metadata only, never data. Tenant-wide secrets add the
/// replication map, under the AI Core documents' name and under the name in
/// SAP's OpenAPI spec and SDKs.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BckndGenericSecretDetails)]
pub struct Detail {
    #[serde(flatten)]
    pub summary: Summary,
    /// Tenant-wide secrets only: resource group id -> whether its replica
    /// holds the current data.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resource_group_secret_replication_status: Option<BTreeMap<String, bool>>,
    /// The same map under the name in SAP's spec and SDKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resource_group_secrets_sync_status: Option<BTreeMap<String, bool>>,
}

/// The secrets in scope, one page of them.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[schema(as = BckndListGenericSecretsResponse)]
pub struct List {
    /// The number of secrets in scope, whatever the page (`$count` or not).
    pub count: usize,
    /// The page `$skip`/`$top` select, by Kubernetes name; never any data.
    pub resources: Vec<Summary>,
}

/// The answer to a create, update or delete.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[schema(as = BckndGenericSecretDataResponse)]
pub struct Message {
    #[schema(example = "secret has been created")]
    pub message: &'static str,
    #[schema(example = "my-generic-secret")]
    pub name: String,
}

/// The data map, key -> base64 value. Written by hand because the type
/// lives in the CRD model; the example holds no value, only placeholders.
impl PartialSchema for SecretData {
    fn schema() -> RefOr<Schema> {
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(BASE64_PATTERN));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Base64 encoded secret data: Secret data key -> standard padded base64",
            ))
            .min_properties(Some(1))
            .additional_properties(Some(value))
            .examples([serde_json::json!({"apiKey": "<base64 of the value>"})])
            .into()
    }
}

impl ToSchema for SecretData {
    fn name() -> std::borrow::Cow<'static, str> {
        "BckndGenericSecretData".into()
    }
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

/// The `{secretName}` path segment, checked as an AI Core secret name.
pub struct Name(pub String);

/// The rule of [`check_secret_name`] (AI Core: `^[a-z0-9\-\.]+$`, 252).
const NAME_PATTERN: &str = "^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$";

impl IntoParams for Name {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(253))
            .pattern(Some(NAME_PATTERN));
        vec![
            ParameterBuilder::new()
                .name("secretName")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "AI Core name; any name mapping to the same Kubernetes name finds the secret",
                ))
                .schema(Some(schema))
                .build(),
        ]
    }
}

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
