//! Status computation: from a plan and what happened to each target, the
//! status a user (or Argo CD) reads. Pure: timestamps come in as arguments and
//! unchanged facts keep their old times, so a no-op resync computes the very
//! status already stored and writes nothing.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::rotations::{self, Version};
use crate::api::{GenericSecret, GenericSecretStatus, Scope, TargetState, TargetStatus};
use crate::plan::{Blocked, Mode, Plan, Target};

/// What happened to one target in this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already held the current data.
    Current,
    /// Written now.
    Written,
    /// Not written yet (status reported before the writes).
    Pending,
    /// An unmanaged Secret of that name exists.
    Conflict(String),
    /// Writing failed; retried with backoff.
    Failed(String),
    /// The apiserver refused the Secret as invalid (422): retrying cannot
    /// help, so it waits for a change of the object (or the resync).
    Rejected(String),
    /// Left to another object on purpose.
    Yielded,
}

/// The Ready condition's status, reason and message.
struct Readiness {
    ready: bool,
    reason: &'static str,
    message: String,
}

/// Status of an object that writes nothing because it is blocked. Replicas
/// it keeps (see `Blocked::withdraws_replicas`) stay reported as they were,
/// and so does a shadow record: a passing problem must not restart the
/// override clock.
pub fn blocked_status(
    gs: &GenericSecret,
    blocked: &Blocked,
    now: Timestamp,
) -> GenericSecretStatus {
    let previous = gs.status.clone().unwrap_or_default();
    let readiness = Readiness {
        ready: false,
        reason: blocked.reason(),
        message: blocked.message(),
    };
    let conditions = conditions(&previous, readiness, gs.metadata.generation, now);
    let kept = if blocked.withdraws_replicas() {
        GenericSecretStatus {
            resource_group_secret_replication_status: (gs.spec.scope == Scope::TenantWide)
                .then(BTreeMap::new),
            replicated: Some("0/0".into()),
            ..GenericSecretStatus::default()
        }
    } else {
        previous.clone()
    };
    GenericSecretStatus {
        observed_generation: gs.metadata.generation,
        conditions,
        data_hash: previous.data_hash,
        shadow: previous.shadow,
        rotations: previous.rotations,
        ..kept
    }
}

/// Status after (or, with `Pending` outcomes, before) writing the targets.
pub fn replicated_status(
    gs: &GenericSecret,
    plan: &Plan,
    outcomes: &[(Target, Outcome)],
    version: &Version<'_>,
    now: Timestamp,
) -> GenericSecretStatus {
    let data_hash = version.hash;
    let previous = gs.status.clone().unwrap_or_default();
    let old: HashMap<&str, &TargetStatus> = previous
        .resource_groups
        .iter()
        .map(|e| (e.namespace.as_str(), e))
        .collect();
    let mut entries: Vec<TargetStatus> = outcomes
        .iter()
        .map(|(t, o)| {
            target_status(
                t,
                o,
                old.get(t.namespace.as_str()).copied(),
                &previous,
                data_hash,
                now,
            )
        })
        .collect();
    let replicated = entries
        .iter()
        .zip(outcomes)
        .filter(|(e, (t, o))| e.state == TargetState::Replicated || shadowing_own_data(t, o))
        .count();
    let tenant_wide = gs.spec.scope == Scope::TenantWide;
    let map = tenant_wide.then(|| replication_map(&entries));
    if tenant_wide {
        // The map holds every resource group; the detail list only those
        // that need a word (shadowed, in conflict, failed). A status with a
        // thousand entries costs the apiserver ~0.3 s of CPU per write.
        entries.retain(|e| e.message.is_some());
    }
    let readiness = readiness(outcomes);
    GenericSecretStatus {
        observed_generation: gs.metadata.generation,
        conditions: conditions(&previous, readiness, gs.metadata.generation, now),
        data_hash: Some(data_hash.to_owned()),
        resource_group_secret_replication_status: map,
        replicated: Some(format!("{replicated}/{}", outcomes.len())),
        resource_groups: entries,
        shadow: plan.shadow.clone(),
        rotations: rotations::record(&previous, version, pending(outcomes), now),
    }
}

/// Targets this object writes that do not hold its data (yet): a target
/// left to a shadowing object on purpose is not one of them.
pub fn pending(outcomes: &[(Target, Outcome)]) -> usize {
    outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Current | Outcome::Written | Outcome::Yielded))
        .count()
}

/// Resource-group id → whether its Secret holds the current data. Two
/// namespaces labelled with one id share the key: true only if both are.
fn replication_map(entries: &[TargetStatus]) -> BTreeMap<String, bool> {
    let mut map = BTreeMap::new();
    for e in entries {
        if let Some(id) = &e.id {
            let replicated = e.state == TargetState::Replicated;
            *map.entry(id.clone()).or_insert(true) &= replicated;
        }
    }
    map
}

/// A resource-group object's own data is in place while it shadows.
fn shadowing_own_data(target: &Target, outcome: &Outcome) -> bool {
    matches!(target.mode, Mode::Shadowing { .. })
        && matches!(outcome, Outcome::Current | Outcome::Written)
}

fn target_status(
    target: &Target,
    outcome: &Outcome,
    old: Option<&TargetStatus>,
    previous: &GenericSecretStatus,
    data_hash: &str,
    now: Timestamp,
) -> TargetStatus {
    let (state, message) = match (outcome, &target.mode) {
        (Outcome::Current | Outcome::Written, Mode::Shadowing { .. }) => {
            (TargetState::Shadowed, mode_message(&target.mode))
        }
        (Outcome::Current | Outcome::Written, _) => (TargetState::Replicated, None),
        (Outcome::Pending, _) => (TargetState::Pending, None),
        (Outcome::Conflict(m), _) => (TargetState::Conflict, Some(m.clone())),
        (Outcome::Failed(m) | Outcome::Rejected(m), _) => (TargetState::Failed, Some(m.clone())),
        (Outcome::Yielded, mode) => (TargetState::Shadowed, Some(yield_message(mode))),
    };
    // Keep the old sync time while the same data stays in place.
    let unchanged =
        old.is_some_and(|o| o.state == state && previous.data_hash.as_deref() == Some(data_hash));
    let last_sync_time = match outcome {
        Outcome::Current if unchanged => old.and_then(|o| o.last_sync_time.clone()),
        Outcome::Current | Outcome::Written => Some(Time(now)),
        _ => old.and_then(|o| o.last_sync_time.clone()),
    };
    TargetStatus {
        id: target.resource_group.clone(),
        namespace: target.namespace.clone(),
        state,
        message,
        last_sync_time,
    }
}

/// What a target's mode says, in status and in a preview: shadowing a
/// tenant-wide secret, or left to another object.
pub fn mode_message(mode: &Mode) -> Option<String> {
    match mode {
        Mode::Write => None,
        Mode::Shadowing { tenant_wide, until } => Some(format!(
            "shadows tenant-wide secret {tenant_wide}; its data overrides this at {until}"
        )),
        Mode::Yield { .. } => Some(yield_message(mode)),
    }
}

fn yield_message(mode: &Mode) -> String {
    match mode {
        Mode::Yield {
            to,
            overridden: true,
            ..
        } => format!(
            "tenant-wide secret {to} has overridden this data; change this object's data to shadow it again"
        ),
        Mode::Yield {
            to, until: Some(t), ..
        } => format!("resource-group secret {to} shadows this one; overridden at {t}"),
        Mode::Yield { to, .. } => format!("resource-group secret {to} shadows this one"),
        Mode::Write | Mode::Shadowing { .. } => String::new(),
    }
}

fn readiness(outcomes: &[(Target, Outcome)]) -> Readiness {
    let count =
        |f: &dyn Fn(&Target, &Outcome) -> bool| outcomes.iter().filter(|(t, o)| f(t, o)).count();
    let conflicts = count(&|_, o| matches!(o, Outcome::Conflict(_)));
    let failed = count(&|_, o| matches!(o, Outcome::Failed(_) | Outcome::Rejected(_)));
    let pending = count(&|_, o| *o == Outcome::Pending);
    let shadowed = count(&|t, _| {
        matches!(
            t.mode,
            Mode::Yield {
                overridden: false,
                ..
            }
        )
    });
    let overridden = count(&|t, _| {
        matches!(
            t.mode,
            Mode::Yield {
                overridden: true,
                ..
            }
        )
    });
    let shadowing = count(&|t, _| matches!(t.mode, Mode::Shadowing { .. }));
    let total = outcomes.len();
    let not_ready = |reason, message| Readiness {
        ready: false,
        reason,
        message,
    };
    if conflicts > 0 {
        let first = first_message(outcomes, |o| matches!(o, Outcome::Conflict(_)));
        return not_ready(
            "Conflict",
            format!("{conflicts} of {total} targets conflict: {first}"),
        );
    }
    if failed > 0 {
        let first = first_message(outcomes, |o| {
            matches!(o, Outcome::Failed(_) | Outcome::Rejected(_))
        });
        return not_ready(
            "ReplicationFailed",
            format!("{failed} of {total} targets failed: {first}"),
        );
    }
    if pending > 0 {
        return not_ready(
            "Progressing",
            format!("{pending} of {total} targets not yet written"),
        );
    }
    if shadowed > 0 {
        return not_ready(
            "Shadowed",
            format!(
                "{shadowed} of {total} resource groups hold a shadowing resource-group secret until it is overridden"
            ),
        );
    }
    let (reason, message) = if overridden > 0 {
        ("OverriddenByTenantWide", yield_message(&outcomes[0].0.mode))
    } else if shadowing > 0 {
        (
            "Shadowing",
            "this data shadows a tenant-wide secret until it is overridden".to_owned(),
        )
    } else {
        (
            "Replicated",
            format!("{total} of {total} targets hold the current data"),
        )
    };
    Readiness {
        ready: true,
        reason,
        message,
    }
}

fn first_message(outcomes: &[(Target, Outcome)], pick: impl Fn(&Outcome) -> bool) -> String {
    outcomes
        .iter()
        .find_map(|(_, o)| match o {
            Outcome::Conflict(m) | Outcome::Failed(m) | Outcome::Rejected(m) if pick(o) => {
                Some(m.clone())
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// When the object last changed, as its managed fields tell (status writes
/// do not count): where a replication of its data starts.
pub fn last_change(gs: &GenericSecret) -> Option<Timestamp> {
    let fields = gs.metadata.managed_fields.iter().flatten();
    fields
        .filter(|f| f.subresource.as_deref().unwrap_or_default().is_empty())
        .filter_map(|f| f.time.as_ref().map(|t| t.0))
        .max()
        .or_else(|| gs.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Whether `status` already shows every target holding the data `hash`.
pub fn shows_complete(status: Option<&GenericSecretStatus>, hash: &str) -> bool {
    status.is_some_and(|s| {
        s.data_hash.as_deref() == Some(hash)
            && s.replicated
                .as_deref()
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(done, all)| done == all)
    })
}

/// Whether a `Ready=False` reason passes on its own: Secrets still being
/// written, or a tenant-wide secret waiting out a resource-group secret's
/// override interval. Any other needs someone to act (a Warning event, and
/// `Stalled`).
pub fn resolves_itself(reason: &str) -> bool {
    matches!(reason, "Progressing" | "Shadowed")
}

/// `Ready`, and `Stalled=True` with the same reason and message while the
/// object needs someone to act: kstatus (Flux, kpt) reads `Ready=False` as
/// still in progress, and only `Stalled` as failed. Per its abnormal-true
/// convention `Stalled` is left out otherwise.
fn conditions(
    previous: &GenericSecretStatus,
    r: Readiness,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let stalled = (!r.ready && !resolves_itself(r.reason))
        .then(|| condition(previous, "Stalled", true, &r, generation, now));
    let ready = condition(previous, "Ready", r.ready, &r, generation, now);
    std::iter::once(ready).chain(stalled).collect()
}

/// A condition with `r`'s reason and message, keeping its transition time
/// while its status holds.
fn condition(
    previous: &GenericSecretStatus,
    type_: &str,
    holds: bool,
    r: &Readiness,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if holds { "True" } else { "False" };
    let old = previous.conditions.iter().find(|c| c.type_ == type_);
    let last_transition_time = old
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: r.reason.into(),
        message: r.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests;
