//! The [`Context`] every reconcile shares: clients, configuration, the
//! indexes the watches keep, bounds on concurrent writes, metrics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;

use super::Config;
use super::conflicts::Conflicts;
use super::written::Written;
use crate::api::GenericSecret;
use crate::index::replicas::Replicas;
use crate::index::{Facts, Groups, Key, Objects};
use crate::metrics::Metrics;
use crate::plan::{Rules, World, deps};

/// The object and namespace indexes, behind one lock: a wake-up decision
/// reads both, and no lock is ever held across an await.
#[derive(Debug, Default)]
pub struct Indexes {
    pub objects: Objects,
    pub groups: Groups,
}

impl Indexes {
    /// Apply one GenericSecret event (`new`: its facts now, None: deleted);
    /// returns the objects whose plan it can change (`plan::deps`).
    pub fn apply_object(
        &mut self,
        rules: &Rules,
        now: Timestamp,
        key: Key,
        new: Option<Facts>,
    ) -> HashSet<Key> {
        // Most events are status writes that change no fact: nothing to do.
        if self.objects.get(&key) == new.as_ref() {
            return HashSet::new();
        }
        let in_tenant = key.namespace.as_deref() == Some(&rules.tenant_namespace);
        let before = in_tenant.then(|| deps::tenant_view(&self.world(rules, now)));
        let old = match &new {
            Some(facts) => self.objects.upsert(facts.clone()),
            None => self.objects.remove(&key),
        };
        let world = self.world(rules, now);
        deps::after_object_change(&world, old.as_ref(), new.as_ref(), before.as_ref())
    }

    pub fn world<'a>(&'a self, rules: &'a Rules, now: Timestamp) -> World<'a> {
        World {
            rules,
            objects: &self.objects,
            groups: &self.groups,
            now,
        }
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    /// Writes replicas, status and finalizers (fenced when leader election runs).
    pub client: Client,
    /// Publishes Kubernetes Events on GenericSecrets.
    pub recorder: Recorder,
    pub config: Config,
    /// The planner's view of `config`.
    pub rules: Rules,
    /// This installation's finalizer.
    pub finalizer: String,
    /// The controller's cache of GenericSecrets (the reconciled object).
    pub store: Store<GenericSecret>,
    /// Facts of every GenericSecret and the namespaces, kept by the watches.
    pub indexes: Arc<RwLock<Indexes>>,
    /// The replicas this installation wrote, kept by their watch.
    pub replicas: Arc<RwLock<Replicas>>,
    /// Watches on the unmanaged Secrets that targets are in conflict with.
    pub conflicts: Conflicts,
    /// Replica writes in flight, across all reconciles (`--write-concurrency`).
    pub writes: Semaphore,
    /// Consecutive failures per object, for the retry backoff.
    pub failures: Mutex<HashMap<Key, u32>>,
    pub metrics: Arc<Metrics>,
    /// Pending targets per object as last reported, behind the gauge.
    pub pending: Mutex<HashMap<Key, i64>>,
    /// When the last progress status was written, by any object: progress
    /// writes of big fan-outs are expensive, so they share one per interval.
    pub last_progress: Mutex<Option<std::time::Instant>>,
    /// Objects warned of an overdue rotation, with the data hash warned of.
    pub overdue: Mutex<HashMap<Key, String>>,
    /// Status writes the cache does not show yet.
    pub written: Arc<Written>,
}

impl Context {
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    pub fn indexes(&self) -> RwLockReadGuard<'_, Indexes> {
        // A poisoned lock means a watch task panicked mid-update; the index
        // is still a consistent map, and the next re-list rebuilds it.
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn replicas(&self) -> RwLockReadGuard<'_, Replicas> {
        self.replicas.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Update the replica cache (write-through after our own writes).
    pub fn with_replicas(&self, f: impl FnOnce(&mut Replicas)) {
        let mut guard = self.replicas.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }

    /// Next reconcile: when the plan changes by itself, else the resync.
    pub fn requeue_until(&self, wake_at: Option<Timestamp>, now: Timestamp) -> Action {
        let resync = self.config.resync_interval;
        let wait = wake_at
            .and_then(|t| Duration::try_from(t.duration_since(now)).ok())
            .map_or(resync, |d| d.min(resync));
        // A little past the due time, so the clock has surely passed it.
        Action::requeue(wait + Duration::from_millis(50))
    }

    /// Whether a progress status may be written now (at most one per
    /// `interval` across all objects); takes the slot if so.
    pub fn take_progress_slot(&self, interval: Duration) -> bool {
        let Ok(mut last) = self.last_progress.lock() else {
            return false;
        };
        if last.is_some_and(|t| t.elapsed() < interval) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }

    /// Record how many targets of `object` still wait for the current data.
    pub fn set_pending(&self, object: Key, pending: Option<i64>) {
        let Ok(mut map) = self.pending.lock() else {
            return;
        };
        let old = match pending {
            Some(n) => map.insert(object, n),
            None => map.remove(&object),
        };
        self.metrics
            .pending_targets
            .inc_by(pending.unwrap_or(0) - old.unwrap_or(0));
    }

    /// Note that `object`'s rotation of `hash` is overdue (None: it is not
    /// any more); true when that is news, to warn once per rotation.
    pub fn overdue(&self, object: &Key, hash: Option<&str>) -> bool {
        let Ok(mut map) = self.overdue.lock() else {
            return false;
        };
        match hash {
            None => map.remove(object).is_some(),
            Some(h) if map.get(object).map(String::as_str) == Some(h) => false,
            Some(h) => {
                map.insert(object.clone(), h.to_owned());
                true
            }
        }
    }

    /// Whether this installation handles objects in `namespace`.
    pub fn handles(&self, namespace: &str) -> bool {
        self.config.namespace_selector.is_none()
            || namespace == self.config.tenant_namespace
            || self.indexes().groups.contains(namespace)
    }

    /// Publish an event; failures are logged, never fatal.
    pub async fn publish(&self, gs: &GenericSecret, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &gs.object_ref(&())).await {
            tracing::warn!(error = %e, object = %gs.name_any(), "publishing event failed");
        }
    }
}
