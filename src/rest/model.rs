//! The JSON of `/v2/admin/secrets` and its mapping to and from
//! `GenericSecret`s: request bodies, the OData-style list query, responses
//! (which never carry secret data), and the checks a request passes before
//! it reaches the apiserver. Pure, no I/O.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::api::validation::{check_label, check_secret_name, kubernetes_name, validate_spec};
use crate::api::{GenericSecret, GenericSecretSpec, Scope, SecretData};
use crate::index::{Facts, Groups, Objects};
use crate::plan::{self, Blocked, Rules, World};

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

/// The list query: `$top`, `$skip`, `$count` (OData). When `$count` is
/// true, `count` is the number of all matching secrets, else the number in
/// this response (as in AI Core).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub top: Option<usize>,
    pub skip: usize,
    pub count: bool,
}

/// The query parameters as sent; others are ignored.
#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$count")]
    count: Option<String>,
}

/// Parses the raw query string (form encoding, via serde_urlencoded).
pub fn parse_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let raw: RawQuery = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::bad_request("the query string is not valid form encoding"))?;
    let number = |key: &str, value: Option<String>| {
        value
            .map(|v| v.parse::<usize>())
            .transpose()
            .map_err(|_| ApiError::bad_request(format!("{key} must be a non-negative integer")))
    };
    let count = match raw.count.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad_request("$count must be true or false")),
    };
    Ok(ListQuery {
        top: number("$top", raw.top)?,
        skip: number("$skip", raw.skip)?.unwrap_or(0),
        count,
    })
}

/// One page of `items` as `query` asks.
pub fn page(items: Vec<Summary>, query: &ListQuery) -> List {
    let total = items.len();
    let resources: Vec<Summary> = items
        .into_iter()
        .skip(query.skip)
        .take(query.top.unwrap_or(usize::MAX))
        .collect();
    List {
        count: if query.count { total } else { resources.len() },
        resources,
    }
}

/// AI Core labels as a map; a key twice or a key or value Kubernetes could
/// not put on the replicas is refused. The prefix rule is `validate_spec`'s.
fn label_map(labels: &[Label]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut map = BTreeMap::new();
    for Label { key, value } in labels {
        check_label(key, value).map_err(ApiError::bad_request)?;
        if map.insert(key.clone(), value.clone()).is_some() {
            return Err(ApiError::bad_request(format!("label {key} is given twice")));
        }
    }
    Ok(map)
}

fn labels_of(spec: &GenericSecretSpec) -> Vec<Label> {
    spec.labels
        .iter()
        .map(|(key, value)| Label {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// The object a `POST` creates: named by the Kubernetes form of the AI Core
/// name, which `spec.secretName` keeps.
pub fn new_generic_secret(scope: Scope, request: CreateRequest) -> Result<GenericSecret, ApiError> {
    let CreateRequest { name, data, labels } = request;
    check_secret_name(&name).map_err(ApiError::bad_request)?;
    let spec = GenericSecretSpec {
        scope,
        secret_name: Some(name.clone()),
        type_: "Opaque".to_owned(),
        data: Some(data),
        data_from: None,
        labels: label_map(&labels)?,
    };
    validate_spec(&spec).map_err(ApiError::bad_request)?;
    Ok(GenericSecret::new(&kubernetes_name(&name), spec))
}

/// Whether a tenant-wide `candidate` may join `existing` (the tenant
/// namespace's objects): the controller's own planner decides, as if the
/// candidate were the newest object. Refused when every quota slot is taken
/// or its Secret name is someone else's.
pub fn admit_tenant_wide(
    rules: &Rules,
    existing: Vec<GenericSecret>,
    candidate: &GenericSecret,
    now: Timestamp,
) -> Result<(), ApiError> {
    // The newest object, even if this clock lags the apiserver's.
    let created = existing
        .iter()
        .filter_map(|gs| gs.creation_timestamp())
        .filter_map(|t| t.0.checked_add(SignedDuration::from_secs(1)).ok())
        .fold(now, Timestamp::max);
    let mut candidate = candidate.clone();
    candidate.metadata = ObjectMeta {
        namespace: Some(rules.tenant_namespace.clone()),
        uid: Some("rest-api-candidate".to_owned()),
        creation_timestamp: Some(Time(created)),
        ..candidate.metadata
    };
    let objects = Objects::from_objects(existing.iter().chain([&candidate]));
    let groups = Groups::default();
    let world = World {
        rules,
        objects: &objects,
        groups: &groups,
        now,
    };
    match plan::plan(&Facts::of(&candidate), &world) {
        Err(Blocked::TenantWideQuotaExceeded { limit, position }) => {
            Err(ApiError::conflict(format!(
                "at most {limit} tenant-wide secrets per tenant, and {} exist; delete one \
                 (DELETE /v2/admin/secrets/<name> with headers AI-Tenant-Scope: true and \
                 AI-Resource-Group: *) to free a slot",
                position - 1
            )))
        }
        Err(blocked @ Blocked::NameCollision { .. }) => Err(ApiError::conflict(blocked.message())),
        Err(blocked) => Err(ApiError::bad_request(blocked.message())),
        Ok(_) => Ok(()),
    }
}

/// The spec after `request`: data replaced, labels set or (`""`) removed;
/// checked like a new one.
pub fn patched_spec(
    spec: &GenericSecretSpec,
    request: &PatchRequest,
) -> Result<GenericSecretSpec, ApiError> {
    let PatchRequest { data, labels } = request;
    if data.is_none() && labels.is_none() {
        return Err(ApiError::bad_request(
            "nothing to modify: give data and/or labels",
        ));
    }
    let mut new = spec.clone();
    if data.is_some() {
        new.data = data.clone();
    }
    for (key, value) in label_map(labels.as_deref().unwrap_or_default())? {
        if value.is_empty() {
            new.labels.remove(&key);
        } else {
            new.labels.insert(key, value);
        }
    }
    validate_spec(&new).map_err(ApiError::bad_request)?;
    Ok(new)
}

/// The JSON merge patch from `old` to spec `new`, bound to the version read
/// (a concurrent change makes it fail with 409 rather than be lost). Keys
/// no longer present are set to null, which removes them.
pub fn merge_patch(old: &GenericSecret, new: &GenericSecretSpec) -> Value {
    let no_data = BTreeMap::new();
    let old_data = old.spec.data.as_ref().map_or(&no_data, |d| &d.0);
    let new_data = new.data.as_ref().map_or(&no_data, |d| &d.0);
    let mut spec = Map::new();
    for (field, old, new) in [
        ("data", old_data, new_data),
        ("labels", &old.spec.labels, &new.labels),
    ] {
        let diff = map_diff(old, new);
        if !diff.is_empty() {
            spec.insert(field.to_owned(), Value::Object(diff));
        }
    }
    json!({
        "metadata": {"resourceVersion": old.resource_version()},
        "spec": spec,
    })
}

fn map_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Map<String, Value> {
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| (k.clone(), Value::Null));
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())));
    removed.chain(changed).collect()
}

/// Whether a request in `scope` sees `gs`: same scope, not being deleted.
pub fn visible(gs: &GenericSecret, scope: Scope) -> bool {
    gs.spec.scope == scope && gs.metadata.deletion_timestamp.is_none()
}

/// The visible object whose AI Core name maps to `kubernetes_name`; when
/// several do, the oldest, which is the one the controller lets write.
pub fn find_by_name(
    items: Vec<GenericSecret>,
    scope: Scope,
    kubernetes_name: &str,
) -> Option<GenericSecret> {
    items
        .into_iter()
        .filter(|gs| visible(gs, scope) && gs.secret_name() == kubernetes_name)
        .min_by_key(plan::creation_key)
}

pub fn summary(gs: &GenericSecret) -> Summary {
    Summary {
        name: gs.ai_core_name().to_owned(),
        created_at: gs.creation_timestamp(),
        labels: labels_of(&gs.spec),
    }
}

pub fn detail(gs: &GenericSecret) -> Detail {
    let replication = (gs.spec.scope == Scope::TenantWide).then(|| {
        gs.status
            .as_ref()
            .and_then(|s| s.resource_group_secret_replication_status.clone())
            .unwrap_or_default()
    });
    Detail {
        summary: summary(gs),
        resource_group_secrets_sync_status: replication.clone(),
        resource_group_secret_replication_status: replication,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GenericSecretStatus;

    const VALUE: &str = "bXktc2Vuc2l0aXZlLWRhdGE=";

    fn create(body: Value) -> Result<GenericSecret, ApiError> {
        let request: CreateRequest = parse_json(body.to_string().as_bytes())?;
        new_generic_secret(Scope::ResourceGroup, request)
    }

    fn stored(name: &str, scope: Scope, age_secs: i64) -> GenericSecret {
        let mut gs = create(json!({"name": name, "data": {"k": VALUE}})).expect("valid");
        gs.spec.scope = scope;
        gs.metadata.uid = Some(format!("uid-{name}"));
        gs.metadata.resource_version = Some("7".into());
        gs.metadata.creation_timestamp = Some(Time(
            Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1_000_000 - age_secs),
        ));
        gs
    }

    #[test]
    fn builds_the_object_from_the_documented_request() {
        let gs = create(json!({
            "name": "MY_GENERIC_SECRET",
            "data": {"some-credential": VALUE},
            "labels": [{"key": "ext.ai.sap.com/team", "value": "ml"}]
        }))
        .expect("valid");
        assert_eq!(gs.metadata.name.as_deref(), Some("my-generic-secret"));
        assert_eq!(gs.spec.secret_name.as_deref(), Some("MY_GENERIC_SECRET"));
        assert_eq!(gs.spec.scope, Scope::ResourceGroup);
        assert_eq!(gs.spec.type_, "Opaque");
        assert_eq!(gs.spec.labels["ext.ai.sap.com/team"], "ml");
    }

    #[test]
    fn refuses_bad_requests_without_quoting_secret_data() {
        let err = create(json!({"name": "s", "data": {"token": "c2VjcmV0!"}})).expect_err("b64");
        assert!(
            err.message().contains("data[token] is not valid base64"),
            "{err:?}"
        );
        assert!(!err.message().contains("c2VjcmV0"), "{err:?}");
        let err = create(json!({"name": "s", "data": {"pin": 123456}})).expect_err("type");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(!err.message().contains("123456"), "{err:?}");
        assert!(err.message().contains("expected a string"), "{err:?}");
        for (body, says) in [
            (
                json!({"name": "bad name", "data": {"k": VALUE}}),
                "must be alphanumerics",
            ),
            (json!({"name": "s", "data": {}}), "at least one key"),
            (
                json!({"name": "s", "data": {"k": VALUE}, "lables": []}),
                "unknown field `lables`",
            ),
            (
                json!({"name": "s", "data": {"k": VALUE}, "labels": [{"key": "team", "value": "a"}]}),
                "must start with ext.ai.sap.com/",
            ),
            (
                json!({"name": "s", "data": {"k": VALUE}, "labels": [{"key": "ext.ai.sap.com/t", "value": "a b"}]}),
                "value \"a b\" must be",
            ),
            (
                json!({"name": "s", "data": {"k": VALUE}, "labels": [
                    {"key": "ext.ai.sap.com/t", "value": "a"}, {"key": "ext.ai.sap.com/t", "value": "b"}]}),
                "given twice",
            ),
        ] {
            let err = create(body.clone()).expect_err("refused");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body}");
            assert!(err.message().contains(says), "{body}: {}", err.message());
        }
        // The documents' PATCH example lacks a comma: a syntax error, in JSON.
        let err = parse_json::<PatchRequest>(b"{\"data\": {\"k\": \"YQ==\"}\n\"labels\": []}")
            .expect_err("syntax");
        assert!(err.message().contains("line 2 column 1"), "{err:?}");
    }

    #[test]
    fn patch_replaces_data_and_sets_or_removes_labels() {
        let mut old = stored("s", Scope::TenantWide, 0);
        old.spec
            .labels
            .insert("ext.ai.sap.com/team".into(), "ml".into());
        old.spec
            .labels
            .insert("ext.ai.sap.com/keep".into(), "yes".into());
        let request: PatchRequest = parse_json(
            json!({
                "data": {"rotated": "bmV3"},
                "labels": [
                    {"key": "ext.ai.sap.com/team", "value": ""},
                    {"key": "ext.ai.sap.com/stage", "value": "prod"}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .expect("json");
        let new = patched_spec(&old.spec, &request).expect("valid");
        assert_eq!(
            merge_patch(&old, &new),
            json!({
                "metadata": {"resourceVersion": "7"},
                "spec": {
                    "data": {"k": null, "rotated": "bmV3"},
                    "labels": {"ext.ai.sap.com/team": null, "ext.ai.sap.com/stage": "prod"}
                }
            })
        );
        // Labels only: data untouched.
        let labels_only = PatchRequest {
            labels: Some(vec![Label {
                key: "ext.ai.sap.com/keep".into(),
                value: "".into(),
            }]),
            ..PatchRequest::default()
        };
        let new = patched_spec(&old.spec, &labels_only).expect("valid");
        assert_eq!(
            merge_patch(&old, &new)["spec"],
            json!({"labels": {"ext.ai.sap.com/keep": null}})
        );
        assert!(patched_spec(&old.spec, &PatchRequest::default()).is_err());
        let bad = PatchRequest {
            data: Some(SecretData([("k".into(), "%%%".into())].into())),
            ..PatchRequest::default()
        };
        assert!(patched_spec(&old.spec, &bad).is_err());
    }

    #[test]
    fn parses_the_list_query_and_pages() {
        assert_eq!(parse_query(None), Ok(ListQuery::default()));
        assert_eq!(
            parse_query(Some("$top=2&%24skip=1&$count=true&other=x")),
            Ok(ListQuery {
                top: Some(2),
                skip: 1,
                count: true
            })
        );
        for bad in ["$top=-1", "$skip=a", "$count=yes", "$top=%zz"] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
        let items = |n: usize| {
            (0..n)
                .map(|i| Summary {
                    name: format!("s{i}"),
                    created_at: None,
                    labels: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        let counted = page(
            items(5),
            &parse_query(Some("$top=2&$skip=1&$count=true")).expect("q"),
        );
        assert_eq!(counted.count, 5);
        assert_eq!(
            counted
                .resources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["s1", "s2"]
        );
        let uncounted = page(items(5), &parse_query(Some("$skip=4")).expect("q"));
        assert_eq!(uncounted.count, 1);
    }

    #[test]
    fn responses_never_carry_data_and_show_replication_for_tenant_wide() {
        let mut gs = stored("MY_SECRET", Scope::TenantWide, 0);
        gs.spec
            .labels
            .insert("ext.ai.sap.com/team".into(), "ml".into());
        gs.status = Some(GenericSecretStatus {
            resource_group_secret_replication_status: Some([("rg-1".into(), true)].into()),
            ..GenericSecretStatus::default()
        });
        let body = serde_json::to_value(detail(&gs)).expect("json");
        assert_eq!(body["name"], "MY_SECRET");
        assert_eq!(body["createdAt"], "1970-01-12T13:46:40Z");
        assert_eq!(
            body["labels"],
            json!([{"key": "ext.ai.sap.com/team", "value": "ml"}])
        );
        assert_eq!(
            body["resourceGroupSecretReplicationStatus"],
            json!({"rg-1": true})
        );
        assert_eq!(
            body["resourceGroupSecretsSyncStatus"],
            json!({"rg-1": true})
        );
        assert!(!body.to_string().contains(VALUE));
        gs.spec.scope = Scope::Tenant;
        let body = serde_json::to_value(detail(&gs)).expect("json");
        assert!(body.get("resourceGroupSecretReplicationStatus").is_none());
    }

    #[test]
    fn finds_by_ai_core_name_within_the_scope_only() {
        let mut renamed = stored("other", Scope::Tenant, 5);
        renamed.spec.secret_name = Some("MY_SECRET".into());
        let tenant_wide = stored("my-secret", Scope::TenantWide, 10);
        let mut deleting = stored("my-secret", Scope::Tenant, 20);
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        let items = vec![tenant_wide, deleting, renamed];
        let found = find_by_name(items.clone(), Scope::Tenant, "my-secret").expect("found");
        assert_eq!(found.name_any(), "other");
        assert!(find_by_name(items, Scope::ResourceGroup, "my-secret").is_none());
    }

    #[test]
    fn admits_tenant_wide_secrets_up_to_the_quota() {
        let rules = Rules {
            tenant_namespace: "tenant".into(),
            override_interval: SignedDuration::from_mins(10),
            max_tenant_wide: 2,
        };
        let existing = |names: &[&str]| -> Vec<GenericSecret> {
            names
                .iter()
                .map(|n| {
                    let mut gs = stored(n, Scope::TenantWide, 60);
                    gs.metadata.namespace = Some("tenant".into());
                    gs
                })
                .collect()
        };
        let mut candidate = stored("new", Scope::TenantWide, 0);
        candidate.metadata.uid = None;
        let now = Timestamp::now();
        assert_eq!(
            admit_tenant_wide(&rules, existing(&["a"]), &candidate, now),
            Ok(())
        );
        let full =
            admit_tenant_wide(&rules, existing(&["a", "b"]), &candidate, now).expect_err("quota");
        assert_eq!(full.status(), StatusCode::CONFLICT);
        assert!(
            full.message()
                .starts_with("at most 2 tenant-wide secrets per tenant, and 2 exist"),
            "{}",
            full.message()
        );
        // Even when the existing objects look newer than this clock.
        let future = now + SignedDuration::from_hours(1);
        let mut ahead = existing(&["a", "b"]);
        ahead[1].metadata.creation_timestamp = Some(Time(future));
        let full = admit_tenant_wide(&rules, ahead, &candidate, now).expect_err("quota");
        assert_eq!(full.status(), StatusCode::CONFLICT);
        // Tenant-scope objects hold no slot.
        let mut tenant = existing(&["a", "b"]);
        tenant[1].spec.scope = Scope::Tenant;
        assert_eq!(admit_tenant_wide(&rules, tenant, &candidate, now), Ok(()));
    }

    #[test]
    fn label_values_follow_kubernetes() {
        for ok in ["", "a", "rg-1", "A.b_c", &"x".repeat(63)] {
            assert!(crate::api::validation::is_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "a,b=c", "*", &"x".repeat(64)] {
            assert!(!crate::api::validation::is_label_value(bad), "{bad}");
        }
    }
}
