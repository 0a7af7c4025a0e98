//! The watches behind the controller. Every event updates an index and
//! wakes exactly the objects that `plan::deps` names, through one bounded
//! queue (a full queue slows the watches down instead of growing).
//!
//! - GenericSecrets: the controller's own trigger (only changes of spec,
//!   deletion or finalizers: its own status writes do not wake it), mirrored
//!   into the object index.
//! - Namespaces and replicas: each on its own task, into their indexes.
//! - Re-lists (after `410 Gone`, say) are buffered and swapped in whole, then
//!   compared with what was there, so nothing that changed meanwhile is lost.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::{self, Event, ExponentialBackoff};
use kube::runtime::{PredicateConfig, WatchStreamExt};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

use super::context::Indexes;
use super::status;
use super::written::Written;
use crate::api::GenericSecret;
use crate::http::Health;
use crate::index::replicas::{Replica, Replicas};
use crate::index::{Change, Facts, Groups, Key, Objects};
use crate::plan::{Rules, deps};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Wake-ups waiting for the controller; beyond this the watches wait.
pub const WAKE_QUEUE: usize = 1024;

pub type Wakes = mpsc::Sender<Key>;

/// Watch retries: quick, and capped at 2 s, so that reconciling resumes
/// within seconds of the apiserver's return (the default grows to 30 s).
pub fn backoff() -> impl Backoff {
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(ExponentialBackoff::from(policy), Duration::from_secs(30))
}

/// Whether an event shows the watch working: `Init` comes before the list
/// request, so it proves nothing.
fn works<K>(event: &Result<Event<K>, watcher::Error>) -> bool {
    matches!(event, Ok(e) if !matches!(e, Event::Init))
}

async fn send_all(wakes: &mut Wakes, keys: HashSet<Key>) {
    for key in keys {
        // Fails only when the controller has shut down.
        if wakes.send(key).await.is_err() {
            return;
        }
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    // Poisoned only if a panic interrupted an update; the maps stay usable.
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// The GenericSecret watch: the controller's store and trigger stream.
pub fn generic_secrets(
    api: Api<GenericSecret>,
    written: Arc<Written>,
    indexes: Arc<RwLock<Indexes>>,
    rules: Rules,
    wakes: Wakes,
    health: Health,
) -> (
    Store<GenericSecret>,
    impl Stream<Item = Result<GenericSecret, watcher::Error>> + Send,
    watch::Receiver<bool>,
) {
    let (store, writer) = reflector::store();
    let (synced, ready) = watch::channel(false);
    let mut index = ObjectWatch {
        indexes,
        rules,
        buffer: None,
        synced,
        failing: false,
    };
    let stream = watcher(api)
        .modify(keep_last_change)
        .reflect(writer)
        .map(move |event| {
            let woken = match &event {
                Ok(e) => {
                    written.seen(e);
                    let mut woken = index.on_event(e);
                    if works(&event) {
                        health.watch_ok("GenericSecret");
                        woken.extend(index.recovered());
                    }
                    woken
                }
                Err(e) => {
                    health.watch_failed("GenericSecret", e);
                    index.failing = true;
                    HashSet::new()
                }
            };
            (event, woken)
        })
        .then(move |(event, woken)| {
            let mut wakes = wakes.clone();
            async move {
                send_all(&mut wakes, woken).await;
                event
            }
        })
        .touched_objects()
        .predicate_filter(self_trigger, PredicateConfig::default());
    (store, stream, ready)
}

fn watcher<K>(api: Api<K>) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher_with(api, watcher::Config::default())
}

fn watcher_with<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config).backoff(backoff())
}

/// What of an object wakes the object itself: its spec (generation) and its
/// deletion; not its status nor its finalizers, which it writes itself
/// (and goes on reconciling after adding the finalizer).
fn self_trigger(gs: &GenericSecret) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    gs.metadata.generation.hash(&mut hasher);
    gs.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Of `managedFields` keep only the time of the last change to the object
/// (where the replication-lag metric starts): the rest is most of an
/// object's size and no decision reads it. Nor does any read kubectl's
/// last-applied annotation, a second copy of the spec (data included).
fn keep_last_change(gs: &mut GenericSecret) {
    if let Some(annotations) = gs.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    let last = status::last_change(gs);
    gs.metadata.managed_fields = last.map(|t| {
        vec![ManagedFieldsEntry {
            time: Some(Time(t)),
            ..ManagedFieldsEntry::default()
        }]
    });
}

struct ObjectWatch {
    indexes: Arc<RwLock<Indexes>>,
    rules: Rules,
    buffer: Option<Objects>,
    synced: watch::Sender<bool>,
    /// The watch failed since its last event (the apiserver was away).
    failing: bool,
}

impl ObjectWatch {
    fn on_event(&mut self, event: &Event<GenericSecret>) -> HashSet<Key> {
        match event {
            Event::Init => self.buffer = Some(Objects::default()),
            Event::InitApply(gs) => {
                if let Some(buffer) = &mut self.buffer {
                    buffer.upsert(Facts::of(gs));
                }
            }
            // After a re-list (an outage, a `410 Gone`), every object looks
            // again at once: changes may have passed unseen, and the re-listed
            // objects do not pass the self-trigger filter. The first list is
            // reconciled by the controller anyway.
            Event::InitDone => {
                let relisted = *self.synced.borrow();
                self.synced.send_replace(true);
                if let Some(buffer) = self.buffer.take() {
                    let keys = relisted.then(|| buffer.keys().cloned().collect());
                    write(&self.indexes).objects = buffer;
                    return keys.unwrap_or_default();
                }
            }
            Event::Apply(gs) => return self.change(Key::from(gs), Some(Facts::of(gs))),
            Event::Delete(gs) => return self.change(Key::from(gs), None),
        }
        HashSet::new()
    }

    /// The watch works again after failing: every object looks again now,
    /// rather than when its retry backoff (grown during the outage) ends.
    fn recovered(&mut self) -> HashSet<Key> {
        // A re-list wakes everyone at its end (`InitDone`).
        if self.buffer.is_some() || !std::mem::take(&mut self.failing) {
            return HashSet::new();
        }
        let indexes = self.indexes.read().unwrap_or_else(|e| e.into_inner());
        indexes.objects.keys().cloned().collect()
    }

    fn change(&mut self, key: Key, new: Option<Facts>) -> HashSet<Key> {
        let now = k8s_openapi::jiff::Timestamp::now();
        write(&self.indexes).apply_object(&self.rules, now, key, new)
    }
}

/// Start the namespace watch; the receiver turns true once it has synced.
pub fn spawn_namespaces(
    api: Api<Namespace>,
    config: watcher::Config,
    indexes: Arc<RwLock<Indexes>>,
    rules: Rules,
    mut wakes: Wakes,
    health: Health,
) -> watch::Receiver<bool> {
    let (synced, ready) = watch::channel(false);
    tokio::spawn(async move {
        let mut buffer: Option<Groups> = None;
        let mut events = std::pin::pin!(watcher_with(api, config));
        while let Some(event) = events.next().await {
            if works(&event) {
                health.watch_ok("Namespace");
            }
            let changed: Vec<(String, Change)> = match event {
                Ok(Event::Init) => {
                    buffer = Some(Groups::default());
                    continue;
                }
                Ok(Event::InitApply(ns)) => {
                    buffer.get_or_insert_default().upsert(&ns);
                    continue;
                }
                Ok(Event::InitDone) => {
                    let new = buffer.take().unwrap_or_default();
                    let old = std::mem::replace(&mut write(&indexes).groups, new);
                    let first = !*synced.borrow();
                    synced.send_replace(true);
                    if first {
                        continue;
                    }
                    let changed = write(&indexes).groups.changed_since(&old);
                    changed.into_iter().map(|ns| (ns, Change::Group)).collect()
                }
                Ok(Event::Apply(ns)) => {
                    let change = write(&indexes).groups.upsert(&ns);
                    vec![(ns.name_any(), change)]
                }
                Ok(Event::Delete(ns)) => {
                    let change = write(&indexes).groups.remove(&ns.name_any());
                    vec![(ns.name_any(), change)]
                }
                Err(e) => {
                    health.watch_failed("Namespace", &e);
                    continue;
                }
            };
            let woken = {
                let guard = indexes.read().unwrap_or_else(|e| e.into_inner());
                let world = guard.world(&rules, k8s_openapi::jiff::Timestamp::now());
                changed
                    .iter()
                    .flat_map(|(ns, change)| deps::after_namespace_change(&world, ns, *change))
                    .collect()
            };
            send_all(&mut wakes, woken).await;
        }
    });
    ready
}

/// Start the replica watch (label-selected: only Secrets this installation
/// wrote); the receiver turns true once it has synced.
pub fn spawn_replicas(
    api: Api<Secret>,
    config: watcher::Config,
    tenant: String,
    replicas: Arc<RwLock<Replicas>>,
    mut wakes: Wakes,
    health: Health,
) -> watch::Receiver<bool> {
    let (synced, ready) = watch::channel(false);
    tokio::spawn(async move {
        let mut buffer: Option<Replicas> = None;
        let mut events = std::pin::pin!(watcher_with(api, config));
        while let Some(event) = events.next().await {
            if works(&event) {
                health.watch_ok("Secret");
            }
            let woken = match event {
                Ok(Event::Init) => {
                    buffer = Some(Replicas::default());
                    continue;
                }
                Ok(Event::InitApply(s)) => {
                    buffer
                        .get_or_insert_default()
                        .upsert(Replica::of(&s, &tenant));
                    continue;
                }
                Ok(Event::InitDone) => {
                    let new = buffer.take().unwrap_or_default();
                    let old = std::mem::replace(&mut *write(&replicas), new);
                    let first = !*synced.borrow();
                    synced.send_replace(true);
                    if first {
                        continue;
                    }
                    write(&replicas).writers_changed_since(&old)
                }
                Ok(Event::Apply(s)) => {
                    let new = Replica::of(&s, &tenant);
                    let old = write(&replicas).upsert(new.clone());
                    deps::after_replica_change(old.as_ref(), Some(&new))
                }
                Ok(Event::Delete(s)) => {
                    let key = (
                        s.namespace().unwrap_or_default().into(),
                        s.name_any().into(),
                    );
                    let old = write(&replicas).observe_delete(&key);
                    deps::after_replica_change(old.as_ref(), None)
                }
                Err(e) => {
                    health.watch_failed("Secret", &e);
                    continue;
                }
            };
            send_all(&mut wakes, woken).await;
        }
    });
    ready
}
