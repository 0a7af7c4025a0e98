//! The apply pipeline of one GenericSecret, as its steps:
//! validate → plan → read the data → write the targets → report status.
//! One reconcile works on one version of the object: what it writes and
//! what it reports both come from the `gs` it was given.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::rotations::{self, Version};
use super::status::{self, Outcome};
use super::{Context, Error, SOURCE_LABEL, cleanup, report, rollout, write};
use crate::api::validation::{Source, check_type_keys, validate};
use crate::api::{Data, GenericSecret, Scope};
use crate::index::{Facts, Key};
use crate::plan::{self, Blocked, Plan};
use crate::replicas::Payload;

pub async fn apply(gs: &GenericSecret, ctx: &Context) -> Result<Action, Error> {
    let now = ctx.now();
    let validated = validate(&gs.spec);
    let facts = Facts::with_validity(gs, validated.as_ref().err().cloned());
    let planned = {
        let indexes = ctx.indexes();
        plan::plan(&facts, &indexes.world(&ctx.rules, now))
    };
    let (plan, source) = match (planned, validated) {
        (Ok(plan), Ok(source)) => (plan, source),
        (Err(blocked), _) => return blocked_by(gs, ctx, blocked).await,
        (Ok(_), Err(msg)) => return blocked_by(gs, ctx, Blocked::InvalidSpec(msg)).await,
    };
    let payload = match read_data(gs, source, ctx).await? {
        Ok(data) => Payload::new(data),
        Err(blocked) => {
            blocked_by(gs, ctx, blocked).await?;
            // The source Secret is not watched unless labelled; look again soon.
            return Ok(Action::requeue(ctx.config.source_retry));
        }
    };
    let job = Job {
        gs,
        ctx,
        plan: &plan,
        payload: &payload,
        version: Version {
            hash: &payload.hash,
            seen: now,
            keep: ctx.config.rotation_history,
            restarts: gs.spec.rollout.is_some() && ctx.config.workload_restarts,
        },
    };
    let observed = write::observe(gs, &plan, &payload, ctx);
    let mut lane = report::Lane::new(gs, ctx);
    if announces_first(gs, &plan, &payload) {
        // On the lane: the writes start at once, the final status comes after.
        let before = status::replicated_status(gs, &plan, &observed, &job.version, now);
        lane.start(before);
    }
    let (outcomes, overdue_at) = match replicate(&job, observed, lane).await {
        // Gone although the cache showed it with our finalizer (it lagged a
        // deletion): what this reconcile wrote must go too, as cleanup does.
        Err(Error::PatchStatus(kube::Error::Api(s))) if s.code == 404 => {
            return cleanup::cleanup(gs, ctx).await;
        }
        result => result?,
    };
    if outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Failed(_)))
    {
        return Err(Error::Replicas);
    }
    if outcomes.iter().any(|(_, o)| *o == Outcome::Pending) {
        return Err(Error::Unreachable);
    }
    Ok(ctx.requeue_until(plan::earliest(plan.wake_at, overdue_at), now))
}

/// One reconcile's replication of one version of an object's data.
pub struct Job<'a> {
    pub gs: &'a GenericSecret,
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub payload: &'a Payload,
    pub version: Version<'a>,
}

/// A tenant-wide object reports a rotation (its map turns false) before it
/// writes, so that no status claims the new data before it is there. Its
/// first data has no map to correct, and an object with one target has
/// nothing to report in between: they go straight to their final status,
/// which at 1000 resource groups saves the apiserver a big status write.
fn announces_first(gs: &GenericSecret, plan: &Plan, payload: &Payload) -> bool {
    let stored = gs.status.as_ref();
    let stored_hash = stored.and_then(|s| s.data_hash.as_deref());
    let new_data = stored_hash.is_some_and(|h| h != payload.hash);
    let new_shadow = stored.and_then(|s| s.shadow.as_ref()) != plan.shadow.as_ref();
    gs.spec.scope == Scope::TenantWide && (new_data || new_shadow)
}

/// Write the targets, delete what the plan no longer targets, restart the
/// workloads of a rotation, report. Returns the outcomes, and when an
/// incomplete rotation falls overdue.
async fn replicate(
    job: &Job<'_>,
    observed: Vec<(plan::Target, Outcome)>,
    mut lane: report::Lane<'_>,
) -> Result<(Vec<(plan::Target, Outcome)>, Option<Timestamp>), Error> {
    let (gs, ctx, plan, payload) = (job.gs, job.ctx, job.plan, job.payload);
    let outcomes =
        write::targets(gs, plan, payload, observed, ctx, &job.version, &mut lane).await?;
    let deleted = write::delete_unplanned(gs, plan, ctx).await?;
    let mut after = status::replicated_status(gs, plan, &outcomes, &job.version, ctx.now());
    // A failed restart is retried, but what was written is reported first.
    let restarted = match rotations::restarts_due(Some(&after), &payload.hash) {
        true => rollout::restart(job, &outcomes, &mut after).await,
        false => Ok(()),
    };
    let overdue_at = report::rotation(gs, ctx, &job.version, &after).await;
    finish(job, &outcomes, deleted, after, lane).await?;
    restarted?;
    Ok((outcomes, overdue_at))
}

/// The final status, the pending gauge and the replication-lag metric.
async fn finish(
    job: &Job<'_>,
    outcomes: &[(plan::Target, Outcome)],
    deleted: bool,
    after: crate::api::GenericSecretStatus,
    mut lane: report::Lane<'_>,
) -> Result<(), Error> {
    let (gs, ctx, plan, payload) = (job.gs, job.ctx, job.plan, job.payload);
    let wrote = deleted || outcomes.iter().any(|(_, o)| *o == Outcome::Written);
    let pending = status::pending(outcomes);
    let key = Key::from(gs);
    let conflicting = outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Conflict(_)));
    ctx.conflicts.report(&key, &plan.secret_name, conflicting);
    ctx.set_pending(key, Some(pending as i64));
    if pending == 0 && wrote && !status::shows_complete(gs.status.as_ref(), &payload.hash) {
        report::observe_lag(gs, ctx);
    }
    lane.patch(after).await
}

/// Report why the object writes nothing. It is resynced like any other, so
/// a block that clears by itself is noticed at the latest then.
async fn blocked_by(gs: &GenericSecret, ctx: &Context, blocked: Blocked) -> Result<Action, Error> {
    if blocked.withdraws_replicas() {
        // Over quota or colliding: it must not hold any Secret.
        write::delete_unplanned(gs, &Plan::nothing(), ctx).await?;
    }
    let key = Key::from(gs);
    ctx.conflicts.report(&key, &gs.secret_name(), false);
    ctx.set_pending(key, None);
    let status = status::blocked_status(gs, &blocked, ctx.now());
    report::patch_status(gs, ctx, &mut gs.status.clone(), status).await?;
    Ok(Action::requeue(ctx.config.resync_interval))
}

/// The data as bytes: decoded already, or read from the referenced Secret.
/// The outer error is transient; the inner one is the user's to fix.
async fn read_data(
    gs: &GenericSecret,
    source: Source,
    ctx: &Context,
) -> Result<Result<Data, Blocked>, Error> {
    let name = match source {
        Source::Inline(data) => return Ok(Ok(data)),
        Source::Secret(name) => name,
    };
    let ns = gs.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let found = api.get_opt(&name).await.map_err(Error::ReadSource)?;
    // The label is the source owner's consent: without it, anyone allowed to
    // create a GenericSecret could copy any Secret of the namespace into
    // every resource group, around the RBAC on reading Secrets.
    let consented = |s: &Secret| s.labels().get(SOURCE_LABEL).map(String::as_str) == Some("true");
    Ok(match found {
        Some(s) if !consented(&s) => Err(Blocked::SourceNotFound(format!(
            "dataFrom.secretRef: Secret {ns}/{name} is not labelled {SOURCE_LABEL}=true; its \
             owner labels it to allow copying it into replicas"
        ))),
        Some(Secret {
            data: Some(data), ..
        }) if !data.is_empty() => check_type_keys(&gs.spec.type_, &data)
            .map(|()| data)
            .map_err(Blocked::InvalidSpec),
        _ => Err(Blocked::SourceNotFound(format!(
            "dataFrom.secretRef: Secret {ns}/{name} does not exist or has no data; create it, \
             labelled {SOURCE_LABEL}=true"
        ))),
    })
}
