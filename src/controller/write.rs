//! Replica writes, at the apiserver's pace: the targets of one object are
//! written concurrently (bounded per object and across all reconciles by
//! `--write-concurrency`), and the cache answers what a write needs to know
//! (absent: create; ours with old data: patch data and hash, ours otherwise
//! stale: apply; both at the cached resourceVersion), so a replica written
//! costs one request. Only a 409 (the cache lagged, or a Secret we do not
//! cache is in the way) costs a read of that one target.
//! Every write is conditional, so a Secret that appears or changes in
//! between is never overwritten.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::report::Lane;
use super::rotations::Version;
use super::status::{self, Outcome};
use super::{Context, Error};
use crate::api::GenericSecret;
use crate::index::replicas::Replica;
use crate::metrics::WriteKind;
use crate::plan::{Plan, Target};
use crate::replicas::{self, MANAGER, Payload, object_key};

/// How often a long fan-out reports its progress in status, all objects
/// together: a big tenant-wide status costs the apiserver ~0.15 s of CPU
/// per write (1000 resource groups), which a rotation must not spend on
/// progress reports more than once every 2 s.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// What the cache says about each target, without any request.
pub fn observe(
    gs: &GenericSecret,
    plan: &Plan,
    payload: &Payload,
    ctx: &Context,
) -> Vec<(Target, Outcome)> {
    let writer = object_key(gs);
    let cache = ctx.replicas();
    let outcome = |target: &Target| {
        if !target.writes() {
            return Outcome::Yielded;
        }
        let desired = desired(gs, plan, target, payload, ctx);
        match cache.get(&target.namespace, &plan.secret_name) {
            Some(r) if replicas::is_current(r, &writer, &desired, &payload.hash) => {
                Outcome::Current
            }
            _ => Outcome::Pending,
        }
    };
    plan.targets
        .iter()
        .map(|t| (t.clone(), outcome(t)))
        .collect()
}

/// Write every pending target; the map in status turns true as they land,
/// at most one progress write per [`PROGRESS_INTERVAL`] (shared by all
/// objects writing at once), on the lane beside the writes.
pub async fn targets(
    gs: &GenericSecret,
    plan: &Plan,
    payload: &Payload,
    mut outcomes: Vec<(Target, Outcome)>,
    ctx: &Context,
    version: &Version<'_>,
    lane: &mut Lane<'_>,
) -> Result<Vec<(Target, Outcome)>, Error> {
    let pending: Vec<(usize, Target)> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, (_, o))| *o == Outcome::Pending)
        .map(|(i, (t, _))| (i, t.clone()))
        .collect();
    let total = pending.len();
    let mut writes = futures::stream::iter(pending)
        .map(
            |(i, target)| async move { (i, ensure_replica(gs, plan, &target, payload, ctx).await) },
        )
        .buffer_unordered(ctx.config.write_concurrency.max(1));
    let (mut done, mut last_report) = (0, Instant::now());
    // A failed status patch (the object gone, say) ends the reconcile, but
    // only once the writes in flight have landed: what they wrote is known.
    let mut failed = None;
    loop {
        tokio::select! {
            reported = lane.idle(), if !lane.is_idle() => {
                if let Err(e) = reported {
                    failed.get_or_insert(e);
                }
            }
            written = writes.next() => {
                let Some((i, outcome)) = written else { break };
                outcomes[i].1 = outcome;
                done += 1;
                let due = done < total && last_report.elapsed() >= PROGRESS_INTERVAL;
                let reporting = failed.is_none() && lane.is_idle();
                if due && reporting && ctx.take_progress_slot(PROGRESS_INTERVAL) {
                    let now = ctx.now();
                    lane.start(status::replicated_status(gs, plan, &outcomes, version, now));
                    last_report = Instant::now();
                }
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

fn desired(
    gs: &GenericSecret,
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    ctx: &Context,
) -> Secret {
    let tenant = &ctx.config.tenant_namespace;
    replicas::desired_secret(gs, tenant, &plan.secret_name, &target.namespace, payload)
}

/// Write one replica unless a Secret this installation did not create holds
/// the name.
async fn ensure_replica(
    gs: &GenericSecret,
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    ctx: &Context,
) -> Outcome {
    // Closed only on shutdown, when nothing is written any more.
    let Ok(_permit) = ctx.writes.acquire().await else {
        return Outcome::Pending;
    };
    let desired = desired(gs, plan, target, payload, ctx);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let name = &plan.secret_name;
    let mut seen = ctx.replicas().get(&target.namespace, name).cloned();
    let mut result = write_over(&api, gs, &desired, &payload.hash, seen.as_ref(), ctx).await;
    if is_conflict(&result) {
        // The cache lagged, or an uncached Secret is in the way: read it once.
        let tenant = &ctx.config.tenant_namespace;
        result = match api.get_opt(name).await {
            Ok(live) => {
                seen = live.map(|s| Replica::of(&s, tenant));
                write_over(&api, gs, &desired, &payload.hash, seen.as_ref(), ctx).await
            }
            Err(e) => Err(e),
        };
    }
    match result {
        Ok(Outcome::Conflict(msg)) => {
            ctx.publish(gs, EventType::Warning, "Conflict", &msg).await;
            Outcome::Conflict(msg)
        }
        Ok(outcome) => outcome,
        Err(kube::Error::Api(s)) if s.code == 422 => Outcome::Rejected(format!(
            "the apiserver refused Secret {}/{name}: {}; change the GenericSecret to fix it",
            target.namespace, s.message
        )),
        // No answer (the apiserver is away): still to be written.
        Err(e) if !matches!(e, kube::Error::Api(_)) => {
            tracing::debug!(namespace = %target.namespace, secret = %name, error = %e, "apiserver unreachable");
            Outcome::Pending
        }
        Err(e) => Outcome::Failed(format!("writing Secret {}/{name}: {e}", target.namespace)),
    }
}

fn is_conflict(result: &Result<Outcome, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 409)
}

/// One write decided by what is believed to be there (`seen`; None: absent).
async fn write_over(
    api: &Api<Secret>,
    gs: &GenericSecret,
    desired: &Secret,
    hash: &str,
    seen: Option<&Replica>,
    ctx: &Context,
) -> Result<Outcome, kube::Error> {
    let Some(live) = seen else {
        create(api, desired, ctx).await?;
        return Ok(Outcome::Written);
    };
    if let Some(conflict) = foreign(live, ctx) {
        return Ok(conflict);
    }
    if replicas::is_current(live, &object_key(gs), desired, hash) {
        return Ok(Outcome::Current);
    }
    // A Secret's type cannot change: replace one of ours of another type
    // (a shadowing object may use a different type than the tenant-wide one).
    if live.type_.as_deref() != desired.type_.as_deref() && live.managed {
        delete_replica(ctx, live).await?;
        create(api, desired, ctx).await?;
        return Ok(Outcome::Written);
    }
    if let Some(patch) = replicas::data_patch(live, desired, hash) {
        let written = api
            .patch(&live.name, &write_params(), &Patch::<()>::Json(patch))
            .await?;
        record(ctx, &written, live.resource_version.as_deref());
        return Ok(written_by(live, ctx));
    }
    let mut conditional = desired.clone();
    conditional.metadata.resource_version = live.resource_version.clone();
    // Ours (or adopted): force takes fields over from other managers.
    let params = PatchParams::apply(MANAGER).force();
    let written = api
        .patch(&live.name, &params, &Patch::Apply(&conditional))
        .await?;
    let written = record(ctx, &written, live.resource_version.as_deref());
    remove_foreign_fields(api, &written, desired, hash, ctx).await?;
    if written.owner_references.is_some() && desired.metadata.owner_references.is_none() {
        // Taken over from a resource-group object (an override): its owner
        // reference came with the create, so the apply kept it, and the
        // garbage collector would delete this Secret with that object.
        release_owner(ctx, &written).await?;
    }
    Ok(written_by(live, ctx))
}

/// Field manager for writes other than apply; the apiserver tracks their
/// fields under it.
fn write_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

fn written_by(live: &Replica, ctx: &Context) -> Outcome {
    tracing::info!(namespace = %live.namespace, secret = %live.name, "replica written");
    ctx.metrics.wrote(WriteKind::Applied);
    Outcome::Written
}

/// A Secret we may not write: not ours, and not offered for adoption.
fn foreign(live: &Replica, ctx: &Context) -> Option<Outcome> {
    let adoptable = ctx.config.adopt_existing && live.adoptable;
    if live.managed || adoptable {
        return None;
    }
    Some(Outcome::Conflict(replicas::conflict_message(
        live,
        &ctx.config.tenant_namespace,
        ctx.config.adopt_existing,
    )))
}

async fn create(api: &Api<Secret>, desired: &Secret, ctx: &Context) -> Result<(), kube::Error> {
    let params = PostParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PostParams::default()
    };
    let written = api.create(&params, desired).await?;
    record(ctx, &written, None);
    tracing::info!(namespace = %written.namespace().unwrap_or_default(), secret = %written.name_any(), "replica written");
    ctx.metrics.wrote(WriteKind::Applied);
    Ok(())
}

/// Write-through: the cache knows our write before its watch event comes,
/// so that event wakes nobody and the next reconcile sees it.
fn record(ctx: &Context, written: &Secret, based_on: Option<&str>) -> Replica {
    let replica = Replica::of(written, &ctx.config.tenant_namespace);
    ctx.with_replicas(|cache| cache.record_write(replica.clone(), based_on));
    replica
}

/// Server-side apply leaves fields of other managers alone; data keys and AI
/// Core labels that someone added by hand are removed with a merge patch,
/// conditional on the version just written.
async fn remove_foreign_fields(
    api: &Api<Secret>,
    live: &Replica,
    desired: &Secret,
    hash: &str,
    ctx: &Context,
) -> Result<(), kube::Error> {
    let drift = replicas::drift(live, desired, hash);
    if drift.extra_data_keys.is_empty() && drift.extra_labels.is_empty() {
        return Ok(());
    }
    let nulls = |keys: &[String]| {
        keys.iter()
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect::<serde_json::Map<_, _>>()
    };
    let patch = json!({
        "metadata": {
            "resourceVersion": live.resource_version,
            "labels": nulls(&drift.extra_labels),
        },
        "data": nulls(&drift.extra_data_keys),
    });
    let written = api
        .patch(&live.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    record(ctx, &written, live.resource_version.as_deref());
    Ok(())
}

/// Delete this object's replicas that the plan no longer targets (a
/// namespace unlabelled, say). Returns whether anything was deleted.
pub async fn delete_unplanned(
    gs: &GenericSecret,
    plan: &Plan,
    ctx: &Context,
) -> Result<bool, Error> {
    let planned = |r: &Replica| {
        *r.name == *plan.secret_name && plan.targets.iter().any(|t| *t.namespace == *r.namespace)
    };
    let stale: Vec<Replica> = ctx
        .replicas()
        .written_by(&object_key(gs))
        .into_iter()
        .filter(|r| r.managed && !planned(r))
        .cloned()
        .collect();
    let deleted = !stale.is_empty();
    let mut deletes = futures::stream::iter(stale)
        .map(|r| async move { delete_replica(ctx, &r).await })
        .buffer_unordered(ctx.config.write_concurrency.max(1));
    while let Some(result) = deletes.next().await {
        result.map_err(Error::DeleteReplica)?;
    }
    Ok(deleted)
}

/// Delete a replica we wrote, and only that exact version of it.
pub async fn delete_replica(ctx: &Context, replica: &Replica) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &replica.namespace);
    let params = DeleteParams {
        // Exactly the version we looked at: if it changed (another object
        // took the name over), the delete fails and nothing is lost.
        preconditions: Some(Preconditions {
            uid: replica.uid.clone(),
            resource_version: replica.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    let version = replica.resource_version.as_deref();
    match api.delete(&replica.name, &params).await {
        Ok(_) => {
            tracing::info!(namespace = %replica.namespace, secret = %replica.name, "replica deleted");
            ctx.metrics.wrote(WriteKind::Deleted);
            ctx.with_replicas(|cache| cache.record_delete(&replica.key(), version));
            Ok(())
        }
        // Already gone, or replaced by another object: nothing of ours left.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Hand a replica over to its successor: drop the owner reference to the
/// object going away first, so that the garbage collector cannot delete the
/// Secret before (or after) the successor writes it: the successor's apply
/// cannot remove it, since the reference came with the create. Guarded by a
/// test of the very references read, not the version: the successor may
/// have written already.
pub async fn release_owner(ctx: &Context, replica: &Replica) -> Result<(), kube::Error> {
    let Some(owners) = &replica.owner_references else {
        return Ok(());
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &replica.namespace);
    let ops = json!([
        {"op": "test", "path": "/metadata/ownerReferences", "value": owners},
        {"op": "remove", "path": "/metadata/ownerReferences"},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    match api
        .patch(
            &replica.name,
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Gone, or its references changed meanwhile: nothing of ours to drop.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}
