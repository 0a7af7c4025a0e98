//! The Secret that holds the data of a secret created through the REST API.
//!
//! A `GenericSecret` made by `POST /v2/admin/secrets` carries no value: its
//! `dataFrom` names this Secret, in its own namespace, so reading the object
//! reveals nothing, RBAC on Secrets decides who reads the values, and
//! etcd's encryption at rest for Secrets covers them. The Secret is
//! labelled `aicore.dev/source=true` (its writer's consent, which the
//! controller requires of a source), owned by the object (the garbage
//! collector deletes it with the object), and named `<object>.data`: a dot
//! never occurs in the Kubernetes form of an AI Core name, so it can never
//! be a replica's name. Pure: what to write; the calls are in `handlers`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::api::{Data, GenericSecret};
use crate::controller::SOURCE_LABEL;

const SUFFIX: &str = ".data";
/// Longest Secret name Kubernetes accepts (a DNS subdomain).
const MAX_NAME: usize = 253;
/// Hex digits of the name hash that keeps shortened names apart.
const HASH_DIGITS: usize = 16;

/// The data Secret's name for the object named `object`.
pub fn secret_name(object: &str) -> String {
    if object.len() + SUFFIX.len() <= MAX_NAME {
        return format!("{object}{SUFFIX}");
    }
    let hash: String = Sha256::digest(object.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = MAX_NAME - SUFFIX.len() - HASH_DIGITS - 1;
    // Kubernetes names are ASCII: any byte index is a char boundary.
    let prefix = object[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{}{SUFFIX}", &hash[..HASH_DIGITS])
}

/// Where an object's data lives, as far as this API is concerned.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// `spec.data` (made with kubectl): a rotation patches the object.
    Inline,
    /// This API's data Secret: a rotation patches the Secret.
    Owned(String),
    /// `dataFrom` some other Secret (GitOps): not this API's to write.
    Foreign(String),
}

pub fn source(gs: &GenericSecret) -> Source {
    match &gs.spec.data_from {
        None => Source::Inline,
        Some(from) if from.secret_ref.name == secret_name(&gs.name_any()) => {
            Source::Owned(from.secret_ref.name.clone())
        }
        Some(from) => Source::Foreign(from.secret_ref.name.clone()),
    }
}

/// The data Secret of the object `object` (not yet created: no owner).
pub fn new_secret(object: &str, type_: &str, data: Data) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(object)),
            labels: Some(BTreeMap::from([(
                SOURCE_LABEL.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some(type_.to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The reference that makes `gs` own its data Secret. No
/// `blockOwnerDeletion`: setting it needs rights on the owner's finalizers,
/// and the object's own finalizer already outlives its replicas.
pub fn owner_reference(gs: &GenericSecret) -> Result<OwnerReference, ApiError> {
    gs.controller_owner_ref(&()).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the apiserver returned the new object without a name or uid",
        )
    })
}

/// Merge patch giving the data Secret at `resource_version` (the one just
/// created) its owner.
pub fn owner_patch(owner: &OwnerReference, resource_version: Option<&str>) -> Value {
    json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": [owner]}})
}

/// JSON patch replacing the whole data map of `gs`'s data Secret, only
/// while `gs` still owns it (the `test` fails otherwise, and nothing is
/// written). Needs no read: the caller may rotate without reading.
pub fn rotation(gs: &GenericSecret, data: &Data) -> Result<json_patch::Patch, ApiError> {
    let patch = json!([
        {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": gs.uid()},
        // `add` replaces an existing member and also works on a Secret whose
        // data was emptied.
        {"op": "add", "path": "/data", "value": data},
    ]);
    serde_json::from_value(patch).map_err(|e| {
        tracing::error!(error = %e, "building the rotation patch failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "cannot build the rotation patch",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validation::kubernetes_name;
    use crate::api::{DataFrom, GenericSecretSpec, SecretRef};
    use k8s_openapi::ByteString;

    fn object(name: &str, data_from: Option<&str>) -> GenericSecret {
        let mut gs = GenericSecret::new(
            name,
            GenericSecretSpec {
                scope: crate::api::Scope::Tenant,
                secret_name: None,
                type_: "Opaque".into(),
                data: None,
                data_from: data_from.map(|n| DataFrom {
                    secret_ref: SecretRef { name: n.into() },
                }),
                labels: BTreeMap::new(),
                rollout: None,
            },
        );
        gs.metadata.uid = Some("uid-1".into());
        gs
    }

    #[test]
    fn names_never_meet_a_replica_and_fit_kubernetes() {
        assert_eq!(secret_name("my-generic-secret"), "my-generic-secret.data");
        let longest = kubernetes_name(&format!("A{}", "_b".repeat(126)));
        assert_eq!(longest.len(), 253);
        let shortened = secret_name(&longest);
        assert_eq!(shortened.len(), 253, "{shortened}");
        assert!(shortened.ends_with(".data"));
        // Two long names sharing the kept prefix stay apart.
        let other = format!("{}c", &longest[..252]);
        assert_ne!(secret_name(&other), shortened);
        // No AI Core name, so no replica of one, has a dot.
        assert!(crate::api::validation::check_secret_name("my-secret.data").is_err());
    }

    #[test]
    fn tells_whose_data_an_object_reads() {
        assert_eq!(source(&object("s", None)), Source::Inline);
        assert_eq!(
            source(&object("s", Some("s.data"))),
            Source::Owned("s.data".into())
        );
        assert_eq!(
            source(&object("s", Some("sealed"))),
            Source::Foreign("sealed".into())
        );
    }

    #[test]
    fn writes_a_labelled_secret_owned_by_the_object() {
        let data: Data = BTreeMap::from([("k".to_owned(), ByteString(b"v1".to_vec()))]);
        let secret = new_secret("s", "Opaque", data.clone());
        assert_eq!(secret.metadata.name.as_deref(), Some("s.data"));
        assert_eq!(secret.labels()[SOURCE_LABEL], "true");
        assert!(secret.metadata.owner_references.is_none());
        let gs = object("s", Some("s.data"));
        let owner = owner_reference(&gs).expect("owner");
        assert_eq!(
            owner_patch(&owner, Some("42")),
            json!({"metadata": {"resourceVersion": "42", "ownerReferences": [{
                "apiVersion": "aicore.dev/v1alpha1", "kind": "GenericSecret",
                "name": "s", "uid": "uid-1", "controller": true
            }]}})
        );
        assert_eq!(
            serde_json::to_value(rotation(&gs, &data).expect("patch")).expect("json"),
            json!([
                {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": "uid-1"},
                {"op": "add", "path": "/data", "value": {"k": "djE="}}
            ])
        );
    }
}
