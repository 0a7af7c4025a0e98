//! Planning: which namespaces a GenericSecret writes, and who wins a Secret
//! name that two objects want (quota, collisions, shadowing). Shared by the
//! controller and the REST API. Pure: it reads a [`World`] of indexes and
//! returns plain data; [`deps`] says whose plan an event can change.

pub mod deps;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{Scope, ShadowStatus};
use crate::index::{Facts, Groups, Key, Objects};

pub use crate::index::{CreationKey, creation_key};

/// How long a tenant-wide object waits for a shadowing resource-group object
/// to record when it started shadowing, before it looks again.
const SHADOW_RECORD_WAIT: SignedDuration = SignedDuration::from_secs(2);

/// Installation-wide settings the planner needs.
#[derive(Clone, Debug)]
pub struct Rules {
    pub tenant_namespace: String,
    pub override_interval: SignedDuration,
    pub max_tenant_wide: usize,
}

/// The world as the indexes show it.
#[derive(Clone, Copy)]
pub struct World<'a> {
    pub rules: &'a Rules,
    pub objects: &'a Objects,
    pub groups: &'a Groups,
    pub now: Timestamp,
}

impl World<'_> {
    /// Live objects in `namespace` whose replicas are named `name`, oldest first.
    fn named(&self, namespace: &str, name: &str) -> Vec<&Facts> {
        let mut named = self.objects.named(namespace, name);
        named.retain(|f| f.live);
        named
    }

    /// Tenant-wide objects holding or waiting for a quota slot, oldest
    /// first: live, in the tenant namespace, the oldest holder of their
    /// Secret name. An invalid one keeps its slot (and its last good
    /// replicas), so never more than the quota hold replicas.
    fn quota_queue(&self) -> Vec<&Facts> {
        let tenant = &self.rules.tenant_namespace;
        let mut queue: Vec<&Facts> = self
            .objects
            .in_namespace(tenant)
            .into_iter()
            .filter(|f| f.live && f.scope == Scope::TenantWide)
            .filter(|f| self.named(tenant, &f.secret_name).first().map(|o| &o.uid) == Some(&f.uid))
            .collect();
        queue.sort_by(|a, b| a.created.cmp(&b.created));
        queue
    }
}

/// Why an object writes nothing; each says what the user can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    InvalidSpec(String),
    SourceNotFound(String),
    WrongNamespace(String),
    TenantWideQuotaExceeded { limit: usize, position: usize },
    NameCollision { secret_name: String, other: String },
}

impl Blocked {
    /// Whether the object must give up replicas it wrote before: a quota slot
    /// or a name is someone else's now. Other blocks keep the last good
    /// replicas, so that a typo never takes a credential away.
    pub fn withdraws_replicas(&self) -> bool {
        matches!(
            self,
            Blocked::TenantWideQuotaExceeded { .. } | Blocked::NameCollision { .. }
        )
    }

    /// Condition reason (bounded set: also a metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            Blocked::InvalidSpec(_) => "InvalidSpec",
            Blocked::SourceNotFound(_) => crate::index::SOURCE_NOT_FOUND,
            Blocked::WrongNamespace(_) => "WrongNamespace",
            Blocked::TenantWideQuotaExceeded { .. } => "TenantWideQuotaExceeded",
            Blocked::NameCollision { .. } => "NameCollision",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Blocked::InvalidSpec(m) | Blocked::SourceNotFound(m) | Blocked::WrongNamespace(m) => {
                m.clone()
            }
            Blocked::TenantWideQuotaExceeded { limit, position } => format!(
                "at most {limit} tenant-wide secrets per tenant; this one is number {position} \
                 (by creation time). Delete a tenant-wide GenericSecret to free a slot; \
                 this one then replicates"
            ),
            Blocked::NameCollision { secret_name, other } => format!(
                "Secret name {secret_name:?} is already used by GenericSecret {other} \
                 (AI Core names map to Kubernetes names in lowercase with '_' -> '-'); \
                 rename one of them"
            ),
        }
    }
}

/// What an object does in one target namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Write this object's data.
    Write,
    /// Write this object's data over a tenant-wide one until `until`.
    Shadowing {
        tenant_wide: String,
        until: Timestamp,
    },
    /// Leave the Secret to `to` (`<namespace>/<name>`).
    Yield {
        to: String,
        until: Option<Timestamp>,
        overridden: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub resource_group: Option<String>,
    pub mode: Mode,
}

impl Target {
    pub fn writes(&self) -> bool {
        !matches!(self.mode, Mode::Yield { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Kubernetes name of every replica.
    pub secret_name: String,
    pub targets: Vec<Target>,
    /// Shadow record to keep in status (resource-group objects only).
    pub shadow: Option<ShadowStatus>,
    /// When the plan changes by itself (an override falls due).
    pub wake_at: Option<Timestamp>,
}

impl Plan {
    /// A plan with no targets: every replica is unplanned.
    pub fn nothing() -> Self {
        Plan {
            secret_name: String::new(),
            targets: Vec::new(),
            shadow: None,
            wake_at: None,
        }
    }
}

impl World<'_> {
    fn resource_group_of(&self, namespace: &str) -> Option<&str> {
        if namespace == self.rules.tenant_namespace {
            return None;
        }
        self.groups.group_of(namespace)
    }

    /// An older live object in the same namespace with the same Secret name.
    fn collides_with(&self, f: &Facts) -> Option<&Facts> {
        self.named(&f.namespace, &f.secret_name)
            .into_iter()
            .find(|o| o.uid != f.uid && o.created < f.created)
    }

    /// Why `f` may not write, if it may not. The blocks that withdraw
    /// replicas (the name or the slot is someone else's) come before an
    /// invalid spec, which keeps the last good ones.
    pub fn blocked(&self, f: &Facts) -> Option<Blocked> {
        if let Some(msg) = self.wrong_namespace(f) {
            return Some(Blocked::WrongNamespace(msg));
        }
        if let Some(other) = self.collides_with(f) {
            return Some(Blocked::NameCollision {
                secret_name: f.secret_name.clone(),
                other: other.object_key(),
            });
        }
        if f.scope == Scope::TenantWide {
            let limit = self.rules.max_tenant_wide;
            // Not in the queue (being deleted, say): it holds no slot.
            let position = self
                .quota_queue()
                .iter()
                .position(|g| g.uid == f.uid)
                .map_or(usize::MAX, |p| p + 1);
            if position > limit {
                return Some(Blocked::TenantWideQuotaExceeded { limit, position });
            }
        }
        f.invalid.clone().map(Blocked::InvalidSpec)
    }

    fn wrong_namespace(&self, f: &Facts) -> Option<String> {
        let ns = &f.namespace;
        let tenant = &self.rules.tenant_namespace;
        match f.scope {
            Scope::Tenant | Scope::TenantWide if ns != tenant => Some(format!(
                "scope {} is only accepted in the tenant namespace {tenant:?}; move this \
                 object there, or use scope ResourceGroup",
                f.scope.as_str()
            )),
            Scope::ResourceGroup if self.resource_group_of(ns).is_none() => Some(format!(
                "namespace {ns:?} is not a resource group; label it {}=<id>, or create a \
                 Tenant/TenantWide object in {tenant:?} instead",
                crate::api::RESOURCE_GROUP_LABEL
            )),
            _ => None,
        }
    }

    /// The tenant-wide object that currently owns Secret name `name`.
    pub fn tenant_wide_named(&self, name: &str) -> Option<&Facts> {
        self.named(&self.rules.tenant_namespace, name)
            .into_iter()
            .find(|g| g.scope == Scope::TenantWide && self.blocked(g).is_none())
    }

    /// The resource-group object in `namespace` that shadows Secret `name`.
    pub fn resource_group_named(&self, namespace: &str, name: &str) -> Option<&Facts> {
        self.named(namespace, name)
            .into_iter()
            .find(|g| g.scope == Scope::ResourceGroup && self.blocked(g).is_none())
    }
}

/// Decide what the object with facts `f` writes where.
pub fn plan(f: &Facts, world: &World<'_>) -> Result<Plan, Blocked> {
    if let Some(blocked) = world.blocked(f) {
        return Err(blocked);
    }
    let empty = Plan {
        secret_name: f.secret_name.clone(),
        ..Plan::nothing()
    };
    Ok(match f.scope {
        Scope::Tenant => Plan {
            targets: vec![Target {
                namespace: f.namespace.clone(),
                resource_group: None,
                mode: Mode::Write,
            }],
            ..empty
        },
        Scope::TenantWide => plan_tenant_wide(f, world, empty),
        Scope::ResourceGroup => plan_resource_group(f, world, empty),
    })
}

fn plan_tenant_wide(tw: &Facts, world: &World<'_>, mut plan: Plan) -> Plan {
    for (namespace, rg) in world.groups.iter() {
        if namespace == world.rules.tenant_namespace {
            continue;
        }
        let mode = match world.resource_group_named(namespace, &plan.secret_name) {
            None => Mode::Write,
            Some(shadowing) => {
                let (mode, wake) = yield_or_override(tw, shadowing, world);
                plan.wake_at = earliest(plan.wake_at, wake);
                mode
            }
        };
        plan.targets.push(Target {
            namespace: namespace.to_owned(),
            resource_group: Some(rg.to_owned()),
            mode,
        });
    }
    plan
}

/// A tenant-wide object facing a shadowing resource-group object: yield until
/// the override time the latter recorded, then write. Returns when to look
/// again, if the answer changes by itself.
fn yield_or_override(tw: &Facts, rg: &Facts, world: &World<'_>) -> (Mode, Option<Timestamp>) {
    let tw_key = tw.object_key();
    let record = rg
        .shadow
        .as_ref()
        .filter(|s| s.tenant_wide == tw_key && Some(s.generation) == rg.generation);
    let shadowing = |until: Option<Timestamp>| Mode::Yield {
        to: rg.object_key(),
        until,
        overridden: false,
    };
    match record {
        Some(s) if world.now >= s.override_at.0 => (Mode::Write, None),
        Some(s) => (shadowing(Some(s.override_at.0)), Some(s.override_at.0)),
        // It cannot write (its data source is missing): nothing to wait for.
        None if rg.lacks_source => (Mode::Write, None),
        // Not looked yet: give it a moment to record its shadow.
        None => (shadowing(None), Some(world.now + SHADOW_RECORD_WAIT)),
    }
}

fn plan_resource_group(rg: &Facts, world: &World<'_>, mut plan: Plan) -> Plan {
    let ns = rg.namespace.clone();
    let resource_group = world.resource_group_of(&ns).map(str::to_owned);
    let Some(tw) = world.tenant_wide_named(&plan.secret_name) else {
        plan.targets.push(Target {
            namespace: ns,
            resource_group,
            mode: Mode::Write,
        });
        return plan;
    };
    let tw_key = tw.object_key();
    let generation = rg.generation.unwrap_or_default();
    let recorded = rg
        .shadow
        .clone()
        .filter(|s| s.tenant_wide == tw_key && s.generation == generation);
    // Whole seconds: what the apiserver stores, so the record reads back equal.
    let now = Timestamp::from_second(world.now.as_second()).unwrap_or(world.now);
    let shadow = recorded.unwrap_or_else(|| ShadowStatus {
        tenant_wide: tw_key.clone(),
        since: Time(now),
        generation,
        override_at: Time(now + world.rules.override_interval),
    });
    let until = shadow.override_at.0;
    let mode = if world.now < until {
        plan.wake_at = Some(until);
        Mode::Shadowing {
            tenant_wide: tw_key,
            until,
        }
    } else {
        Mode::Yield {
            to: tw_key,
            until: None,
            overridden: true,
        }
    };
    plan.shadow = Some(shadow);
    plan.targets.push(Target {
        namespace: ns,
        resource_group,
        mode,
    });
    plan
}

/// The earlier of two optional times.
pub fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The object that takes a replica of `f` in `namespace` over when `f` goes
/// away (shadowing hand-over), if any.
pub fn successor_in(f: &Facts, namespace: &str, world: &World<'_>) -> Option<Key> {
    let next = match f.scope {
        Scope::TenantWide => world.resource_group_named(namespace, &f.secret_name),
        Scope::ResourceGroup => world
            .resource_group_of(namespace)
            .and_then(|_| world.tenant_wide_named(&f.secret_name)),
        Scope::Tenant => None,
    }?;
    (next.uid != f.uid).then(|| next.key.clone())
}

#[cfg(test)]
pub(crate) mod tests;
