//! The deletion of a GenericSecret: remove exactly its replicas, handing a
//! shared name over to the object that takes it (shadowing). The objects
//! that decide differently now are woken by the watch (`plan::deps`).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{Context, Error, write};
use crate::api::GenericSecret;
use crate::index::replicas::Replica;
use crate::index::{Facts, Key};
use crate::plan;
use crate::replicas::{self, OWNER_LABEL, object_key};

/// Also called for an object found gone after its replicas were written.
pub async fn cleanup(gs: &GenericSecret, ctx: &Context) -> Result<Action, Error> {
    // Ask the API, not the cache: a replica written just now must go too.
    let listed = list_replicas_of(gs, ctx)
        .await
        .map_err(Error::DeleteReplica)?;
    let facts = Facts::of(gs);
    for replica in listed {
        let successor = {
            let indexes = ctx.indexes();
            plan::successor_in(
                &facts,
                &replica.namespace,
                &indexes.world(&ctx.rules, ctx.now()),
            )
        };
        let result = match successor {
            Some(_) => write::release_owner(ctx, &replica).await,
            None => write::delete_replica(ctx, &replica).await,
        };
        result.map_err(Error::DeleteReplica)?;
    }
    let key = Key::from(gs);
    ctx.conflicts.report(&key, &gs.secret_name(), false);
    ctx.overdue(&key, None);
    ctx.set_pending(key, None);
    ctx.publish(gs, EventType::Normal, "Deleted", "replicas removed")
        .await;
    Ok(Action::await_change())
}

async fn list_replicas_of(gs: &GenericSecret, ctx: &Context) -> Result<Vec<Replica>, kube::Error> {
    let tenant = &ctx.config.tenant_namespace;
    let selector = format!(
        "{},{OWNER_LABEL}={}",
        replicas::selector(tenant),
        replicas::owner_label(gs)
    );
    let api: Api<Secret> = Api::all(ctx.client.clone());
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    let writer = object_key(gs);
    Ok(list
        .items
        .iter()
        .map(|s| Replica::of(s, tenant))
        .filter(|r| r.managed && r.writer.as_deref() == Some(writer.as_str()))
        .collect())
}
