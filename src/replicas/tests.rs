use super::*;
use crate::api::{GenericSecretSpec, SecretData};
use k8s_openapi::ByteString;

fn gs(scope: Scope) -> GenericSecret {
    let mut gs = GenericSecret::new(
        "creds",
        GenericSecretSpec {
            scope,
            secret_name: None,
            type_: "Opaque".into(),
            data: Some(SecretData::default()),
            data_from: None,
            labels: BTreeMap::from([("ext.ai.sap.com/team".into(), "ml".into())]),
            rollout: None,
        },
    );
    gs.metadata.namespace = Some("tenant".into());
    gs.metadata.uid = Some("uid-1".into());
    gs
}

/// The replica in resource group `rg-a` of object `tenant/creds`.
fn replica_in_rg_a(scope: Scope, payload: &Payload) -> Secret {
    desired_secret(&gs(scope), "tenant", "creds", "rg-a", payload)
}

fn data(v: &str) -> Data {
    BTreeMap::from([("k".into(), ByteString(v.as_bytes().to_vec()))])
}

#[test]
fn hash_changes_with_data_and_is_stable() {
    assert_eq!(data_hash(&data("a")), data_hash(&data("a")));
    assert_ne!(data_hash(&data("a")), data_hash(&data("b")));
    assert!(data_hash(&data("a")).starts_with("sha256:"));
}

#[test]
fn owner_label_fits_label_limits() {
    assert_eq!(owner_label_value("ns", "x"), "ns.x");
    let long = owner_label_value(&"n".repeat(63), &"x".repeat(200));
    assert!(long.len() <= 63, "{long}");
    assert_ne!(long, owner_label_value(&"n".repeat(63), &"y".repeat(200)));
}

#[test]
fn desired_secret_is_labelled_and_owned_only_in_its_namespace() {
    let tw = replica_in_rg_a(Scope::TenantWide, &Payload::new(data("a")));
    assert!(is_managed(&tw, "tenant"));
    assert!(!is_managed(&tw, "other-tenant"));
    let cached = Replica::of(&tw, "tenant");
    let hash = data_hash(&data("a"));
    assert!(is_current(&cached, "tenant/creds", &tw, &hash));
    assert!(!is_current(&cached, "tenant/other", &tw, &hash));
    assert!(!is_current(
        &Replica::of(&tw, "other-tenant"),
        "tenant/creds",
        &tw,
        &hash
    ));
    assert_eq!(tw.labels()["ext.ai.sap.com/team"], "ml");
    assert!(tw.metadata.owner_references.is_none());
    let tenant = desired_secret(
        &gs(Scope::Tenant),
        "tenant",
        "creds",
        "tenant",
        &Payload::new(data("a")),
    );
    assert!(tenant.metadata.owner_references.is_some());
}

#[test]
fn drift_detects_edits_and_foreign_keys() {
    let want = replica_in_rg_a(Scope::TenantWide, &Payload::new(data("a")));
    let hash = data_hash(&data("a"));
    let seen = |s: &Secret| Replica::of(s, "tenant");
    assert!(drift(&seen(&want), &want, &hash).is_current());
    let mut edited = want.clone();
    edited.data = Some(data("b"));
    assert!(drift(&seen(&edited), &want, &hash).needs_apply());
    let mut extra = want.clone();
    if let Some(d) = extra.data.as_mut() {
        d.insert("added".into(), ByteString(vec![1]));
    }
    assert_eq!(
        drift(&seen(&extra), &want, &hash).extra_data_keys,
        vec!["added".to_owned()]
    );
    let mut labelled = want.clone();
    labelled
        .labels_mut()
        .insert("ext.ai.sap.com/added".into(), "x".into());
    assert_eq!(
        drift(&seen(&labelled), &want, &hash).extra_labels,
        vec!["ext.ai.sap.com/added".to_owned()]
    );
}

#[test]
fn only_a_change_of_data_is_patched() {
    let old = replica_in_rg_a(Scope::TenantWide, &Payload::new(data("a")));
    let mut live = Replica::of(&old, "tenant");
    live.resource_version = Some("7".into());
    let payload = Payload::new(data("b"));
    let want = replica_in_rg_a(Scope::TenantWide, &payload);
    let patch = data_patch(&live, &want, &payload.hash).expect("a rotation is a data patch");
    let ops = serde_json::to_value(&patch).expect("a patch serializes");
    assert_eq!(ops[0]["path"], "/metadata/resourceVersion");
    assert_eq!(ops[0]["value"], "7");
    assert_eq!(
        ops[1]["value"],
        serde_json::to_value(&want.data).expect("data serializes")
    );
    assert_eq!(
        ops[2]["path"],
        "/metadata/annotations/aicore.dev~1data-hash"
    );
    assert_eq!(ops[2]["value"], payload.hash);

    let current = replica_in_rg_a(Scope::TenantWide, &payload);
    let mut current = Replica::of(&current, "tenant");
    current.resource_version = Some("8".into());
    assert!(data_patch(&current, &want, &payload.hash).is_none());
    let mut unversioned = live.clone();
    unversioned.resource_version = None;
    assert!(data_patch(&unversioned, &want, &payload.hash).is_none());
    let foreign = Replica::of(&old, "other-tenant");
    assert!(data_patch(&foreign, &want, &payload.hash).is_none());
    let mut edited = old.clone();
    edited
        .labels_mut()
        .insert(SCOPE_LABEL.into(), "Tenant".into());
    let mut relabelled = Replica::of(&edited, "tenant");
    relabelled.resource_version = Some("7".into());
    assert!(data_patch(&relabelled, &want, &payload.hash).is_none());
    let other_writer = replica_in_rg_a(Scope::Tenant, &payload);
    let mut other_writer = Replica::of(&other_writer, "tenant");
    other_writer.data_hash = live.data_hash.clone();
    other_writer.resource_version = Some("9".into());
    assert!(data_patch(&other_writer, &want, &payload.hash).is_none());
}
