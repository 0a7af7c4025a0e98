//! This installation's finalizer on a GenericSecret: added before the first
//! replica is written, removed once cleanup is done. JSON patches guarded by
//! the object's uid (add) or the entry removed (remove), so a cache that
//! lags one event behind neither fails the add nor drops another finalizer.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, Error};
use crate::api::GenericSecret;

pub fn holds(gs: &GenericSecret, finalizer: &str) -> bool {
    gs.finalizers().iter().any(|f| f == finalizer)
}

fn api(gs: &GenericSecret, ctx: &Context) -> Api<GenericSecret> {
    Api::namespaced(ctx.client.clone(), &gs.namespace().unwrap_or_default())
}

/// Add ours. Adding to a list that already holds it again is harmless: the
/// removal takes one entry, and a second cleanup takes the other.
pub async fn add(gs: &GenericSecret, ctx: &Context) -> Result<(), Error> {
    let uid = gs.uid().unwrap_or_default();
    let add = if gs.finalizers().is_empty() {
        json!({"op": "add", "path": "/metadata/finalizers", "value": [ctx.finalizer]})
    } else {
        json!({"op": "add", "path": "/metadata/finalizers/-", "value": ctx.finalizer})
    };
    let ops = json!([{"op": "test", "path": "/metadata/uid", "value": uid}, add]);
    let patch: json_patch::Patch =
        serde_json::from_value(ops).map_err(|e| Error::AddFinalizer(kube::Error::SerdeError(e)))?;
    api(gs, ctx)
        .patch(
            &gs.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
        .map_err(Error::AddFinalizer)?;
    Ok(())
}

/// Remove ours; an object already gone is what cleanup wanted.
pub async fn remove(gs: &GenericSecret, ctx: &Context) -> Result<(), Error> {
    let Some(index) = gs.finalizers().iter().position(|f| *f == ctx.finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let ops = json!([
        {"op": "test", "path": path, "value": ctx.finalizer},
        {"op": "remove", "path": path},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(ops)
        .map_err(|e| Error::RemoveFinalizer(kube::Error::SerdeError(e)))?;
    match api(gs, ctx)
        .patch(
            &gs.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::RemoveFinalizer(e)),
    }
}
