//! Reporting: status patches (server-side apply on `/status`, only when the
//! status changed) in a [`Lane`] beside the replica writes, the Events on
//! Ready transitions, the lag metric.

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, Error, rotations, status};
use crate::api::{GenericSecret, GenericSecretStatus};
use crate::index::Key;
use crate::replicas::MANAGER;

/// Patch `status` unless it equals what `reported` holds (the stored status,
/// or what this reconcile wrote last); publish an event when the Ready
/// reason changed.
pub async fn patch_status(
    gs: &GenericSecret,
    ctx: &Context,
    reported: &mut Option<GenericSecretStatus>,
    status: GenericSecretStatus,
) -> Result<(), Error> {
    if reported.as_ref() == Some(&status) {
        return Ok(());
    }
    let reason = |s: Option<&GenericSecretStatus>| {
        s.and_then(GenericSecretStatus::ready_condition)
            .map(|c| (c.reason.clone(), c.status.clone(), c.message.clone()))
    };
    let (before, after) = (reason(reported.as_ref()), reason(Some(&status)));
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
    ctx.written
        .wrote(gs, patched.metadata.resource_version, &status);
    *reported = Some(status);
    if let Some((reason, ready, message)) =
        after.filter(|a| before.as_ref().map(|b| &b.0) != Some(&a.0))
    {
        // Progress and intended shadowing are normal; blocked or failing is
        // not. A new object's first normal status is no news (its status
        // says it), and an event more per object would be a write more.
        let normal = ready == "True" || status::resolves_itself(&reason);
        match (normal, before.is_some()) {
            (false, _) => ctx.publish(gs, EventType::Warning, &reason, &message).await,
            (true, true) => ctx.publish(gs, EventType::Normal, &reason, &message).await,
            (true, false) => {}
        }
    }
    Ok(())
}

/// Replication just completed: how long since the object changed.
pub fn observe_lag(gs: &GenericSecret, ctx: &Context) {
    if let Some(since) = status::last_change(gs) {
        let lag = ctx.now().duration_since(since).as_secs_f64();
        ctx.metrics.replication_lag.observe(lag.max(0.0));
    }
}

/// The newest rotation in `after`: its duration metric once it completes,
/// one Warning once it is overdue (`--rotation-warning-after`). Returns
/// when it falls overdue, if it has not yet.
pub async fn rotation(
    gs: &GenericSecret,
    ctx: &Context,
    version: &rotations::Version<'_>,
    after: &GenericSecretStatus,
) -> Option<Timestamp> {
    let key = Key::from(gs);
    if let Some(done) = rotations::completed(gs.status.as_ref(), after) {
        // Started in this reconcile: the precise instant, not whole seconds.
        let start = if done.start_time.0.as_second() == version.seen.as_second() {
            version.seen
        } else {
            done.start_time.0
        };
        let seconds = ctx.now().duration_since(start).as_secs_f64().max(0.0);
        let scope = gs.spec.scope.as_str();
        let labels = crate::metrics::ScopeLabels { scope };
        ctx.metrics
            .rotation_duration
            .get_or_create(&labels)
            .observe(seconds);
        ctx.overdue(&key, None);
        if gs.spec.rollout.is_some() && !ctx.config.workload_restarts {
            let note = "spec.rollout is ignored: this installation does not restart workloads \
                        (install the chart with rollout.enabled=true)";
            ctx.publish(gs, EventType::Warning, "RolloutDisabled", note)
                .await;
        }
    }
    let (newest, due) = rotations::incomplete(after, ctx.config.rotation_warning_after)?;
    if ctx.now() < due {
        return Some(due);
    }
    if ctx.overdue(&key, Some(&newest.data_hash)) {
        let note = format!(
            "data {} is not in every target {:#} after it was first seen: {} targets do not hold \
             it yet (see status.resourceGroups)",
            newest.data_hash, ctx.config.rotation_warning_after, newest.pending_targets
        );
        ctx.publish(gs, EventType::Warning, "RotationOverdue", &note)
            .await;
    }
    None
}

type Patching<'a> = BoxFuture<'a, (Option<GenericSecretStatus>, Result<(), Error>)>;

/// The status patches of one reconcile, one at a time and in order, running
/// beside its replica writes: a tenant-wide status (a map of every resource
/// group) costs the apiserver ~0.15 s of CPU per write at 1000 groups, and
/// waiting for it would stall the writes in flight and hold their permits.
pub struct Lane<'a> {
    gs: &'a GenericSecret,
    ctx: &'a Context,
    /// What was reported last; taken while a patch is in flight.
    reported: Option<GenericSecretStatus>,
    patching: Option<Patching<'a>>,
}

impl<'a> Lane<'a> {
    pub fn new(gs: &'a GenericSecret, ctx: &'a Context) -> Self {
        let reported = gs.status.clone();
        Lane {
            gs,
            ctx,
            reported,
            patching: None,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.patching.is_none()
    }

    /// Start patching `status`; the lane must be idle.
    pub fn start(&mut self, status: GenericSecretStatus) {
        debug_assert!(self.is_idle(), "one status patch at a time");
        let (gs, ctx) = (self.gs, self.ctx);
        let mut reported = self.reported.take();
        self.patching = Some(Box::pin(async move {
            let result = patch_status(gs, ctx, &mut reported, status).await;
            (reported, result)
        }));
    }

    /// Wait for the patch in flight, if any. Cancel-safe: the patch itself
    /// lives in the lane, so dropping this future loses nothing.
    pub async fn idle(&mut self) -> Result<(), Error> {
        let Some(patching) = self.patching.as_mut() else {
            return Ok(());
        };
        let (reported, result) = patching.await;
        self.patching = None;
        self.reported = reported;
        result
    }

    /// Patch `status` after whatever is in flight, and wait for it.
    pub async fn patch(&mut self, status: GenericSecretStatus) -> Result<(), Error> {
        self.idle().await?;
        self.start(status);
        self.idle().await
    }
}
