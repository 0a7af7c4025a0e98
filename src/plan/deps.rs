//! Who must look again when something changes: the exact dependencies
//! between plans, so that a change wakes only the objects whose decision it
//! can change. Pure; each rule costs O(the objects it wakes).
//!
//! - Objects of one namespace with one Secret name decide collisions and
//!   hand-overs together: a change of one's existence or liveness wakes the
//!   others.
//! - Which tenant-wide object owns a Secret name, and the quota queue, are
//!   read by every resource-group object of that name (shadowing) and by
//!   every tenant-wide object (quota): a change of either wakes those.
//! - A tenant-wide object reads the facts of the resource-group objects of
//!   its name (shadow records, validity): a change of one wakes it.
//! - A namespace's resource-group id is read by the objects inside it and by
//!   every tenant-wide object.
//! - A replica is read by the object that wrote it (and the one that wrote
//!   it before).
//!
//! Status changes that are not in [`Facts`] (progress, timestamps) wake
//! nobody: that is what keeps many objects from waking each other forever.

use std::collections::{BTreeMap, HashSet};

use super::World;
use crate::api::Scope;
use crate::index::replicas::Replica;
use crate::index::{Change, Facts, Key};

/// What other plans read of the tenant namespace: the owner of every
/// tenant-wide Secret name and the quota queue.
#[derive(Debug, PartialEq, Eq)]
pub struct TenantView {
    owners: BTreeMap<String, Key>,
    queue: Vec<Key>,
}

pub fn tenant_view(world: &World<'_>) -> TenantView {
    let tenant = &world.rules.tenant_namespace;
    let owners = world
        .objects
        .in_namespace(tenant)
        .into_iter()
        .filter(|f| f.scope == Scope::TenantWide)
        .filter_map(|f| world.tenant_wide_named(&f.secret_name))
        .map(|f| (f.secret_name.clone(), f.key.clone()))
        .collect();
    let queue = world.quota_queue().iter().map(|f| f.key.clone()).collect();
    TenantView { owners, queue }
}

/// Objects whose plan may change when one object's facts went from `old` to
/// `new` (None: absent). `before` is the tenant view before the change, for
/// objects of the tenant namespace.
pub fn after_object_change(
    world: &World<'_>,
    old: Option<&Facts>,
    new: Option<&Facts>,
    before: Option<&TenantView>,
) -> HashSet<Key> {
    let mut wake = HashSet::new();
    let Some(any) = new.or(old) else {
        return wake;
    };
    if old == new {
        return wake;
    }
    if old.map(|f| f.live) != new.map(|f| f.live) {
        let peers = world.objects.named(&any.namespace, &any.secret_name);
        wake.extend(peers.into_iter().map(|f| f.key.clone()));
    }
    if let Some(before) = before {
        wake.extend(tenant_changes(world, before));
    }
    if any.scope == Scope::ResourceGroup
        && let Some(tw) = world.tenant_wide_named(&any.secret_name)
    {
        wake.insert(tw.key.clone());
    }
    wake.remove(&any.key);
    wake
}

/// Objects affected by a change of the tenant view since `before`.
fn tenant_changes(world: &World<'_>, before: &TenantView) -> HashSet<Key> {
    let after = tenant_view(world);
    let mut wake = HashSet::new();
    if after.queue != before.queue {
        wake.extend(after.queue.iter().chain(&before.queue).cloned());
    }
    let names: HashSet<&String> = before.owners.keys().chain(after.owners.keys()).collect();
    for name in names {
        if before.owners.get(name) != after.owners.get(name) {
            let shadows = world.objects.resource_groups_named(name);
            wake.extend(shadows.into_iter().map(|f| f.key.clone()));
            wake.extend(before.owners.get(name).cloned());
            wake.extend(after.owners.get(name).cloned());
        }
    }
    wake
}

/// Objects affected by a namespace event: the objects inside it when it
/// joined or left the installation; the tenant-wide objects too when it
/// became, or stopped being, a resource group (or changed its id).
pub fn after_namespace_change(world: &World<'_>, namespace: &str, change: Change) -> HashSet<Key> {
    let inside = world.objects.in_namespace(namespace);
    let tenant_wide = world
        .objects
        .in_namespace(&world.rules.tenant_namespace)
        .into_iter()
        .filter(|f| f.scope == Scope::TenantWide);
    let woken: Vec<&Facts> = match change {
        Change::None => Vec::new(),
        Change::Membership => inside,
        Change::Group => inside.into_iter().chain(tenant_wide).collect(),
    };
    woken.into_iter().map(|f| f.key.clone()).collect()
}

/// Objects affected by a replica going from `old` to `new`: its writers,
/// unless only its version moved (our own write, recorded already).
pub fn after_replica_change(old: Option<&Replica>, new: Option<&Replica>) -> HashSet<Key> {
    let unchanged = match (old, new) {
        (Some(a), Some(b)) => a.same_content(b),
        (None, None) => true,
        _ => false,
    };
    if unchanged {
        return HashSet::new();
    }
    old.into_iter()
        .chain(new)
        .filter_map(Replica::writer_key)
        .collect()
}
