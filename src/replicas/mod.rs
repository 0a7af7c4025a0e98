//! The Secrets the operator writes: how a replica is built, hashed and
//! recognised as ours. Pure functions, no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::{GenericSecret, LABEL_PREFIX, Scope};
use crate::index::replicas::{Pairs, Replica};

/// Field manager for every write, and the value of the managed-by label.
pub const MANAGER: &str = "generic-secrets-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Which GenericSecret wrote the replica (a label value, so it may be a hash).
pub const OWNER_LABEL: &str = "aicore.dev/generic-secret";
/// The exact `<namespace>/<name>` of the writing GenericSecret.
pub const OWNER_ANNOTATION: &str = "aicore.dev/generic-secret";
pub const SCOPE_LABEL: &str = "aicore.dev/scope";
/// Tenant namespace of the installation that wrote it, so that two
/// installations in one cluster never see each other's replicas.
pub const TENANT_LABEL: &str = "aicore.dev/tenant";
pub const HASH_ANNOTATION: &str = "aicore.dev/data-hash";
/// Annotation (`=true`) with which the owner of an existing Secret consents
/// to its takeover under `--adopt-existing`: without it, anyone allowed to
/// create a GenericSecret could overwrite (and later delete) any Secret.
pub const ADOPT_ANNOTATION: &str = "aicore.dev/adopt";

pub use crate::api::Data;

/// The data of one reconcile with its hash, computed once for all targets.
pub struct Payload {
    pub data: Data,
    pub hash: String,
}

impl Payload {
    pub fn new(data: Data) -> Self {
        let hash = data_hash(&data);
        Payload { data, hash }
    }
}

/// `sha256:<hex>` over keys and values, length-prefixed so that no two maps
/// collide by concatenation.
pub fn data_hash(data: &Data) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.0.len() as u64).to_be_bytes());
        hasher.update(&value.0);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Label values are at most 63 characters: `<ns>.<name>` when it fits,
/// otherwise a prefix plus a hash that stays unique.
pub fn owner_label_value(namespace: &str, name: &str) -> String {
    at_most_63(&format!("{namespace}.{name}"))
}

/// Why a Secret of a replica's name is left alone, and what its owner can do.
pub fn conflict_message(live: &Replica, tenant: &str, adopt_existing: bool) -> String {
    let how = if adopt_existing {
        format!("or annotate it {ADOPT_ANNOTATION}=true to let the operator take it over")
    } else {
        "or run the operator with --adopt-existing and annotate it".to_owned()
    };
    format!(
        "Secret {}/{} exists and was not created by this {MANAGER} installation \
         (tenant {tenant}); delete or rename it, {how}",
        live.namespace, live.name
    )
}

/// `full` if it has at most 63 characters (a label value, an annotation
/// name), otherwise a prefix plus a hash of it that stays unique.
pub fn at_most_63(full: &str) -> String {
    const MAX: usize = 63;
    if full.len() <= MAX {
        return full.to_owned();
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let prefix: String = full.chars().take(MAX - hash.len() - 1).collect();
    format!("{}-{hash}", prefix.trim_end_matches(['.', '-', '_']))
}

/// The owner label value of `gs`'s replicas.
pub fn owner_label(gs: &GenericSecret) -> String {
    owner_label_value(&gs.namespace().unwrap_or_default(), &gs.name_any())
}

/// Label selector of every replica this installation wrote.
pub fn selector(tenant_namespace: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGER},{TENANT_LABEL}={tenant_namespace}")
}

/// `<namespace>/<name>` of a GenericSecret.
pub fn object_key(gs: &GenericSecret) -> String {
    format!("{}/{}", gs.namespace().unwrap_or_default(), gs.name_any())
}

/// Whether this installation (tenant) created this Secret, and so may change
/// or delete it. Another installation's replica is as foreign as a user's.
pub fn is_managed(secret: &Secret, tenant_namespace: &str) -> bool {
    let labels = secret.labels();
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGER)
        && labels.get(TENANT_LABEL).map(String::as_str) == Some(tenant_namespace)
}

/// Whether `replica` is ours and holds `desired` (data hash `hash`),
/// written for the object `<namespace>/<name>` `writer`: nothing to write.
pub fn is_current(replica: &Replica, writer: &str, desired: &Secret, hash: &str) -> bool {
    replica.managed
        && replica.writer.as_deref() == Some(writer)
        && drift(replica, desired, hash).is_current()
}

/// The replica of `gs` in `namespace`, as it must look.
pub fn desired_secret(
    gs: &GenericSecret,
    tenant_namespace: &str,
    name: &str,
    namespace: &str,
    payload: &Payload,
) -> Secret {
    let mut labels: BTreeMap<String, String> = gs.spec.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    labels.insert(OWNER_LABEL.into(), owner_label(gs));
    labels.insert(SCOPE_LABEL.into(), gs.spec.scope.as_str().into());
    labels.insert(TENANT_LABEL.into(), tenant_namespace.into());
    let annotations = BTreeMap::from([
        (OWNER_ANNOTATION.to_owned(), object_key(gs)),
        (HASH_ANNOTATION.to_owned(), payload.hash.clone()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: same_namespace_owner(gs, namespace).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some(gs.spec.type_.clone()),
        data: Some(payload.data.clone()),
        ..Secret::default()
    }
}

/// Owner references cannot cross namespaces; only a resource-group object's
/// own replica gets one (so garbage collection backs up the finalizer).
fn same_namespace_owner(gs: &GenericSecret, namespace: &str) -> Option<OwnerReference> {
    let same_ns = gs.namespace().as_deref() == Some(namespace);
    if gs.spec.scope == Scope::TenantWide || !same_ns {
        return None;
    }
    let mut owner = gs.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(false);
    Some(owner)
}

/// What differs between a live replica and the desired one, if anything.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// The data, or the annotation with its hash, differs.
    pub stale_data: bool,
    /// The type, our labels, the writer annotation or a needed owner
    /// reference differ.
    pub stale_metadata: bool,
    /// Data keys or `ext.ai.sap.com/` labels that someone else added; server-side
    /// apply cannot remove fields it does not own, so these need a patch.
    pub extra_data_keys: Vec<String>,
    pub extra_labels: Vec<String>,
}

impl Drift {
    /// Data, type, our labels or annotations differ: write the desired Secret.
    pub fn needs_apply(&self) -> bool {
        self.stale_data || self.stale_metadata
    }

    pub fn is_current(&self) -> bool {
        !self.needs_apply() && self.extra_data_keys.is_empty() && self.extra_labels.is_empty()
    }
}

/// Compare a cached replica with the desired Secret, whose data hashes to
/// `hash` (the cache keeps the hash of the live data, not the data).
pub fn drift(live: &Replica, desired: &Secret, hash: &str) -> Drift {
    let empty = BTreeMap::new();
    let want_data = desired.data.as_ref().unwrap_or(&empty);
    let extra_data_keys: Vec<String> = live
        .data_keys
        .iter()
        .filter(|k| !want_data.contains_key(&***k))
        .map(|k| k.to_string())
        .collect();
    // Extra keys alone change the hash; the values of ours may still match,
    // but only a write can tell, and it is a no-op if they do.
    let stale_data =
        *live.data_hash != *hash || live.annotations.get(HASH_ANNOTATION) != Some(hash);
    let other_annotations = desired
        .annotations()
        .iter()
        .filter(|(k, _)| *k != HASH_ANNOTATION);
    let stale_metadata = live.type_.as_deref() != desired.type_.as_deref()
        || !subset(desired.labels(), &live.labels)
        || !other_annotations
            .into_iter()
            .all(|(k, v)| live.annotations.get(k) == Some(v))
        || live.owner_references != desired.metadata.owner_references
            && desired.metadata.owner_references.is_some();
    let extra_labels = live
        .labels
        .keys()
        .filter(|k| k.starts_with(LABEL_PREFIX) && !desired.labels().contains_key(*k))
        .map(str::to_owned)
        .collect();
    Drift {
        stale_data,
        stale_metadata,
        extra_data_keys,
        extra_labels,
    }
}

/// The write of a rotation: when a replica of ours differs from the desired
/// one only in its data, a JSON patch that replaces the data and its hash
/// annotation, at the cached resourceVersion (a 409 if it changed since).
/// Server-side apply would send every label and annotation again, and the
/// apiserver would merge and track each field: 1.1–1.35× as long per write
/// as this patch here (docs/benchmarks.md, section 1, measures both).
/// None when anything else differs, or the version is unknown: then apply.
pub fn data_patch(live: &Replica, desired: &Secret, hash: &str) -> Option<json_patch::Patch> {
    let resource_version = live.resource_version.as_deref()?;
    let drift = drift(live, desired, hash);
    // Exactly the desired owner references: an extra one (a Secret taken
    // over from a resource-group object) is released after an apply.
    let only_data = live.managed
        && drift.stale_data
        && !drift.stale_metadata
        && drift.extra_labels.is_empty()
        && live.owner_references == desired.metadata.owner_references;
    if !only_data {
        return None;
    }
    let hash_pointer = format!(
        "/metadata/annotations/{}",
        HASH_ANNOTATION.replace('/', "~1")
    );
    let ops = serde_json::json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "add", "path": "/data", "value": desired.data.clone().unwrap_or_default()},
        {"op": "add", "path": hash_pointer, "value": hash},
    ]);
    serde_json::from_value(ops).ok()
}

/// Whether every pair of `want` is in `have`.
fn subset(want: &BTreeMap<String, String>, have: &Pairs) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v.as_str()))
}

#[cfg(test)]
mod tests;
