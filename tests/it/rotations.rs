//! Rotation history in status, its metric and the Warning of an overdue
//! rotation, against the real apiserver.

use generic_secrets_operator::api::{GenericSecret, Rotation, Scope};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};

use crate::generic_secrets::events_about;
use crate::harness::{TestNamespace, wait_for};
use crate::operator::{INSTANCE_LABEL, Operator, REACT, generic_secret, http_get, label_namespace};

fn rotations(gs: &GenericSecret) -> Vec<Rotation> {
    gs.status.clone().map(|s| s.rotations).unwrap_or_default()
}

/// Waits until the newest rotation of `ns/name` is of its current data and
/// complete; returns the object.
async fn wait_rotated(
    op: &Operator,
    ns: &str,
    name: &str,
    previous: Option<&str>,
) -> GenericSecret {
    let api = op.gsecs(ns);
    wait_for(
        &format!("{ns}/{name}: a new rotation, complete"),
        REACT,
        || async {
            let gs = api.get(name).await.map_err(|e| e.to_string())?;
            let hash = gs.status.as_ref().and_then(|s| s.data_hash.clone());
            let newest = rotations(&gs).first().cloned();
            match newest {
                Some(r)
                    if Some(&r.data_hash) == hash.as_ref()
                        && Some(r.data_hash.as_str()) != previous
                        && r.completion_time.is_some() =>
                {
                    Ok(gs)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn status_keeps_a_bounded_history_of_completed_rotations() {
    let op = Operator::start(&["--rotation-history", "2"]).await;
    let _rgs = op.resource_groups(3).await;
    let tenant = op.tenant.clone();
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;
    let first = wait_rotated(&op, &tenant, "creds", None).await;
    let r = &rotations(&first)[0];
    assert_eq!(r.pending_targets, 0);
    assert_eq!(r.restarts, None, "no spec.rollout, no restarts");
    let mut seen = vec![r.data_hash.clone()];
    for value in ["v2", "v3"] {
        op.set_data(&tenant, "creds", &[("k", value)]).await;
        let gs = wait_rotated(&op, &tenant, "creds", seen.last().map(String::as_str)).await;
        seen.push(rotations(&gs)[0].data_hash.clone());
    }
    let gs = op.gsecs(&tenant).get("creds").await.expect("creds");
    let history = rotations(&gs);
    let hashes: Vec<&str> = history.iter().map(|r| r.data_hash.as_str()).collect();
    assert_eq!(
        hashes,
        [seen[2].as_str(), seen[1].as_str()],
        "newest first, 2 kept"
    );
    for r in &history {
        let (start, done) = (
            r.start_time.0,
            r.completion_time.clone().expect("complete").0,
        );
        assert!(start <= done, "{r:?}");
        assert_eq!(
            r.duration_seconds,
            Some(done.duration_since(start).as_secs())
        );
        assert!(!format!("{r:?}").contains("djI") && !format!("{r:?}").contains("v2"));
    }
    let (_, metrics) = http_get(&op.http_addr().await, "/metrics").await;
    let count = "generic_secrets_operator_rotation_duration_seconds_count{scope=\"TenantWide\"} 3";
    assert!(
        metrics.contains(count),
        "one observation per version:\n{metrics}"
    );

    // A resync computes the same history: nothing is written.
    let version = gs.metadata.resource_version.clone();
    let mut op = op;
    op.restart();
    wait_for("a reconcile after the restart", REACT, || async {
        op.reconciles().await > 0
    })
    .await;
    let again = op.gsecs(&tenant).get("creds").await.expect("creds");
    assert_eq!(
        again.metadata.resource_version, version,
        "{:?}",
        again.status
    );
    op.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_blocked_by_a_conflict_stays_incomplete_and_is_warned_of_once() {
    let op = Operator::start(&["--rotation-warning-after", "3s"]).await;
    let rgs = op.resource_groups(2).await;
    let tenant = op.tenant.clone();
    op.create(
        &tenant,
        &generic_secret("creds", Scope::TenantWide, &[("k", "v1")]),
    )
    .await;
    wait_rotated(&op, &tenant, "creds", None).await;
    // A third resource group holds an unmanaged Secret of that name: it
    // was there before the namespace joined this installation.
    let group = [("aicore.dev/resource-group", "rg-blocked")];
    let blocked = TestNamespace::with_labels("rg-blocked", &group).await;
    let theirs = Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    op.secrets(blocked.name())
        .create(&PostParams::default(), &theirs)
        .await
        .expect("an unmanaged Secret");
    label_namespace(blocked.name(), INSTANCE_LABEL, Some(&op.id)).await;
    op.wait_blocked(&tenant, "creds", "Conflict").await;
    op.set_data(&tenant, "creds", &[("k", "v2")]).await;
    for rg in &rgs {
        op.wait_secret_data(rg.name(), "creds", &[("k", "v2")])
            .await;
    }
    let warned = wait_for("a RotationOverdue event", REACT, || async {
        let events = events_about(&op, &tenant, "creds").await;
        let overdue: Vec<String> = events
            .into_iter()
            .filter(|e| e.starts_with("RotationOverdue"))
            .collect();
        (!overdue.is_empty()).then_some(overdue)
    })
    .await;
    assert!(warned[0].contains("1 targets do not hold it"), "{warned:?}");
    let gs = op.gsecs(&tenant).get("creds").await.expect("creds");
    let newest = rotations(&gs)[0].clone();
    assert_eq!(
        Some(&newest.data_hash),
        gs.status.as_ref().and_then(|s| s.data_hash.as_ref())
    );
    assert_eq!((newest.pending_targets, newest.completion_time), (1, None));
    assert_eq!(rotations(&gs).len(), 2);
    op.cleanup().await;
}
