//! Two processes of one installation with `--leader-election`: one leads, the
//! other stands by. A killed leader is replaced and its unfinished fan-out is
//! finished; a paused leader that wakes up after losing the lease writes
//! nothing.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use generic_secrets_operator::api::Scope;
use generic_secrets_operator::replicas;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::harness::wait_for;
use crate::operator::{Operator, REACT, Replica, generic_secret};

const GROUPS: usize = 50;

/// The installation's Lease.
pub const LEASE: &str = "generic-secrets-operator";

/// The holder of the installation's Lease.
pub async fn holder(op: &Operator) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(op.client.clone(), &op.tenant);
    let lease = leases.get(LEASE).await.ok()?;
    lease.spec?.holder_identity
}

/// How many of the installation's replicas of `name` hold `token=value`.
async fn holding(op: &Operator, name: &str, value: &str) -> usize {
    let params = ListParams::default().labels(&replicas::selector(&op.tenant));
    let list = Api::<Secret>::all(op.client.clone())
        .list(&params)
        .await
        .expect("listing replicas");
    list.items
        .iter()
        .filter(|s| s.metadata.name.as_deref() == Some(name))
        .filter(|s| holds_token(s, value))
        .count()
}

fn holds_token(secret: &Secret, value: &str) -> bool {
    let token = secret.data.as_ref().and_then(|d| d.get("token"));
    token.map(|v| &v.0[..]) == Some(value.as_bytes())
}

/// A second process of `op`'s installation, once it stands by.
pub async fn standby_of(op: &Operator) -> Replica {
    let standby = op.replica();
    wait_for("the replica to stand by", REACT, || async {
        standby.logs().contains("another instance leads")
    })
    .await;
    standby
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_finishes_the_rotation_a_killed_leader_began() {
    // One write at a time, so that the kill lands mid-rotation: at the
    // default concurrency the leader can finish 50 replicas before the
    // test has seen the first.
    let mut op = Operator::start(&["--leader-election", "--write-concurrency", "1"]).await;
    let groups = op.resource_groups(GROUPS).await;
    let gs = generic_secret("fanout", Scope::TenantWide, &[("token", "v1")]);
    op.create(&op.tenant, &gs).await;
    let gs = op
        .wait_ready(&op.tenant, "fanout", "True", "Replicated")
        .await;
    let replicated = gs.status.and_then(|s| s.replicated);
    assert_eq!(replicated.as_deref(), Some("50/50"));
    let leader = holder(&op).await.expect("a leader holds the Lease");
    let standby = standby_of(&op).await;

    // Rotate, and kill the leader the moment its first new replica shows.
    let selector = replicas::selector(&op.tenant);
    let mut rotated = watcher(
        Api::<Secret>::all(op.client.clone()),
        watcher::Config::default().labels(&selector),
    )
    .applied_objects()
    .try_filter(|s| futures::future::ready(holds_token(s, "v2")))
    .boxed();
    op.set_data(&op.tenant, "fanout", &[("token", "v2")]).await;
    tokio::time::timeout(REACT, rotated.next())
        .await
        .expect("a first replica rotated in time")
        .expect("the replica watch ended")
        .expect("the replica watch failed");
    op.stop();
    let killed = Instant::now();
    let at_kill = holding(&op, "fanout", "v2").await;
    assert!(
        at_kill < GROUPS,
        "killed after the rotation: {at_kill}/{GROUPS}"
    );

    wait_for("every replica to hold v2", REACT, || async {
        let n = holding(&op, "fanout", "v2").await;
        (n == GROUPS).then_some(()).ok_or(format!("{n}/{GROUPS}"))
    })
    .await;
    let took = killed.elapsed();
    let gs = op
        .wait_ready(&op.tenant, "fanout", "True", "Replicated")
        .await;
    let map = gs
        .status
        .and_then(|s| s.resource_group_secret_replication_status)
        .unwrap_or_default();
    assert_eq!(map.len(), GROUPS);
    assert!(map.values().all(|done| *done), "{map:?}");
    assert_ne!(holder(&op).await, Some(leader), "the standby leads now");
    eprintln!(
        "leader killed with {at_kill}/{GROUPS} replicas rotated; every replica current {took:.1?} after the kill"
    );

    // The standby (now the leader) removes the finalizers.
    op.cleanup().await;
    drop(standby);
    for group in groups {
        group.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_leader_that_lost_the_lease_writes_nothing_and_exits() {
    let mut op = Operator::start(&["--leader-election"]).await;
    let groups = op.resource_groups(2).await;
    let gs = generic_secret("paused", Scope::TenantWide, &[("token", "v1")]);
    op.create(&op.tenant, &gs).await;
    op.wait_ready(&op.tenant, "paused", "True", "Replicated")
        .await;
    let leader = holder(&op).await.expect("a leader holds the Lease");
    let standby = standby_of(&op).await;

    // The leader freezes (a long GC pause, a stalled node); the standby takes
    // over and rotates the data.
    op.signal("STOP");
    let new_leader = wait_for("the standby to take the Lease", REACT, || async {
        holder(&op).await.filter(|h| *h != leader)
    })
    .await;
    op.set_data(&op.tenant, "paused", &[("token", "v2")]).await;
    for group in &groups {
        op.wait_secret_data(group.name(), "paused", &[("token", "v2")])
            .await;
    }

    // The old leader wakes up with queued events, finds its term over, and
    // exits without a single write.
    let before = op.logs().len();
    op.signal("CONT");
    let status = op.wait_exited("the old leader").await;
    assert!(!status.success(), "{status}");
    let after_wake = op.logs()[before..].to_owned();
    assert!(
        !after_wake.contains("replica written") && !after_wake.contains("replica deleted"),
        "the old leader wrote after losing the lease:\n{after_wake}"
    );
    assert_eq!(holder(&op).await, Some(new_leader));
    assert_eq!(holding(&op, "paused", "v2").await, groups.len());
    eprintln!("paused leader woke up and exited ({status}) without writing");

    // The standby (now the leader) removes the finalizers.
    op.cleanup().await;
    drop(standby);
    for group in groups {
        group.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_stopped_gracefully_hands_over_within_a_retry_period() {
    // A lease long enough that only a release explains a quick takeover.
    let lease = ["--lease-duration", "30s", "--renew-deadline", "20s"];
    let mut args = vec!["--leader-election", "--retry-period", "1s"];
    args.extend(lease);
    let mut op = Operator::start(&args).await;
    let groups = op.resource_groups(1).await;
    let leader = wait_for("a leader", REACT, || holder(&op)).await;
    let standby = standby_of(&op).await;

    op.signal("TERM");
    let stopped = Instant::now();
    let status = op.wait_exited("the leader").await;
    assert!(status.success(), "a graceful stop exits cleanly: {status}");
    // Well inside the 30 s a standby would wait for an unreleased lease.
    let timeout = std::time::Duration::from_secs(10);
    wait_for(
        "the standby to take the released Lease",
        timeout,
        || async { holder(&op).await.filter(|h| *h != leader) },
    )
    .await;
    eprintln!("handed over {:?} after SIGTERM", stopped.elapsed());

    // The new leader works.
    let gs = generic_secret("after", Scope::TenantWide, &[("token", "v1")]);
    op.create(&op.tenant, &gs).await;
    op.wait_secret_data(groups[0].name(), "after", &[("token", "v1")])
        .await;
    op.cleanup().await;
    drop(standby);
    for group in groups {
        group.cleanup().await;
    }
}
