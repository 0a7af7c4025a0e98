//! Planning: which namespaces a GenericSecret writes, and who wins a Secret
//! name that two objects want (quota, collisions, shadowing). Pure: it reads a
//! [`Snapshot`] of the watch caches and returns plain data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::validation::{kubernetes_name, validate_spec};
use crate::api::{GenericSecret, Scope, ShadowStatus};
use crate::replicas::object_key;

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

/// The world as the watch caches show it, indexed once per reconcile so
/// that planning stays linear in the number of namespaces and objects.
pub struct Snapshot<'a> {
    pub rules: &'a Rules,
    /// Known namespaces → resource-group id (None: not a resource group).
    pub namespaces: &'a BTreeMap<String, Option<String>>,
    pub now: Timestamp,
    /// Live objects by (namespace, Secret name), oldest first.
    by_secret: HashMap<(String, String), Vec<&'a GenericSecret>>,
    /// Live tenant-wide objects in the tenant namespace, oldest first.
    tenant_wide: Vec<&'a GenericSecret>,
}

impl<'a> Snapshot<'a> {
    pub fn new(
        rules: &'a Rules,
        namespaces: &'a BTreeMap<String, Option<String>>,
        generic_secrets: &'a [Arc<GenericSecret>],
        now: Timestamp,
    ) -> Self {
        let mut live: Vec<&GenericSecret> = generic_secrets
            .iter()
            .map(Arc::as_ref)
            .filter(|g| is_live(g))
            .collect();
        live.sort_by_key(|g| creation_key(g));
        let mut by_secret: HashMap<(String, String), Vec<&GenericSecret>> = HashMap::new();
        for gs in &live {
            let key = (gs.namespace().unwrap_or_default(), secret_name(gs));
            by_secret.entry(key).or_default().push(gs);
        }
        // Quota slots go to objects that can use them: valid, and the oldest
        // holder of their Secret name.
        let tenant_wide = live
            .into_iter()
            .filter(|g| g.spec.scope == Scope::TenantWide)
            .filter(|g| g.namespace().as_deref() == Some(&rules.tenant_namespace))
            .filter(|g| validate_spec(&g.spec).is_ok())
            .filter(|g| {
                let key = (rules.tenant_namespace.clone(), secret_name(g));
                by_secret.get(&key).and_then(|v| v.first()).map(|f| f.uid()) == Some(g.uid())
            })
            .collect();
        Snapshot {
            rules,
            namespaces,
            now,
            by_secret,
            tenant_wide,
        }
    }

    /// Live objects in `namespace` whose replicas are named `name`.
    fn named(&self, namespace: &str, name: &str) -> &[&'a GenericSecret] {
        self.by_secret
            .get(&(namespace.to_owned(), name.to_owned()))
            .map_or(&[], Vec::as_slice)
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
            Blocked::SourceNotFound(_) => "SourceNotFound",
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
    /// Objects that must look again because of this plan.
    pub notify: Vec<ObjectRef<GenericSecret>>,
}

impl Plan {
    /// A plan with no targets: every replica is unplanned.
    pub fn nothing() -> Self {
        Plan {
            secret_name: String::new(),
            targets: Vec::new(),
            shadow: None,
            wake_at: None,
            notify: Vec::new(),
        }
    }
}

/// The Kubernetes name of an object's replicas.
pub fn secret_name(gs: &GenericSecret) -> String {
    kubernetes_name(gs.ai_core_name())
}

fn is_live(gs: &GenericSecret) -> bool {
    gs.metadata.deletion_timestamp.is_none()
}

/// Creation order: creationTimestamp, then name.
pub fn creation_key(gs: &GenericSecret) -> (Option<Timestamp>, String) {
    (gs.creation_timestamp().map(|t| t.0), gs.name_any())
}

impl Snapshot<'_> {
    fn resource_group_of(&self, namespace: &str) -> Option<&str> {
        if namespace == self.rules.tenant_namespace {
            return None;
        }
        self.namespaces.get(namespace)?.as_deref()
    }

    /// An older live object in the same namespace with the same Secret name.
    fn collides_with(&self, gs: &GenericSecret) -> Option<&GenericSecret> {
        let ns = gs.namespace().unwrap_or_default();
        self.named(&ns, &secret_name(gs))
            .iter()
            .copied()
            .find(|o| o.uid() != gs.uid() && creation_key(o) < creation_key(gs))
    }

    /// Why `gs` may not write, if it may not.
    fn blocked(&self, gs: &GenericSecret) -> Option<Blocked> {
        if let Err(msg) = validate_spec(&gs.spec) {
            return Some(Blocked::InvalidSpec(msg));
        }
        if let Some(msg) = self.wrong_namespace(gs) {
            return Some(Blocked::WrongNamespace(msg));
        }
        if let Some(other) = self.collides_with(gs) {
            return Some(Blocked::NameCollision {
                secret_name: secret_name(gs),
                other: object_key(other),
            });
        }
        if gs.spec.scope == Scope::TenantWide {
            let limit = self.rules.max_tenant_wide;
            let position = self.tenant_wide.iter().position(|g| g.uid() == gs.uid())? + 1;
            if position > limit {
                return Some(Blocked::TenantWideQuotaExceeded { limit, position });
            }
        }
        None
    }

    fn wrong_namespace(&self, gs: &GenericSecret) -> Option<String> {
        let ns = gs.namespace().unwrap_or_default();
        let tenant = &self.rules.tenant_namespace;
        match gs.spec.scope {
            Scope::Tenant | Scope::TenantWide if &ns != tenant => Some(format!(
                "scope {} is only accepted in the tenant namespace {tenant:?}; move this \
                 object there, or use scope ResourceGroup",
                gs.spec.scope.as_str()
            )),
            Scope::ResourceGroup if self.resource_group_of(&ns).is_none() => Some(format!(
                "namespace {ns:?} is not a resource group; label it {}=<id>, or create a \
                 Tenant/TenantWide object in {tenant:?} instead",
                crate::api::RESOURCE_GROUP_LABEL
            )),
            _ => None,
        }
    }

    /// The tenant-wide object that currently owns Secret name `name`.
    fn tenant_wide_named(&self, name: &str) -> Option<&GenericSecret> {
        self.named(&self.rules.tenant_namespace, name)
            .iter()
            .copied()
            .find(|g| g.spec.scope == Scope::TenantWide && self.blocked(g).is_none())
    }

    /// The resource-group object in `namespace` that shadows Secret `name`.
    fn resource_group_named(&self, namespace: &str, name: &str) -> Option<&GenericSecret> {
        self.named(namespace, name)
            .iter()
            .copied()
            .find(|g| g.spec.scope == Scope::ResourceGroup && self.blocked(g).is_none())
    }
}

/// Decide what `gs` writes where.
pub fn plan(gs: &GenericSecret, snap: &Snapshot<'_>) -> Result<Plan, Blocked> {
    if let Some(blocked) = snap.blocked(gs) {
        return Err(blocked);
    }
    let name = secret_name(gs);
    let ns = gs.namespace().unwrap_or_default();
    let empty = Plan {
        secret_name: name.clone(),
        ..Plan::nothing()
    };
    Ok(match gs.spec.scope {
        Scope::Tenant => Plan {
            targets: vec![Target {
                namespace: ns,
                resource_group: None,
                mode: Mode::Write,
            }],
            ..empty
        },
        Scope::TenantWide => plan_tenant_wide(gs, snap, empty),
        Scope::ResourceGroup => plan_resource_group(gs, snap, &ns, empty),
    })
}

fn plan_tenant_wide(gs: &GenericSecret, snap: &Snapshot<'_>, mut plan: Plan) -> Plan {
    for namespace in snap.namespaces.keys() {
        let Some(rg) = snap.resource_group_of(namespace) else {
            continue;
        };
        let resource_group = Some(rg.to_owned());
        let mode = match snap.resource_group_named(namespace, &plan.secret_name) {
            None => Mode::Write,
            Some(shadowing) => {
                let (mode, wake) = yield_or_override(gs, shadowing, snap);
                // It may have to record its shadow, or restore data this
                // object wrote from an older snapshot.
                plan.notify.push(ObjectRef::from(shadowing));
                plan.wake_at = earliest(plan.wake_at, wake);
                mode
            }
        };
        plan.targets.push(Target {
            namespace: namespace.clone(),
            resource_group,
            mode,
        });
    }
    plan
}

/// A tenant-wide object facing a shadowing resource-group object: yield until
/// the override time the latter recorded, then write. Returns when to look
/// again, if the answer changes by itself.
fn yield_or_override(
    tw: &GenericSecret,
    rg: &GenericSecret,
    snap: &Snapshot<'_>,
) -> (Mode, Option<Timestamp>) {
    let status = rg.status.as_ref();
    let record = status.and_then(|s| s.shadow.as_ref()).filter(|s| {
        s.tenant_wide == object_key(tw) && Some(s.generation) == rg.metadata.generation
    });
    let shadowing = |until: Option<Timestamp>| Mode::Yield {
        to: object_key(rg),
        until,
        overridden: false,
    };
    match record {
        Some(s) if snap.now >= s.override_at.0 => (Mode::Write, None),
        Some(s) => (shadowing(Some(s.override_at.0)), Some(s.override_at.0)),
        // It cannot write (its data source is missing): nothing to wait for.
        None if lacks_source(rg) => (Mode::Write, None),
        // Not looked yet: give it a moment to record its shadow.
        None => (shadowing(None), Some(snap.now + SHADOW_RECORD_WAIT)),
    }
}

/// Whether `gs` reported, for its current generation, that its `dataFrom`
/// source is missing (the planner cannot read Secrets itself).
fn lacks_source(gs: &GenericSecret) -> bool {
    let observed = gs.status.as_ref().and_then(|s| s.observed_generation);
    observed == gs.metadata.generation
        && gs
            .ready_condition()
            .is_some_and(|c| c.reason == Blocked::SourceNotFound(String::new()).reason())
}

fn plan_resource_group(gs: &GenericSecret, snap: &Snapshot<'_>, ns: &str, mut plan: Plan) -> Plan {
    let resource_group = snap.resource_group_of(ns).map(str::to_owned);
    let Some(tw) = snap.tenant_wide_named(&plan.secret_name) else {
        plan.targets.push(Target {
            namespace: ns.to_owned(),
            resource_group,
            mode: Mode::Write,
        });
        return plan;
    };
    let tw_key = object_key(tw);
    let generation = gs.metadata.generation.unwrap_or_default();
    let recorded = gs
        .status
        .as_ref()
        .and_then(|s| s.shadow.clone())
        .filter(|s| s.tenant_wide == tw_key && s.generation == generation);
    // Whole seconds: what the apiserver stores, so the record reads back equal.
    let now = Timestamp::from_second(snap.now.as_second()).unwrap_or(snap.now);
    let shadow = recorded.unwrap_or_else(|| ShadowStatus {
        tenant_wide: tw_key.clone(),
        since: Time(now),
        generation,
        override_at: Time(now + snap.rules.override_interval),
    });
    let until = shadow.override_at.0;
    let mode = if snap.now < until {
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
    plan.notify.push(ObjectRef::from(tw));
    plan.shadow = Some(shadow);
    plan.targets.push(Target {
        namespace: ns.to_owned(),
        resource_group,
        mode,
    });
    plan
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Live objects other than `gs` that want the same Secret name.
pub fn same_name(gs: &GenericSecret, snap: &Snapshot<'_>) -> Vec<ObjectRef<GenericSecret>> {
    let name = secret_name(gs);
    snap.by_secret
        .iter()
        .filter(|((_, n), _)| *n == name)
        .flat_map(|(_, objects)| objects.iter())
        .filter(|o| o.uid() != gs.uid())
        .map(|o| ObjectRef::from(*o))
        .collect()
}

/// Objects that must look again when `gs` goes away: every object wanting the
/// same Secret name, and the tenant-wide objects waiting for a quota slot.
pub fn affected_by_removal(
    gs: &GenericSecret,
    snap: &Snapshot<'_>,
) -> Vec<ObjectRef<GenericSecret>> {
    let mut affected = same_name(gs, snap);
    if gs.spec.scope == Scope::TenantWide {
        affected.extend(
            snap.tenant_wide
                .iter()
                .copied()
                .filter(|o| o.uid() != gs.uid() && secret_name(o) != secret_name(gs))
                .map(ObjectRef::from),
        );
    }
    affected
}

/// Whether a replica of `gs` in `namespace` must stay when `gs` goes away,
/// because another object takes the Secret over (shadowing hand-over).
pub fn successor_in(
    gs: &GenericSecret,
    namespace: &str,
    snap: &Snapshot<'_>,
) -> Option<ObjectRef<GenericSecret>> {
    let name = secret_name(gs);
    let next = match gs.spec.scope {
        Scope::TenantWide => snap.resource_group_named(namespace, &name),
        Scope::ResourceGroup => snap
            .resource_group_of(namespace)
            .and_then(|_| snap.tenant_wide_named(&name)),
        Scope::Tenant => None,
    }?;
    (next.uid() != gs.uid()).then(|| ObjectRef::from(next))
}

#[cfg(test)]
mod tests;
