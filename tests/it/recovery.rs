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
    let message = op.wait_blocked(a.name(), "cert", "InvalidSpec").await;
    assert!(message.contains("missing: tls.key"), "{message}");
    op.assert_no_secret(a.name(), "cert").await;
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
    let message = op.wait_blocked(&op.tenant, "creds", "Conflict").await;
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
        // The previous one may still be cleaning up: create as soon as the
        // name is free again, as a user retrying would.
        wait_for("the name flap to be free", REACT, || async {
            let api = op.gsecs(&op.tenant);
            api.create(&PostParams::default(), &flap)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
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
    let message = op.wait_blocked(a.name(), "big", "InvalidSpec").await;
    assert!(
        message.contains("a Secret holds at most 1048576"),
        "{message}"
    );
    op.assert_no_secret(a.name(), "big").await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_is_counted_under_its_own_category() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    // An admission policy refuses every Secret write in this namespace.
    let policy = deny_secrets(a.name());
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    let addr = op.http_addr().await;
    let metrics = wait_for("a failed replica write in the metrics", REACT, || async {
        let (_, metrics) = http_get(&addr, "/metrics").await;
        metrics
            .contains("reconcile_errors_total{category=\"write_replicas\"}")
            .then_some(metrics)
    })
    .await;
    assert!(!metrics.contains("category=\"finalizer\""), "{metrics}");
    crate::harness::kubectl(["delete", "-f", &policy]);
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_hands_its_secret_over_without_a_gap() {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let op = Operator::start(&["--override-interval", "10m"]).await;
    let a = op.resource_group("rg-a").await;
    crate::generic_secrets::shadow_tenant_wide(&op, a.name()).await;
    let config = watcher::Config::default().fields("metadata.name=creds");
    let mut seen = watcher(op.secrets(a.name()), config).boxed();
    op.delete(a.name(), "creds").await;
    // Until the tenant-wide data is in place, the Secret is never deleted
    // (its owner reference to the object going away is dropped first).
    let wide = |s: &k8s_openapi::api::core::v1::Secret| {
        let value = s.data.as_ref().and_then(|d| d.get("k"));
        value.map(|v| v.0.as_slice()) == Some(b"tenant".as_slice())
    };
    let handed_over = tokio::time::timeout(REACT, async {
        while let Some(event) = seen.next().await {
            match event {
                Ok(watcher::Event::Delete(_)) => return Err("the Secret was deleted"),
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) if wide(&s) => {
                    return Ok(());
                }
                _ => {}
            }
        }
        Err("the watch ended")
    })
    .await;
    assert_eq!(
        handed_over,
        Ok(Ok(())),
        "the tenant-wide data in place without a gap"
    );
    // Once the resource-group object is gone, the Secret no longer points
    // at it, so the garbage collector has nothing to delete.
    crate::harness::wait_deleted(&op.gsecs(a.name()), "creds", REACT).await;
    let secret = op.secrets(a.name()).get("creds").await.expect("get");
    assert!(wide(&secret));
    assert!(
        secret
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    a.cleanup().await;
    op.cleanup().await;
}

/// A ValidatingAdmissionPolicy (and binding) denying Secret writes in
/// `namespace`, active when this returns; returns its manifest path.
fn deny_secrets(namespace: &str) -> String {
    let name = format!("deny-secrets-{namespace}");
    let manifest = format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}}
  validations: [{{expression: 'false', reason: Forbidden, message: secrets are frozen here}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}
"
    );
    let path = crate::harness::scratch_dir().join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).expect("writing the policy");
    let path = path.to_string_lossy().into_owned();
    let out = crate::harness::kubectl(["apply", "-f", &path]);
    crate::harness::expect_success(&out, "applying the admission policy");
    // Policies take effect shortly after they are created.
    let probe = [
        "create",
        "secret",
        "generic",
        "probe",
        "-n",
        namespace,
        "--dry-run=server",
    ];
    for _ in 0..100 {
        let out = crate::harness::kubectl(probe);
        if String::from_utf8_lossy(&out.stderr).contains("frozen") {
            return path;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the admission policy did not take effect");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overriding_tenant_wide_object_drops_the_shadows_owner_reference() {
    let op = Operator::start(&["--override-interval", "2s"]).await;
    let a = op.resource_group("rg-a").await;
    crate::generic_secrets::shadow_tenant_wide(&op, a.name()).await;
    // The override: the tenant-wide data in the shadow's Secret, and with
    // it no owner reference to the shadow, which the garbage collector
    // would follow when the shadow goes.
    let overridden = op
        .wait_secret_data(a.name(), "creds", &[("k", "tenant")])
        .await;
    let api = op.secrets(a.name());
    wait_for("the shadow's owner reference dropped", REACT, || async {
        let secret = api.get("creds").await.map_err(|e| e.to_string())?;
        let owners = secret.metadata.owner_references.unwrap_or_default();
        owners.is_empty().then_some(()).ok_or(format!("{owners:?}"))
    })
    .await;
    op.delete(a.name(), "creds").await;
    crate::harness::wait_deleted(&op.gsecs(a.name()), "creds", REACT).await;
    let kept = api
        .get("creds")
        .await
        .expect("the Secret outlives the shadow");
    assert_eq!(kept.metadata.uid, overridden.metadata.uid);
    a.cleanup().await;
    op.cleanup().await;
}
