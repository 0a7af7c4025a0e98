//! Reporting: status patches (server-side apply on `/status`, only when the
//! status changed), the Events on Ready transitions, the lag metric.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, Error, status};
use crate::api::{GenericSecret, GenericSecretStatus};
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
    api.patch_status(&gs.name_any(), &params, &Patch::Apply(&body))
        .await
        .map_err(Error::PatchStatus)?;
    *reported = Some(status);
    if let Some((reason, ready, message)) =
        after.filter(|a| before.as_ref().map(|b| &b.0) != Some(&a.0))
    {
        // Progress and intended shadowing are normal; blocked or failing is
        // not. A new object's first normal status is no news (its status
        // says it), and an event more per object would be a write more.
        let normal = ready == "True" || matches!(reason.as_str(), "Progressing" | "Shadowed");
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
