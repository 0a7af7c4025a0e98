//! SIGTERM at the moments a rolling update can send it: to a leader whose
//! GenericSecret watch has not synced yet (it must still stop and hand the
//! Lease over, not hang until the kubelet kills it), and to a standby.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;

use crate::harness::{admin_kubeconfig_edited, wait_for};
use crate::leader::{LEASE, holder, standby_of};
use crate::operator::{Operator, REACT, http_get};

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// A user who may do what the operator does, except read GenericSecrets,
/// granted cluster-wide; removed by `revoke`.
async fn grant_all_but_generic_secrets(client: &Client, user: &str) {
    let meta = ObjectMeta {
        name: Some(user.to_owned()),
        ..ObjectMeta::default()
    };
    let read = ["get", "list", "watch"];
    let role = ClusterRole {
        metadata: meta.clone(),
        rules: Some(vec![
            rule("", &["namespaces"], &read),
            rule(
                "",
                &["secrets"],
                &["get", "list", "watch", "create", "patch"],
            ),
            rule(
                "coordination.k8s.io",
                &["leases"],
                &["get", "create", "update"],
            ),
            rule("events.k8s.io", &["events"], &["create", "patch"]),
        ]),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: user.into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: user.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Subject::default()
        }]),
    };
    let pp = PostParams::default();
    let roles = Api::<ClusterRole>::all(client.clone());
    roles.create(&pp, &role).await.expect("the ClusterRole");
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    bindings.create(&pp, &binding).await.expect("the binding");
}

async fn revoke(client: &Client, user: &str) {
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(user, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(user, &dp)
        .await;
}

/// The admin kubeconfig, impersonating `user` (kubeconfig's `as`).
fn kubeconfig_as(user: &str) -> std::path::PathBuf {
    admin_kubeconfig_edited(user, |config| {
        config["users"][0]["user"]["as"] = json!(user);
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_stopped_before_its_watches_synced_exits_and_releases_the_lease() {
    let lease = ["--lease-duration", "30s", "--renew-deadline", "20s"];
    let mut args = vec!["--leader-election", "--retry-period", "1s"];
    args.extend(lease);
    let mut op = Operator::configure(&args).await;
    let user = format!("gso-unsynced-{}", op.id);
    grant_all_but_generic_secrets(&op.client, &user).await;
    op.start_as(kubeconfig_as(&user));

    // It leads, and its controller runs with a GenericSecret watch that
    // fails (403) and so never syncs.
    wait_for("a leader", REACT, || holder(&op)).await;
    let addr = op.http_addr().await;
    let failing = "generic_secrets_operator_watch_failures_total{kind=\"GenericSecret\"}";
    wait_for("the GenericSecret watch to fail", REACT, || async {
        http_get(&addr, "/metrics").await.1.contains(failing)
    })
    .await;

    op.signal("TERM");
    let status = op.wait_exited("the leader").await;
    assert!(status.success(), "a stop signal exits cleanly: {status}");
    let leases: Api<Lease> = Api::namespaced(op.client.clone(), &op.tenant);
    let lease = leases.get(LEASE).await.expect("the Lease");
    let released = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(released, None, "the Lease is released");

    revoke(&op.client, &user).await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_stopped_exits_cleanly_and_the_leader_keeps_leading() {
    let op = Operator::start(&["--leader-election", "--retry-period", "1s"]).await;
    let leader = wait_for("a leader", REACT, || holder(&op)).await;
    let mut standby = standby_of(&op).await;

    standby.signal("TERM");
    let status = standby.wait_exited("the standby").await;
    assert!(status.success(), "a stop signal exits cleanly: {status}");
    assert_eq!(holder(&op).await, Some(leader));
    op.cleanup().await;
}
