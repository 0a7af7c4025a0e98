//! The bench's watches, one set per scenario run:
//!
//! - a cache of the run's GenericSecrets, which the status waits poll every
//!   100 ms: a LIST of 2N objects per poll would cost the apiserver
//!   megabytes of JSON ten times a second at N = 1 000, on the cores the
//!   operator is measured on;
//! - the changes to the bench's objects (`secrets ADDED|MODIFIED|DELETED` for
//!   the replica Secrets of one tenant, `genericsecrets ...` for the run's
//!   GenericSecrets). Unlike the apiserver's cluster-wide counters these see
//!   only the bench's objects; they miss writes that changed nothing (an
//!   apply of what is already there), which request counts include.
//!
//! The replica watch starts only for the windows that count its changes
//! (quiet, restart): during a timed phase its events would cost the
//! apiserver and the bench CPU on the cores the operator is measured on,
//! which the raw baseline does not pay.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use tokio::task::JoinHandle;

use crate::cluster::{BENCH_LABEL, Cluster, TENANT_LABEL, gsec_resource};
use crate::metrics::Counters;
use crate::util::Result;

pub struct Watches {
    counts: Arc<Mutex<Counters>>,
    store: Store<DynamicObject>,
    tasks: Vec<JoinHandle<()>>,
}

impl Watches {
    /// Starts watching the run's GenericSecrets; returns once the cache
    /// holds them.
    pub async fn start(cluster: &Cluster) -> Result<Self> {
        let counts = Arc::new(Mutex::new(Counters::new()));
        let mine = format!("{BENCH_LABEL}={}", cluster.run_id);
        let objects = watcher::Config::default().labels(&mine);
        let writer = Writer::new(gsec_resource());
        let store = writer.as_reader();
        let gsecs = watcher::watcher(cluster.gsecs(None), objects)
            .default_backoff()
            .reflect(writer);
        let tasks = vec![tokio::spawn(count(
            gsecs,
            "genericsecrets",
            counts.clone(),
            None,
        ))];
        let ready = tokio::time::timeout(Duration::from_secs(60), store.wait_until_ready());
        ready
            .await
            .map_err(|_| "the bench's GenericSecret watch did not sync in 60 s")??;
        Ok(Watches {
            counts,
            store,
            tasks,
        })
    }

    /// Starts counting the changes to the replicas of `tenant`; returns once
    /// the watch has listed them (what it lists are no changes).
    pub async fn count_replicas(&mut self, cluster: &Cluster, tenant: &str) -> Result<()> {
        let replicas = watcher::Config::default().labels(&format!("{TENANT_LABEL}={tenant}"));
        let secrets = Api::<Secret>::all(cluster.client.clone());
        let secrets = watcher::watcher(secrets, replicas).default_backoff();
        let (listed, synced) = tokio::sync::oneshot::channel();
        let counting = count(secrets, "secrets", self.counts.clone(), Some(listed));
        self.tasks.push(tokio::spawn(counting));
        tokio::time::timeout(Duration::from_secs(120), synced)
            .await
            .map_err(|_| "the bench's replica watch did not sync in 120 s")??;
        Ok(())
    }

    /// Changes seen so far, by `resource EVENT`.
    pub fn changes(&self) -> Counters {
        lock(&self.counts).clone()
    }

    /// The run's GenericSecrets as last seen.
    pub fn objects(&self) -> Vec<Arc<DynamicObject>> {
        self.store.state()
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

fn lock(counts: &Mutex<Counters>) -> std::sync::MutexGuard<'_, Counters> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts the events of one watch; objects listed when the watch (re)starts
/// are not changes. `listed` hears when the first list is done.
async fn count<K, S>(
    events: S,
    resource: &str,
    counts: Arc<Mutex<Counters>>,
    mut listed: Option<tokio::sync::oneshot::Sender<()>>,
) where
    K: Resource + Debug,
    S: Stream<Item = std::result::Result<Event<K>, watcher::Error>>,
{
    let mut known = HashSet::new();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        let key = |o: &K| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
        let change = match event {
            Event::InitApply(o) => {
                known.insert(key(&o));
                None
            }
            Event::Apply(o) if known.insert(key(&o)) => Some("ADDED"),
            Event::Apply(_) => Some("MODIFIED"),
            Event::Delete(o) => {
                known.remove(&key(&o));
                Some("DELETED")
            }
            Event::InitDone => {
                if let Some(listed) = listed.take() {
                    let _ = listed.send(());
                }
                None
            }
            Event::Init => None,
        };
        if let Some(change) = change {
            let key = format!("{resource} {change}");
            *lock(&counts).entry(key).or_default() += 1.0;
        }
    }
}
