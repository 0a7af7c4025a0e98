use super::*;
use crate::api::{GenericSecretSpec, SecretData};
use crate::plan::{Mode, Plan, Target};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("valid time")
}

fn tenant_wide() -> GenericSecret {
    let mut gs = GenericSecret::new(
        "creds",
        GenericSecretSpec {
            scope: Scope::TenantWide,
            secret_name: None,
            type_: "Opaque".into(),
            data: Some(SecretData::default()),
            data_from: None,
            labels: BTreeMap::new(),
            rollout: None,
        },
    );
    gs.metadata.generation = Some(3);
    gs
}

fn v(hash: &str) -> Version<'_> {
    Version {
        hash,
        seen: at(0),
        keep: 5,
        restarts: false,
    }
}

fn target(ns: &str, rg: &str, mode: Mode) -> Target {
    Target {
        namespace: ns.into(),
        resource_group: Some(rg.into()),
        mode,
    }
}

fn plan(targets: &[Target]) -> Plan {
    Plan {
        secret_name: "creds".into(),
        targets: targets.to_vec(),
        shadow: None,
        wake_at: None,
    }
}

fn ready(status: &GenericSecretStatus) -> (&str, &str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn map_goes_false_to_true_as_replicas_are_written() {
    let gs = tenant_wide();
    let targets = [
        target("a", "rg-a", Mode::Write),
        target("b", "rg-b", Mode::Write),
    ];
    let p = plan(&targets);
    let pending = [
        (targets[0].clone(), Outcome::Pending),
        (targets[1].clone(), Outcome::Current),
    ];
    let before = replicated_status(&gs, &p, &pending, &v("sha256:x"), at(0));
    let map = before
        .resource_group_secret_replication_status
        .clone()
        .expect("map");
    assert_eq!(
        map,
        BTreeMap::from([("rg-a".into(), false), ("rg-b".into(), true)])
    );
    assert_eq!(ready(&before), ("False", "Progressing"));
    assert_eq!(before.replicated.as_deref(), Some("1/2"));
    let done = [
        (targets[0].clone(), Outcome::Written),
        (targets[1].clone(), Outcome::Current),
    ];
    let after = replicated_status(&gs, &p, &done, &v("sha256:x"), at(1));
    assert!(
        after
            .resource_group_secret_replication_status
            .clone()
            .expect("map")
            .values()
            .all(|v| *v)
    );
    assert_eq!(ready(&after), ("True", "Replicated"));
    assert_eq!(after.observed_generation, Some(3));
}

#[test]
fn a_noop_resync_computes_the_stored_status() {
    let mut gs = tenant_wide();
    let targets = [target("a", "rg-a", Mode::Write)];
    let p = plan(&targets);
    let first = replicated_status(
        &gs,
        &p,
        &[(targets[0].clone(), Outcome::Written)],
        &v("sha256:x"),
        at(0),
    );
    gs.status = Some(first.clone());
    let again = replicated_status(
        &gs,
        &p,
        &[(targets[0].clone(), Outcome::Current)],
        &v("sha256:x"),
        at(100),
    );
    assert_eq!(again, first, "nothing changed, so nothing to write");
}

#[test]
fn conflict_and_shadow_are_not_ready_with_reasons() {
    let gs = tenant_wide();
    let targets = [
        target("a", "rg-a", Mode::Write),
        target(
            "b",
            "rg-b",
            Mode::Yield {
                to: "b/creds".into(),
                until: Some(at(60)),
                overridden: false,
            },
        ),
    ];
    let p = plan(&targets);
    let conflict = [
        (
            targets[0].clone(),
            Outcome::Conflict("Secret a/creds exists".into()),
        ),
        (targets[1].clone(), Outcome::Yielded),
    ];
    let s = replicated_status(&gs, &p, &conflict, &v("sha256:x"), at(0));
    assert_eq!(ready(&s), ("False", "Conflict"));
    assert_eq!(s.resource_groups[0].state, TargetState::Conflict);
    let shadowed = [
        (targets[0].clone(), Outcome::Written),
        (targets[1].clone(), Outcome::Yielded),
    ];
    let s = replicated_status(&gs, &p, &shadowed, &v("sha256:x"), at(0));
    assert_eq!(ready(&s), ("False", "Shadowed"));
    // A tenant-wide object details only the resource groups that need a word.
    assert_eq!(s.resource_groups.len(), 1);
    assert_eq!(s.resource_groups[0].state, TargetState::Shadowed);
    assert!(
        s.resource_groups[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("b/creds")
    );
}

#[test]
fn blocked_status_names_the_reason_and_keeps_transition_time() {
    let mut gs = tenant_wide();
    let blocked = Blocked::TenantWideQuotaExceeded {
        limit: 5,
        position: 6,
    };
    let first = blocked_status(&gs, &blocked, at(0));
    assert_eq!(ready(&first), ("False", "TenantWideQuotaExceeded"));
    assert!(first.conditions[0].message.contains("at most 5"));
    gs.status = Some(first.clone());
    assert_eq!(blocked_status(&gs, &blocked, at(50)), first);
}

#[test]
fn replication_starts_at_the_last_change_that_is_not_a_status_write() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    let entry = |secs, subresource: Option<&str>| ManagedFieldsEntry {
        time: Some(Time(at(secs))),
        subresource: subresource.map(Into::into),
        ..ManagedFieldsEntry::default()
    };
    let mut gs = tenant_wide();
    gs.metadata.creation_timestamp = Some(Time(at(0)));
    assert_eq!(last_change(&gs), Some(at(0)), "never changed: created");
    gs.metadata.managed_fields = Some(vec![
        entry(5, None),
        entry(9, Some("status")),
        entry(7, Some("")),
    ]);
    assert_eq!(last_change(&gs), Some(at(7)));
}

#[test]
fn a_status_is_complete_only_for_its_own_data_with_every_target_current() {
    let status = |hash: &str, replicated: &str| GenericSecretStatus {
        data_hash: Some(hash.into()),
        replicated: Some(replicated.into()),
        ..GenericSecretStatus::default()
    };
    assert!(shows_complete(Some(&status("h1", "3/3")), "h1"));
    assert!(!shows_complete(Some(&status("h1", "2/3")), "h1"));
    assert!(!shows_complete(Some(&status("h0", "3/3")), "h1"));
    assert!(!shows_complete(None, "h1"));
}

#[test]
fn stalled_only_while_someone_has_to_act() {
    let gs = tenant_wide();
    let targets = [target("a", "rg-a", Mode::Write)];
    let p = plan(&targets);
    let stalled = |s: &GenericSecretStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let with = |o: Outcome| replicated_status(&gs, &p, &[(targets[0].clone(), o)], &v("h"), at(0));
    let conflict = with(Outcome::Conflict("Secret a/creds exists".into()));
    let ready_message = conflict.conditions[0].message.clone();
    assert_eq!(
        stalled(&conflict),
        Some(("True".into(), "Conflict".into(), ready_message))
    );
    assert_eq!(
        stalled(&with(Outcome::Failed("boom".into()))).map(|s| s.1),
        Some("ReplicationFailed".into())
    );
    for passing in [Outcome::Pending, Outcome::Written] {
        assert_eq!(stalled(&with(passing)), None);
    }
    let blocked = blocked_status(&gs, &Blocked::InvalidSpec("bad".into()), at(0));
    assert_eq!(stalled(&blocked).map(|s| s.1), Some("InvalidSpec".into()));
}
