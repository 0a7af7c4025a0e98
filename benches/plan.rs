//! Planning cost as the fan-out grows: how long one tenant-wide reconcile
//! spends deciding what to write, for 100 and for 1 000 resource groups,
//! measured side by side in one run. Planning should grow linearly with the
//! number of namespaces (ratio ≈ 10), not quadratically.
//!
//! Run: `cargo bench --bench plan`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use generic_secrets_operator::api::{GenericSecret, GenericSecretSpec, Scope, SecretData};
use generic_secrets_operator::controller::plan::{Rules, Snapshot, plan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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

/// Mean time of one `plan` call for a tenant-wide object with `groups`
/// resource groups, each holding one resource-group secret of its own.
fn time_plan(groups: usize) -> Duration {
    let rules = Rules {
        tenant_namespace: TENANT.into(),
        override_interval: SignedDuration::from_mins(10),
        max_tenant_wide: 5,
    };
    let namespaces: BTreeMap<String, Option<String>> = (0..groups)
        .map(|i| (format!("team-{i}"), Some(format!("rg-{i}"))))
        .collect();
    let mut all: Vec<Arc<GenericSecret>> = (0..5)
        .map(|i| gsec(TENANT, &format!("wide-{i}"), Scope::TenantWide, i))
        .collect();
    all.extend((0..groups).map(|i| gsec(&format!("team-{i}"), "own", Scope::ResourceGroup, 10)));
    let subject = all[0].clone();
    let now = Timestamp::from_second(1_700_000_100).unwrap_or(Timestamp::UNIX_EPOCH);
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        // The snapshot index is built per reconcile, so it is part of the cost.
        let snap = Snapshot::new(&rules, &namespaces, &all, now);
        let planned = plan(black_box(&subject), black_box(&snap));
        black_box(planned.map(|p| p.targets.len()).unwrap_or_default());
    }
    start.elapsed() / rounds
}

fn main() {
    // Warm up caches and the allocator before measuring.
    time_plan(100);
    let small = time_plan(100);
    let large = time_plan(1_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    println!("plan, tenant-wide, 100 resource groups:   {small:?} per reconcile");
    println!("plan, tenant-wide, 1000 resource groups:  {large:?} per reconcile");
    println!("ratio 1000/100: {ratio:.1} (linear = 10)");
}
