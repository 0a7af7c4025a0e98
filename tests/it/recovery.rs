//! Recovery from conflicts and bad input against the real apiserver: the
//! operator never touches a Secret it did not create, and it notices within
//! a watch event (the tests' resync is 10 minutes) when the way is clear.

use std::time::Instant;

use generic_secrets_operator::api::Scope;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use crate::generic_secrets::{events_about, plain_secret};
use crate::harness::wait_for;
use crate::operator::{Operator, REACT, generic_secret, http_get};

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_clears_itself_when_the_unmanaged_secret_goes() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let theirs = plain_secret("creds", &[], "theirs");
    let secrets = op.secrets(a.name());
    secrets
        .create(&PostParams::default(), &theirs)
        .await
        .expect("create");
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    op.wait_ready(&op.tenant, "creds", "False", "Conflict")
        .await;

    let deleted = Instant::now();
    secrets
        .delete("creds", &DeleteParams::default())
        .await
        .expect("delete");
    op.wait_secret_data(a.name(), "creds", &[("k", "ours")])
        .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    println!(
        "conflict cleared {:?} after the deletion",
        deleted.elapsed()
    );
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typed_secret_without_its_keys_is_an_invalid_spec_and_writes_nothing() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let mut tls = generic_secret("cert", Scope::ResourceGroup, &[("tls.crt", "c")]);
    tls.spec.type_ = "kubernetes.io/tls".into();
    op.create(a.name(), &tls).await;
    let gs = op
        .wait_ready(a.name(), "cert", "False", "InvalidSpec")
        .await;
    let message = gs
        .ready_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("missing: tls.key"), "{message}");
    assert!(
        op.secrets(a.name())
            .get_opt("cert")
            .await
            .expect("get")
            .is_none()
    );
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_watch_is_logged_as_an_error_and_keeps_the_operator_unready() {
    // `developer` may not list anything: every watch fails with 403.
    let mut op = Operator::configure(&[]).await;
    op.start_as(crate::harness::control_plane().developer_kubeconfig.clone());
    let addr = op.http_addr().await;
    wait_for("the failure to be logged as an error", REACT, || async {
        op.logs()
            .lines()
            .any(|l| l.contains("\"ERROR\"") && l.contains("watch failing"))
    })
    .await;
    let (code, body) = http_get(&addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    let (_, metrics) = http_get(&addr, "/metrics").await;
    assert!(
        metrics.contains("generic_secrets_operator_watch_failures_total{kind=\"Namespace\"}"),
        "{metrics}"
    );
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_the_apiserver_refuses_is_reported_once_and_not_retried() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    // The key is there, but the apiserver also checks that it is JSON.
    let mut bad = generic_secret("pull", Scope::TenantWide, &[(".dockerconfigjson", "no")]);
    bad.spec.type_ = "kubernetes.io/dockerconfigjson".into();
    op.create(&op.tenant, &bad).await;
    let gs = op
        .wait_ready(&op.tenant, "pull", "False", "ReplicationFailed")
        .await;
    let message = gs
        .ready_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("refused"), "{message}");

    // While the operator handles another object start to Ready, the refused
    // one is neither retried nor rewritten.
    op.create(
        &op.tenant,
        &generic_secret("marker", Scope::Tenant, &[("k", "m")]),
    )
    .await;
    op.wait_ready(&op.tenant, "marker", "True", "Replicated")
        .await;
    let later = op.gsecs(&op.tenant).get("pull").await.expect("get");
    assert_eq!(later.resource_version(), gs.resource_version());
    let events = events_about(&op, &op.tenant, "pull").await;
    let failures = events
        .iter()
        .filter(|e| e.starts_with("ReconcileFailed"))
        .count();
    assert_eq!(failures, 0, "{events:?}");
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn adoption_takes_over_only_secrets_whose_owner_consented() {
    let op = Operator::start(&["--adopt-existing"]).await;
    let (a, b) = (
        op.resource_group("rg-a").await,
        op.resource_group("rg-b").await,
    );
    let mut offered = plain_secret("creds", &[], "old");
    offered
        .annotations_mut()
        .insert("aicore.dev/adopt".into(), "true".into());
    let params = PostParams::default();
    op.secrets(a.name())
        .create(&params, &offered)
        .await
        .expect("create");
    let kept = plain_secret("creds", &[], "theirs");
    let kept = op
        .secrets(b.name())
        .create(&params, &kept)
        .await
        .expect("create");
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    op.wait_secret_data(a.name(), "creds", &[("k", "ours")])
        .await;
    let gs = op
        .wait_ready(&op.tenant, "creds", "False", "Conflict")
        .await;
    let message = gs
        .ready_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("annotate it aicore.dev/adopt=true"),
        "{message}"
    );
    let untouched = op.secrets(b.name()).get("creds").await.expect("get");
    assert_eq!(untouched.resource_version(), kept.resource_version());
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// Another field manager takes a replica's data over with a forced apply.
async fn overwrite(op: &Operator, ns: &str) {
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"k": crate::operator::b64("intruder")},
    });
    let params = kube::api::PatchParams::apply("intruder").force();
    // The replica may be gone for a moment (another round deleted it).
    let _ = op
        .secrets(ns)
        .patch("creds", &params, &kube::api::Patch::Apply(&patch))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_converge_and_never_touch_an_unmanaged_secret() {
    let op = Operator::start(&[]).await;
    let (a, b) = (
        op.resource_group("rg-a").await,
        op.resource_group("rg-b").await,
    );
    let c = op.resource_group("rg-c").await;
    let flapping = op.plain_namespace().await;
    let theirs = op
        .secrets(c.name())
        .create(
            &PostParams::default(),
            &plain_secret("creds", &[], "theirs"),
        )
        .await
        .expect("create");
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    op.wait_secret_data(a.name(), "creds", &[("k", "ours")])
        .await;
    for round in 0..10 {
        overwrite(&op, a.name()).await;
        let _ = op
            .secrets(b.name())
            .delete("creds", &DeleteParams::default())
            .await;
        let group = (round % 2 == 0).then_some("rg-flap");
        crate::operator::label_namespace(flapping.name(), "aicore.dev/resource-group", group).await;
        let flap = generic_secret("flap", Scope::TenantWide, &[("k", "f")]);
        op.create(&op.tenant, &flap).await;
        op.delete(&op.tenant, "flap").await;
    }
    for ns in [a.name(), b.name()] {
        op.wait_secret_data(ns, "creds", &[("k", "ours")]).await;
    }
    // Ten rounds left the namespace unlabelled: no replica there, and none
    // of the deleted objects anywhere.
    op.wait_secret_absent(flapping.name(), "creds").await;
    wait_for("no replica of the deleted objects", REACT, || async {
        op.replicas_holding("flap", &[]).await == 0
    })
    .await;
    let after = op.secrets(c.name()).get("creds").await.expect("get");
    assert_eq!(
        after.resource_version(),
        theirs.resource_version(),
        "an unmanaged Secret was touched"
    );
    for ns in [a, b, c, flapping] {
        ns.cleanup().await;
    }
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_over_a_megabyte_is_an_invalid_spec_and_writes_nothing() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    // Just over 1 MiB decoded, still under the object size etcd stores.
    let big = "x".repeat(520 * 1024);
    let gs = generic_secret("big", Scope::ResourceGroup, &[("one", &big), ("two", &big)]);
    op.create(a.name(), &gs).await;
    let gs = op.wait_ready(a.name(), "big", "False", "InvalidSpec").await;
    let message = gs
        .ready_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("a Secret holds at most 1048576"),
        "{message}"
    );
    assert!(
        op.secrets(a.name())
            .get_opt("big")
            .await
            .expect("get")
            .is_none()
    );
    a.cleanup().await;
    op.cleanup().await;
}
