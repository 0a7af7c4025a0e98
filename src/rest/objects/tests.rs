use super::*;
use crate::api::GenericSecretStatus;
use crate::rest::model::parse_json;
use axum::http::StatusCode;

const VALUE: &str = "bXktc2Vuc2l0aXZlLWRhdGE=";

fn create(body: Value) -> Result<NewSecret, ApiError> {
    let request: CreateRequest = parse_json(body.to_string().as_bytes())?;
    new_generic_secret(Scope::ResourceGroup, request)
}

fn stored(name: &str, scope: Scope, age_secs: i64) -> GenericSecret {
    let mut gs = create(json!({"name": name, "data": {"k": VALUE}}))
        .expect("valid")
        .object;
    gs.spec.scope = scope;
    gs.metadata.uid = Some(format!("uid-{name}"));
    gs.metadata.resource_version = Some("7".into());
    gs.metadata.creation_timestamp = Some(Time(
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1_000_000 - age_secs),
    ));
    gs
}

#[test]
fn builds_an_object_without_data_from_the_documented_request() {
    let new = create(json!({
        "name": "MY_GENERIC_SECRET",
        "data": {"some-credential": VALUE},
        "labels": [{"key": "ext.ai.sap.com/team", "value": "ml"}]
    }))
    .expect("valid");
    let gs = &new.object;
    assert_eq!(gs.metadata.name.as_deref(), Some("my-generic-secret"));
    assert_eq!(gs.spec.secret_name.as_deref(), Some("MY_GENERIC_SECRET"));
    assert_eq!(gs.spec.scope, Scope::ResourceGroup);
    assert_eq!(gs.spec.type_, "Opaque");
    assert_eq!(gs.spec.labels["ext.ai.sap.com/team"], "ml");
    // The value goes to the data Secret; the object only names it.
    assert_eq!(gs.spec.data, None);
    assert_eq!(
        data::source(gs),
        data::Source::Owned("my-generic-secret.data".into())
    );
    assert_eq!(new.data["some-credential"].0, b"my-sensitive-data");
    let debug = format!("{new:?}");
    assert!(debug.contains("some-credential") && !debug.contains("sensitive"));
    assert!(!serde_json::to_string(gs).expect("json").contains(VALUE));
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
}

#[test]
fn patch_replaces_inline_data_and_sets_or_removes_labels() {
    let mut old = stored("s", Scope::TenantWide, 0);
    old.spec.data_from = None;
    old.spec.data = Some(SecretData([("k".into(), VALUE.into())].into()));
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
    let new =
        patched_spec(&old.spec, request.data.as_ref(), request.labels.as_deref()).expect("valid");
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
    let keep = [Label {
        key: "ext.ai.sap.com/keep".into(),
        value: "".into(),
    }];
    let new = patched_spec(&old.spec, None, Some(&keep)).expect("valid");
    assert_eq!(
        merge_patch(&old, &new)["spec"],
        json!({"labels": {"ext.ai.sap.com/keep": null}})
    );
    assert!(check_patch(&PatchRequest::default()).is_err());
    assert!(check_patch(&request).is_ok());
    let bad = SecretData([("k".into(), "%%%".into())].into());
    assert!(patched_spec(&old.spec, Some(&bad), None).is_err());
    // An immutable label is refused before anything is written.
    let grounding = [Label {
        key: "ext.ai.sap.com/document-grounding".into(),
        value: "true".into(),
    }];
    let err = patched_spec(&old.spec, None, Some(&grounding)).expect_err("immutable");
    assert!(
        err.message().contains("cannot change after creation"),
        "{err:?}"
    );
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
    assert_eq!(
        body,
        json!({
            "name": "MY_SECRET",
            "createdAt": "1970-01-12T13:46:40Z",
            "labels": [{"key": "ext.ai.sap.com/team", "value": "ml"}],
            "resourceGroupSecretReplicationStatus": {"rg-1": true},
            "resourceGroupSecretsSyncStatus": {"rg-1": true}
        })
    );
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
