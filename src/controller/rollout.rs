//! Workload restarts after a rotation (`spec.rollout`): environment
//! variables and `subPath` mounts never see a Secret's new data, so the
//! Deployments, StatefulSets and DaemonSets of a target namespace that read
//! the replica that way get a new pod-template annotation, as `kubectl
//! rollout restart` does. Only that annotation is patched.
//!
//! Once per rotation: the annotation holds the data hash it restarted for,
//! a workload created after the rotation started already reads the new
//! data, and the rotation's record in status says when every target was
//! looked at. Workloads are listed per rotation, not per resync.

use std::collections::HashSet;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::reconcile::Job;
use super::status::Outcome;
use super::{Error, rotations};
use crate::api::GenericSecretStatus;
use crate::plan::Target;
use crate::replicas::{MANAGER, at_most_63};

/// Prefix of the pod-template annotation naming the data a workload was
/// restarted for; the rest is the Secret's name.
pub const ANNOTATION_PREFIX: &str = "rollout.aicore.dev/";

/// How a pod template reads a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    Not,
    /// Only through volume mounts, which kubelet updates in place.
    Mounted,
    /// Through env, envFrom or a subPath mount: fixed at container start.
    AtStart,
}

/// Restart the workloads reading the newest version's replicas in the
/// targets that hold it, and count them in `after`.
pub async fn restart(
    job: &Job<'_>,
    outcomes: &[(Target, Outcome)],
    after: &mut GenericSecretStatus,
) -> Result<(), Error> {
    let Some(newest) = after.rotations.first() else {
        return Ok(());
    };
    let holding: HashSet<&str> = outcomes
        .iter()
        .filter(|(t, o)| t.writes() && matches!(o, Outcome::Current | Outcome::Written))
        .map(|(t, _)| t.namespace.as_str())
        .collect();
    let pass = Pass {
        job,
        holding,
        started: newest.start_time.0,
        complete: newest.completion_time.is_some(),
        // An annotation's name has at most 63 characters after the prefix.
        annotation: format!("{ANNOTATION_PREFIX}{}", at_most_63(&job.plan.secret_name)),
        volumes: job
            .gs
            .spec
            .rollout
            .as_ref()
            .is_some_and(|r| r.include_volume_mounts),
    };
    let mut restarted = Vec::new();
    restarted.extend(pass.kind::<Deployment>(|w| &w.spec.template).await?);
    restarted.extend(pass.kind::<StatefulSet>(|w| &w.spec.template).await?);
    restarted.extend(pass.kind::<DaemonSet>(|w| &w.spec.template).await?);
    let ctx = job.ctx;
    ctx.metrics.workload_restarts.inc_by(restarted.len() as u64);
    if !restarted.is_empty() {
        let note = format!(
            "restarted {} workloads for data {}: {}",
            restarted.len(),
            job.version.hash,
            restarted.join(", ")
        );
        ctx.publish(job.gs, EventType::Normal, "WorkloadsRestarted", &note)
            .await;
    }
    rotations::add_restarts(after, restarted.len(), pass.complete);
    Ok(())
}

/// A namespaced kind with a pod template.
trait Workload:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}
impl<K> Workload for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

struct Pass<'a> {
    job: &'a Job<'a>,
    holding: HashSet<&'a str>,
    started: Timestamp,
    /// Every target holds the data: this pass is the rotation's last.
    complete: bool,
    /// The annotation, `rollout.aicore.dev/<Secret name>` (shortened).
    annotation: String,
    volumes: bool,
}

impl Pass<'_> {
    /// Restart the workloads of one kind that need it; their names.
    async fn kind<K>(&self, template: fn(&K) -> &PodTemplateSpec) -> Result<Vec<String>, Error>
    where
        K: Workload,
    {
        let client = self.job.ctx.client.clone();
        // One target: its namespace; a fan-out: one paged list for all.
        let api: Api<K> = match self.holding.iter().next() {
            Some(ns) if self.holding.len() == 1 => Api::namespaced(client, ns),
            Some(_) => Api::all(client),
            None => return Ok(Vec::new()),
        };
        let mut restarted = Vec::new();
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await.map_err(Error::Restart)?;
            for w in &page.items {
                if self.due(w, template(w)) {
                    self.patch(w).await?;
                    restarted.push(format!(
                        "{}/{}/{}",
                        K::kind(&()),
                        w.namespace().unwrap_or_default(),
                        w.name_any()
                    ));
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(restarted),
            }
        }
    }

    fn due<K: Resource>(&self, w: &K, template: &PodTemplateSpec) -> bool {
        let meta = w.meta();
        let in_target = meta
            .namespace
            .as_deref()
            .is_some_and(|ns| self.holding.contains(ns));
        // Created after the rotation started: it already read the new data.
        let older = meta
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| t.0 <= self.started);
        let annotations = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref());
        let current = annotations.and_then(|a| a.get(&self.annotation));
        let reads = template
            .spec
            .as_ref()
            .map_or(Reads::Not, |s| reads(s, &self.job.plan.secret_name));
        let needs = reads == Reads::AtStart || (reads == Reads::Mounted && self.volumes);
        in_target && older && needs && current.map(String::as_str) != Some(self.job.version.hash)
    }

    async fn patch<K: Workload>(&self, w: &K) -> Result<(), Error> {
        let api: Api<K> = Api::namespaced(
            self.job.ctx.client.clone(),
            &w.namespace().unwrap_or_default(),
        );
        let body = json!({"spec": {"template": {"metadata": {"annotations": {
            &self.annotation: self.job.version.hash
        }}}}});
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        match api
            .patch(&w.name_any(), &params, &Patch::Merge(&body))
            .await
        {
            // Deleted since the list: nothing to restart.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            result => result.map(|_| ()).map_err(Error::Restart),
        }
    }
}

/// How `spec` reads Secret `name`, the strongest way of any container.
pub fn reads(spec: &PodSpec, name: &str) -> Reads {
    let volumes: HashSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            let direct = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(name);
            let projected = v.projected.iter().flat_map(|p| p.sources.iter().flatten());
            direct
                || projected
                    .filter_map(|s| s.secret.as_ref())
                    .any(|s| s.name == name)
        })
        .map(|v| v.name.as_str())
        .collect();
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut found = if volumes.is_empty() {
        Reads::Not
    } else {
        Reads::Mounted
    };
    for c in containers {
        let env = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref());
        let env_from = c
            .env_from
            .iter()
            .flatten()
            .filter_map(|e| e.secret_ref.as_ref());
        let sub_path = c.volume_mounts.iter().flatten().any(|m| {
            volumes.contains(m.name.as_str()) && (m.sub_path.is_some() || m.sub_path_expr.is_some())
        });
        if sub_path
            || env.into_iter().any(|r| r.name == name)
            || env_from.into_iter().any(|r| r.name == name)
        {
            found = Reads::AtStart;
        }
    }
    found
}

#[cfg(test)]
mod tests;
