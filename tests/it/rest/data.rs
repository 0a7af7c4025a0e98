//! Secret values sent through the REST API live in a Kubernetes Secret of
//! the object's namespace (`<object>.data`, referenced by `dataFrom`, owned
//! by the object), written as the caller; the `GenericSecret` carries no
//! value. Who may read values is RBAC on Secrets. A PATCH rotates that
//! Secret; refused calls change nothing.

use std::collections::BTreeMap;

use generic_secrets_operator::api::{DataFrom, GenericSecret, Scope, SecretRef};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{REST, Rest, SECRETS, secret, token};
use crate::harness::{
    bind_role, control_plane, expect_success, kubectl, kubectl_as_developer, wait_deleted, wait_for,
};
use crate::operator::{Operator, REACT, b64, generic_secret};

/// Gives user `developer` the `rules` (API group, resource, verbs) in `ns`
/// by a Role named `name`, and waits until the authorizer applies it.
pub(super) async fn grant(client: &Client, ns: &str, name: &str, rules: &[(&str, &str, &[&str])]) {
    let policy = rules
        .iter()
        .map(|(group, resource, verbs)| PolicyRule {
            api_groups: Some(vec![group.to_string()]),
            resources: Some(vec![resource.to_string()]),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    let developer = Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "User".into(),
        name: "developer".into(),
        ..Subject::default()
    };
    bind_role(client, ns, name, policy, developer).await;
    for (group, resource, verbs) in rules {
        let resource = match *group {
            "" => resource.to_string(),
            group => format!("{resource}.{group}"),
        };
        wait_for("the Role to take effect", REACT, || async {
            let out = kubectl_as_developer(["auth", "can-i", verbs[0], &resource, "-n", ns]);
            String::from_utf8_lossy(&out.stdout).trim() == "yes"
        })
        .await;
    }
}

/// Everything a refused call could have changed in `ns`: the objects'
/// specs and the Secrets' data, labels and owners (not status, which the
/// controller writes).
async fn state(op: &Operator, ns: &str) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    for gs in op
        .gsecs(ns)
        .list(&Default::default())
        .await
        .expect("list")
        .items
    {
        state.insert(format!("gsec/{}", gs.name_any()), json!(gs.spec));
    }
    for s in op
        .secrets(ns)
        .list(&Default::default())
        .await
        .expect("list")
        .items
    {
        let value = json!([s.data, s.metadata.labels, s.metadata.owner_references]);
        state.insert(format!("secret/{}", s.name_any()), value);
    }
    state
}

fn decoded(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .expect("the key");
    String::from_utf8_lossy(&bytes.0).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_keeps_values_in_a_secret_owned_by_the_object() {
    let op = Operator::start(&REST).await;
    let a = op.resource_group("rg-a").await;
    let ns = a.name();
    let rest = Rest::new(&op).await;
    let rg_a: &[(&str, &str)] = &[("AI-Resource-Group", "rg-a")];

    rest.post(rg_a, secret("DB_CREDS", &[("password", "v1-in-a-secret")]))
        .await
        .expect(200);
    let gs = op.gsecs(ns).get("db-creds").await.expect("the object");
    assert_eq!(gs.spec.data, None, "the object carries no value");
    assert_eq!(
        gs.spec.data_from,
        Some(DataFrom {
            secret_ref: SecretRef {
                name: "db-creds.data".into()
            }
        })
    );
    assert!(
        !serde_json::to_string(&gs)
            .expect("json")
            .contains(&b64("v1-in-a-secret"))
    );
    // kubectl shows the data Secret to whoever may read Secrets.
    let shown = expect_success(
        &kubectl([
            "get",
            "secret",
            "db-creds.data",
            "-n",
            ns,
            "-o",
            "json",
            "--show-managed-fields",
        ]),
        "kubectl get secret",
    );
    let data: Secret = serde_json::from_str(&shown).expect("a Secret");
    assert_eq!(decoded(&data, "password"), "v1-in-a-secret");
    assert_eq!(data.labels()["aicore.dev/source"], "true");
    let owner = &data.metadata.owner_references.clone().expect("an owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("GenericSecret", gs.uid().expect("uid").as_str())
    );
    assert!(
        data.managed_fields()
            .iter()
            .any(|f| f.manager.as_deref() == Some("aicore-rest-api"))
    );
    op.wait_secret_data(ns, "db-creds", &[("password", "v1-in-a-secret")])
        .await;
    // The first reconcile found the data: never reported missing.
    let events = Api::<Event>::namespaced(op.client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("events");
    let missing: Vec<_> = events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("SourceNotFound"))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");

    // A developer who may read GenericSecrets but not Secrets sees no value.
    grant(
        &op.client,
        ns,
        "gsec-viewer",
        &[("aicore.dev", "genericsecrets", &["get", "list"])],
    )
    .await;
    let as_developer = expect_success(
        &kubectl_as_developer(["get", "gsec", "db-creds", "-n", ns, "-o", "json"]),
        "developer reads the GenericSecret",
    );
    assert!(
        !as_developer.contains(&b64("v1-in-a-secret")),
        "{as_developer}"
    );
    let forbidden = kubectl_as_developer(["get", "secret", "db-creds.data", "-n", ns]);
    assert!(!forbidden.status.success());
    assert!(
        String::from_utf8_lossy(&forbidden.stderr).contains("forbidden"),
        "{forbidden:?}"
    );
    let developer = token(&control_plane().developer_kubeconfig);
    let read = rest
        .curl(
            Some(&developer),
            "GET",
            &format!("{SECRETS}/DB_CREDS"),
            rg_a,
            None,
            &[],
        )
        .await;
    assert_eq!(read.expect(200)["name"], "DB_CREDS");

    // PATCH rotates the Secret; the object stays without a value.
    let path = format!("{SECRETS}/DB_CREDS");
    let rotate = json!({"data": {"password": b64("v2-rotated")}});
    rest.admin("PATCH", &path, rg_a, Some(rotate.clone()))
        .await
        .expect(200);
    let data = op
        .wait_secret_data(ns, "db-creds.data", &[("password", "v2-rotated")])
        .await;
    assert_eq!(data.metadata.owner_references.map(|o| o.len()), Some(1));
    op.wait_secret_data(ns, "db-creds", &[("password", "v2-rotated")])
        .await;
    let after = op.gsecs(ns).get("db-creds").await.expect("the object");
    assert_eq!(
        (after.spec.data, after.metadata.generation),
        (None, gs.metadata.generation)
    );

    // Refused calls change nothing.
    let before = state(&op, ns).await;
    let body = json!({"data": {"password": b64("v3-refused")}}).to_string();
    rest.curl(Some(&developer), "PATCH", &path, rg_a, Some(&body), &[])
        .await
        .expect_error(403, "cannot patch resource \"secrets\"");
    let bad_label = json!({"data": {"password": b64("v3-refused")},
        "labels": [{"key": "ext.ai.sap.com/document-grounding", "value": "true"}]});
    rest.admin("PATCH", &path, rg_a, Some(bad_label))
        .await
        .expect_error(400, "cannot change after creation");
    let bad_data = json!({"data": {"password": "not base64!"}});
    rest.admin("PATCH", &path, rg_a, Some(bad_data))
        .await
        .expect_error(400, "not valid base64");
    let new = secret("REFUSED", &[("k", "v3-refused")]).to_string();
    rest.curl(Some(&developer), "POST", SECRETS, rg_a, Some(&new), &[])
        .await
        .expect_error(403, "cannot create resource \"secrets\"");
    // Allowed to write Secrets but not objects: the data Secret written
    // first is taken back.
    grant(
        &op.client,
        ns,
        "secret-writer",
        &[("", "secrets", &["create", "delete"])],
    )
    .await;
    rest.curl(Some(&developer), "POST", SECRETS, rg_a, Some(&new), &[])
        .await
        .expect_error(403, "cannot create resource \"genericsecrets\"");
    rest.admin(
        "POST",
        SECRETS,
        rg_a,
        Some(secret("DB_CREDS", &[("k", "v3-refused")])),
    )
    .await
    .expect_error(409, "secret DB_CREDS already exists");
    assert_eq!(state(&op, ns).await, before);

    // DELETE: the finalizer takes the replica, the garbage collector the data.
    rest.admin("DELETE", &path, rg_a, None).await.expect(200);
    wait_deleted(&op.gsecs(ns), "db-creds", REACT).await;
    op.wait_secret_absent(ns, "db-creds").await;
    op.wait_secret_absent(ns, "db-creds.data").await;

    rest.assert_never_returned(&["v1-in-a-secret", "v2-rotated", "v3-refused"]);
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_rotates_inline_objects_in_place_and_leaves_foreign_sources_alone() {
    let op = Operator::start(&REST).await;
    let rest = Rest::new(&op).await;
    let tenant: &[(&str, &str)] = &[("AI-Tenant-Scope", "true")];

    // Made with kubectl, inline data: the REST API rotates it in place.
    op.create(
        &op.tenant,
        &generic_secret("inline", Scope::Tenant, &[("k", "inline-v1")]),
    )
    .await;
    op.wait_secret_data(&op.tenant, "inline", &[("k", "inline-v1")])
        .await;
    let path = format!("{SECRETS}/inline");
    rest.admin(
        "PATCH",
        &path,
        tenant,
        Some(json!({"data": {"k": b64("inline-v2")}})),
    )
    .await
    .expect(200);
    op.wait_secret_data(&op.tenant, "inline", &[("k", "inline-v2")])
        .await;
    let gs = op.gsecs(&op.tenant).get("inline").await.expect("object");
    assert_eq!(
        gs.spec.data.map(|d| d.0),
        Some([("k".to_owned(), b64("inline-v2"))].into())
    );
    assert!(
        rest.get("inline", tenant)
            .await
            .expect(200)
            .get("data")
            .is_none()
    );

    // dataFrom someone else's Secret (GitOps): not this API's to write.
    let source = Secret {
        metadata: ObjectMeta {
            name: Some("sealed-output".into()),
            labels: Some([("aicore.dev/source".to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        string_data: Some([("k".to_owned(), "gitops-v1".to_owned())].into()),
        ..Secret::default()
    };
    op.secrets(&op.tenant)
        .create(&PostParams::default(), &source)
        .await
        .expect("source");
    let mut gitops: GenericSecret = generic_secret("gitops", Scope::Tenant, &[]);
    gitops.spec.data = None;
    gitops.spec.data_from = Some(DataFrom {
        secret_ref: SecretRef {
            name: "sealed-output".into(),
        },
    });
    op.create(&op.tenant, &gitops).await;
    op.wait_secret_data(&op.tenant, "gitops", &[("k", "gitops-v1")])
        .await;
    let before = state(&op, &op.tenant).await;
    rest.admin(
        "PATCH",
        &format!("{SECRETS}/gitops"),
        tenant,
        Some(json!({"data": {"k": b64("gitops-v2")}})),
    )
    .await
    .expect_error(409, "takes its data from Secret sealed-output (dataFrom)");
    assert_eq!(state(&op, &op.tenant).await, before);

    rest.assert_never_returned(&["inline-v1", "inline-v2", "gitops-v1", "gitops-v2"]);
    op.cleanup().await;
}
