//! The preview over a made-up snapshot: no apiserver.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::SignedDuration;

use super::cluster::{Known, Settings, Snapshot, from_snapshot, replica_of_meta};
use super::{Action, Preview, Verdict};
use crate::api::validation::{Source, validate};
use crate::api::{GenericSecret, Scope};
use crate::index::Groups;
use crate::index::replicas::Replica;
use crate::plan::Rules;
use crate::plan::tests::{generic_secret, namespace};
use crate::replicas::{self, ADOPT_ANNOTATION, Payload};

const TENANT: &str = "tenant";

fn settings(adopt_existing: bool) -> Settings {
    Settings {
        rules: Rules {
            tenant_namespace: TENANT.into(),
            override_interval: SignedDuration::from_secs(60),
            max_tenant_wide: 2,
        },
        adopt_existing,
        namespace_selector: None,
    }
}

fn groups() -> Groups {
    let mut groups = Groups::default();
    for ns in [
        namespace(TENANT, None),
        namespace("team-a", Some("rg-a")),
        namespace("team-b", Some("rg-b")),
    ] {
        groups.upsert(&ns);
    }
    groups
}

fn hash(gs: &GenericSecret) -> String {
    match validate(&gs.spec) {
        Ok(Source::Inline(data)) => Payload::new(data).hash,
        _ => panic!("inline data expected"),
    }
}

/// The replica `writer` would write into `ns`, as its metadata reads.
fn replica(writer: &GenericSecret, ns: &str) -> Replica {
    let payload = Payload::new(match validate(&writer.spec) {
        Ok(Source::Inline(data)) => data,
        _ => panic!("inline data expected"),
    });
    let secret = replicas::desired_secret(writer, TENANT, &writer.secret_name(), ns, &payload);
    replica_of_meta(secret.metadata, TENANT)
}

fn unmanaged(ns: &str, name: &str, adoptable: bool) -> Replica {
    let annotations = adoptable.then(|| [(ADOPT_ANNOTATION.to_owned(), "true".to_owned())].into());
    let meta = ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        annotations,
        ..ObjectMeta::default()
    };
    replica_of_meta(meta, TENANT)
}

fn run(
    gs: &GenericSecret,
    others: Vec<GenericSecret>,
    secrets: Vec<Replica>,
    adopt: bool,
) -> Preview {
    let snapshot = Snapshot {
        objects: others,
        groups: groups(),
        secrets,
    };
    let known = Known {
        data_hash: Some(hash(gs)),
        ..Known::default()
    };
    from_snapshot(&settings(adopt), gs, &snapshot, known, None)
}

fn actions(p: &Preview) -> Vec<(&str, Action)> {
    p.secrets
        .iter()
        .map(|s| (s.namespace.as_str(), s.action))
        .collect()
}

#[test]
fn a_new_tenant_wide_object_creates_a_replica_per_resource_group() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let p = run(&gs, vec![], vec![], false);
    assert_eq!(
        actions(&p),
        [("team-a", Action::Create), ("team-b", Action::Create)]
    );
    assert_eq!(p.verdict, Verdict::Replicates);
    assert_eq!(
        (p.ready.status.as_str(), p.ready.reason.as_str()),
        ("True", "Replicated")
    );
    assert_eq!(p.replicated.as_deref(), Some("2/2"));
    assert!(!p.exists);
}

#[test]
fn current_replicas_are_unchanged_and_stale_ones_updated() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let mut old = gs.clone();
    old.spec.data = Some(crate::api::SecretData([("k".into(), "Yg==".into())].into()));
    let p = run(
        &gs,
        vec![old.clone()],
        vec![replica(&gs, "team-a"), replica(&old, "team-b")],
        false,
    );
    assert!(p.exists);
    assert_eq!(
        actions(&p),
        [("team-a", Action::Unchanged), ("team-b", Action::Update)]
    );
    assert_eq!(p.verdict, Verdict::Replicates);
}

#[test]
fn an_unmanaged_secret_is_a_conflict_unless_offered_for_adoption() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let p = run(
        &gs,
        vec![],
        vec![unmanaged("team-b", "creds", false)],
        false,
    );
    assert_eq!(
        actions(&p),
        [("team-a", Action::Create), ("team-b", Action::Conflict)]
    );
    assert_eq!(p.verdict, Verdict::NeedsAction);
    assert_eq!(p.verdict.exit_code(), 3);
    assert_eq!(p.ready.reason, "Conflict");
    assert!(
        p.secrets[1]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("--adopt-existing")
    );

    let offered = vec![unmanaged("team-b", "creds", true)];
    let p = run(&gs, vec![], offered.clone(), true);
    assert_eq!(actions(&p)[1], ("team-b", Action::Adopt));
    // Offered, but the operator does not adopt: still a conflict.
    let p = run(&gs, vec![], offered, false);
    assert_eq!(actions(&p)[1], ("team-b", Action::Conflict));
}

#[test]
fn over_quota_is_blocked_and_gives_up_its_replicas() {
    let others: Vec<GenericSecret> = (1..=2)
        .map(|i| generic_secret(TENANT, &format!("tw-{i}"), Scope::TenantWide, i))
        .collect();
    let gs = generic_secret(TENANT, "tw-3", Scope::TenantWide, 10);
    let p = run(&gs, others, vec![replica(&gs, "team-a")], false);
    assert_eq!(p.verdict, Verdict::Blocked);
    assert_eq!(p.verdict.exit_code(), 2);
    assert_eq!(p.ready.reason, "TenantWideQuotaExceeded");
    assert!(p.ready.message.contains("at most 2"), "{}", p.ready.message);
    assert_eq!(actions(&p), [("team-a", Action::Delete)]);
}

#[test]
fn a_replica_outside_the_plan_is_deleted() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let gone = replica(&gs, "old-group");
    let p = run(&gs, vec![], vec![gone], false);
    assert!(actions(&p).contains(&("old-group", Action::Delete)));
}

#[test]
fn shadowing_is_reported_with_its_override_time() {
    let tw = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let rg = generic_secret("team-a", "creds", Scope::ResourceGroup, 5);
    let p = run(&rg, vec![tw.clone()], vec![replica(&tw, "team-a")], false);
    assert_eq!(actions(&p), [("team-a", Action::Update)]);
    assert!(p.secrets[0].until.is_some());
    assert_eq!(p.ready.reason, "Shadowing");
    assert_eq!(p.verdict, Verdict::Replicates);

    // The tenant-wide object leaves team-a to it, which resolves itself.
    let p = run(&tw, vec![rg], vec![], false);
    assert_eq!(
        actions(&p),
        [("team-a", Action::Leave), ("team-b", Action::Create)]
    );
    assert_eq!(p.ready.reason, "Shadowed");
    assert_eq!(p.verdict, Verdict::Replicates);
}

#[test]
fn an_invalid_spec_is_blocked_with_its_message() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let snapshot = Snapshot {
        objects: vec![],
        groups: groups(),
        secrets: vec![],
    };
    let known = Known {
        invalid: Some("the apiserver refuses it: spec.data: bad".into()),
        ..Known::default()
    };
    let p = from_snapshot(&settings(false), &gs, &snapshot, known, None);
    assert_eq!(p.verdict, Verdict::Blocked);
    assert_eq!(p.ready.reason, "InvalidSpec");
    assert!(p.ready.message.contains("spec.data: bad"));
    assert!(p.secrets.is_empty());
}

#[test]
fn the_json_form_is_camel_case() {
    let gs = generic_secret(TENANT, "creds", Scope::TenantWide, 0);
    let p = run(
        &gs,
        vec![],
        vec![unmanaged("team-b", "creds", false)],
        false,
    );
    let json = serde_json::to_value(&p).expect("serializes");
    assert_eq!(json["secretName"], "creds");
    assert_eq!(json["verdict"], "needsAction");
    assert_eq!(json["secrets"][0]["resourceGroup"], "rg-a");
    assert_eq!(json["secrets"][1]["action"], "conflict");
    let back: Preview = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, p);
}
