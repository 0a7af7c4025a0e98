//! The indexes and the wake-up rules (`plan::deps`): who wakes whom.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::replicas::{Replica, Replicas};
use super::*;
use crate::api::{GenericSecretStatus, SecretData};
use crate::controller::Indexes;
use crate::plan::tests::generic_secret as gsec;
use crate::plan::{Rules, World, deps};
use crate::replicas::{MANAGED_BY_LABEL, MANAGER, OWNER_ANNOTATION, TENANT_LABEL};

const TENANT: &str = "tenant";

fn rules() -> Rules {
    Rules {
        tenant_namespace: TENANT.into(),
        override_interval: SignedDuration::from_secs(60),
        max_tenant_wide: 1,
    }
}

fn group(name: &str, id: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                RESOURCE_GROUP_LABEL.to_owned(),
                id.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// An index of `objects` over namespaces team-0 … team-{groups-1}.
struct Fixture {
    rules: Rules,
    indexes: Indexes,
}

impl Fixture {
    fn new(groups: usize, objects: &[GenericSecret]) -> Self {
        let mut g = Groups::default();
        for i in 0..groups {
            g.upsert(&group(&format!("team-{i}"), &format!("rg-{i}")));
        }
        let indexes = Indexes {
            objects: Objects::from_objects(objects),
            groups: g,
        };
        Fixture {
            rules: rules(),
            indexes,
        }
    }

    fn world(&self) -> World<'_> {
        let now = Timestamp::from_second(1_700_000_100).expect("time");
        self.indexes.world(&self.rules, now)
    }

    /// Apply `gs` as a watch event would, returning whom it wakes.
    fn change(&mut self, gs: &GenericSecret) -> HashSet<String> {
        self.event(Key::from(gs), Some(Facts::of(gs)))
    }

    fn delete(&mut self, gs: &GenericSecret) -> HashSet<String> {
        self.event(Key::from(gs), None)
    }

    fn event(&mut self, key: Key, new: Option<Facts>) -> HashSet<String> {
        let now = self.world().now;
        let woken = self.indexes.apply_object(&self.rules, now, key, new);
        names(woken)
    }
}

fn names(keys: HashSet<Key>) -> HashSet<String> {
    keys.into_iter()
        .map(|k| format!("{}/{}", k.namespace.unwrap_or_default(), k.name))
        .collect()
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Two resource-group objects per namespace with the same two names in
/// every namespace: the platform-scale case.
fn many(groups: usize) -> Vec<GenericSecret> {
    (0..groups)
        .flat_map(|i| {
            ["object-store", "hf-token"]
                .map(|n| gsec(&format!("team-{i}"), n, Scope::ResourceGroup, 1))
        })
        .collect()
}

#[test]
fn same_name_objects_in_other_namespaces_never_wake_each_other() {
    let objects = many(50);
    let mut fx = Fixture::new(50, &objects);
    // A status change of one (its replica written, a new sync time) …
    let mut written = objects[0].clone();
    written.status = Some(GenericSecretStatus {
        replicated: Some("1/1".into()),
        ..GenericSecretStatus::default()
    });
    assert!(fx.change(&written).is_empty());
    // … a new one, or a deleted one, wakes none of the 99 others.
    assert!(
        fx.change(&gsec("team-7", "extra", Scope::ResourceGroup, 2))
            .is_empty()
    );
    assert!(fx.delete(&objects[3]).is_empty());
}

#[test]
fn a_second_object_of_one_name_in_one_namespace_wakes_the_first() {
    let first = gsec("team-0", "creds", Scope::ResourceGroup, 1);
    let mut fx = Fixture::new(2, std::slice::from_ref(&first));
    let mut second = gsec("team-0", "creds-2", Scope::ResourceGroup, 2);
    second.spec.secret_name = Some("CREDS".into());
    assert_eq!(fx.change(&second), set(&["team-0/creds"]));
    assert_eq!(fx.delete(&second), set(&["team-0/creds"]));
}

#[test]
fn a_tenant_wide_object_wakes_the_shadows_of_its_name_only() {
    let mut objects = many(3);
    objects.push(gsec("team-1", "other", Scope::ResourceGroup, 1));
    let mut fx = Fixture::new(3, &objects);
    let tw = gsec(TENANT, "object-store", Scope::TenantWide, 0);
    let expected = set(&[
        "team-0/object-store",
        "team-1/object-store",
        "team-2/object-store",
    ]);
    assert_eq!(fx.change(&tw), expected);
    // Its own rotation changes no other object's decision.
    let mut rotated = tw.clone();
    rotated.metadata.generation = Some(2);
    rotated.spec.data = Some(SecretData([("k".to_owned(), "Yg==".to_owned())].into()));
    assert!(fx.change(&rotated).is_empty());
    assert_eq!(fx.delete(&rotated), expected);
}

#[test]
fn a_shadow_record_wakes_its_tenant_wide_object_only() {
    let tw = gsec(TENANT, "object-store", Scope::TenantWide, 0);
    let mut objects = many(3);
    objects.push(tw.clone());
    let mut fx = Fixture::new(3, &objects);
    let mut recorded = objects[0].clone();
    recorded.status = Some(GenericSecretStatus {
        shadow: Some(crate::api::ShadowStatus {
            tenant_wide: "tenant/object-store".into(),
            since: Time(Timestamp::UNIX_EPOCH),
            generation: 1,
            override_at: Time(Timestamp::UNIX_EPOCH),
        }),
        ..GenericSecretStatus::default()
    });
    assert_eq!(fx.change(&recorded), set(&["tenant/object-store"]));
}

#[test]
fn a_freed_quota_slot_wakes_the_waiting_tenant_wide_object() {
    let holder = gsec(TENANT, "a", Scope::TenantWide, 0);
    let waiter = gsec(TENANT, "b", Scope::TenantWide, 1);
    let mut fx = Fixture::new(1, &[holder.clone(), waiter]);
    let woken = fx.delete(&holder);
    assert!(woken.contains("tenant/b"), "{woken:?}");
}

#[test]
fn a_namespace_change_wakes_the_objects_inside_and_the_tenant_wide_ones() {
    let tw = gsec(TENANT, "wide", Scope::TenantWide, 0);
    let mut objects = many(3);
    objects.push(tw);
    let fx = Fixture::new(3, &objects);
    let woken = names(deps::after_namespace_change(
        &fx.world(),
        "team-1",
        Change::Group,
    ));
    assert_eq!(
        woken,
        set(&["team-1/object-store", "team-1/hf-token", "tenant/wide"])
    );
}

#[test]
fn groups_report_only_changes_of_the_resource_group_id() {
    let mut groups = Groups::default();
    assert_eq!(
        groups.upsert(&group("team-a", "rg-a")),
        Change::Group,
        "new"
    );
    assert_eq!(
        groups.upsert(&group("team-a", "rg-a")),
        Change::None,
        "same id"
    );
    assert_eq!(
        groups.upsert(&group("team-a", "rg-b")),
        Change::Group,
        "new id"
    );
    let mut plain = group("plain", "x");
    plain.metadata.labels = None;
    assert_eq!(groups.upsert(&plain), Change::Membership, "not a group");
    assert_eq!(groups.remove("plain"), Change::Membership);
    assert_eq!(groups.group_of("team-a"), Some("rg-b"));
    let before = Groups::default();
    assert_eq!(groups.changed_since(&before), vec!["team-a".to_owned()]);
    assert_eq!(groups.remove("team-a"), Change::Group);
    assert!(groups.is_empty());
}

fn replica_secret(ns: &str, writer: &str, value: &[u8]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            namespace: Some(ns.into()),
            resource_version: Some("1".into()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
                (TENANT_LABEL.to_owned(), TENANT.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([(
                OWNER_ANNOTATION.to_owned(),
                writer.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "k".to_owned(),
            ByteString(value.to_vec()),
        )])),
        ..Secret::default()
    }
}

#[test]
fn replicas_are_found_by_writer_and_keep_no_data() {
    let mut cache = Replicas::default();
    cache.upsert(Replica::of(
        &replica_secret("team-0", "tenant/creds", b"s3cr3t"),
        TENANT,
    ));
    cache.upsert(Replica::of(
        &replica_secret("team-1", "tenant/creds", b"s3cr3t"),
        TENANT,
    ));
    assert_eq!(cache.written_by("tenant/creds").len(), 2);
    let kept = format!("{:?}", cache.get("team-0", "creds"));
    assert!(
        !kept.contains("s3cr3t") && !kept.contains("115, 51"),
        "{kept}"
    );
    // Taken over by another object: the index follows.
    cache.upsert(Replica::of(
        &replica_secret("team-0", "team-0/creds", b"x"),
        TENANT,
    ));
    assert_eq!(cache.written_by("tenant/creds").len(), 1);
    assert_eq!(cache.written_by("team-0/creds").len(), 1);
}

#[test]
fn our_own_writes_wake_nobody_and_edits_wake_the_writer() {
    let mut cache = Replicas::default();
    let ours = Replica::of(&replica_secret("team-0", "tenant/creds", b"a"), TENANT);
    // Write-through: the write is recorded before its watch event arrives.
    cache.record_write(ours.clone(), None);
    let mut event = ours.clone();
    event.resource_version = Some("1".into());
    let old = cache.upsert(event.clone());
    assert!(deps::after_replica_change(old.as_ref(), Some(&event)).is_empty());
    let edited = Replica::of(&replica_secret("team-0", "tenant/creds", b"b"), TENANT);
    let woken = names(deps::after_replica_change(Some(&event), Some(&edited)));
    assert_eq!(woken, set(&["tenant/creds"]));
    let taken = Replica::of(&replica_secret("team-0", "team-0/creds", b"b"), TENANT);
    let woken = names(deps::after_replica_change(Some(&edited), Some(&taken)));
    assert_eq!(woken, set(&["tenant/creds", "team-0/creds"]));
    assert_eq!(
        names(deps::after_replica_change(Some(&taken), None)),
        set(&["team-0/creds"])
    );
}

#[test]
fn a_write_does_not_overwrite_a_newer_cached_version() {
    let mut cache = Replicas::default();
    let mut newer = Replica::of(&replica_secret("team-0", "tenant/creds", b"b"), TENANT);
    newer.resource_version = Some("7".into());
    cache.upsert(newer.clone());
    let mut ours = Replica::of(&replica_secret("team-0", "tenant/creds", b"a"), TENANT);
    ours.resource_version = Some("6".into());
    cache.record_write(ours, Some("5"));
    assert_eq!(cache.get("team-0", "creds"), Some(&newer));
}

#[test]
fn tombstones_stop_a_late_write_through_and_then_go() {
    let mut cache = Replicas::default();
    let mut seen = Replica::of(&replica_secret("team-0", "tenant/creds", b"a"), TENANT);
    seen.resource_version = Some("6".into());
    cache.upsert(seen.clone());
    cache.observe_delete(&seen.key());
    // The write that made version 6 answers after the watch saw it deleted.
    cache.record_write(seen.clone(), None);
    assert_eq!(cache.get("team-0", "creds"), None);
    assert_eq!(cache.tombstones(), 1);
    let later = std::time::Instant::now() + replicas::TOMBSTONE_TTL;
    cache.forget_tombstones(later);
    assert_eq!(cache.tombstones(), 0);
}

#[test]
fn replicas_of_one_object_share_their_strings_and_keep_their_own() {
    let mut cache = Replicas::default();
    for ns in ["team-0", "team-1"] {
        cache.upsert(Replica::of(
            &replica_secret(ns, "tenant/creds", b"s"),
            TENANT,
        ));
    }
    let (a, b) = (cache.get("team-0", "creds"), cache.get("team-1", "creds"));
    let (a, b) = (a.expect("team-0"), b.expect("team-1"));
    assert!(std::sync::Arc::ptr_eq(&a.name, &b.name));
    assert!(std::sync::Arc::ptr_eq(&a.data_hash, &b.data_hash));
    let writer = |r: &Replica| r.writer.clone().expect("a writer");
    assert!(std::sync::Arc::ptr_eq(&writer(a), &writer(b)));
    assert_ne!(a.namespace, b.namespace);
    assert_eq!(a.labels.get(TENANT_LABEL), Some(TENANT));
    // Removed, it is gone under either key form; the other stays.
    cache.observe_delete(&a.key());
    assert!(cache.get("team-0", "creds").is_none());
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.written_by("tenant/creds").len(), 1);
}
