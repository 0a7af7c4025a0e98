//! From requests to `GenericSecret`s and back: the object a `POST` creates
//! (its data set aside for the data Secret), the admission of a tenant-wide
//! secret by the controller's own planner, the spec after a `PATCH` and its
//! merge patch, which objects a scope sees, and the response bodies (never
//! the data). Pure, no I/O.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use serde_json::{Map, Value, json};

use super::data;
use super::error::ApiError;
use super::model::{CreateRequest, Detail, Label, PatchRequest, Summary};
use crate::api::validation::{
    check_label, check_secret_name, check_type_keys, decode_data, kubernetes_name, validate_spec,
};
use crate::api::{
    Data, DataFrom, GenericSecret, GenericSecretSpec, IMMUTABLE_LABELS, Scope, SecretData,
    SecretRef,
};
use crate::index::{Facts, Groups, Objects};
use crate::plan::{self, Blocked, Rules, World};

/// What a `POST` writes: the object, which names its data Secret, and the
/// data for that Secret. `Debug` leaves the data out.
pub struct NewSecret {
    pub object: GenericSecret,
    pub data: Data,
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("object", &self.object)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The object a `POST` creates: named by the Kubernetes form of the AI Core
/// name, which `spec.secretName` keeps; its data goes to the data Secret.
pub fn new_generic_secret(scope: Scope, request: CreateRequest) -> Result<NewSecret, ApiError> {
    let CreateRequest { name, data, labels } = request;
    check_secret_name(&name).map_err(ApiError::bad_request)?;
    let decoded = checked_data(&data, "Opaque")?;
    let object_name = kubernetes_name(&name);
    let spec = GenericSecretSpec {
        scope,
        secret_name: Some(name),
        type_: "Opaque".to_owned(),
        data: None,
        data_from: Some(DataFrom {
            secret_ref: SecretRef {
                name: data::secret_name(&object_name),
            },
        }),
        labels: label_map(&labels)?,
        rollout: None,
    };
    validate_spec(&spec).map_err(ApiError::bad_request)?;
    Ok(NewSecret {
        object: GenericSecret::new(&object_name, spec),
        data: decoded,
    })
}

/// `data` decoded, checked as the controller checks inline data.
pub fn checked_data(data: &SecretData, type_: &str) -> Result<Data, ApiError> {
    let decoded = decode_data(data).map_err(ApiError::bad_request)?;
    check_type_keys(type_, &decoded).map_err(ApiError::bad_request)?;
    Ok(decoded)
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

/// The spec after `request`: data replaced (only for inline data: `data`
/// is None otherwise), labels set or (`""`) removed; checked like a new
/// one, including the labels the CRD makes immutable, so that a refused
/// `PATCH` writes nothing at all.
pub fn patched_spec(
    spec: &GenericSecretSpec,
    data: Option<&SecretData>,
    labels: Option<&[Label]>,
) -> Result<GenericSecretSpec, ApiError> {
    let mut new = spec.clone();
    if let Some(data) = data {
        new.data = Some(data.clone());
    }
    for (key, value) in label_map(labels.unwrap_or_default())? {
        if value.is_empty() {
            new.labels.remove(&key);
        } else {
            new.labels.insert(key, value);
        }
    }
    if let Some(key) = IMMUTABLE_LABELS
        .iter()
        .find(|k| spec.labels.get(**k) != new.labels.get(**k))
    {
        return Err(ApiError::bad_request(format!(
            "label {key} cannot change after creation"
        )));
    }
    validate_spec(&new).map_err(ApiError::bad_request)?;
    Ok(new)
}

/// A `PATCH` must change something.
pub fn check_patch(request: &PatchRequest) -> Result<(), ApiError> {
    match request {
        PatchRequest {
            data: None,
            labels: None,
        } => Err(ApiError::bad_request(
            "nothing to modify: give data and/or labels",
        )),
        _ => Ok(()),
    }
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
mod tests;
