//! Planning cost as the fan-out grows: how long one tenant-wide reconcile
//! spends deciding what to write, and one resource-group reconcile, for 100
//! and for 1 000 resource groups, measured side by side in one run. The
//! indexes are kept by the watches, so a plan costs O(its targets): linear
//! for the tenant-wide object (ratio ≈ 10), flat for a resource-group one.
//!
//! Run: `cargo bench --bench plan`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use generic_secrets_operator::api::RESOURCE_GROUP_LABEL;
use generic_secrets_operator::api::{GenericSecret, GenericSecretSpec, Scope, SecretData};
use generic_secrets_operator::index::{Facts, Groups, Objects};
use generic_secrets_operator::plan::{Rules, World, plan};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

const TENANT: &str = "aicore-system";

fn gsec(ns: &str, name: &str, scope: Scope, created: i64) -> Arc<GenericSecret> {
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
    gs.metadata.creation_timestamp = Timestamp::from_second(1_700_000_000 + created)
        .ok()
        .map(Time);
    Arc::new(gs)
}

fn namespace(i: usize) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(format!("team-{i}")),
            labels: Some(BTreeMap::from([(
                RESOURCE_GROUP_LABEL.to_owned(),
                format!("rg-{i}"),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Mean time of one `plan` call for a tenant-wide object and for a
/// resource-group object, with `groups` resource groups each holding two
/// resource-group secrets sharing two names.
fn time_plan(groups: usize) -> (Duration, Duration) {
    let rules = Rules {
        tenant_namespace: TENANT.into(),
        override_interval: SignedDuration::from_mins(10),
        max_tenant_wide: 5,
    };
    let mut namespaces = Groups::default();
    for i in 0..groups {
        namespaces.upsert(&namespace(i));
    }
    let mut all: Vec<Arc<GenericSecret>> = (0..5)
        .map(|i| gsec(TENANT, &format!("wide-{i}"), Scope::TenantWide, i))
        .collect();
    for name in ["object-store", "hf-token"] {
        all.extend((0..groups).map(|i| gsec(&format!("team-{i}"), name, Scope::ResourceGroup, 10)));
    }
    let objects = Objects::from_objects(all.iter().map(Arc::as_ref));
    let now = Timestamp::from_second(1_700_000_100).unwrap_or(Timestamp::UNIX_EPOCH);
    let world = World {
        rules: &rules,
        objects: &objects,
        groups: &namespaces,
        now,
    };
    let time = |subject: &GenericSecret| {
        let facts = Facts::of(subject);
        let rounds = 200;
        let start = Instant::now();
        for _ in 0..rounds {
            let planned = plan(black_box(&facts), black_box(&world));
            black_box(planned.map(|p| p.targets.len()).unwrap_or_default());
        }
        start.elapsed() / rounds
    };
    (time(&all[0]), time(&all[5]))
}

fn main() {
    // Warm up caches and the allocator before measuring.
    time_plan(100);
    let (tw_small, rg_small) = time_plan(100);
    let (tw_large, rg_large) = time_plan(1_000);
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!("plan, tenant-wide, 100 resource groups:      {tw_small:?} per reconcile");
    println!("plan, tenant-wide, 1000 resource groups:     {tw_large:?} per reconcile");
    println!(
        "ratio 1000/100: {:.1} (linear = 10)",
        ratio(tw_small, tw_large)
    );
    println!("plan, resource-group, 100 resource groups:   {rg_small:?} per reconcile");
    println!("plan, resource-group, 1000 resource groups:  {rg_large:?} per reconcile");
    println!(
        "ratio 1000/100: {:.1} (flat = 1)",
        ratio(rg_small, rg_large)
    );
}
