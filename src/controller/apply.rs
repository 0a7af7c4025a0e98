//! The I/O steps of a reconcile: read the data, write replicas, delete the
//! ones no longer planned, patch status, and clean up on deletion. Decisions
//! come from `plan` and `status`; this module only carries them out.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::plan::{self, Blocked, Plan, Target};
use super::status::{self, Outcome};
use super::{Context, Error, SOURCE_LABEL};
use crate::api::validation::decode_data;
use crate::api::{GenericSecret, GenericSecretStatus};
use crate::metrics;
use crate::replicas::{self, Data, MANAGER, Payload};
use kube::runtime::reflector::ObjectRef;

/// How often a long fan-out reports its progress in status.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The apply branch of the finalizer: make every planned replica current.
pub async fn apply(gs: Arc<GenericSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let (namespaces, all) = ctx.world();
    let snap = ctx.snapshot(&namespaces, &all, now);
    let plan = match plan::plan(&gs, &snap) {
        Ok(plan) => plan,
        Err(blocked) => {
            if blocked.withdraws_replicas() {
                // Over quota or colliding: it must not hold any Secret.
                delete_unplanned(&gs, &plan::Plan::nothing(), &ctx).await?;
            }
            return report_blocked(&gs, &ctx, &blocked).await;
        }
    };
    let data = match read_data(&gs, &ctx).await? {
        Ok(data) => data,
        Err(blocked) => {
            report_blocked(&gs, &ctx, &blocked).await?;
            // The source Secret is not watched unless labelled; look again soon.
            return Ok(Action::requeue(ctx.config.source_retry));
        }
    };
    let payload = Payload::new(data);
    let hash = payload.hash.clone();
    let observed: Vec<(Target, Outcome)> = plan
        .targets
        .iter()
        .map(|t| (t.clone(), observe(&gs, &plan, t, &payload, &ctx)))
        .collect();
    let stored = gs.status.clone();
    // Report new data (the map turns false) and a new shadow record before
    // writing. Otherwise the status only changes after the writes: patching a
    // provisional status every time would retrigger this object forever
    // while a target stays in conflict.
    let new_data = stored.as_ref().and_then(|s| s.data_hash.as_deref()) != Some(hash.as_str());
    let new_shadow = stored.as_ref().and_then(|s| s.shadow.as_ref()) != plan.shadow.as_ref();
    let gs = if new_data || new_shadow {
        let before = status::replicated_status(&gs, &plan, &observed, &hash, now);
        patch_status(&gs, &ctx, before).await?
    } else {
        gs.as_ref().clone()
    };

    let mut outcomes: Vec<(Target, Outcome)> = Vec::with_capacity(plan.targets.len());
    let mut wrote = false;
    let mut gs = gs;
    let mut reported = std::time::Instant::now();
    for (i, (target, seen)) in observed.iter().enumerate() {
        let outcome = match seen {
            Outcome::Pending => ensure_replica(&gs, &plan, target, &payload, &ctx).await,
            other => other.clone(),
        };
        wrote |= outcome == Outcome::Written;
        outcomes.push((target.clone(), outcome));
        // A long fan-out shows its progress: the map turns true namespace by
        // namespace, at most one status write per PROGRESS_INTERVAL.
        if wrote && reported.elapsed() >= PROGRESS_INTERVAL && i + 1 < observed.len() {
            let so_far: Vec<_> = outcomes.iter().chain(&observed[i + 1..]).cloned().collect();
            let progress = status::replicated_status(&gs, &plan, &so_far, &hash, ctx.now());
            gs = patch_status(&gs, &ctx, progress).await?;
            reported = std::time::Instant::now();
        }
    }
    wrote |= delete_unplanned(&gs, &plan, &ctx).await?;
    let after = status::replicated_status(&gs, &plan, &outcomes, &hash, ctx.now());
    let failed = outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Failed(_)));
    let changed = wrote || stored.as_ref() != Some(&after);
    let pending = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Current | Outcome::Written | Outcome::Yielded))
        .count();
    ctx.set_pending(ObjectRef::from(&gs), Some(pending as i64));
    if pending == 0 && wrote && !status::shows_complete(stored.as_ref(), &hash) {
        observe_lag(&gs, &ctx);
    }
    patch_status(&gs, &ctx, after).await?;

    // Objects sharing the Secret name decide from what this one did; telling
    // them only on a change keeps two of them from waking each other forever.
    if changed {
        for peer in plan
            .notify
            .iter()
            .cloned()
            .chain(plan::same_name(&gs, &snap))
        {
            ctx.notify(peer);
        }
    }
    if failed {
        return Err(Error::Replicas);
    }
    Ok(ctx.requeue_until(plan.wake_at, now))
}

/// Replication just completed: how long since the object changed.
fn observe_lag(gs: &GenericSecret, ctx: &Context) {
    if let Some(since) = status::last_change(gs) {
        let lag = ctx.now().duration_since(since).as_secs_f64();
        ctx.metrics.replication_lag.observe(lag.max(0.0));
    }
}

/// Data as bytes: decoded inline, or read from the referenced Secret.
/// The outer error is transient; the inner one is the user's to fix.
async fn read_data(gs: &GenericSecret, ctx: &Context) -> Result<Result<Data, Blocked>, Error> {
    if let Some(inline) = &gs.spec.data {
        return Ok(decode_data(inline).map_err(Blocked::InvalidSpec));
    }
    let Some(from) = &gs.spec.data_from else {
        return Ok(Err(Blocked::InvalidSpec(
            "data or dataFrom must be set".into(),
        )));
    };
    let ns = gs.namespace().unwrap_or_default();
    let name = &from.secret_ref.name;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let source = api.get_opt(name).await.map_err(Error::ReadSource)?;
    // The label is the source owner's consent: without it, anyone allowed to
    // create a GenericSecret could copy any Secret of the namespace into
    // every resource group, around the RBAC on reading Secrets.
    let consented = |s: &Secret| s.labels().get(SOURCE_LABEL).map(String::as_str) == Some("true");
    Ok(match source {
        Some(s) if !consented(&s) => Err(Blocked::SourceNotFound(format!(
            "dataFrom.secretRef: Secret {ns}/{name} is not labelled {SOURCE_LABEL}=true; its \
             owner labels it to allow copying it into replicas"
        ))),
        Some(Secret {
            data: Some(data), ..
        }) if !data.is_empty() => Ok(data),
        _ => Err(Blocked::SourceNotFound(format!(
            "dataFrom.secretRef: Secret {ns}/{name} does not exist or has no data; create it, \
             labelled {SOURCE_LABEL}=true"
        ))),
    })
}

/// What the watch cache says about a target, without any request.
fn observe(
    gs: &GenericSecret,
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    ctx: &Context,
) -> Outcome {
    if !target.writes() {
        return Outcome::Yielded;
    }
    let desired = ctx.desired(gs, plan, target, payload);
    let tenant = &ctx.config.tenant_namespace;
    match ctx.cached_replica(&target.namespace, &plan.secret_name) {
        Some(live) if replicas::is_current(&live, gs, &desired, tenant) => Outcome::Current,
        _ => Outcome::Pending,
    }
}

/// Write one replica unless a Secret this installation did not create holds
/// the name. Every write is conditional on what was read (create when absent,
/// apply or delete at the read resourceVersion), so a Secret that appears or
/// changes in between is never overwritten: the write fails and the next
/// reconcile looks again.
async fn ensure_replica(
    gs: &GenericSecret,
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    ctx: &Context,
) -> Outcome {
    let desired = ctx.desired(gs, plan, target, payload);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let name = &plan.secret_name;
    let tenant = &ctx.config.tenant_namespace;
    let result = async {
        let mut live = api.get_opt(name).await?;
        let foreign = live
            .as_ref()
            .is_some_and(|l| !replicas::is_managed(l, tenant));
        if foreign && !ctx.config.adopt_existing {
            return Ok(Outcome::Conflict(format!(
                "Secret {}/{name} exists and was not created by this {MANAGER} installation \
                 (tenant {tenant}); delete or rename it, or run the operator with --adopt-existing",
                target.namespace
            )));
        }
        let current = live
            .as_ref()
            .is_some_and(|l| replicas::is_current(l, gs, &desired, tenant));
        if current {
            return Ok(Outcome::Current);
        }
        // A Secret's type cannot change: replace one of ours of another type
        // (a shadowing object may use a different type than the tenant-wide one).
        if let Some(old) = live
            .as_ref()
            .filter(|l| l.type_ != desired.type_ && !foreign)
        {
            delete_replica(ctx, old).await?;
            live = None;
        }
        let written = match &live {
            None => {
                let params = PostParams {
                    field_manager: Some(MANAGER.to_owned()),
                    ..PostParams::default()
                };
                api.create(&params, &desired).await?
            }
            Some(live) => {
                let mut conditional = desired.clone();
                conditional.metadata.resource_version = live.resource_version();
                // Ours (or adopted): force takes fields over from other managers.
                let params = PatchParams::apply(MANAGER).force();
                api.patch(name, &params, &Patch::Apply(&conditional))
                    .await?
            }
        };
        remove_foreign_fields(&api, &written, &desired).await?;
        tracing::info!(namespace = %target.namespace, secret = %name, "replica written");
        ctx.metrics.wrote(metrics::WriteKind::Applied);
        Ok::<_, kube::Error>(Outcome::Written)
    };
    match result.await {
        Ok(outcome) => {
            if let Outcome::Conflict(msg) = &outcome {
                ctx.publish(gs, EventType::Warning, "Conflict", msg).await;
            }
            outcome
        }
        Err(e) => Outcome::Failed(format!("writing Secret {}/{name}: {e}", target.namespace)),
    }
}

/// Server-side apply leaves fields of other managers alone; data keys and AI
/// Core labels that someone added by hand are removed with a merge patch.
async fn remove_foreign_fields(
    api: &Api<Secret>,
    live: &Secret,
    desired: &Secret,
) -> Result<(), kube::Error> {
    let drift = replicas::drift(live, desired);
    if drift.extra_data_keys.is_empty() && drift.extra_labels.is_empty() {
        return Ok(());
    }
    let nulls = |keys: &[String]| {
        keys.iter()
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect::<serde_json::Map<_, _>>()
    };
    let patch = json!({
        "metadata": {"labels": nulls(&drift.extra_labels)},
        "data": nulls(&drift.extra_data_keys),
    });
    api.patch(
        &live.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Delete this object's replicas in namespaces the plan no longer targets
/// (a namespace unlabelled, say). Returns whether anything was deleted.
async fn delete_unplanned(gs: &GenericSecret, plan: &Plan, ctx: &Context) -> Result<bool, Error> {
    let mut deleted = false;
    for replica in ctx.cached_replicas_of(gs) {
        let ns = replica.namespace().unwrap_or_default();
        let planned = plan.targets.iter().any(|t| t.namespace == ns)
            && replica.name_any() == plan.secret_name;
        if !planned {
            delete_replica(ctx, &replica)
                .await
                .map_err(Error::DeleteReplica)?;
            deleted = true;
        }
    }
    Ok(deleted)
}

/// Delete a replica we wrote, and only that exact object.
async fn delete_replica(ctx: &Context, replica: &Secret) -> Result<(), kube::Error> {
    let ns = replica.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let params = DeleteParams {
        // Exactly the version we looked at: if it changed (another object
        // took the name over), the delete fails and nothing is lost.
        preconditions: Some(Preconditions {
            uid: replica.uid(),
            resource_version: replica.resource_version(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(&replica.name_any(), &params).await {
        Ok(_) => {
            tracing::info!(namespace = %ns, secret = %replica.name_any(), "replica deleted");
            ctx.metrics.wrote(metrics::WriteKind::Deleted);
            Ok(())
        }
        // Already gone, or replaced by another object: nothing of ours left.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The cleanup branch of the finalizer: remove exactly this object's replicas,
/// handing a shared name over to the object that takes it (shadowing).
pub async fn cleanup(gs: Arc<GenericSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (namespaces, all) = ctx.world();
    let snap = ctx.snapshot(&namespaces, &all, ctx.now());
    // Ask the API, not the cache: a replica written just now must go too.
    let replicas = ctx
        .list_replicas_of(&gs)
        .await
        .map_err(Error::DeleteReplica)?;
    for replica in replicas {
        let ns = replica.namespace().unwrap_or_default();
        if let Some(successor) = plan::successor_in(&gs, &ns, &snap) {
            ctx.notify(successor);
            continue;
        }
        delete_replica(&ctx, &replica)
            .await
            .map_err(Error::DeleteReplica)?;
    }
    for peer in plan::affected_by_removal(&gs, &snap) {
        ctx.notify(peer);
    }
    ctx.set_pending(ObjectRef::from(gs.as_ref()), None);
    ctx.publish(&gs, EventType::Normal, "Deleted", "replicas removed")
        .await;
    Ok(Action::await_change())
}

async fn report_blocked(
    gs: &GenericSecret,
    ctx: &Context,
    blocked: &Blocked,
) -> Result<Action, Error> {
    // Blocked objects have no targets waiting for data.
    ctx.set_pending(ObjectRef::from(gs), None);
    let status = status::blocked_status(gs, blocked, ctx.now());
    patch_status(gs, ctx, status).await?;
    // Blocked objects wait for a change (theirs, a namespace's or a peer's).
    Ok(Action::await_change())
}

/// Patch status when it changed; publish an event when Ready changed reason.
async fn patch_status(
    gs: &GenericSecret,
    ctx: &Context,
    status: GenericSecretStatus,
) -> Result<GenericSecret, Error> {
    let old = gs.status.as_ref();
    if old == Some(&status) {
        return Ok(gs.clone());
    }
    let reason = |s: Option<&GenericSecretStatus>| {
        s.and_then(GenericSecretStatus::ready_condition)
            .map(|c| (c.reason.clone(), c.status.clone(), c.message.clone()))
    };
    let (before, after) = (reason(old), reason(Some(&status)));
    let api: Api<GenericSecret> =
        Api::namespaced(ctx.client.clone(), &gs.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": "aicore.dev/v1alpha1",
        "kind": "GenericSecret",
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    let patched = api
        .patch_status(&gs.name_any(), &params, &Patch::Apply(&body))
        .await
        .map_err(Error::PatchStatus)?;
    if let Some((reason, ready, message)) =
        after.filter(|a| before.as_ref().map(|b| &b.0) != Some(&a.0))
    {
        // Progress and intended shadowing are normal; blocked or failing is not.
        let normal = ready == "True" || matches!(reason.as_str(), "Progressing" | "Shadowed");
        let kind = if normal {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.publish(gs, kind, &reason, &message).await;
    }
    Ok(patched)
}

impl Context {
    fn desired(
        &self,
        gs: &GenericSecret,
        plan: &Plan,
        target: &Target,
        payload: &Payload,
    ) -> Secret {
        replicas::desired_secret(
            gs,
            &self.config.tenant_namespace,
            &plan.secret_name,
            &target.namespace,
            payload,
        )
    }

    /// Publish an event; failures are logged, never fatal.
    pub async fn publish(&self, gs: &GenericSecret, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &gs.object_ref(&())).await {
            tracing::warn!(error = %e, "publishing event failed");
        }
    }

    /// Namespaces in the cache, as name → resource-group id.
    pub fn namespace_map(&self) -> BTreeMap<String, Option<String>> {
        self.namespaces
            .state()
            .iter()
            .map(|ns| {
                // A terminating namespace takes no new Secrets.
                let terminating = ns.metadata.deletion_timestamp.is_some();
                let rg = ns.labels().get(crate::api::RESOURCE_GROUP_LABEL).cloned();
                (
                    ns.name_any(),
                    rg.filter(|id| !id.is_empty() && !terminating),
                )
            })
            .collect()
    }
}
