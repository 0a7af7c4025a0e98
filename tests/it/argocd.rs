//! The Argo CD health check (`deploy/argocd/health.lua`) run by Argo CD's
//! own Lua VM (gopher-lua, called as Argo CD calls a health script from
//! argocd-cm: `gso-health lua`, see `health`) on the JSON the real operator
//! leaves on real objects, as the apiserver serves it.

use generic_secrets_operator::api::Scope;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

use crate::harness::{TestNamespace, expect_success, kubectl, repo_root};
use crate::health::{Verdict, fetch, judge, raw_api, ready, versions_until_ready};
use crate::operator::{Operator, generic_secret};

const CM_KEY: &str = "resource.customizations.health.aicore.dev_GenericSecret";

fn script_path() -> std::path::PathBuf {
    repo_root().join("deploy/argocd/health.lua")
}

/// Argo CD's health of `obj`.
fn run_health(obj: &Value) -> Verdict {
    let script = script_path();
    judge("argocd health", &["lua", &script.to_string_lossy()], obj)
}

/// Health of `ns/name` as it is now.
async fn health(op: &Operator, ns: &str, name: &str) -> Verdict {
    run_health(&fetch(op, ns, name).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_wide_secret_is_progressing_then_healthy() {
    // An hour's override keeps the shadowing below in place for the test.
    let mut op = Operator::start(&["--override-interval", "1h"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    // Created while the operator is down: no status yet.
    op.stop();
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;
    let obj = fetch(&op, &tenant, "creds").await;
    assert!(obj.get("status").is_none(), "{obj}");
    run_health(&obj).expect(
        "Progressing",
        "Waiting for the operator to observe generation 1",
    );

    op.restart();
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    let obj = fetch(&op, &tenant, "creds").await;
    assert_eq!(
        obj["status"]["resourceGroupSecretReplicationStatus"],
        json!({"rg-a": true, "rg-b": true})
    );
    run_health(&obj).expect("Healthy", "2 of 2 targets hold the current data");
    // Ready=True with a resource group still false, which the operator does
    // not report together today: the script still says Progressing.
    let mut partial = obj.clone();
    partial["status"]["resourceGroupSecretReplicationStatus"]["rg-b"] = json!(false);
    run_health(&partial).expect(
        "Progressing",
        "1 resource group(s) awaiting the current data: rg-b",
    );

    // A rotation while the operator is down: the status is a generation behind.
    op.stop();
    op.set_data(&tenant, "creds", &[("k", "v2")]).await;
    let obj = fetch(&op, &tenant, "creds").await;
    let generation = obj["metadata"]["generation"].as_i64().expect("generation");
    assert_eq!(
        obj["status"]["observedGeneration"].as_i64(),
        Some(generation - 1)
    );
    run_health(&obj).expect(
        "Progressing",
        &format!("Waiting for the operator to observe generation {generation}"),
    );
    // Back up, the operator first reports the new data as not yet written.
    let versions = versions_until_ready(raw_api(&op, &tenant), "creds", || op.restart()).await;
    let writing = versions
        .iter()
        .find(|o| ready(o).is_some_and(|c| c["reason"] == "Progressing"))
        .expect("a Ready=False/Progressing version before the writes");
    run_health(writing).expect("Progressing", "Progressing: 2 of 2 targets not yet written");
    let last = versions.last().expect("the Ready version");
    run_health(last).expect("Healthy", "2 of 2 targets hold the current data");

    // A resource-group secret of the same name shadows it in rg-a.
    op.create(
        a.name(),
        &generic_secret("creds", Scope::ResourceGroup, &[("k", "group")]),
    )
    .await;
    op.wait_ready(a.name(), "creds", "True", "Shadowing").await;
    health(&op, a.name(), "creds")
        .await
        .expect("Healthy", "shadows a tenant-wide secret");
    op.wait_ready(&tenant, "creds", "False", "Shadowed").await;
    health(&op, &tenant, "creds").await.expect(
        "Progressing",
        "Shadowed: 1 of 2 resource groups hold a shadowing resource-group secret",
    );

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// A Secret nobody asked the operator to manage.
fn unmanaged_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_owned(), ByteString(b"theirs".to_vec()))].into()),
        ..Secret::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_and_blocked_objects_are_degraded() {
    let op = Operator::start(&["--max-tenant-wide-secrets", "1"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    op.secrets(a.name())
        .create(&PostParams::default(), &unmanaged_secret("creds"))
        .await
        .expect("creating the unmanaged Secret");
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    op.wait_ready(&tenant, "creds", "False", "Conflict").await;
    let conflict = health(&op, &tenant, "creds").await;
    conflict.expect("Degraded", "Conflict: 1 of 2 targets conflict: ");
    conflict.expect("Degraded", &format!("{}/creds", a.name()));

    // The second tenant-wide secret is over the quota of one.
    op.create(
        &tenant,
        &generic_secret("extra", Scope::TenantWide, &[("k", "x")]),
    )
    .await;
    op.wait_ready(&tenant, "extra", "False", "TenantWideQuotaExceeded")
        .await;
    health(&op, &tenant, "extra").await.expect(
        "Degraded",
        "TenantWideQuotaExceeded: at most 1 tenant-wide secrets per tenant",
    );

    // A resource-group secret in the tenant namespace.
    op.create(
        &tenant,
        &generic_secret("lost", Scope::ResourceGroup, &[("k", "v")]),
    )
    .await;
    op.wait_ready(&tenant, "lost", "False", "WrongNamespace")
        .await;
    health(&op, &tenant, "lost")
        .await
        .expect("Degraded", "WrongNamespace: ");

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[test]
fn messages_survive_quotes_escapes_and_unicode() {
    let tricky = "a \"quoted\" \\ back\nslash ünï 名 \u{7f}1";
    let obj = json!({
        "metadata": {"generation": 1, "gone": null},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": tricky}]
        }
    });
    let health = run_health(&obj);
    assert_eq!(health.status, "Degraded");
    assert_eq!(health.message, format!("InvalidSpec: {tricky}"));
}

#[test]
fn json_null_and_empty_collections_reach_the_script_as_argocd_converts_them() {
    // Argo CD: a null member is nil (absent), `{}` and `[]` both an empty
    // table. A null observedGeneration is then absent, i.e. not observed.
    let ready = json!({"type": "Ready", "status": "True", "reason": "Replicated", "message": "ok"});
    let mut obj = json!({
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [ready], "resourceGroupSecretReplicationStatus": {}}
    });
    run_health(&obj).expect("Healthy", "ok");
    obj["status"]["resourceGroupSecretReplicationStatus"] = json!([]);
    run_health(&obj).expect("Healthy", "ok");
    obj["status"]["observedGeneration"] = Value::Null;
    run_health(&obj).expect(
        "Progressing",
        "Waiting for the operator to observe generation 1",
    );
    obj["status"] = json!({"conditions": null});
    run_health(&obj).expect("Progressing", "generation 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn argocd_cm_patch_embeds_the_script_verbatim_and_applies() {
    let script = std::fs::read_to_string(script_path()).expect("reading health.lua");
    let patch_file = repo_root().join("deploy/argocd/argocd-cm-patch.yaml");
    let patch: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(&patch_file).expect("reading argocd-cm-patch.yaml"),
    )
    .expect("argocd-cm-patch.yaml is YAML");
    assert_eq!(
        patch["data"][CM_KEY].as_str(),
        Some(script.as_str()),
        "argocd-cm-patch.yaml must embed deploy/argocd/health.lua verbatim"
    );

    // The README's command, against a stand-in argocd-cm.
    let ns = TestNamespace::new("argocd").await;
    let out = kubectl(["-n", ns.name(), "create", "configmap", "argocd-cm"]);
    expect_success(&out, "creating argocd-cm");
    let patch_file = patch_file.to_string_lossy();
    let out = kubectl([
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "argocd-cm",
        "--patch-file",
        &patch_file,
    ]);
    expect_success(&out, "kubectl patch argocd-cm");
    let jsonpath = format!("jsonpath={{.data.{}}}", CM_KEY.replace('.', "\\."));
    let out = kubectl([
        "-n",
        ns.name(),
        "get",
        "configmap",
        "argocd-cm",
        "-o",
        &jsonpath,
    ]);
    assert_eq!(expect_success(&out, "reading argocd-cm"), script);
    ns.cleanup().await;
}
