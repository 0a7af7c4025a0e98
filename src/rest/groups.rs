//! Where a resource group lives, for the REST API: the namespaces of this
//! installation labelled `aicore.dev/resource-group`, watched (metadata
//! only, label-selected) with the operator's identity and kept as
//! id → namespaces, so that a request finds its namespace without a list.
//! [`Groups`] and the selector are pure; [`Cache::spawn`] runs the watch.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

use super::error::ApiError;
use crate::api::RESOURCE_GROUP_LABEL;

/// Resource-group ids and their namespaces.
#[derive(Debug, Default)]
pub struct Groups {
    /// Namespace → (resource-group id, being deleted).
    namespaces: HashMap<String, (String, bool)>,
    /// Resource-group id → the namespaces that carry it.
    by_id: HashMap<String, BTreeSet<String>>,
}

impl Groups {
    /// Namespace `name` now carries `id` (None: no longer a resource group).
    pub fn set(&mut self, name: &str, id: Option<&str>, terminating: bool) {
        self.remove(name);
        if let Some(id) = id {
            self.namespaces
                .insert(name.to_owned(), (id.to_owned(), terminating));
            self.by_id
                .entry(id.to_owned())
                .or_default()
                .insert(name.to_owned());
        }
    }

    pub fn remove(&mut self, name: &str) {
        let Some((id, _)) = self.namespaces.remove(name) else {
            return;
        };
        if let Some(names) = self.by_id.get_mut(&id) {
            names.remove(name);
            if names.is_empty() {
                self.by_id.remove(&id);
            }
        }
    }

    fn set_meta(&mut self, ns: &PartialObjectMeta<Namespace>) {
        let id = ns.labels().get(RESOURCE_GROUP_LABEL).map(String::as_str);
        let terminating = ns.metadata.deletion_timestamp.is_some();
        self.set(&ns.name_any(), id, terminating);
    }

    /// The namespace of resource group `rg`, as [`pick`] decides.
    pub fn namespace_of(&self, rg: &str) -> Result<String, ApiError> {
        let live = self.by_id.get(rg).into_iter().flatten().filter(|name| {
            self.namespaces
                .get(name.as_str())
                .is_some_and(|(_, terminating)| !terminating)
        });
        pick(rg, live.cloned().collect())
    }
}

/// The one live namespace among `live` (those labelled for `rg`, not being
/// deleted): 404 when none, 409 when several.
pub fn pick(rg: &str, live: Vec<String>) -> Result<String, ApiError> {
    match live.as_slice() {
        [] => Err(ApiError::not_found(format!(
            "resource group {rg} not found"
        ))),
        [one] => Ok(one.clone()),
        several => Err(ApiError::conflict(format!(
            "resource group {rg} is ambiguous: namespaces {} all carry \
             {RESOURCE_GROUP_LABEL}={rg}; an administrator must relabel all but one",
            several.join(", ")
        ))),
    }
}

/// Label selector of this installation's resource-group namespaces, or of
/// those of `rg` alone (`installation`: the operator's
/// `--namespace-selector`). `rg` is a checked label value, so it cannot
/// widen the selector.
pub fn selector(rg: Option<&str>, installation: Option<&str>) -> String {
    let label = match rg {
        Some(rg) => format!("{RESOURCE_GROUP_LABEL}={rg}"),
        None => RESOURCE_GROUP_LABEL.to_owned(),
    };
    match installation {
        Some(selector) => format!("{label},{selector}"),
        None => label,
    }
}

/// The watched resource groups, and a list for what the watch has not
/// shown yet.
pub struct Cache {
    groups: RwLock<Groups>,
    synced: tokio::sync::watch::Sender<bool>,
    client: Client,
    installation: Option<String>,
}

impl Cache {
    /// Starts the watch; answers come from the apiserver until it synced.
    pub fn spawn(client: Client, installation: Option<String>) -> Arc<Self> {
        let cache = Self::unwatched(client, installation);
        tokio::spawn(Arc::clone(&cache).watch());
        cache
    }

    /// Never synced: every answer from the apiserver (tests of the router).
    pub(super) fn unwatched(client: Client, installation: Option<String>) -> Arc<Self> {
        Arc::new(Cache {
            groups: RwLock::default(),
            synced: tokio::sync::watch::Sender::new(false),
            client,
            installation,
        })
    }

    async fn watch(self: Arc<Self>) {
        let config =
            watcher::Config::default().labels(&selector(None, self.installation.as_deref()));
        // Metadata only: the labels are all a resource group needs.
        let api = Api::<PartialObjectMeta<Namespace>>::all(self.client.clone());
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        // A re-list replaces the whole map at its end, never half of it.
        let mut relisted: Option<Groups> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => relisted = Some(Groups::default()),
                Ok(Event::InitApply(ns)) => relisted.get_or_insert_default().set_meta(&ns),
                Ok(Event::InitDone) => {
                    *self.write() = relisted.take().unwrap_or_default();
                    self.synced.send_replace(true);
                }
                Ok(Event::Apply(ns)) => self.write().set_meta(&ns),
                Ok(Event::Delete(ns)) => self.write().remove(&ns.name_any()),
                Err(e) => {
                    tracing::warn!(error = %e, "REST API resource-group watch failed; retrying")
                }
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Groups> {
        self.groups.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The namespace of `rg`. Only a hit is taken from the watch: a miss,
    /// an ambiguity or an unsynced watch asks the apiserver, because a
    /// namespace labelled a moment ago may not have reached the watch yet.
    /// Call it for authenticated callers only.
    pub async fn namespace_of(&self, rg: &str) -> Result<String, ApiError> {
        if *self.synced.borrow() {
            let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(ns) = groups.namespace_of(rg) {
                return Ok(ns);
            }
        }
        let params =
            ListParams::default().labels(&selector(Some(rg), self.installation.as_deref()));
        let labelled = Api::<Namespace>::all(self.client.clone())
            .list_metadata(&params)
            .await
            .map_err(|e| ApiError::internal("looking up the resource group", &e))?;
        let live = labelled
            .items
            .iter()
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .map(ResourceExt::name_any)
            .collect();
        pick(rg, live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn selects_the_resource_groups_within_the_installation() {
        assert_eq!(selector(None, None), "aicore.dev/resource-group");
        assert_eq!(
            selector(Some("rg-a"), None),
            "aicore.dev/resource-group=rg-a"
        );
        assert_eq!(
            selector(Some("rg-a"), Some("!gso-test")),
            "aicore.dev/resource-group=rg-a,!gso-test"
        );
    }

    #[test]
    fn finds_the_single_live_namespace_of_a_group() {
        let mut groups = Groups::default();
        groups.set("team-a", Some("rg-a"), false);
        groups.set("old-a", Some("rg-a"), true);
        groups.set("team-b", Some("rg-b"), false);
        assert_eq!(groups.namespace_of("rg-a"), Ok("team-a".to_owned()));
        let missing = groups.namespace_of("rg-x").expect_err("none");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.message(), "resource group rg-x not found");

        groups.set("copy-b", Some("rg-b"), false);
        let several = groups.namespace_of("rg-b").expect_err("ambiguous");
        assert_eq!(several.status(), StatusCode::CONFLICT);
        assert!(several.message().contains("copy-b, team-b"), "{several:?}");
        // Relabelled, then unlabelled: each namespace holds one id at most.
        groups.set("copy-b", Some("rg-c"), false);
        assert_eq!(groups.namespace_of("rg-b"), Ok("team-b".to_owned()));
        assert_eq!(groups.namespace_of("rg-c"), Ok("copy-b".to_owned()));
        groups.set("copy-b", None, false);
        groups.remove("team-b");
        groups.remove("never-seen");
        assert!(groups.namespace_of("rg-b").is_err());
        assert!(groups.namespace_of("rg-c").is_err());
        assert!(!groups.by_id.contains_key("rg-b"), "{groups:?}");
    }
}
