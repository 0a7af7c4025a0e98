use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::api::{
    GenericSecret, GenericSecretSpec, GenericSecretStatus, RESOURCE_GROUP_LABEL, SecretData,
};
use crate::index::Groups;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::reflector::ObjectRef;

const TENANT: &str = "tenant";

fn rules() -> Rules {
    Rules {
        tenant_namespace: TENANT.into(),
        override_interval: SignedDuration::from_secs(60),
        max_tenant_wide: 2,
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("valid time")
}

/// A valid GenericSecret `ns/name` created `created` seconds after the
/// tests' epoch (uid `ns/name`, generation 1); shared with the index tests.
pub(crate) fn generic_secret(ns: &str, name: &str, scope: Scope, created: i64) -> GenericSecret {
    let mut gs = GenericSecret::new(
        name,
        GenericSecretSpec {
            scope,
            secret_name: None,
            type_: "Opaque".into(),
            data: Some(SecretData([("k".to_owned(), "YQ==".to_owned())].into())),
            data_from: None,
            labels: BTreeMap::new(),
            rollout: None,
        },
    );
    gs.metadata.namespace = Some(ns.into());
    gs.metadata.uid = Some(format!("{ns}/{name}"));
    gs.metadata.generation = Some(1);
    gs.metadata.creation_timestamp = Some(Time(at(created)));
    gs
}

fn gsec(ns: &str, name: &str, scope: Scope, created: i64) -> Arc<GenericSecret> {
    Arc::new(generic_secret(ns, name, scope, created))
}

pub fn namespace(name: &str, group: Option<&str>) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: group
                .map(|g| BTreeMap::from([(RESOURCE_GROUP_LABEL.to_owned(), g.to_owned())])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn namespaces() -> Vec<Namespace> {
    vec![
        namespace(TENANT, None),
        namespace("team-a", Some("rg-a")),
        namespace("team-b", Some("rg-b")),
        namespace("plain", None),
    ]
}

/// The indexes over `all` and `namespaces`.
fn indexes(all: &[Arc<GenericSecret>], namespaces: &[Namespace]) -> (Objects, Groups) {
    let objects = Objects::from_objects(all.iter().map(Arc::as_ref));
    let mut groups = Groups::default();
    for ns in namespaces {
        groups.upsert(ns);
    }
    (objects, groups)
}

fn plan_at(
    gs: &GenericSecret,
    all: &[Arc<GenericSecret>],
    now: Timestamp,
) -> Result<Plan, Blocked> {
    let rules = rules();
    let (objects, groups) = indexes(all, &namespaces());
    let world = World {
        rules: &rules,
        objects: &objects,
        groups: &groups,
        now,
    };
    plan(&Facts::of(gs), &world)
}

fn target_namespaces(plan: &Plan) -> Vec<&str> {
    plan.targets.iter().map(|t| t.namespace.as_str()).collect()
}

#[test]
fn each_scope_targets_its_namespaces() {
    let tenant = gsec(TENANT, "main", Scope::Tenant, 0);
    let wide = gsec(TENANT, "wide", Scope::TenantWide, 0);
    let rg = gsec("team-a", "own", Scope::ResourceGroup, 0);
    let all = vec![tenant.clone(), wide.clone(), rg.clone()];
    assert_eq!(
        target_namespaces(&plan_at(&tenant, &all, at(1)).expect("tenant")),
        [TENANT]
    );
    assert_eq!(
        target_namespaces(&plan_at(&wide, &all, at(1)).expect("wide")),
        ["team-a", "team-b"]
    );
    let rg_plan = plan_at(&rg, &all, at(1)).expect("rg");
    assert_eq!(target_namespaces(&rg_plan), ["team-a"]);
    assert_eq!(rg_plan.targets[0].resource_group.as_deref(), Some("rg-a"));
}

#[test]
fn wrong_namespace_for_scope_says_what_to_do() {
    let wide = gsec("team-a", "wide", Scope::TenantWide, 0);
    let err = plan_at(&wide, std::slice::from_ref(&wide), at(1)).expect_err("blocked");
    assert_eq!(err.reason(), "WrongNamespace");
    assert!(
        err.message().contains("tenant namespace"),
        "{}",
        err.message()
    );
    let rg = gsec("plain", "x", Scope::ResourceGroup, 0);
    let err = plan_at(&rg, std::slice::from_ref(&rg), at(1)).expect_err("blocked");
    assert!(
        err.message().contains("label it aicore.dev/resource-group"),
        "{}",
        err.message()
    );
}

#[test]
fn quota_admits_the_oldest_and_the_next_after_a_delete() {
    let a = gsec(TENANT, "a", Scope::TenantWide, 0);
    let b = gsec(TENANT, "b", Scope::TenantWide, 1);
    let c = gsec(TENANT, "c", Scope::TenantWide, 2);
    let all = vec![c.clone(), a.clone(), b.clone()];
    assert!(plan_at(&a, &all, at(5)).is_ok());
    assert!(plan_at(&b, &all, at(5)).is_ok());
    let err = plan_at(&c, &all, at(5)).expect_err("third exceeds a limit of 2");
    assert_eq!(
        err,
        Blocked::TenantWideQuotaExceeded {
            limit: 2,
            position: 3
        }
    );
    let mut deleting = (*a).clone();
    deleting.metadata.deletion_timestamp = Some(Time(at(4)));
    let all = vec![c.clone(), Arc::new(deleting), b];
    assert!(plan_at(&c, &all, at(5)).is_ok());
}

#[test]
fn same_creation_time_orders_by_name() {
    let x = gsec(TENANT, "x", Scope::TenantWide, 0);
    let y = gsec(TENANT, "y", Scope::TenantWide, 0);
    let w = gsec(TENANT, "w", Scope::TenantWide, 0);
    let all = vec![y.clone(), x.clone(), w.clone()];
    assert!(plan_at(&y, &all, at(1)).is_err());
    assert!(plan_at(&w, &all, at(1)).is_ok());
}

#[test]
fn names_that_map_to_one_kubernetes_name_collide() {
    let mut upper = (*gsec(TENANT, "upper", Scope::Tenant, 0)).clone();
    upper.spec.secret_name = Some("MY_SECRET".into());
    let mut lower = (*gsec(TENANT, "lower", Scope::Tenant, 1)).clone();
    lower.spec.secret_name = Some("my-secret".into());
    let all = vec![Arc::new(upper.clone()), Arc::new(lower.clone())];
    assert_eq!(
        plan_at(&upper, &all, at(2))
            .expect("older wins")
            .secret_name,
        "my-secret"
    );
    let err = plan_at(&lower, &all, at(2)).expect_err("younger refused");
    assert_eq!(err.reason(), "NameCollision");
    assert!(err.message().contains("tenant/upper"), "{}", err.message());
}

fn with_shadow(rg: &GenericSecret, since: i64, override_at: i64) -> Arc<GenericSecret> {
    let mut rg = rg.clone();
    rg.status = Some(GenericSecretStatus {
        shadow: Some(ShadowStatus {
            tenant_wide: format!("{TENANT}/creds"),
            since: Time(at(since)),
            generation: 1,
            override_at: Time(at(override_at)),
        }),
        ..GenericSecretStatus::default()
    });
    Arc::new(rg)
}

#[test]
fn resource_group_shadows_then_yields_after_the_interval() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let rg = gsec("team-a", "creds", Scope::ResourceGroup, 10);
    // First look: it starts shadowing now, for the override interval.
    let first = plan_at(&rg, &[tw.clone(), rg.clone()], at(10)).expect("plan");
    let shadow = first.shadow.clone().expect("shadow recorded");
    assert_eq!(shadow.override_at.0, at(70));
    assert!(matches!(first.targets[0].mode, Mode::Shadowing { .. }));
    assert_eq!(first.wake_at, Some(at(70)));
    // The record survives restarts: the same times come back from status.
    let rg = with_shadow(&rg, 10, 70);
    let later = plan_at(&rg, &[tw.clone(), rg.clone()], at(40)).expect("plan");
    assert_eq!(later.shadow, Some(shadow));
    let overridden = plan_at(&rg, &[tw.clone(), rg.clone()], at(71)).expect("plan");
    assert!(matches!(
        overridden.targets[0].mode,
        Mode::Yield {
            overridden: true,
            ..
        }
    ));
}

#[test]
fn tenant_wide_yields_to_a_shadow_until_its_override_time() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let rg = with_shadow(&gsec("team-a", "creds", Scope::ResourceGroup, 10), 10, 70);
    let all = vec![tw.clone(), rg.clone()];
    let during = plan_at(&tw, &all, at(30)).expect("plan");
    let a = &during.targets[0];
    assert_eq!(a.namespace, "team-a");
    assert!(matches!(a.mode, Mode::Yield { until: Some(t), .. } if t == at(70)));
    assert_eq!(
        during.targets[1].mode,
        Mode::Write,
        "team-b is not shadowed"
    );
    assert_eq!(during.wake_at, Some(at(70)));
    let after = plan_at(&tw, &all, at(70)).expect("plan");
    assert!(after.targets.iter().all(|t| t.mode == Mode::Write));
}

#[test]
fn unrecorded_shadow_makes_tenant_wide_wait_and_ask() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let rg = gsec("team-a", "creds", Scope::ResourceGroup, 10);
    let p = plan_at(&tw, &[tw.clone(), rg.clone()], at(11)).expect("plan");
    assert!(matches!(p.targets[0].mode, Mode::Yield { until: None, .. }));
    assert_eq!(p.wake_at, Some(at(11) + SHADOW_RECORD_WAIT));
}

#[test]
fn new_generation_shadows_anew() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let mut rg = (*with_shadow(&gsec("team-a", "creds", Scope::ResourceGroup, 10), 10, 70)).clone();
    rg.metadata.generation = Some(2);
    let p = plan_at(&rg, &[tw, Arc::new(rg.clone())], at(100)).expect("plan");
    let shadow = p.shadow.expect("shadow");
    assert_eq!((shadow.generation, shadow.since.0), (2, at(100)));
}

#[test]
fn deletion_hands_shared_names_over() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let rg = gsec("team-a", "creds", Scope::ResourceGroup, 10);
    let rules = rules();
    let (objects, groups) = indexes(&[tw.clone(), rg.clone()], &namespaces());
    let world = World {
        rules: &rules,
        objects: &objects,
        groups: &groups,
        now: at(20),
    };
    let (tw_facts, rg_facts) = (Facts::of(&tw), Facts::of(&rg));
    assert_eq!(
        successor_in(&rg_facts, "team-a", &world),
        Some(ObjectRef::from(tw.as_ref()))
    );
    assert_eq!(
        successor_in(&tw_facts, "team-a", &world),
        Some(ObjectRef::from(rg.as_ref()))
    );
    assert_eq!(successor_in(&tw_facts, "team-b", &world), None);
}

#[test]
fn tenant_namespace_is_never_a_resource_group_target() {
    let mut ns = namespaces();
    ns[0] = namespace(TENANT, Some("odd"));
    let rules = rules();
    let tw = gsec(TENANT, "wide", Scope::TenantWide, 0);
    let (objects, groups) = indexes(std::slice::from_ref(&tw), &ns);
    let world = World {
        rules: &rules,
        objects: &objects,
        groups: &groups,
        now: at(1),
    };
    let p = plan(&Facts::of(&tw), &world).expect("plan");
    assert!(!target_namespaces(&p).contains(&TENANT));
}

#[test]
fn invalid_tenant_wide_objects_keep_their_quota_slot() {
    let mut broken = (*gsec(TENANT, "a-broken", Scope::TenantWide, 0)).clone();
    broken.spec.data = Some(SecretData([("k".to_owned(), "***".to_owned())].into()));
    let b = gsec(TENANT, "b", Scope::TenantWide, 1);
    let c = gsec(TENANT, "c", Scope::TenantWide, 2);
    let all = vec![Arc::new(broken.clone()), b.clone(), c.clone()];
    assert_eq!(
        plan_at(&broken, &all, at(5)).expect_err("invalid").reason(),
        "InvalidSpec"
    );
    // It keeps its last good replicas, so it keeps its slot: never more
    // than the quota hold replicas.
    assert!(plan_at(&b, &all, at(5)).is_ok());
    assert_eq!(
        plan_at(&c, &all, at(5)).expect_err("third").reason(),
        "TenantWideQuotaExceeded"
    );
}

#[test]
fn tenant_wide_does_not_wait_for_a_group_secret_without_its_source() {
    let tw = gsec(TENANT, "creds", Scope::TenantWide, 0);
    let mut rg = (*gsec("team-a", "creds", Scope::ResourceGroup, 10)).clone();
    rg.status = Some(GenericSecretStatus {
        observed_generation: Some(1),
        conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "SourceNotFound".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(at(10)),
        }],
        ..GenericSecretStatus::default()
    });
    let p = plan_at(&tw, &[tw.clone(), Arc::new(rg)], at(11)).expect("plan");
    assert_eq!(p.targets[0].mode, Mode::Write);
    assert_eq!(p.wake_at, None, "nothing to poll for");
}

mod quota {
    use super::*;
    use proptest::prelude::*;

    /// (created, valid, being deleted, AI Core name index) of one object.
    fn objects() -> impl Strategy<Value = Vec<(i64, bool, bool, u8)>> {
        prop::collection::vec((0i64..20, any::<bool>(), any::<bool>(), 0u8..6), 0..10)
    }

    proptest! {
        /// Never more tenant-wide objects hold replicas than the quota: an
        /// object holds them when it plans, or when its block keeps the last
        /// good ones (an invalid spec, say).
        #[test]
        fn never_more_than_the_quota_hold_replicas(specs in objects(), limit in 1usize..5) {
            let all: Vec<Arc<GenericSecret>> = specs
                .iter()
                .enumerate()
                .map(|(i, (created, valid, deleting, name))| {
                    let mut gs = (*gsec(TENANT, &format!("o{i}"), Scope::TenantWide, *created)).clone();
                    gs.spec.secret_name = Some(format!("name-{name}"));
                    if !valid {
                        gs.spec.data = Some(SecretData([("k".to_owned(), "***".to_owned())].into()));
                    }
                    if *deleting {
                        gs.metadata.deletion_timestamp = Some(Time(at(30)));
                    }
                    Arc::new(gs)
                })
                .collect();
            let rules = Rules { max_tenant_wide: limit, ..rules() };
            let (objects, groups) = indexes(&all, &namespaces());
            let world = World { rules: &rules, objects: &objects, groups: &groups, now: at(40) };
            let holding = all
                .iter()
                .map(|gs| Facts::of(gs))
                .filter(|f| f.live)
                .filter(|f| match plan(f, &world) {
                    Ok(_) => true,
                    Err(blocked) => !blocked.withdraws_replicas(),
                })
                .count();
            prop_assert!(holding <= limit, "{holding} hold replicas, quota {limit}");
        }
    }
}
