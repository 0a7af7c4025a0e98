//! Flux's kustomize-controller and kpt wait on kstatus
//! (`sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute`, run by `gso-health
//! kstatus`): what it computes for objects the real operator left in each
//! state, and `kubectl wait --for=condition=Ready`.

use std::process::{Child, Stdio};

use generic_secrets_operator::api::Scope;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::Value;

use crate::harness::{control_plane, tool_command, wait_for};
use crate::health::{Verdict, fetch, judge, raw_api, ready, versions_until_ready};
use crate::operator::{Operator, REACT, generic_secret};

fn kstatus(obj: &Value) -> Verdict {
    judge("kstatus", &["kstatus"], obj)
}

async fn kstatus_of(op: &Operator, ns: &str, name: &str) -> Verdict {
    kstatus(&fetch(op, ns, name).await)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_progress_while_replicating_and_current_once_every_target_holds_the_data() {
    // An hour's override keeps the shadowing below in place for the test.
    let mut op = Operator::start(&["--override-interval", "1h"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    // Created while the operator is down. Without a status kstatus cannot
    // tell it from a finished object (its README says so): no operator can
    // help before it has seen the object.
    op.stop();
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;
    kstatus_of(&op, &tenant, "creds")
        .await
        .expect("Current", "Resource is current");

    op.restart();
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    assert_eq!(op.replicas_holding("creds", &[("k", "v1")]).await, 2);
    kstatus_of(&op, &tenant, "creds")
        .await
        .expect("Current", "Resource is Ready");

    // A rotation while the operator is down: the status is a generation behind.
    op.stop();
    op.set_data(&tenant, "creds", &[("k", "v2")]).await;
    kstatus_of(&op, &tenant, "creds").await.expect(
        "InProgress",
        "GenericSecret generation is 2, but latest observed generation is 1",
    );
    // Back up, the operator first reports the new data as not yet written.
    let versions = versions_until_ready(raw_api(&op, &tenant), "creds", || op.restart()).await;
    let writing = versions
        .iter()
        .find(|o| ready(o).is_some_and(|c| c["reason"] == "Progressing"))
        .expect("a Ready=False/Progressing version before the writes");
    kstatus(writing).expect("InProgress", "2 of 2 targets not yet written");
    let last = versions.last().expect("the Ready version");
    kstatus(last).expect("Current", "Resource is Ready");
    assert_eq!(op.replicas_holding("creds", &[("k", "v2")]).await, 2);

    // Shadowed in rg-a until the override: in progress, not failed.
    op.create(
        a.name(),
        &generic_secret("creds", Scope::ResourceGroup, &[("k", "group")]),
    )
    .await;
    op.wait_ready(a.name(), "creds", "True", "Shadowing").await;
    kstatus_of(&op, a.name(), "creds")
        .await
        .expect("Current", "Resource is Ready");
    op.wait_ready(&tenant, "creds", "False", "Shadowed").await;
    kstatus_of(&op, &tenant, "creds")
        .await
        .expect("InProgress", "1 of 2 resource groups hold a shadowing");

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// Waits for `ns/name` blocked with `reason`; asserts kstatus says Failed
/// with the condition's message, from a `Stalled` condition like `Ready`.
async fn expect_failed(op: &Operator, ns: &str, name: &str, reason: &str, message_part: &str) {
    let message = op.wait_blocked(ns, name, reason).await;
    let obj = fetch(op, ns, name).await;
    kstatus(&obj).expect("Failed", &message);
    assert!(message.contains(message_part), "{message}");
    let stalled = condition(&obj, "Stalled").expect("a Stalled condition");
    let field = |key: &str| stalled[key].as_str();
    assert_eq!(
        (field("status"), field("reason"), field("message")),
        (Some("True"), Some(reason), Some(message.as_str())),
        "{obj}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_objects_are_failed_with_their_message() {
    let op = Operator::start(&["--max-tenant-wide-secrets", "1"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    // A conflict with a Secret nobody asked the operator to manage.
    let unmanaged = Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_owned(), ByteString(b"theirs".to_vec()))].into()),
        ..Secret::default()
    };
    op.secrets(a.name())
        .create(&PostParams::default(), &unmanaged)
        .await
        .expect("creating the unmanaged Secret");
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;
    let conflicting = format!("1 of 2 targets conflict: Secret {}/creds", a.name());
    expect_failed(&op, &tenant, "creds", "Conflict", &conflicting).await;

    // The second tenant-wide secret is over the quota of one.
    op.create(
        &tenant,
        &generic_secret("extra", Scope::TenantWide, &[("k", "x")]),
    )
    .await;
    let quota = "at most 1 tenant-wide secrets per tenant";
    expect_failed(&op, &tenant, "extra", "TenantWideQuotaExceeded", quota).await;
    // `kubectl get -o wide` shows why, without a describe.
    let wide = crate::harness::kubectl(["-n", &tenant, "get", "gsec", "extra", "-o", "wide"]);
    let wide = crate::harness::expect_success(&wide, "kubectl get gsec -o wide");
    assert!(
        wide.contains("REASON") && wide.contains("TenantWideQuotaExceeded") && wide.contains(quota),
        "kubectl get -o wide:\n{wide}"
    );

    // An invalid spec: a TLS Secret without its key.
    let mut tls = generic_secret("cert", Scope::ResourceGroup, &[("tls.crt", "c")]);
    tls.spec.type_ = "kubernetes.io/tls".into();
    op.create(b.name(), &tls).await;
    expect_failed(&op, b.name(), "cert", "InvalidSpec", "missing: tls.key").await;

    // Once the conflict is gone the object replicates; Stalled goes with it.
    op.secrets(a.name())
        .delete("creds", &DeleteParams::default())
        .await
        .expect("deleting the unmanaged Secret");
    op.wait_ready(&tenant, "creds", "True", "Replicated").await;
    let obj = fetch(&op, &tenant, "creds").await;
    kstatus(&obj).expect("Current", "Resource is Ready");
    assert!(condition(&obj, "Stalled").is_none(), "{obj}");

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// `kubectl wait --for=condition=Ready gsec/<name>` in `ns`, started now.
fn kubectl_wait(ns: &str, name: &str, timeout: &str) -> Child {
    tool_command("kubectl", &control_plane().kubeconfig)
        .args(["-n", ns, "wait", "--for=condition=Ready"])
        .arg(format!("gsec/{name}"))
        .arg(format!("--timeout={timeout}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl wait")
}

/// Waits (with a deadline) for `child` to exit; returns success and output.
async fn finished(child: Child) -> (bool, String) {
    let mut child = Some(child);
    wait_for("kubectl wait to exit", REACT, || {
        let exited = child.as_mut().expect("child").try_wait().expect("try_wait");
        std::future::ready(exited.is_some())
    })
    .await;
    let out = child
        .take()
        .expect("child")
        .wait_with_output()
        .expect("output");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_wait_for_ready_returns_once_replication_completes() {
    let mut op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let tenant = op.tenant.clone();

    for (generation, value) in [(1, "v1"), (2, "v2")] {
        op.stop();
        if generation == 1 {
            let gs = generic_secret("creds", Scope::TenantWide, &[("k", value)]);
            op.create(&tenant, &gs).await;
        } else {
            op.set_data(&tenant, "creds", &[("k", value)]).await;
        }
        // Not ready yet: no status at all, then a Ready=True a generation old.
        let (ok, out) = finished(kubectl_wait(&tenant, "creds", "1s")).await;
        assert!(
            !ok && out.contains("timed out"),
            "generation {generation}: {out}"
        );

        let waiting = kubectl_wait(&tenant, "creds", "30s");
        op.restart();
        let (ok, out) = finished(waiting).await;
        assert!(ok, "generation {generation}: {out}");
        eprintln!("kubectl wait, generation {generation}: {out}");
        // When it returns, every target already holds the data.
        assert_eq!(op.replicas_holding("creds", &[("k", value)]).await, 2);
    }

    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}
