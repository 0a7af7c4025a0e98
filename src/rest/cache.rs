//! The REST API's own watch of every `GenericSecret` (operator identity),
//! so that list and get answer from memory instead of an apiserver LIST or
//! GET per request. RBAC still decides: [`super::access`] reviews the
//! caller first. Cached objects keep what the responses need (metadata,
//! spec without data, status): no `managedFields`, no last-applied copy.
//!
//! Read-your-writes: a write through this server waits (bounded) until the
//! watch delivered the version the apiserver returned, so the caller's next
//! read sees it. Until the first list is in, callers read from the apiserver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::api::GenericSecret;

/// How long a write waits for the watch to show it; past that the answer
/// goes out anyway (the write is done), only a read right after may lag.
pub const WRITE_VISIBLE_WITHIN: Duration = Duration::from_secs(2);

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a write left behind, for [`Cache::wait_for`].
#[derive(Debug, Clone)]
pub enum Written {
    /// The object at this resourceVersion (or a later one).
    Version(String),
    /// The object with this uid gone, or being deleted.
    Gone(Option<String>),
}

pub struct Cache {
    store: Store<GenericSecret>,
    ready: AtomicBool,
    /// Bumped after every watch event, to wake [`Cache::wait_for`].
    events: watch::Sender<u64>,
}

impl Cache {
    /// Starts the watch; [`Cache::store`] is None until its first list is in.
    pub fn spawn(client: Client) -> Arc<Self> {
        let (store, writer) = reflector::store();
        let cache = Arc::new(Cache {
            store,
            ready: AtomicBool::new(false),
            events: watch::Sender::new(0),
        });
        tokio::spawn(Arc::clone(&cache).watch(client, writer));
        cache
    }

    /// Never synced: every read from the apiserver (tests of the router).
    pub fn unwatched() -> Arc<Self> {
        let (store, _writer) = reflector::store();
        Arc::new(Cache {
            store,
            ready: AtomicBool::new(false),
            events: watch::Sender::new(0),
        })
    }

    async fn watch(
        self: Arc<Self>,
        client: Client,
        mut writer: reflector::store::Writer<GenericSecret>,
    ) {
        let api = Api::<GenericSecret>::all(client);
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(prune)
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    if matches!(event, watcher::Event::InitDone) {
                        self.ready.store(true, Ordering::Release);
                    }
                    self.events.send_modify(|n| *n = n.wrapping_add(1));
                }
                Err(e) => tracing::warn!(error = %e, "REST API object watch failed; retrying"),
            }
        }
    }

    /// The cached objects, once the watch has listed them all.
    pub fn store(&self) -> Option<&Store<GenericSecret>> {
        self.ready.load(Ordering::Acquire).then_some(&self.store)
    }

    /// The objects of `namespace`, by name (an apiserver list's order).
    pub fn in_namespace(store: &Store<GenericSecret>, namespace: &str) -> Vec<Arc<GenericSecret>> {
        let mut items = store.state_filter(|gs| gs.namespace().as_deref() == Some(namespace));
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        items
    }

    /// Waits until the cache shows `written` on `namespace/name`, at most
    /// [`WRITE_VISIBLE_WITHIN`]; false if it did not (or is not synced).
    pub async fn wait_for(&self, namespace: &str, name: &str, written: &Written) -> bool {
        if self.store().is_none() {
            return false; // reads go to the apiserver meanwhile
        }
        let key = ObjectRef::new(name).within(namespace);
        let mut events = self.events.subscribe();
        let shown = || {
            self.store()
                .is_some_and(|s| shows(s.get(&key).as_deref(), written))
        };
        let waited = tokio::time::timeout(WRITE_VISIBLE_WITHIN, async {
            // Subscribed before the check: no event is missed in between.
            while !shown() {
                if events.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await;
        let seen = waited.unwrap_or(false);
        if !seen {
            tracing::debug!(
                namespace,
                name,
                "the watch did not show a REST write in time"
            );
        }
        seen
    }
}

/// Whether `cached` (the cache's object by that name) reflects `written`.
pub fn shows(cached: Option<&GenericSecret>, written: &Written) -> bool {
    match (written, cached) {
        (Written::Version(rv), Some(gs)) => gs
            .resource_version()
            .is_some_and(|have| at_least(&have, rv)),
        (Written::Version(_), None) => false,
        (Written::Gone(_), None) => true,
        (Written::Gone(uid), Some(gs)) => {
            gs.metadata.deletion_timestamp.is_some() || gs.metadata.uid != *uid
        }
    }
}

/// resourceVersions are etcd revisions in practice; compared as numbers,
/// and only equal ones count when either is not a number.
fn at_least(have: &str, want: &str) -> bool {
    match (have.parse::<u64>(), want.parse::<u64>()) {
        (Ok(have), Ok(want)) => have >= want,
        _ => have == want,
    }
}

/// What the responses need, nothing more: no data (the REST API never
/// returns it), no `managedFields`, no last-applied copy of the spec.
fn prune(gs: &mut GenericSecret) {
    gs.metadata.managed_fields = None;
    if let Some(annotations) = gs.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    gs.spec.data = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GenericSecretSpec, Scope};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn object(rv: &str, uid: &str) -> GenericSecret {
        let mut gs = GenericSecret::new(
            "a",
            GenericSecretSpec {
                scope: Scope::Tenant,
                secret_name: None,
                type_: "Opaque".into(),
                data: None,
                data_from: None,
                labels: Default::default(),
                rollout: None,
            },
        );
        gs.metadata.resource_version = Some(rv.into());
        gs.metadata.uid = Some(uid.into());
        gs
    }

    #[test]
    fn a_write_shows_at_its_version_or_later_and_a_delete_once_gone() {
        let v = |rv: &str| Written::Version(rv.into());
        assert!(!shows(None, &v("10")));
        assert!(!shows(Some(&object("9", "u")), &v("10")));
        assert!(shows(Some(&object("10", "u")), &v("10")));
        assert!(shows(Some(&object("11", "u")), &v("10")));
        assert!(!shows(Some(&object("x1", "u")), &v("x2")));
        assert!(shows(Some(&object("x2", "u")), &v("x2")));

        let gone = Written::Gone(Some("u".into()));
        assert!(shows(None, &gone));
        assert!(!shows(Some(&object("10", "u")), &gone));
        // Another object took the name, or ours waits for its finalizer.
        assert!(shows(Some(&object("12", "other")), &gone));
        let mut deleting = object("11", "u");
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(shows(Some(&deleting), &gone));
    }
}
