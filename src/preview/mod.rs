//! Preview of a change: what the operator would do with one GenericSecret as
//! the cluster stands now, without writing anything. The answer of
//! `generic-secrets-operator preview` and of the REST API's `?dryRun=true`.
//!
//! - this module: the answer's model ([`Preview`], stable JSON) and its
//!   computation, pure: the controller's own planner ([`crate::plan::plan`])
//!   and status computation over a [`World`] and the metadata of the
//!   Secrets in the way;
//! - [`cluster`]: the reads that gather those facts; [`manifest`]: the
//!   CLI's manifest and its dry-run apply;
//! - [`text`]: the human-readable form.

pub mod cluster;
pub mod manifest;
pub mod text;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::GenericSecret;
use crate::controller::rotations::Version;
use crate::controller::status::{self, Outcome};
use crate::index::Facts;
use crate::index::replicas::Replica;
use crate::plan::{self, Blocked, Mode, Plan, Target, World};
use crate::replicas::{self, Payload, object_key};

/// What would happen, as a whole: the exit code of `preview`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Replicates cleanly, or reaches that by itself (Ready=True,
    /// Progressing, Shadowed). Exit code 0.
    Replicates,
    /// Writes nothing (InvalidSpec, quota, collision, wrong namespace,
    /// missing dataFrom source). Exit code 2.
    Blocked,
    /// Writes, but some target needs someone to act (a conflict with an
    /// unmanaged Secret). Exit code 3.
    NeedsAction,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Replicates => 0,
            Verdict::Blocked => 2,
            Verdict::NeedsAction => 3,
        }
    }
}

/// What would happen to one Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// No Secret of that name there: created.
    Create,
    /// Ours, but stale (other data, labels, or another writer): written.
    Update,
    /// Ours and current: nothing written.
    Unchanged,
    /// Unmanaged, offered for takeover (`--adopt-existing` and the
    /// `aicore.dev/adopt=true` annotation): taken over and written.
    Adopt,
    /// Unmanaged: never touched; the target reports Conflict.
    Conflict,
    /// Left to another object on purpose (shadowing).
    Leave,
    /// This object's replica where it no longer belongs: deleted.
    Delete,
}

/// One Secret the change touches (or leaves alone on purpose).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAction {
    pub namespace: String,
    /// Resource-group id; absent for the tenant namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    pub name: String,
    pub action: Action,
    /// Why, for anything but a plain create/update/unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Until when this holds: the override time of a shadowing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

/// The Ready condition the object would get.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// "True" or "False".
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The preview of one GenericSecret (JSON: `preview -o json` and the REST
/// API's dry run; fields are only ever added).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// `<namespace>/<name>` of the GenericSecret.
    pub object: String,
    /// Tenant | TenantWide | ResourceGroup.
    pub scope: String,
    /// Kubernetes name of its replicas.
    pub secret_name: String,
    /// Whether the object exists already (this is an update).
    pub exists: bool,
    pub verdict: Verdict,
    pub ready: Readiness,
    /// `<replicated>/<targets>` as the printer column would show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<String>,
    /// One entry per target namespace, then the deletions.
    pub secrets: Vec<SecretAction>,
    /// What the preview could not see or check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a preview is computed from; all of it gathered beforehand.
pub struct Input<'a> {
    /// The object as it would be stored (uid, creation time, status).
    pub object: &'a GenericSecret,
    /// Whether it exists already.
    pub exists: bool,
    /// Every object (including this one), the namespaces, rules and now.
    pub world: World<'a>,
    /// Why the spec is invalid (the apiserver's or our own validation).
    pub invalid: Option<String>,
    /// Why the `dataFrom` source cannot be read, if it cannot.
    pub source_missing: Option<String>,
    /// Hash of the data the replicas would hold; None when unknown (a
    /// `dataFrom` source, whose data is not read): the last replicated
    /// hash in status stands in.
    pub data_hash: Option<String>,
    /// Metadata of the Secrets named like the replicas in every namespace,
    /// and of this object's replicas.
    pub secrets: &'a [Replica],
    pub adopt_existing: bool,
    pub notes: Vec<String>,
}

/// The preview: the controller's plan and status for `input`.
pub fn compute(input: Input<'_>) -> Preview {
    let gs = input.object;
    let facts = Facts::with_validity(gs, input.invalid.clone());
    let planned = plan::plan(&facts, &input.world).and_then(|plan| match &input.source_missing {
        Some(msg) => Err(Blocked::SourceNotFound(msg.clone())),
        None => Ok(plan),
    });
    let now = input.world.now;
    let (status, secrets) = match &planned {
        Err(blocked) => {
            let deletes = if blocked.withdraws_replicas() {
                deletions(&input, &Plan::nothing())
            } else {
                Vec::new()
            };
            (status::blocked_status(gs, blocked, now), deletes)
        }
        Ok(plan) => {
            let hash = data_hash(&input);
            let targets: Vec<(Target, Outcome, SecretAction)> = plan
                .targets
                .iter()
                .map(|t| target_action(&input, plan, t, &hash))
                .collect();
            let outcomes: Vec<(Target, Outcome)> = targets
                .iter()
                .map(|(t, o, _)| (t.clone(), o.clone()))
                .collect();
            let status = replicated(gs, plan, &outcomes, &hash, now);
            let mut secrets: Vec<SecretAction> = targets.into_iter().map(|(_, _, a)| a).collect();
            secrets.extend(deletions(&input, plan));
            (status, secrets)
        }
    };
    let ready = ready_of(&status.conditions);
    Preview {
        object: object_key(gs),
        scope: gs.spec.scope.as_str().to_owned(),
        secret_name: gs.secret_name(),
        exists: input.exists,
        verdict: verdict(planned.is_err(), &ready),
        ready,
        replicated: status.replicated,
        secrets,
        notes: input.notes,
    }
}

/// The controller's status after the writes. One call site, so that a
/// change of `replicated_status`'s parameters is adapted here only.
fn replicated(
    gs: &GenericSecret,
    plan: &Plan,
    outcomes: &[(Target, Outcome)],
    hash: &str,
    now: Timestamp,
) -> crate::api::GenericSecretStatus {
    // The preview reports Ready, not the rotation history: one version
    // kept, no workload restarts, whatever `run`'s flags say.
    let version = Version {
        hash,
        seen: now,
        keep: 1,
        restarts: false,
    };
    status::replicated_status(gs, plan, outcomes, &version, now)
}

fn verdict(blocked: bool, ready: &Readiness) -> Verdict {
    if blocked {
        Verdict::Blocked
    } else if ready.status == "True" || status::resolves_itself(&ready.reason) {
        Verdict::Replicates
    } else {
        Verdict::NeedsAction
    }
}

fn ready_of(conditions: &[Condition]) -> Readiness {
    let ready = conditions.iter().find(|c| c.type_ == "Ready");
    Readiness {
        status: ready.map_or("Unknown", |c| c.status.as_str()).to_owned(),
        reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
        message: ready.map(|c| c.message.clone()).unwrap_or_default(),
    }
}

/// The hash the replicas would hold: known, or the last replicated one.
fn data_hash(input: &Input<'_>) -> String {
    let stored = || input.object.status.as_ref()?.data_hash.clone();
    input.data_hash.clone().or_else(stored).unwrap_or_default()
}

/// What happens in one target: the controller's outcome after its writes,
/// and the action that gets it there.
fn target_action(
    input: &Input<'_>,
    plan: &Plan,
    target: &Target,
    hash: &str,
) -> (Target, Outcome, SecretAction) {
    let gs = input.object;
    let existing = input
        .secrets
        .iter()
        .find(|r| *r.namespace == *target.namespace && *r.name == *plan.secret_name);
    let mut entry = SecretAction {
        namespace: target.namespace.clone(),
        resource_group: target.resource_group.clone(),
        name: plan.secret_name.clone(),
        action: Action::Create,
        message: None,
        until: None,
    };
    // The controller's words for the mode, as status would show them.
    entry.message = status::mode_message(&target.mode);
    match &target.mode {
        Mode::Yield { until, .. } => {
            entry.action = Action::Leave;
            entry.until = *until;
            return (target.clone(), Outcome::Yielded, entry);
        }
        Mode::Shadowing { until, .. } => entry.until = Some(*until),
        Mode::Write => {}
    }
    let tenant = &input.world.rules.tenant_namespace;
    let payload = Payload {
        data: Default::default(),
        hash: hash.to_owned(),
    };
    let desired =
        replicas::desired_secret(gs, tenant, &plan.secret_name, &target.namespace, &payload);
    // Metadata shows no type: compare as if it held the desired one (the
    // controller replaces one of another type).
    let existing = existing.map(|r| Replica {
        type_: desired.type_.as_deref().map(Into::into),
        ..r.clone()
    });
    let outcome = match &existing {
        None => Outcome::Written,
        Some(r) if replicas::is_current(r, &object_key(gs), &desired, hash) => {
            entry.action = Action::Unchanged;
            Outcome::Current
        }
        Some(r) if r.managed => {
            entry.action = Action::Update;
            Outcome::Written
        }
        Some(r) if input.adopt_existing && r.adoptable => {
            entry.action = Action::Adopt;
            Outcome::Written
        }
        Some(r) => {
            let msg = replicas::conflict_message(r, tenant, input.adopt_existing);
            entry.action = Action::Conflict;
            entry.message = Some(msg.clone());
            Outcome::Conflict(msg)
        }
    };
    (target.clone(), outcome, entry)
}

/// This object's replicas that `plan` no longer targets (the controller's
/// `delete_unplanned`).
fn deletions(input: &Input<'_>, plan: &Plan) -> Vec<SecretAction> {
    let writer = object_key(input.object);
    let planned = |r: &Replica| {
        *r.name == *plan.secret_name && plan.targets.iter().any(|t| *t.namespace == *r.namespace)
    };
    let mut deletes: Vec<SecretAction> = input
        .secrets
        .iter()
        .filter(|r| r.managed && r.writer.as_deref() == Some(writer.as_str()) && !planned(r))
        .map(|r| SecretAction {
            namespace: r.namespace.to_string(),
            resource_group: input.world.groups.group_of(&r.namespace).map(str::to_owned),
            name: r.name.to_string(),
            action: Action::Delete,
            message: Some(deletion_reason(input, plan)),
            until: None,
        })
        .collect();
    deletes.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    deletes
}

fn deletion_reason(input: &Input<'_>, plan: &Plan) -> String {
    if plan.targets.is_empty() {
        return format!("{} gives up its replicas", input.object.name_any());
    }
    "no longer a target namespace".to_owned()
}

#[cfg(test)]
mod tests;
