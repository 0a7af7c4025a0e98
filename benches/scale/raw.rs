//! Scenario 1, the raw baseline: the bench's own client doing the Secret
//! writes the operator has to do, as fast as this apiserver takes them. These
//! are the limits the operator is compared with:
//!
//! - `raw.create.c{1,8,32}`: create N Secrets, one per resource group, at
//!   concurrency 1, 8 and 32 (the best of them is "the limit" for fan-out);
//! - `raw.apply`: server-side apply a change to those N at concurrency 32;
//! - `raw.apply5n`: the same for 5N Secrets (rotation of 5 tenant-wide
//!   objects);
//! - `raw.writes3x2n`: create plus two applies for each of 2N Secrets (the
//!   three writes one resource-group object costs the operator, as Secret
//!   writes);
//! - `raw.objects2n`: like for like with scenario 4, the very requests the
//!   bench and the operator make there for each of 2N resource-group
//!   objects: create the GenericSecret, add a finalizer (JSON patch), create
//!   its Secret, apply its status. Writes to a custom resource cost the
//!   apiserver more than Secret writes (JSON, schema and CEL validation).
//! - `raw.create.shaped.unwatched`, `raw.rotate5n.shaped.unwatched`: the
//!   fan-out's creates and the rotation's updates (concurrency 32) of
//!   Secrets shaped like the operator's replicas (its 4 labels and 2
//!   annotations), each update as the operator writes it (a JSON patch of
//!   the data and the hash annotation at the version it knows): what the
//!   apiserver charges for the replicas' metadata;
//! - `raw.apply5n.shaped.unwatched`: those updates as server-side applies
//!   of the whole replica, what the operator no longer sends on rotation;
//! - `raw.create.shaped`, `raw.rotate5n.shaped`: the creates and patches
//!   while a label-selected watch follows them as the operator's cache does:
//!   the writes the design needs plus what it must see of them, without the
//!   operator. An explanation of the gap to the limits above, not a target.
//! - `raw.objects2n.shaped`: `raw.objects2n` with a replica-shaped Secret,
//!   while the watches of scenario 4 follow: that Secret watch and two
//!   cluster-wide GenericSecret watches (the operator's and the bench's).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use futures::StreamExt;
use kube::runtime::watcher;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use serde_json::json;

use crate::cluster::{Cluster, TENANT_LABEL, secret};
use crate::objects::generic_secret;
use crate::results::Results;
use crate::util::{CONCURRENCY, Result, concurrently, timed};

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// A Secret's namespace and name.
type Target = (String, String);

pub async fn run(cluster: &Cluster, n: usize, results: &mut Results) -> Result<()> {
    let one = targets(cluster, n, 1);
    for c in [1, 8, CONCURRENCY] {
        let secs = timed(each(cluster, &one, c, |api, t| create(api, t, b'a'))).await?;
        results.record(n, format!("raw.create.c{c}"), secs);
        if c != CONCURRENCY {
            delete_all(cluster, &one).await?;
        }
    }
    let secs = timed(each(cluster, &one, CONCURRENCY, |api, t| {
        apply(api, t, b'b')
    }))
    .await?;
    results.record(n, "raw.apply", secs);
    delete_all(cluster, &one).await?;

    let five = targets(cluster, n, 5);
    each(cluster, &five, CONCURRENCY, |api, t| create(api, t, b'a')).await?;
    let secs = timed(each(cluster, &five, CONCURRENCY, |api, t| {
        apply(api, t, b'b')
    }))
    .await?;
    results.record(n, "raw.apply5n", secs);
    delete_all(cluster, &five).await?;

    let two = targets(cluster, n, 2);
    let secs = timed(each(cluster, &two, CONCURRENCY, three_writes)).await?;
    results.record(n, "raw.writes3x2n", secs);
    delete_all(cluster, &two).await?;

    let secs = objects_2n(cluster, &two, None).await?;
    results.record(n, "raw.objects2n", secs);
    shaped(cluster, n, results).await
}

/// Key suffix of the replica-shaped writes that no watch follows.
const UNWATCHED: &str = ".unwatched";

/// The creates and updates of replica-shaped Secrets, first alone (what
/// the apiserver charges for their metadata), then watched.
async fn shaped(cluster: &Cluster, n: usize, results: &mut Results) -> Result<()> {
    let tenant = cluster.namespace_name("raw-tenant");
    shaped_writes(cluster, n, &tenant, UNWATCHED, results).await?;
    let selector = format!("{MANAGED_BY}=generic-secrets-operator,{TENANT_LABEL}={tenant}");
    let config = watcher::Config::default().labels(&selector);
    let events = watcher::watcher(Api::<Secret>::all(cluster.client.clone()), config);
    let watch = tokio::spawn(events.for_each(|_| async {}));
    let tenant = tenant.as_str();
    shaped_writes(cluster, n, tenant, "", results).await?;
    let objects: Vec<_> = (0..2)
        .map(|_| {
            let events = watcher::watcher(cluster.gsecs(None), watcher::Config::default());
            tokio::spawn(events.for_each(|_| async {}))
        })
        .collect();
    let secs = objects_2n(cluster, &targets(cluster, n, 2), Some(tenant)).await;
    watch.abort();
    objects.iter().for_each(|w| w.abort());
    results.record(n, "raw.objects2n.shaped", secs?);
    Ok(())
}

/// Times the fan-out's creates and the rotation's patches of replica-shaped
/// Secrets (`raw.create.shaped`, `raw.rotate5n.shaped`, plus `suffix`);
/// unwatched, also the rotation as server-side applies.
async fn shaped_writes(
    cluster: &Cluster,
    n: usize,
    tenant: &str,
    suffix: &str,
    results: &mut Results,
) -> Result<()> {
    let one = targets(cluster, n, 1);
    let versions = Mutex::new(HashMap::new());
    let create = |api, t| create_kept(api, t, tenant, &versions);
    let secs = timed(each(cluster, &one, CONCURRENCY, create)).await;
    delete_all(cluster, &one).await?;
    results.record(n, format!("raw.create.shaped{suffix}"), secs?);
    let five = targets(cluster, n, 5);
    each(cluster, &five, CONCURRENCY, create).await?;
    let rotate = |api, t| rotate_shaped(api, t, &versions);
    let secs = timed(each(cluster, &five, CONCURRENCY, rotate)).await;
    let applied = if secs.is_ok() && suffix == UNWATCHED {
        let apply = |api, t| apply_shaped(api, t, tenant);
        Some(timed(each(cluster, &five, CONCURRENCY, apply)).await)
    } else {
        None
    };
    delete_all(cluster, &five).await?;
    results.record(n, format!("raw.rotate5n.shaped{suffix}"), secs?);
    if let Some(secs) = applied {
        results.record(n, format!("raw.apply5n.shaped{suffix}"), secs?);
    }
    Ok(())
}

/// Times [`object_writes`] for every target at concurrency 32, then
/// removes what they wrote (untimed, also after a failure).
async fn objects_2n(cluster: &Cluster, two: &[Target], shaped: Option<&str>) -> Result<f64> {
    let secs = timed(concurrently(two, CONCURRENCY, |t| {
        object_writes(cluster, t, shaped)
    }))
    .await;
    concurrently(two, CONCURRENCY, |t| remove_object(cluster, t)).await?;
    delete_all(cluster, two).await?;
    secs
}

/// `ns/name` with the labels and annotations of a replica of tenant-wide
/// object `<tenant>/<name>`, holding data `tag`.
fn replica_shaped((ns, name): &Target, tenant: &str, tag: u8) -> Secret {
    let mut s = secret(ns, name, tag);
    s.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY.to_owned(), "generic-secrets-operator".to_owned()),
        (
            "aicore.dev/generic-secret".to_owned(),
            format!("{tenant}.{name}"),
        ),
        ("aicore.dev/scope".to_owned(), "TenantWide".to_owned()),
        (TENANT_LABEL.to_owned(), tenant.to_owned()),
    ]));
    s.metadata.annotations = Some(BTreeMap::from([
        (
            "aicore.dev/generic-secret".to_owned(),
            format!("{tenant}/{name}"),
        ),
        (HASH_ANNOTATION.to_owned(), shaped_hash(tag)),
    ]));
    s
}

const HASH_ANNOTATION: &str = "aicore.dev/data-hash";

/// A stand-in for the data hash of `tag`: it changes with the data.
fn shaped_hash(tag: u8) -> String {
    format!("sha256:{}", format!("{tag:02x}").repeat(32))
}

/// Creates a replica-shaped Secret (data `a`) as the operator does; returns
/// the version written, which the operator's cache keeps.
async fn create_shaped(api: Api<Secret>, target: &Target, tenant: &str) -> Result<String> {
    let params = PostParams {
        field_manager: Some("generic-secrets-operator".to_owned()),
        ..PostParams::default()
    };
    let written = api
        .create(&params, &replica_shaped(target, tenant, b'a'))
        .await?;
    Ok(written.metadata.resource_version.unwrap_or_default())
}

/// [`create_shaped`], keeping the version for [`rotate_shaped`].
async fn create_kept(
    api: Api<Secret>,
    target: &Target,
    tenant: &str,
    versions: &Mutex<HashMap<Target, String>>,
) -> Result<()> {
    let version = create_shaped(api, target, tenant).await?;
    lock(versions).insert(target.clone(), version);
    Ok(())
}

/// The rotation's write of one replica as the operator sends it: data `b`
/// and its hash, conditional on the version the create returned.
async fn rotate_shaped(
    api: Api<Secret>,
    target: &Target,
    versions: &Mutex<HashMap<Target, String>>,
) -> Result<()> {
    let version = lock(versions).get(target).cloned().unwrap_or_default();
    let data = secret(&target.0, &target.1, b'b').data;
    let hash_pointer = format!(
        "/metadata/annotations/{}",
        HASH_ANNOTATION.replace('/', "~1")
    );
    let ops = json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/data", "value": data},
        {"op": "add", "path": hash_pointer, "value": shaped_hash(b'b')},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(ops)?;
    let params = PatchParams {
        field_manager: Some("generic-secrets-operator".to_owned()),
        ..PatchParams::default()
    };
    api.patch(&target.1, &params, &Patch::<()>::Json(patch))
        .await?;
    Ok(())
}

/// The same rotation as a server-side apply of the whole replica (data `c`).
async fn apply_shaped(api: Api<Secret>, target: &Target, tenant: &str) -> Result<()> {
    let params = PatchParams::apply("generic-secrets-operator").force();
    let replica = replica_shaped(target, tenant, b'c');
    api.patch(&target.1, &params, &Patch::Apply(&replica))
        .await?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one resource-group object costs in scenario 4, done by the bench;
/// with `shaped`, its Secret is shaped like a replica of that tenant's.
async fn object_writes(cluster: &Cluster, target: &Target, shaped: Option<&str>) -> Result<()> {
    let (ns, name) = target;
    let api = cluster.gsecs(Some(ns));
    let gs = generic_secret(cluster, ns, name, "ResourceGroup", "raw")?;
    api.create(&PostParams::default(), &gs).await?;
    let add = json!([{"op": "add", "path": "/metadata/finalizers", "value": [RAW_FINALIZER]}]);
    let add: json_patch::Patch = serde_json::from_value(add)?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(add))
        .await?;
    match shaped {
        Some(tenant) => {
            create_shaped(cluster.secrets(ns), target, tenant).await?;
        }
        None => create(cluster.secrets(ns), target, b'a').await?,
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let status = json!({
        "apiVersion": "aicore.dev/v1alpha1",
        "kind": "GenericSecret",
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Replicated",
                "message": "1 of 1 targets hold the current data",
                "observedGeneration": 1, "lastTransitionTime": now,
            }],
            "dataHash": format!("sha256:{}", "0".repeat(64)),
            "resourceGroups": [{"id": "rg", "namespace": ns, "state": "Replicated", "lastSyncTime": now}],
            "replicated": "1/1",
        },
    });
    let params = PatchParams::apply("bench").force();
    api.patch_status(name, &params, &Patch::Apply(&status))
        .await?;
    Ok(())
}

/// Untimed clean-up of [`object_writes`]: finalizer off, object deleted.
async fn remove_object(cluster: &Cluster, (ns, name): &Target) -> Result<()> {
    let api = cluster.gsecs(Some(ns));
    let remove = json!([{"op": "remove", "path": "/metadata/finalizers"}]);
    let remove: json_patch::Patch = serde_json::from_value(remove)?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(remove))
        .await?;
    api.delete(name, &DeleteParams::default()).await?;
    Ok(())
}

/// The finalizer of [`object_writes`]; no operator runs during scenario 1.
const RAW_FINALIZER: &str = "bench.aicore.dev/raw";

/// `per_namespace` Secret names in each of the first `n` resource groups.
fn targets(cluster: &Cluster, n: usize, per_namespace: usize) -> Vec<Target> {
    (0..n)
        .flat_map(|i| {
            (0..per_namespace).map(move |j| (cluster.rg_namespace(i), format!("raw-{j}")))
        })
        .collect()
}

/// Runs `op` on every target, `limit` at a time.
async fn each<'a, F, Fut>(
    cluster: &Cluster,
    targets: &'a [Target],
    limit: usize,
    op: F,
) -> Result<()>
where
    F: Fn(Api<Secret>, &'a Target) -> Fut,
    Fut: Future<Output = Result<()>> + 'a,
{
    concurrently(targets, limit, |t| op(cluster.secrets(&t.0), t)).await
}

async fn create(api: Api<Secret>, (ns, name): &Target, tag: u8) -> Result<()> {
    api.create(&PostParams::default(), &secret(ns, name, tag))
        .await?;
    Ok(())
}

async fn apply(api: Api<Secret>, (ns, name): &Target, tag: u8) -> Result<()> {
    let params = PatchParams::apply("bench").force();
    api.patch(name, &params, &Patch::Apply(&secret(ns, name, tag)))
        .await?;
    Ok(())
}

async fn three_writes(api: Api<Secret>, target: &Target) -> Result<()> {
    create(api.clone(), target, b'a').await?;
    apply(api.clone(), target, b'b').await?;
    apply(api, target, b'c').await
}

async fn delete_all(cluster: &Cluster, targets: &[Target]) -> Result<()> {
    each(cluster, targets, CONCURRENCY, |api, (_, name)| async move {
        api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    })
    .await
}
