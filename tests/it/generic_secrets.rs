//! The AI Core rules, each shown against the real apiserver with the real
//! operator binary (see `operator`).

use std::collections::BTreeMap;

use futures::StreamExt;
use generic_secrets_operator::api::{GenericSecret, Scope, TargetState};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::harness::{DEFAULT_TIMEOUT, wait_for};
use crate::operator::{Operator, REACT, generic_secret, http_get, label_namespace};

fn replication_map(gs: &GenericSecret) -> BTreeMap<String, bool> {
    gs.status
        .as_ref()
        .and_then(|s| s.resource_group_secret_replication_status.clone())
        .unwrap_or_default()
}

fn label(secret: &Secret, key: &str) -> Option<String> {
    secret.labels().get(key).cloned()
}

/// Events about `name` in `ns`, as "reason: note" lines.
pub async fn events_about(op: &Operator, ns: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(op.client.clone(), ns);
    let list = api
        .list(&ListParams::default())
        .await
        .expect("listing events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_scope_writes_one_secret_in_the_tenant_namespace() {
    let op = Operator::start(&[]).await;
    let rg = op.resource_group("rg-a").await;
    let mut gs = generic_secret("main-secret", Scope::Tenant, &[("token", "t0p")]);
    gs.spec
        .labels
        .insert("ext.ai.sap.com/team".into(), "ml".into());
    op.create(&op.tenant, &gs).await;

    let secret = op
        .wait_secret_data(&op.tenant, "main-secret", &[("token", "t0p")])
        .await;
    assert_eq!(label(&secret, "ext.ai.sap.com/team").as_deref(), Some("ml"));
    assert_eq!(
        label(&secret, "app.kubernetes.io/managed-by").as_deref(),
        Some("generic-secrets-operator")
    );
    let gs = op
        .wait_ready(&op.tenant, "main-secret", "True", "Replicated")
        .await;
    let status = gs.status.expect("status");
    assert!(status.data_hash.expect("hash").starts_with("sha256:"));
    assert_eq!(status.resource_groups.len(), 1);
    assert_eq!(status.resource_groups[0].namespace, op.tenant);
    // Nothing goes into resource groups for the main-tenant scope.
    assert!(
        op.secrets(rg.name())
            .get_opt("main-secret")
            .await
            .expect("get")
            .is_none()
    );
    rg.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_wide_reaches_every_resource_group_including_new_ones() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let plain = op.plain_namespace().await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;

    for ns in [a.name(), b.name()] {
        op.wait_secret_data(ns, "creds", &[("k", "v1")]).await;
    }
    let gs = op
        .wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    let want: BTreeMap<String, bool> = [("rg-a".into(), true), ("rg-b".into(), true)].into();
    assert_eq!(replication_map(&gs), want);
    assert_eq!(
        gs.status
            .as_ref()
            .and_then(|s| s.replicated.clone())
            .as_deref(),
        Some("2/2")
    );
    assert!(
        op.secrets(plain.name())
            .get_opt("creds")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        op.secrets(&op.tenant)
            .get_opt("creds")
            .await
            .expect("get")
            .is_none()
    );

    // A namespace labelled later receives it too.
    let c = op.resource_group("rg-c").await;
    op.wait_secret_data(c.name(), "creds", &[("k", "v1")]).await;
    let api = op.gsecs(&op.tenant);
    wait_for("rg-c in the replication map", REACT, || async {
        let gs = api.get("creds").await.expect("get");
        replication_map(&gs).get("rg-c") == Some(&true)
    })
    .await;
    // Labelling a plain namespace makes it a resource group as well.
    label_namespace(plain.name(), "aicore.dev/resource-group", Some("rg-d")).await;
    op.wait_secret_data(plain.name(), "creds", &[("k", "v1")])
        .await;

    for ns in [a, b, c, plain] {
        ns.cleanup().await;
    }
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unlabelled_or_deleted_resource_group_leaves_replica_and_status() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;

    label_namespace(b.name(), "aicore.dev/resource-group", None).await;
    op.wait_secret_absent(b.name(), "creds").await;
    let api = op.gsecs(&op.tenant);
    let gs = wait_for("rg-b gone from status", REACT, || async {
        let gs = api.get("creds").await.expect("get");
        (!replication_map(&gs).contains_key("rg-b")).then_some(gs)
    })
    .await;
    assert_eq!(replication_map(&gs), [("rg-a".to_owned(), true)].into());
    assert!(
        op.secrets(a.name())
            .get_opt("creds")
            .await
            .expect("get")
            .is_some()
    );
    // A deleted resource group leaves the status as well.
    a.cleanup().await;
    wait_for("rg-a gone from status", REACT, || async {
        let gs = api.get("creds").await.expect("get");
        replication_map(&gs).is_empty()
            && gs.status.and_then(|s| s.replicated).as_deref() == Some("0/0")
    })
    .await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_group_scope_and_wrong_namespaces() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let plain = op.plain_namespace().await;
    op.create(
        a.name(),
        &generic_secret("own", Scope::ResourceGroup, &[("k", "v")]),
    )
    .await;
    op.wait_secret_data(a.name(), "own", &[("k", "v")]).await;
    let gs = op.wait_ready(a.name(), "own", "True", "Replicated").await;
    let status = gs.status.expect("status");
    assert_eq!(status.resource_groups[0].id.as_deref(), Some("rg-a"));
    assert!(
        status.resource_group_secret_replication_status.is_none(),
        "map is for TenantWide only"
    );

    op.create(
        plain.name(),
        &generic_secret("lost", Scope::ResourceGroup, &[("k", "v")]),
    )
    .await;
    let gs = op
        .wait_ready(plain.name(), "lost", "False", "WrongNamespace")
        .await;
    let msg = gs.ready_condition().expect("Ready").message.clone();
    assert!(
        msg.contains("label it aicore.dev/resource-group=<id>"),
        "{msg}"
    );
    op.create(
        a.name(),
        &generic_secret("wide", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    let gs = op
        .wait_ready(a.name(), "wide", "False", "WrongNamespace")
        .await;
    let msg = gs.ready_condition().expect("Ready").message.clone();
    assert!(msg.contains(&op.tenant), "{msg}");
    assert!(
        op.secrets(plain.name())
            .get_opt("lost")
            .await
            .expect("get")
            .is_none()
    );
    a.cleanup().await;
    plain.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_updates_every_replica_and_the_map_turns_true() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "old")]),
    )
    .await;
    let before = op
        .wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    let old_hash = before.status.and_then(|s| s.data_hash).expect("hash");

    // Record every status the apiserver reports from here on.
    let api = op.gsecs(&op.tenant);
    let config = watcher::Config::default().fields("metadata.name=creds");
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    let initial = stream.next().await.expect("watch event").expect("watch ok");
    assert_eq!(
        initial.status.and_then(|s| s.data_hash),
        Some(old_hash.clone())
    );

    op.set_data(&op.tenant, "creds", &[("k", "new")]).await;
    let mut seen: Vec<BTreeMap<String, bool>> = Vec::new();
    let deadline = tokio::time::Instant::now() + REACT;
    loop {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("map never turned all true; saw {seen:?}"))
            .expect("watch event")
            .expect("watch ok");
        let status = event.status.clone().unwrap_or_default();
        if status.data_hash.as_deref() == Some(old_hash.as_str()) {
            continue;
        }
        let map = replication_map(&event);
        seen.push(map.clone());
        if map.len() == 2 && map.values().all(|v| *v) {
            break;
        }
    }
    assert!(
        seen.first().is_some_and(|m| m.values().any(|v| !v)),
        "the new hash was first reported with pending resource groups: {seen:?}"
    );
    for ns in [a.name(), b.name()] {
        op.wait_secret_data(ns, "creds", &[("k", "new")]).await;
    }
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

/// A tenant-wide `creds` ("tenant") replicated, then a resource-group `creds`
/// ("group") in `ns` that shadows it; returns the latter once it says so.
/// A tenant-wide `creds` (`k=tenant`) shadowed in `ns` by a resource-group
/// `creds` (`k=group`); returns the shadowing object once it says so.
pub async fn shadow_tenant_wide(op: &Operator, ns: &str) -> GenericSecret {
    let tw = generic_secret("creds", Scope::TenantWide, &[("k", "tenant")]);
    op.create(&op.tenant, &tw).await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    let rg = generic_secret("creds", Scope::ResourceGroup, &[("k", "group")]);
    op.create(ns, &rg).await;
    op.wait_secret_data(ns, "creds", &[("k", "group")]).await;
    op.wait_ready(ns, "creds", "True", "Shadowing").await
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_then_override_then_restore_on_tenant_wide_delete() {
    let mut op = Operator::start(&["--override-interval", "6s"]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    // The resource-group secret wins at creation.
    let rg = shadow_tenant_wide(&op, a.name()).await;
    let shadow = rg
        .status
        .as_ref()
        .and_then(|s| s.shadow.clone())
        .expect("shadow record");
    let entry = &rg.status.as_ref().expect("status").resource_groups[0];
    assert_eq!(entry.state, TargetState::Shadowed);
    assert!(
        entry
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(&shadow.override_at.0.to_string())
    );
    let tw = op
        .wait_ready(&op.tenant, "creds", "False", "Shadowed")
        .await;
    assert_eq!(
        replication_map(&tw),
        [("rg-a".into(), false), ("rg-b".into(), true)].into()
    );

    // A restart keeps the recorded override time.
    op.restart();
    // After the interval the tenant-wide data overrides the shadow.
    op.wait_secret_data(a.name(), "creds", &[("k", "tenant")])
        .await;
    let overridden_at = k8s_openapi::jiff::Timestamp::now();
    assert!(
        overridden_at >= shadow.override_at.0,
        "overridden early: {overridden_at} < {}",
        shadow.override_at.0
    );
    let rg = op
        .wait_ready(a.name(), "creds", "True", "OverriddenByTenantWide")
        .await;
    assert_eq!(
        rg.status.and_then(|s| s.shadow).map(|s| s.since),
        Some(shadow.since)
    );
    let tw = op
        .wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    assert!(replication_map(&tw).values().all(|v| *v));

    // Deleting the tenant-wide secret restores the resource group's own data.
    op.delete(&op.tenant, "creds").await;
    op.wait_secret_data(a.name(), "creds", &[("k", "group")])
        .await;
    op.wait_secret_absent(b.name(), "creds").await;
    op.wait_ready(a.name(), "creds", "True", "Replicated").await;
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_shadow_restores_tenant_wide_data_at_once() {
    let op = Operator::start(&["--override-interval", "1h"]).await;
    let a = op.resource_group("rg-a").await;
    shadow_tenant_wide(&op, a.name()).await;

    op.delete(a.name(), "creds").await;
    // Long before the hour is up, the tenant-wide data is back.
    let secret = op
        .wait_secret_data(a.name(), "creds", &[("k", "tenant")])
        .await;
    assert!(secret.annotations()["aicore.dev/generic-secret"].starts_with(&op.tenant));
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_refuses_the_excess_then_admits_it_after_a_delete() {
    let op = Operator::start(&["--max-tenant-wide-secrets", "2"]).await;
    let a = op.resource_group("rg-a").await;
    for name in ["first", "second"] {
        op.create(
            &op.tenant,
            &generic_secret(name, Scope::TenantWide, &[("k", name)]),
        )
        .await;
        op.wait_ready(&op.tenant, name, "True", "Replicated").await;
    }
    op.create(
        &op.tenant,
        &generic_secret("third", Scope::TenantWide, &[("k", "third")]),
    )
    .await;
    let third = op
        .wait_ready(&op.tenant, "third", "False", "TenantWideQuotaExceeded")
        .await;
    let msg = third.ready_condition().expect("Ready").message.clone();
    assert!(
        msg.contains("at most 2") && msg.contains("Delete a tenant-wide"),
        "{msg}"
    );
    assert!(
        op.secrets(a.name())
            .get_opt("third")
            .await
            .expect("get")
            .is_none()
    );

    op.delete(&op.tenant, "first").await;
    op.wait_secret_data(a.name(), "third", &[("k", "third")])
        .await;
    op.wait_ready(&op.tenant, "third", "True", "Replicated")
        .await;
    op.wait_secret_absent(a.name(), "first").await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_secret_is_never_touched_and_reported_as_conflict() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    let mine = plain_secret("creds", &[("owner", "someone-else")], "theirs");
    let created = op
        .secrets(a.name())
        .create(&PostParams::default(), &mine)
        .await
        .expect("create");
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "ours")]),
    )
    .await;

    op.wait_secret_data(b.name(), "creds", &[("k", "ours")])
        .await;
    let gs = op
        .wait_ready(&op.tenant, "creds", "False", "Conflict")
        .await;
    let entry = gs
        .status
        .as_ref()
        .expect("status")
        .resource_groups
        .iter()
        .find(|e| e.id.as_deref() == Some("rg-a"))
        .cloned()
        .expect("rg-a entry");
    assert_eq!(entry.state, TargetState::Conflict);
    assert_eq!(replication_map(&gs).get("rg-a"), Some(&false));
    let theirs = op.secrets(a.name()).get("creds").await.expect("get");
    assert_eq!(
        theirs.resource_version(),
        created.resource_version(),
        "never modified"
    );
    let ns = op.tenant.clone();
    wait_for("a Conflict warning naming the Secret", REACT, || async {
        let events = events_about(&op, &ns, "creds").await;
        events
            .iter()
            .any(|e| e.starts_with("Conflict") && e.contains(&format!("{}/creds", a.name())))
    })
    .await;

    // A lasting conflict is reported, not retried in a loop: while the
    // operator handles another object from start to Ready, the conflicted
    // one is not written again.
    let settled = op.gsecs(&op.tenant).get("creds").await.expect("get");
    op.create(
        &op.tenant,
        &generic_secret("marker", Scope::Tenant, &[("k", "m")]),
    )
    .await;
    op.wait_ready(&op.tenant, "marker", "True", "Replicated")
        .await;
    let later = op.gsecs(&op.tenant).get("creds").await.expect("get");
    assert_eq!(
        later.resource_version(),
        settled.resource_version(),
        "the conflicted object keeps being rewritten"
    );

    // Deleting the GenericSecret leaves the foreign Secret alone too.
    op.delete(&op.tenant, "creds").await;
    op.wait_secret_absent(b.name(), "creds").await;
    let theirs = op
        .secrets(a.name())
        .get("creds")
        .await
        .expect("still there");
    assert_eq!(theirs.resource_version(), created.resource_version());
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edited_replica_is_reverted_and_deleted_replica_recreated() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    op.wait_secret_data(a.name(), "creds", &[("k", "v")]).await;

    // `kubectl edit` style change: other value plus an extra key.
    let out = crate::harness::kubectl([
        "-n",
        a.name(),
        "patch",
        "secret",
        "creds",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"aGFja2Vk","extra":"eA=="}}"#,
    ]);
    crate::harness::expect_success(&out, "kubectl patch");
    // Resync is 10 minutes: only the Secret watch can bring it back this fast.
    op.wait_secret_data(a.name(), "creds", &[("k", "v")]).await;

    let out = crate::harness::kubectl(["-n", a.name(), "delete", "secret", "creds"]);
    crate::harness::expect_success(&out, "kubectl delete");
    op.wait_secret_data(a.name(), "creds", &[("k", "v")]).await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn finalizer_removes_exactly_its_replicas_even_from_unlabelled_namespaces() {
    let mut op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let b = op.resource_group("rg-b").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    op.create(
        &op.tenant,
        &generic_secret("other", Scope::TenantWide, &[("k", "o")]),
    )
    .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    op.wait_ready(&op.tenant, "other", "True", "Replicated")
        .await;
    let gs = op.gsecs(&op.tenant).get("creds").await.expect("get");
    let finalizer = format!("replicas.aicore.dev/{}", op.tenant);
    assert!(
        gs.finalizers().contains(&finalizer),
        "{:?}",
        gs.finalizers()
    );

    // While the operator is down, b stops being a resource group.
    op.stop();
    label_namespace(b.name(), "aicore.dev/resource-group", None).await;
    op.delete(&op.tenant, "creds").await;
    op.restart();
    crate::harness::wait_deleted(&op.gsecs(&op.tenant), "creds", REACT).await;
    op.wait_secret_absent(a.name(), "creds").await;
    op.wait_secret_absent(b.name(), "creds").await;
    // The other object's replicas stay.
    op.wait_secret_data(a.name(), "other", &[("k", "o")]).await;
    a.cleanup().await;
    b.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_mapping_to_one_kubernetes_name_collide() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let mut upper = generic_secret("a-upper", Scope::TenantWide, &[("k", "u")]);
    upper.spec.secret_name = Some("MY_GENERIC_SECRET".into());
    op.create(&op.tenant, &upper).await;
    op.wait_secret_data(a.name(), "my-generic-secret", &[("k", "u")])
        .await;
    let mut lower = generic_secret("b-lower", Scope::TenantWide, &[("k", "l")]);
    lower.spec.secret_name = Some("my-generic-secret".into());
    op.create(&op.tenant, &lower).await;
    let gs = op
        .wait_ready(&op.tenant, "b-lower", "False", "NameCollision")
        .await;
    let msg = gs.ready_condition().expect("Ready").message.clone();
    assert!(msg.contains(&format!("{}/a-upper", op.tenant)), "{msg}");
    op.wait_secret_data(a.name(), "my-generic-secret", &[("k", "u")])
        .await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_reach_logs_or_events() {
    const CANARY: &str = "canary-7f3a9c-do-not-log";
    let mut op = Operator::configure(&[]).await;
    // Everything at debug, the kube client's and HTTP stack's own logs too.
    op.start_logging("debug");
    let a = op.resource_group("rg-a").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", CANARY)]),
    )
    .await;
    op.wait_secret_data(a.name(), "creds", &[("k", CANARY)])
        .await;
    op.set_data(&op.tenant, "creds", &[("k", &format!("{CANARY}-2"))])
        .await;
    op.wait_secret_data(a.name(), "creds", &[("k", &format!("{CANARY}-2"))])
        .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;

    let logs = op.logs();
    assert!(
        logs.contains("replica written"),
        "the log is captured at all"
    );
    let encoded = crate::operator::b64(CANARY);
    let gs = op.gsecs(&op.tenant).get("creds").await.expect("get");
    let status = serde_json::to_string(&gs.status).expect("json");
    let (_, metrics) = http_get(&op.http_addr().await, "/metrics").await;
    for needle in [CANARY, encoded.trim_end_matches('=')] {
        assert!(!logs.contains(needle), "secret value in the operator log");
        assert!(!status.contains(needle), "secret value in status: {status}");
        assert!(!metrics.contains(needle), "secret value in metrics");
        for ns in [op.tenant.clone(), a.name().to_owned()] {
            for event in events_about(&op, &ns, "creds").await {
                assert!(!event.contains(needle), "secret value in an event: {event}");
            }
        }
    }
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_op_resyncs_write_nothing() {
    let op = Operator::start(&["--resync-interval", "1s"]).await;
    let a = op.resource_group("rg-a").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v")]),
    )
    .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    let secret = op.wait_secret_data(a.name(), "creds", &[("k", "v")]).await;
    let gs = op.gsecs(&op.tenant).get("creds").await.expect("get");
    let reconciles = || op.logs().matches("reconciled").count();
    let start = reconciles();
    wait_for("three more resyncs", DEFAULT_TIMEOUT, || async {
        reconciles() >= start + 3
    })
    .await;
    let after = op.secrets(a.name()).get("creds").await.expect("get");
    assert_eq!(
        after.resource_version(),
        secret.resource_version(),
        "replica rewritten"
    );
    let gs_after = op.gsecs(&op.tenant).get("creds").await.expect("get");
    assert_eq!(
        gs_after.resource_version(),
        gs.resource_version(),
        "status rewritten"
    );
    a.cleanup().await;
    op.cleanup().await;
}

/// A Secret as a user (not the operator) would create it, with one key.
pub fn plain_secret(name: &str, labels: &[(&str, &str)], value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Secret::default()
    }
}

/// A tenant-wide GenericSecret whose data comes from Secret `source`.
fn reading_from_secret(name: &str, source: &str) -> GenericSecret {
    let mut gs = generic_secret(name, Scope::TenantWide, &[]);
    gs.spec.data = None;
    gs.spec.data_from = Some(generic_secrets_operator::api::DataFrom {
        secret_ref: generic_secrets_operator::api::SecretRef {
            name: source.into(),
        },
    });
    gs
}

#[tokio::test(flavor = "multi_thread")]
async fn data_from_follows_a_labelled_source_secret() {
    let op = Operator::start(&[]).await;
    let a = op.resource_group("rg-a").await;
    let source = plain_secret(
        "sealed-output",
        &[("aicore.dev/source", "true")],
        "from-source",
    );
    let gs = reading_from_secret("creds", "sealed-output");
    op.create(&op.tenant, &gs).await;
    // The source is missing at first: the object says so and waits.
    let blocked = op
        .wait_ready(&op.tenant, "creds", "False", "SourceNotFound")
        .await;
    let msg = blocked.ready_condition().expect("Ready").message.clone();
    assert!(msg.contains("sealed-output"), "{msg}");
    // Creating it replicates; rotating it below reaches the replicas through
    // the source watch (the resync is 10 minutes away).
    op.secrets(&op.tenant)
        .create(&PostParams::default(), &source)
        .await
        .expect("create source");
    op.wait_secret_data(a.name(), "creds", &[("k", "from-source")])
        .await;

    let patch = json!({"data": {"k": crate::operator::b64("rotated")}});
    op.secrets(&op.tenant)
        .patch(
            "sealed-output",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("rotate source");
    op.wait_secret_data(a.name(), "creds", &[("k", "rotated")])
        .await;
    // A Secret whose owner did not label it is never copied.
    let unlabelled = plain_secret("not-a-source", &[], "private");
    op.secrets(&op.tenant)
        .create(&PostParams::default(), &unlabelled)
        .await
        .expect("create unlabelled Secret");
    let leak = reading_from_secret("leak", "not-a-source");
    op.create(&op.tenant, &leak).await;
    let refused = op
        .wait_ready(&op.tenant, "leak", "False", "SourceNotFound")
        .await;
    let msg = refused.ready_condition().expect("Ready").message.clone();
    assert!(
        msg.contains("is not labelled aicore.dev/source=true"),
        "{msg}"
    );
    op.assert_no_secret(a.name(), "leak").await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_endpoints_report_without_secret_values() {
    const CANARY: &str = "metrics-canary-5b21";
    let op = Operator::start(&[]).await;
    let addr = op.http_addr().await;
    assert_eq!(http_get(&addr, "/healthz").await, (200, "ok".to_owned()));
    wait_for("/readyz to answer 200", REACT, || async {
        http_get(&addr, "/readyz").await.0 == 200
    })
    .await;
    let a = op.resource_group("rg-a").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", CANARY)]),
    )
    .await;
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;

    let series = [
        "generic_secrets_operator_reconciles_total{outcome=\"Success\"}",
        "generic_secrets_operator_secret_writes_total{kind=\"Applied\"} 1",
        "generic_secrets_operator_pending_targets 0",
        "generic_secrets_operator_reconcile_duration_seconds_count",
        // One reconcile completed the replication; later ones find it current.
        "generic_secrets_operator_replication_lag_seconds_count 1",
        // Without leader election this instance always leads.
        "generic_secrets_operator_leader 1",
    ];
    // The status is visible a moment before its reconcile is counted.
    let metrics = wait_for("the metrics of the replication", REACT, || async {
        let (code, metrics) = http_get(&addr, "/metrics").await;
        let missing: Vec<&str> = series
            .iter()
            .copied()
            .filter(|s| !metrics.contains(s))
            .collect();
        match (code, missing.is_empty()) {
            (200, true) => Ok(metrics),
            _ => Err(format!("{code}, missing {missing:?} from:\n{metrics}")),
        }
    })
    .await;
    assert!(!metrics.contains(CANARY) && !metrics.contains(&crate::operator::b64(CANARY)));
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lowered_quota_withdraws_the_youngest_replicas() {
    let mut op = Operator::start(&["--max-tenant-wide-secrets", "2"]).await;
    let a = op.resource_group("rg-a").await;
    for name in ["first", "second"] {
        op.create(
            &op.tenant,
            &generic_secret(name, Scope::TenantWide, &[("k", name)]),
        )
        .await;
        op.wait_secret_data(a.name(), name, &[("k", name)]).await;
    }
    op.restart_with("--max-tenant-wide-secrets", "1");
    op.wait_ready(&op.tenant, "second", "False", "TenantWideQuotaExceeded")
        .await;
    op.wait_secret_absent(a.name(), "second").await;
    op.wait_secret_data(a.name(), "first", &[("k", "first")])
        .await;
    a.cleanup().await;
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shadowing_with_another_secret_type_replaces_the_secret() {
    let op = Operator::start(&["--override-interval", "4s"]).await;
    let a = op.resource_group("rg-a").await;
    op.create(
        &op.tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "tenant")]),
    )
    .await;
    op.wait_secret_data(a.name(), "creds", &[("k", "tenant")])
        .await;
    let mut rg = generic_secret("creds", Scope::ResourceGroup, &[("k", "group")]);
    rg.spec.type_ = "aicore.dev/custom".into();
    op.create(a.name(), &rg).await;
    let shadow = op
        .wait_secret_data(a.name(), "creds", &[("k", "group")])
        .await;
    assert_eq!(shadow.type_.as_deref(), Some("aicore.dev/custom"));
    // The override brings the tenant-wide type back as well.
    let overridden = op
        .wait_secret_data(a.name(), "creds", &[("k", "tenant")])
        .await;
    assert_eq!(overridden.type_.as_deref(), Some("Opaque"));
    op.wait_ready(&op.tenant, "creds", "True", "Replicated")
        .await;
    a.cleanup().await;
    op.cleanup().await;
}
